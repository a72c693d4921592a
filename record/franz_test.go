package record

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests hold the package to franz-go, an independent implementation
// of the format: batches franz-go writes must validate and decode here,
// and batches Build writes must decode there.

var kgoCodecs = map[Codec]kgo.CompressionCodec{
	None:   kgo.NoCompression(),
	Gzip:   kgo.GzipCompression(),
	Snappy: kgo.SnappyCompression(),
	LZ4:    kgo.Lz4Compression(),
	Zstd:   kgo.ZstdCompression(),
}

// kmsgBatch encodes records with kmsg's types, compresses them with
// franz-go's compressor and computes the CRC with the standard library.
func kmsgBatch(t *testing.T, firstTimestamp int64, recs []Record, codec Codec) []byte {
	t.Helper()
	var raw []byte
	maxTS := firstTimestamp
	for i, r := range recs {
		kr := kmsg.Record{
			TimestampDelta64: r.TimestampDelta,
			OffsetDelta:      int32(i),
			Key:              r.Key,
			Value:            r.Value,
		}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		// Length counts what follows it: measure with a zero Length,
		// whose varint takes one byte.
		kr.Length = int32(len(kr.AppendTo(nil)) - 1)
		raw = kr.AppendTo(raw)
		maxTS = max(maxTS, firstTimestamp+r.TimestampDelta)
	}
	comp, err := kgo.DefaultCompressor(kgoCodecs[codec])
	if err != nil {
		t.Fatal(err)
	}
	out := raw
	if codec != None {
		var used kgo.CompressionCodecType
		out, used = comp.Compress(new(bytes.Buffer), raw)
		if int(used) != int(codec) {
			t.Fatalf("franz-go compressed with %v, want %v", used, codec)
		}
	}
	rb := kmsg.RecordBatch{
		FirstOffset:          0,
		Length:               int32(HeaderSize - 12 + len(out)),
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           int16(codec),
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       firstTimestamp,
		MaxTimestamp:         maxTS,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
		Records:              out,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func TestKmsgBatchesValidate(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			recs := sampleRecords(rng, 60, 500)
			// kmsg writes the deltas as given, so start at zero.
			base := recs[0].TimestampDelta
			for i := range recs {
				recs[i].TimestampDelta -= base
			}
			b := kmsgBatch(t, 1_700_000_000_000, recs, codec)
			h, err := Validate(b)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if h.Codec() != codec || h.NumRecords != 60 {
				t.Fatalf("header %+v", h)
			}
			got, err := collect(b, 16<<20)
			if err != nil {
				t.Fatalf("Records: %v", err)
			}
			checkRecords(t, got, recs)
		})
	}
}

// franzDecode parses a batch with kmsg and franz-go's consumer code.
func franzDecode(t *testing.T, b []byte) []*kgo.Record {
	t.Helper()
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: "t"},
		&kmsg.FetchResponseTopicPartition{HighWatermark: 1 << 62, LastStableOffset: 1 << 62, RecordBatches: b},
		kgo.DefaultDecompressor(), nil)
	if fp.Err != nil {
		t.Fatalf("franz-go: %v", fp.Err)
	}
	return fp.Records
}

