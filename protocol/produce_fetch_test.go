package protocol

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"github.com/rocketkafka/broker/log"
	"github.com/rocketkafka/broker/netpoll"
	"github.com/rocketkafka/broker/record"
)

func testBatch(t testing.TB, n, valueSize int, codec record.Codec) []byte {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		v := make([]byte, valueSize)
		for j := range v {
			v[j] = byte(i + j)
		}
		recs[i] = record.Record{TimestampDelta: int64(i), Key: fmt.Appendf(nil, "key-%d", i), Value: v}
	}
	b, err := record.Build(nil, record.Header{FirstTimestamp: 1700000000000, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs, codec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func produceReq(version int16, topic string, id log.TopicID, partition int32, acks int16, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.Acks, req.TimeoutMillis = acks, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func produce(t testing.TB, h *Handler, store *log.Log, version int16, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	tp, _ := store.Topic(topic)
	resp := roundTrip(t, h, produceReq(version, topic, tp.ID, 0, -1, batch)).(*kmsg.ProduceResponse)
	return resp.Topics[0].Partitions[0]
}

// assemble concatenates a response's pieces, reading file pieces with pread
// as sendfile would send them, after the correlation ID.
func assemble(t testing.TB, resp *netpoll.Response) []byte {
	t.Helper()
	var b []byte
	for _, p := range resp.Pieces {
		if p.Bytes != nil {
			b = append(b, p.Bytes...)
			continue
		}
		buf := make([]byte, p.Len)
		if n, err := unix.Pread(p.Fd, buf, p.Off); err != nil || int64(n) != p.Len {
			t.Fatalf("pread of a file piece: %d, %v", n, err)
		}
		b = append(b, buf...)
	}
	return b
}

func fetchReq(version int16, topic string, id log.TopicID, offset int64, maxWait int32, minBytes int32, partMax int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(version)
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, maxWait, minBytes, 50<<20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 0, offset, partMax, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// fetch serves a Fetch and decodes the hand-encoded response with kmsg.
func fetch(t testing.TB, h *Handler, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	t.Helper()
	resp, err := h.Serve(context.Background(), nil, requestFrame(req, testCorrelationID, testClientID))
	if err != nil {
		t.Fatalf("Fetch v%d: %v", req.Version, err)
	}
	if resp.Release != nil {
		defer resp.Release()
	}
	b := assemble(t, resp)[4:]
	if req.Version >= 12 {
		b = b[1:]
	}
	out := kmsg.NewPtrFetchResponse()
	out.SetVersion(req.Version)
	if err := out.ReadFrom(b); err != nil {
		t.Fatalf("Fetch v%d response does not decode: %v", req.Version, err)
	}
	return out
}

func TestProduceFetchEveryVersion(t *testing.T) {
	for _, threshold := range []int64{0, 1 << 30} { // all sendfile, all copied
		h, store := newTestHandler(t, func(c *Config) { c.FetchSendfileMinBytes = threshold })
		topic, _ := store.CreateTopic("events", 1, nil)
		for i, codec := range []record.Codec{record.None, record.Gzip, record.Snappy, record.LZ4, record.Zstd} {
			p := produce(t, h, store, int16(3+i*2), "events", testBatch(t, 3, 200, codec))
			if p.ErrorCode != 0 || p.BaseOffset != int64(3*i) {
				t.Fatalf("produce %d: code %d base %d", i, p.ErrorCode, p.BaseOffset)
			}
		}
		for v := int16(4); v <= 18; v++ {
			resp := fetch(t, h, fetchReq(v, "events", topic.ID, 4, 0, 1, 1<<20))
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.HighWatermark != 15 {
				t.Fatalf("v%d: code %d hwm %d", v, p.ErrorCode, p.HighWatermark)
			}
			// The batch holding offset 4 comes back whole, and so does the rest.
			var offsets []int64
			for len(p.RecordBatches) > 0 {
				var rb kmsg.RecordBatch
				if err := rb.ReadFrom(p.RecordBatches); err != nil {
					t.Fatalf("v%d: %v", v, err)
				}
				offsets = append(offsets, rb.FirstOffset)
				p.RecordBatches = p.RecordBatches[12+rb.Length:]
			}
			if fmt.Sprint(offsets) != "[3 6 9 12]" {
				t.Fatalf("v%d (threshold %d): batches at %v, want [3 6 9 12]", v, threshold, offsets)
			}
		}
		stats := h.Stats()
		if threshold == 0 && (stats.FetchBytesFile == 0 || stats.FetchBytesCopied != 0) {
			t.Fatalf("threshold 0: %+v, want every byte by sendfile", stats)
		}
		if threshold > 0 && (stats.FetchBytesCopied == 0 || stats.FetchBytesFile != 0) {
			t.Fatalf("huge threshold: %+v, want every byte copied", stats)
		}
	}
}

func TestFetchOutOfRangeAndUnknown(t *testing.T) {
	h, store := newTestHandler(t)
	topic, _ := store.CreateTopic("t", 1, nil)
	produce(t, h, store, 9, "t", testBatch(t, 2, 10, record.None))
	p := fetch(t, h, fetchReq(11, "t", topic.ID, 3, 0, 1, 1<<20)).Topics[0].Partitions[0]
	if p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != 2 || p.LogStartOffset != 0 {
		t.Fatalf("fetch past the end: %+v", p)
	}
	p = fetch(t, h, fetchReq(11, "nope", topic.ID, 0, 0, 1, 1<<20)).Topics[0].Partitions[0]
	if p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: code %d", p.ErrorCode)
	}
	p = fetch(t, h, fetchReq(13, "", log.TopicID{9}, 0, 0, 1, 1<<20)).Topics[0].Partitions[0]
	if p.ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("unknown topic id: code %d", p.ErrorCode)
	}
}

func TestFetchLongPollWokenByProduce(t *testing.T) {
	h, store := newTestHandler(t)
	topic, _ := store.CreateTopic("t", 1, nil)
	done := make(chan *kmsg.FetchResponse, 1)
	start := time.Now()
	go func() { done <- fetch(t, h, fetchReq(12, "t", topic.ID, 0, 30000, 1, 1<<20)) }()
	// Produce until the waiting fetch answers: it must be woken, not time out.
	deadline := time.After(10 * time.Second)
	for {
		select {
		case resp := <-done:
			if len(resp.Topics[0].Partitions[0].RecordBatches) == 0 {
				t.Fatal("long poll answered without records")
			}
			if time.Since(start) > 10*time.Second {
				t.Fatal("long poll was not woken by the produce")
			}
			return
		case <-deadline:
			t.Fatal("long poll was not woken by the produce")
		case <-time.After(20 * time.Millisecond):
			produce(t, h, store, 9, "t", testBatch(t, 1, 10, record.None))
		}
	}
}

func TestFetchKIP74AndPartitionLimit(t *testing.T) {
	h, store := newTestHandler(t)
	topic, _ := store.CreateTopic("t", 1, nil)
	b := testBatch(t, 1, 5000, record.None)
	for range 3 {
		produce(t, h, store, 9, "t", b)
	}
	p := fetch(t, h, fetchReq(11, "t", topic.ID, 0, 0, 1, 100)).Topics[0].Partitions[0]
	if len(p.RecordBatches) != len(b) {
		t.Fatalf("a batch larger than the partition limit came back as %d bytes, want the whole %d (KIP-74)", len(p.RecordBatches), len(b))
	}
	p = fetch(t, h, fetchReq(11, "t", topic.ID, 0, 0, 1, int32(2*len(b)+10))).Topics[0].Partitions[0]
	if len(p.RecordBatches) != 2*len(b) {
		t.Fatalf("partition limit of 2 batches returned %d bytes", len(p.RecordBatches))
	}
}

func TestProduceRejectsBadBatches(t *testing.T) {
	h, store := newTestHandler(t)
	store.CreateTopic("t", 1, map[string]string{"max.message.bytes": "4000"})
	good := testBatch(t, 2, 10, record.None)
	corrupt := func(f func([]byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	cases := []struct {
		name  string
		batch []byte
		code  int16
	}{
		{"crc", corrupt(func(b []byte) { b[len(b)-1] ^= 1 }), kerr.CorruptMessage.Code},
		{"magic", corrupt(func(b []byte) { b[16] = 1 }), kerr.InvalidRecord.Code},
		{"length", corrupt(func(b []byte) { b[11]++ }), kerr.CorruptMessage.Code},
		{"truncated", good[:30], kerr.CorruptMessage.Code},
		{"two batches", append(append([]byte(nil), good...), good...), kerr.InvalidRecord.Code},
		{"too large", testBatch(t, 1, 5000, record.None), kerr.MessageTooLarge.Code},
	}
	for _, c := range cases {
		for _, v := range []int16{3, 7, 9, 13} {
			if p := produce(t, h, store, v, "t", c.batch); p.ErrorCode != c.code {
				t.Errorf("%s v%d: code %d (%v), want %d", c.name, v, p.ErrorCode, kerr.ErrorForCode(p.ErrorCode), c.code)
			}
		}
	}
	part, _ := store.Partition("t", 0)
	if part.HighWatermark() != 0 {
		t.Fatalf("rejected batches were stored: high watermark %d", part.HighWatermark())
	}
	if p := produce(t, h, store, 9, "t", good); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("a good batch after the bad ones: %+v", p)
	}
}

func TestProduceAcksZeroAndInvalidAcks(t *testing.T) {
	h, store := newTestHandler(t)
	topic, _ := store.CreateTopic("t", 1, nil)
	resp, err := h.Serve(context.Background(), nil, requestFrame(produceReq(9, "t", topic.ID, 0, 0, testBatch(t, 1, 1, record.None)), testCorrelationID, testClientID))
	if err != nil || resp != nil {
		t.Fatalf("acks=0: %v %v, want no response", resp, err)
	}
	r := roundTrip(t, h, produceReq(9, "t", topic.ID, 0, 2, testBatch(t, 1, 1, record.None))).(*kmsg.ProduceResponse)
	if c := r.Topics[0].Partitions[0].ErrorCode; c != kerr.InvalidRequiredAcks.Code {
		t.Fatalf("acks=2: code %d", c)
	}
	if part, _ := store.Partition("t", 0); part.HighWatermark() != 1 {
		t.Fatalf("hwm %d, want 1", part.HighWatermark())
	}
}

// BenchmarkFetchAssembly measures building a Fetch response for 100
// partitions of 16 KiB batches: ConsumeQueue lookups plus header encoding,
// with every record range handed over as a sendfile piece.
func BenchmarkFetchAssembly(b *testing.B) {
	h, store := newTestHandler(b, func(c *Config) { c.FetchSendfileMinBytes = 0 })
	topic, _ := store.CreateTopic("bench", 100, nil)
	batch := testBatch(b, 16, 1000, record.None)
	for p := range int32(100) {
		part, _ := store.Partition("bench", p)
		for range 20 {
			part.Append(append([]byte(nil), batch...))
		}
	}
	req := fetchReq(16, "bench", topic.ID, 0, 0, 1, 1<<20)
	rt := &req.Topics[0]
	rt.Partitions = rt.Partitions[:0]
	for p := range int32(100) {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, 160, 1<<20, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	frame := requestFrame(req, 1, "bench")
	b.ReportAllocs()
	for b.Loop() {
		resp, err := h.Serve(context.Background(), nil, frame)
		if err != nil {
			b.Fatal(err)
		}
		resp.Release()
	}
}

// BenchmarkProduceManyPartitions measures one Produce request carrying a
// 4 KiB batch for each of 1000 partitions, as a producer spread over many
// partitions sends them.
func BenchmarkProduceManyPartitions(b *testing.B) {
	h, store := newTestHandler(b)
	store.CreateTopic("bench", 1000, nil)
	batch := testBatch(b, 4, 1000, record.None)
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "bench"
	for p := range int32(1000) {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, batch
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	frame := requestFrame(req, 1, "bench")
	// The first produce creates every partition's ConsumeQueue file.
	if _, err := h.Serve(context.Background(), nil, append([]byte(nil), frame...)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(1000 * len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Serve(context.Background(), nil, append([]byte(nil), frame...)); err != nil {
			b.Fatal(err)
		}
	}
}