func TestBuildDecodedByFranz(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			recs := sampleRecords(rng, 40, 1000)
			h := producerHeader()
			h.BaseOffset = 1000
			h.PartitionLeaderEpoch = 4
			h.ProducerID, h.ProducerEpoch, h.BaseSequence = 9, 2, 55
			b := mustBuild(t, h, recs, codec)

			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(b); err != nil {
				t.Fatalf("kmsg.RecordBatch: %v", err)
			}
			ours, _ := ParseHeader(b)
			if rb.FirstOffset != 1000 || rb.Length != ours.Length || rb.PartitionLeaderEpoch != 4 ||
				rb.Magic != 2 || uint32(rb.CRC) != ours.CRC || rb.Attributes != int16(codec) ||
				rb.LastOffsetDelta != 39 || rb.FirstTimestamp != ours.FirstTimestamp ||
				rb.MaxTimestamp != ours.MaxTimestamp || rb.ProducerID != 9 || rb.ProducerEpoch != 2 ||
				rb.FirstSequence != 55 || rb.NumRecords != 40 {
				t.Fatalf("kmsg reads header %+v", rb)
			}
			if codec == None {
				// kmsg's record type, split on the standard library's
				// zigzag varint, rather than this package's parser.
				rest := rb.Records
				for i := range recs {
					l, n := binary.Varint(rest)
					var kr kmsg.Record
					if err := kr.ReadFrom(rest[:n+int(l)]); err != nil {
						t.Fatalf("kmsg.Record %d: %v", i, err)
					}
					if kr.OffsetDelta != int32(i) || !bytes.Equal(kr.Key, recs[i].Key) || !bytes.Equal(kr.Value, recs[i].Value) ||
						len(kr.Headers) != len(recs[i].Headers) {
						t.Fatalf("kmsg.Record %d: %+v", i, kr)
					}
					rest = rest[n+int(l):]
				}
				if len(rest) != 0 {
					t.Fatalf("%d bytes after the records", len(rest))
				}
			}

			got := franzDecode(t, b)
			if len(got) != len(recs) {
				t.Fatalf("franz-go decoded %d records, want %d", len(got), len(recs))
			}
			for i, r := range got {
				w := recs[i]
				wantTS := ours.FirstTimestamp + w.TimestampDelta - recs[0].TimestampDelta
				if r.Offset != 1000+int64(i) || r.Timestamp.UnixMilli() != wantTS ||
					!bytes.Equal(r.Key, w.Key) || (r.Key == nil) != (w.Key == nil) ||
					!bytes.Equal(r.Value, w.Value) || (r.Value == nil) != (w.Value == nil) ||
					r.ProducerID != 9 || r.ProducerEpoch != 2 || r.LeaderEpoch != 4 ||
					int(r.Attrs.CompressionType()) != int(codec) || r.Attrs.TimestampType() != 0 {
					t.Fatalf("record %d: franz-go decoded %+v", i, r)
				}
				if len(r.Headers) != len(w.Headers) {
					t.Fatalf("record %d: %d headers", i, len(r.Headers))
				}
				for j, hd := range r.Headers {
					if hd.Key != w.Headers[j].Key || !bytes.Equal(hd.Value, w.Headers[j].Value) {
						t.Fatalf("record %d header %d: %+v", i, j, hd)
					}
				}
			}

			// franz-go honours the log append time this package stamps.
			SetMaxTimestampLogAppendTime(b, 1_900_000_000_000)
			for i, r := range franzDecode(t, b) {
				if r.Timestamp.UnixMilli() != 1_900_000_000_000 || r.Attrs.TimestampType() != 1 {
					t.Fatalf("record %d after LogAppendTime: %v type %d", i, r.Timestamp, r.Attrs.TimestampType())
				}
			}
		})
	}
}

// fakeBroker speaks just enough of the protocol over in-memory pipes for a
// franz-go producer to connect, find the leader of partition t/0, get a
// producer ID and send Produce requests, whose batches it keeps.
type fakeBroker struct {
	mu      sync.Mutex
	batches [][]byte
}

func (f *fakeBroker) dial(context.Context, string, string) (net.Conn, error) {
	client, server := net.Pipe()
	go f.serve(server)
	return client, nil
}

func (f *fakeBroker) serve(c net.Conn) {
	defer c.Close()
	for {
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(c, msg); err != nil || len(msg) < 10 {
			return
		}
		// Request header: api key, version, correlation ID, client ID
		// (int16-length string), and tagged fields if flexible.
		key := int16(binary.BigEndian.Uint16(msg))
		req := kmsg.RequestForKey(key)
		if req == nil {
			return
		}
		req.SetVersion(int16(binary.BigEndian.Uint16(msg[2:])))
		correlation := msg[4:8]
		body := msg[10:]
		if n := int16(binary.BigEndian.Uint16(msg[8:])); n > 0 {
			body = body[n:]
		}
		if req.IsFlexible() {
			if len(body) == 0 || body[0] != 0 {
				return // franz-go sends no header tags
			}
			body = body[1:]
		}
		if err := req.ReadFrom(body); err != nil {
			return
		}
		resp := f.handle(req)
		if resp == nil {
			return
		}
		out := append(make([]byte, 4), correlation...)
		// ApiVersions answers with the v0 response header whatever its
		// version, so that old clients can parse it.
		if resp.IsFlexible() && key != 18 {
			out = append(out, 0)
		}
		out = resp.AppendTo(out)
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

func (f *fakeBroker) handle(req kmsg.Request) kmsg.Response {
	switch req := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		for _, k := range []struct{ key, minV, maxV int16 }{
			{0, 3, 12}, // Produce; 13 addresses topics by ID
			{3, 0, 12}, // Metadata
			{18, 0, 3}, // ApiVersions
			{22, 0, 4}, // InitProducerID
		} {
			resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k.key, MinVersion: k.minV, MaxVersion: k.maxV})
		}
		return resp
	case *kmsg.MetadataRequest:
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 0, Host: "fake", Port: 9092}}
		resp.ControllerID = 0
		topic := kmsg.NewMetadataResponseTopic()
		topic.Topic = kmsg.StringPtr("t")
		part := kmsg.NewMetadataResponseTopicPartition()
		part.Replicas, part.ISR = []int32{0}, []int32{0}
		topic.Partitions = []kmsg.MetadataResponseTopicPartition{part}
		resp.Topics = []kmsg.MetadataResponseTopic{topic}
		return resp
	case *kmsg.InitProducerIDRequest:
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ProducerID, resp.ProducerEpoch = 7, 0
		return resp
	case *kmsg.ProduceRequest:
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, t := range req.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				f.batches = append(f.batches, slices.Clone(p.Records))
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	return nil
}

func TestFranzProducerBatches(t *testing.T) {
	for _, codec := range codecs {
		for _, streaming := range []bool{false, true} {
			if streaming && codec == None {
				continue
			}
			t.Run(fmt.Sprint(codec, "/streaming=", streaming), func(t *testing.T) {
				testFranzProducer(t, codec, streaming)
			})
		}
	}
}

func testFranzProducer(t *testing.T, codec Codec, streaming bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fb := new(fakeBroker)
	opts := []kgo.Opt{
		kgo.SeedBrokers("fake:9092"),
		kgo.Dialer(fb.dial),
		kgo.DefaultProduceTopic("t"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgoCodecs[codec]),
		kgo.ManualFlushing(),
		// Small batches make franz-go cut several; streaming
		// compression then merges them into one compressed stream:
		// xerial-framed snappy, and zstd frames of unknown size.
		kgo.ProducerBatchMaxBytes(64 << 10),
	}
	if streaming {
		opts = append(opts, kgo.StreamingCompression())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// franz-go streams only once a produce response told it the
	// produce version, so warm up with one record first.
	produce(ctx, t, cl, []Record{{Value: []byte("warm-up")}}, time.Now())
	fb.mu.Lock()
	fb.batches = nil
	fb.mu.Unlock()

	rng := rand.New(rand.NewPCG(25, uint64(codec)))
	// A few values past 32 KiB make streamed snappy span xerial blocks.
	want := sampleRecords(rng, 40, 300)
	for i := 5; i < len(want); i += 13 {
		want[i].Value = bytes.Repeat([]byte(fmt.Sprint("big-", i)), 7000)
	}
	start := time.UnixMilli(1_700_000_000_000)
	produce(ctx, t, cl, want, start)

	fb.mu.Lock()
	defer fb.mu.Unlock()
	if len(fb.batches) == 0 {
		t.Fatal("no batches produced")
	}
	var got []Record
	seq := int32(1) // after the warm-up record
	for _, b := range fb.batches {
		h, err := Validate(b)
		if err != nil {
			t.Fatalf("Validate franz-go batch: %v", err)
		}
		if h.Codec() != codec || h.ProducerID != 7 || h.ProducerEpoch != 0 || h.BaseSequence != seq {
			t.Fatalf("franz-go batch header %+v", h)
		}
		seq += h.NumRecords
		if streaming {
			// Make sure the formats meant to be covered were written.
			var fh zstd.Header
			switch body := b[HeaderSize:]; {
			case codec == Snappy && !bytes.HasPrefix(body, []byte(xerialMagic)):
				t.Fatal("streamed snappy is not xerial framed")
			case codec == Zstd && (fh.Decode(body) != nil || fh.HasFCS):
				t.Fatalf("streamed zstd frame declares its size: %+v", fh)
			}
		}
		before := int32(len(got))
		err = Records(b, 16<<20, func(r Record) bool {
			// Compare as absolute timestamps relative to start, since
			// each batch has its own first timestamp.
			r.TimestampDelta += h.FirstTimestamp - start.UnixMilli()
			r.OffsetDelta += before
			c := r
			c.Key, c.Value, c.Headers = clone(r.Key), clone(r.Value), nil
			for _, hd := range r.Headers {
				c.Headers = append(c.Headers, RecordHeader{Key: hd.Key, Value: clone(hd.Value)})
			}
			got = append(got, c)
			return true
		})
		if err != nil {
			t.Fatalf("Records of franz-go batch: %v", err)
		}
	}
	// checkRecords rebases timestamps on the first record's, as Build
	// does, so rebase got to match.
	for i := range got {
		got[i].TimestampDelta -= want[0].TimestampDelta
	}
	checkRecords(t, got, want)
}

// produce sends recs, timestamped from start, in one flush.
func produce(ctx context.Context, t *testing.T, cl *kgo.Client, recs []Record, start time.Time) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(recs))
	for _, r := range recs {
		kr := &kgo.Record{Key: r.Key, Value: r.Value, Timestamp: start.Add(time.Duration(r.TimestampDelta) * time.Millisecond)}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		wg.Add(1)
		cl.Produce(ctx, kr, func(_ *kgo.Record, err error) { errs <- err; wg.Done() })
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}
