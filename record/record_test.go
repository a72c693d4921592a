package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
)

var codecs = []Codec{None, Gzip, Snappy, LZ4, Zstd}

// producerHeader is what a non-idempotent producer fills in.
func producerHeader() Header {
	return Header{
		PartitionLeaderEpoch: -1,
		FirstTimestamp:       1_700_000_000_000,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
	}
}

// sampleRecords returns n records exercising null and empty keys, values
// and header values, headers, and unordered timestamps.
func sampleRecords(rng *rand.Rand, n, valueSize int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		r := &recs[i]
		r.TimestampDelta = int64(i*3) - int64(i%4)
		switch i % 5 {
		case 0:
			r.Key = nil
		case 1:
			r.Key = []byte{}
		default:
			r.Key = fmt.Appendf(nil, "key-%d", i)
		}
		switch i % 7 {
		case 3:
			r.Value = nil
		case 4:
			r.Value = []byte{}
		default:
			r.Value = make([]byte, valueSize)
			for j := range r.Value {
				// Compressible but not trivially so.
				r.Value[j] = byte('a' + rng.IntN(8))
			}
		}
		for h := range i % 3 {
			hv := []byte(fmt.Sprint("v", h))
			if h == 1 {
				hv = nil
			}
			r.Headers = append(r.Headers, RecordHeader{Key: fmt.Sprint("h", h), Value: hv})
		}
	}
	return recs
}

func mustBuild(t testing.TB, h Header, recs []Record, codec Codec) []byte {
	t.Helper()
	b, err := Build(nil, h, recs, codec)
	if err != nil {
		t.Fatalf("Build(%v): %v", codec, err)
	}
	return b
}

// collect returns deep copies of the batch's records.
func collect(batch []byte, limit int) ([]Record, error) {
	var out []Record
	err := Records(batch, limit, func(r Record) bool {
		c := Record{
			OffsetDelta:    r.OffsetDelta,
			TimestampDelta: r.TimestampDelta,
			Key:            clone(r.Key),
			Value:          clone(r.Value),
		}
		for _, h := range r.Headers {
			c.Headers = append(c.Headers, RecordHeader{Key: h.Key, Value: clone(h.Value)})
		}
		out = append(out, c)
		return true
	})
	return out, err
}

// clone copies b keeping nil and empty apart.
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func sameBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}

// checkRecords compares decoded records with what was built, whose offset
// deltas Build assigns and whose timestamp deltas it rebases.
func checkRecords(t testing.TB, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.OffsetDelta != int32(i) {
			t.Errorf("record %d: offset delta %d", i, g.OffsetDelta)
		}
		if g.TimestampDelta != w.TimestampDelta-want[0].TimestampDelta {
			t.Errorf("record %d: timestamp delta %d, want %d", i, g.TimestampDelta, w.TimestampDelta-want[0].TimestampDelta)
		}
		if !sameBytes(g.Key, w.Key) {
			t.Errorf("record %d: key %q (nil %v), want %q (nil %v)", i, g.Key, g.Key == nil, w.Key, w.Key == nil)
		}
		if !sameBytes(g.Value, w.Value) {
			t.Errorf("record %d: value differs (nil %v, want nil %v)", i, g.Value == nil, w.Value == nil)
		}
		if len(g.Headers) != len(w.Headers) {
			t.Fatalf("record %d: %d headers, want %d", i, len(g.Headers), len(w.Headers))
		}
		for j := range w.Headers {
			if g.Headers[j].Key != w.Headers[j].Key || !sameBytes(g.Headers[j].Value, w.Headers[j].Value) {
				t.Errorf("record %d header %d: %+v, want %+v", i, j, g.Headers[j], w.Headers[j])
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := []struct {
		name      string
		n, valLen int
	}{
		{"one", 1, 10},
		{"small", 12, 100},
		{"many-tiny", 2000, 3},
		{"large-values", 4, 300 << 10},
	}
	for _, codec := range codecs {
		for _, s := range shapes {
			t.Run(fmt.Sprint(codec, "/", s.name), func(t *testing.T) {
				recs := sampleRecords(rng, s.n, s.valLen)
				h := producerHeader()
				h.BaseOffset = 42
				h.ProducerID, h.ProducerEpoch, h.BaseSequence = 7, 3, 100
				h.Attributes = attrTransactional
				b := mustBuild(t, h, recs, codec)

				got, err := Validate(b)
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				maxDelta := int64(0)
				for _, r := range recs {
					maxDelta = max(maxDelta, r.TimestampDelta)
				}
				want := Header{
					BaseOffset: 42, Length: int32(len(b) - 12), PartitionLeaderEpoch: -1, Magic: 2,
					CRC: got.CRC, Attributes: attrTransactional | int16(codec),
					LastOffsetDelta: int32(s.n - 1), FirstTimestamp: h.FirstTimestamp,
					MaxTimestamp: h.FirstTimestamp + maxDelta, ProducerID: 7, ProducerEpoch: 3,
					BaseSequence: 100, NumRecords: int32(s.n),
				}
				if got != want {
					t.Fatalf("header\n got %+v\nwant %+v", got, want)
				}
				if got.Codec() != codec || !got.Transactional() || got.Control() || got.LogAppendTime() {
					t.Fatalf("attribute accessors wrong for %+v", got)
				}
				if got.LastOffset() != 42+int64(s.n-1) {
					t.Fatalf("LastOffset %d", got.LastOffset())
				}
				decoded, err := collect(b, 64<<20)
				if err != nil {
					t.Fatalf("Records: %v", err)
				}
				checkRecords(t, decoded, recs)
			})
		}
	}
}

func TestBuildAppendsAndRebases(t *testing.T) {
	prefix := []byte("prefix")
	recs := []Record{
		{TimestampDelta: 10, OffsetDelta: 99, Value: []byte("a")},
		{TimestampDelta: 5, Value: []byte("b")},
		{TimestampDelta: 30, Value: []byte("c")},
	}
	h := producerHeader()
	b, err := Build(slices.Clone(prefix), h, recs, None)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, prefix) {
		t.Fatal("Build did not append to dst")
	}
	b = b[len(prefix):]
	got, err := Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.FirstTimestamp != h.FirstTimestamp+10 || got.MaxTimestamp != h.FirstTimestamp+30 {
		t.Fatalf("timestamps first=%d max=%d", got.FirstTimestamp-h.FirstTimestamp, got.MaxTimestamp-h.FirstTimestamp)
	}
	decoded, err := collect(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, decoded, recs)
}

func TestBuildErrors(t *testing.T) {
	if _, err := Build(nil, producerHeader(), nil, None); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("no records: %v", err)
	}
	if _, err := Build(nil, producerHeader(), []Record{{}}, 5); !errors.Is(err, ErrUnsupportedCodec) {
		t.Errorf("codec 5: %v", err)
	}
}

// batch wraps a raw record section in a header, independently of Build, so
// the error cases can hold records Build would never write.
func batch(codec Codec, numRecords, lastOffsetDelta int32, body []byte) []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(body))
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(HeaderSize-12+len(body)))
	be.PutUint32(b[12:], math.MaxUint32)
	b[16] = 2
	be.PutUint16(b[21:], uint16(codec))
	be.PutUint32(b[23:], uint32(lastOffsetDelta))
	be.PutUint64(b[43:], math.MaxUint64)
	be.PutUint16(b[51:], math.MaxUint16)
	be.PutUint32(b[53:], math.MaxUint32)
	be.PutUint32(b[57:], uint32(numRecords))
	b = append(b, body...)
	fixCRC(b)
	return b
}

func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
}

// rawRecord encodes one record from already encoded fields after the
// length, so that any field can be malformed.
func rawRecord(fields ...[]byte) []byte {
	body := bytes.Join(fields, nil)
	return append(appendVarint(nil, int64(len(body))), body...)
}

func vi(v int64) []byte { return appendVarint(nil, v) }

// okRecord is a well-formed record body with the given offset delta.
func okRecord(offsetDelta int64) []byte {
	return rawRecord([]byte{0}, vi(0), vi(offsetDelta), vi(1), []byte("k"), vi(2), []byte("vv"), vi(1), vi(1), []byte("h"), vi(-1))
}

func TestValidateErrors(t *testing.T) {
	good := mustBuild(t, producerHeader(), sampleRecords(rand.New(rand.NewPCG(3, 4)), 3, 20), None)
	mod := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	withCRC := func(f func(b []byte)) []byte {
		return mod(func(b []byte) []byte { f(b); fixCRC(b); return b })
	}
	two := append(okRecord(0), okRecord(1)...)

	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"header only partly", good[:HeaderSize-1], ErrCorrupt},
		{"truncated", good[:len(good)-1], ErrCorrupt},
		{"trailing byte after batch", append(slices.Clone(good), 0), ErrCorrupt},
		{"second batch appended", append(slices.Clone(good), good...), ErrCorrupt},
		{"negative length", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], math.MaxUint32); return b }), ErrCorrupt},
		{"flipped crc byte", mod(func(b []byte) []byte { b[18] ^= 0x40; return b }), ErrCorrupt},
		{"flipped attributes byte", mod(func(b []byte) []byte { b[22] ^= 0x08; return b }), ErrCorrupt},
		{"flipped last byte", mod(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrCorrupt},
		{"magic 1", mod(func(b []byte) []byte { b[16] = 1; return b }), ErrUnsupportedMagic},
		{"magic 3", mod(func(b []byte) []byte { b[16] = 3; return b }), ErrUnsupportedMagic},
		{"zero records", batch(None, 0, -1, nil), ErrInvalidRecord},
		{"count above records", batch(None, 3, 2, two), ErrInvalidRecord},
		{"count below records", batch(None, 1, 0, two), ErrInvalidRecord},
		{"lastOffsetDelta off", batch(None, 2, 2, two), ErrInvalidRecord},
		{"offset delta skips", batch(None, 2, 1, append(okRecord(0), okRecord(2)...)), ErrInvalidRecord},
		{"offset delta from one", batch(None, 1, 0, okRecord(1)), ErrInvalidRecord},
		{"codec 5", withCRC(func(b []byte) { b[22] |= 5 }), ErrUnsupportedCodec},
		{"codec 7", batch(7, 2, 1, two), ErrUnsupportedCodec},
		{"trailing garbage in batch", batch(None, 2, 1, append(slices.Clone(two), 0xff)), ErrInvalidRecord},
		{"trailing zero in batch", batch(None, 2, 1, append(slices.Clone(two), 0)), ErrInvalidRecord},
		{"record length past end", batch(None, 1, 0, okRecord(0)[:len(okRecord(0))-1]), ErrInvalidRecord},
		{"negative record length", batch(None, 1, 0, vi(-3)), ErrInvalidRecord},
		{"empty record", batch(None, 1, 0, rawRecord()), ErrInvalidRecord},
		{"varint too long", batch(None, 1, 0, rawRecord([]byte{0}, vi(0), []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0}, vi(-1), vi(-1), vi(0))), ErrInvalidRecord},
		{"varint too wide", batch(None, 1, 0, rawRecord([]byte{0}, vi(0), []byte{0x80, 0x80, 0x80, 0x80, 0x10}, vi(-1), vi(-1), vi(0))), ErrInvalidRecord},
		{"varlong too long", batch(None, 1, 0, rawRecord([]byte{0}, bytes.Repeat([]byte{0xff}, 10), vi(0), vi(-1), vi(-1), vi(0))), ErrInvalidRecord},
		{"unterminated varint", batch(None, 1, 0, rawRecord([]byte{0}, vi(0), []byte{0x80})), ErrInvalidRecord},
		{"unterminated record length", batch(None, 1, 0, []byte{0x80}), ErrInvalidRecord},
		{"key past record", batch(None, 1, 0, rawRecord([]byte{0}, vi(0), vi(0), vi(5), []byte("k"))), ErrInvalidRecord},
		{"key length -2", batch(None, 1, 0, rawRecord([]byte{0}, vi(0), vi(0), vi(-2), vi(-1), vi(0))), ErrInvalidRecord},
		{"value length -2", batch(None, 1, 0, rawRecord([]byte{0}, vi(0), vi(0), vi(-1), vi(-2), vi(0))), ErrInvalidRecord},
		{"missing header count", batch(None, 1, 0, rawRecord([]byte{0}, vi(0), vi(0), vi(-1), vi(-1))), ErrInvalidRecord},
		{"negative header count", batch(None, 1, 0, rawRecord([]byte{0}, vi(0), vi(0), vi(-1), vi(-1), vi(-1))), ErrInvalidRecord},
		{"header count past record", batch(None, 1, 0, rawRecord([]byte{0}, vi(0), vi(0), vi(-1), vi(-1), vi(2), vi(0), vi(-1))), ErrInvalidRecord},
		{"huge header count", batch(None, 1, 0, rawRecord([]byte{0}, vi(0), vi(0), vi(-1), vi(-1), vi(math.MaxInt32))), ErrInvalidRecord},
		{"null header key", batch(None, 1, 0, rawRecord([]byte{0}, vi(0), vi(0), vi(-1), vi(-1), vi(1), vi(-1), vi(-1))), ErrInvalidRecord},
		{"slack inside record", batch(None, 1, 0, rawRecord([]byte{0}, vi(0), vi(0), vi(-1), vi(-1), vi(0), []byte{0})), ErrInvalidRecord},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Validate(c.b); err != c.want {
				t.Fatalf("Validate = %v, want %v", err, c.want)
			}
		})
	}

	// The hand-built batches are only invalid where intended.
	for _, b := range [][]byte{batch(None, 2, 1, two), batch(None, 1, 0, okRecord(0))} {
		if _, err := Validate(b); err != nil {
			t.Fatalf("control batch: %v", err)
		}
	}
}

func TestValidateCompressedChecksHeaderOnly(t *testing.T) {
	// Garbage compressed records pass Validate by design; Records finds
	// them out.
	b := batch(Zstd, 1, 0, []byte("definitely not zstd"))
	if _, err := Validate(b); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if _, err := collect(b, 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Records: %v, want ErrCorrupt", err)
	}
	for _, bad := range []struct {
		b    []byte
		want error
	}{
		{batch(Zstd, 0, -1, nil), ErrInvalidRecord},
		{batch(Gzip, 2, 0, []byte{1}), ErrInvalidRecord},
		{batch(6, 1, 0, []byte{1}), ErrUnsupportedCodec},
	} {
		if _, err := Validate(bad.b); err != bad.want {
			t.Errorf("Validate = %v, want %v", err, bad.want)
		}
	}
}

func TestValidateDoesNotAllocate(t *testing.T) {
	b := mustBuild(t, producerHeader(), sampleRecords(rand.New(rand.NewPCG(5, 6)), 50, 100), None)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := Validate(b); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Validate allocates %v times", n)
	}
}

func TestSetBaseOffsetAndEpochKeepCRC(t *testing.T) {
	for _, codec := range codecs {
		b := mustBuild(t, producerHeader(), sampleRecords(rand.New(rand.NewPCG(7, 8)), 5, 50), codec)
		before, err := Validate(b)
		if err != nil {
			t.Fatal(err)
		}
		SetBaseOffset(b, 1<<40+5)
		SetPartitionLeaderEpoch(b, 17)
		h, err := Validate(b)
		if err != nil {
			t.Fatalf("%v: Validate after rewrite: %v", codec, err)
		}
		if h.BaseOffset != 1<<40+5 || h.PartitionLeaderEpoch != 17 || h.CRC != before.CRC {
			t.Fatalf("%v: header after rewrite %+v", codec, h)
		}
		if h.LastOffset() != 1<<40+5+4 {
			t.Fatalf("LastOffset = %d", h.LastOffset())
		}
	}
}

func TestSetMaxTimestampLogAppendTime(t *testing.T) {
	for _, codec := range codecs {
		recs := sampleRecords(rand.New(rand.NewPCG(9, 10)), 5, 50)
		b := mustBuild(t, producerHeader(), recs, codec)
		before, _ := Validate(b)
		const ts = 1_800_000_000_123
		SetMaxTimestampLogAppendTime(b, ts)
		h, err := Validate(b)
		if err != nil {
			t.Fatalf("%v: Validate: %v", codec, err)
		}
		if !h.LogAppendTime() || h.MaxTimestamp != ts || h.FirstTimestamp != before.FirstTimestamp ||
			h.Codec() != codec || h.Attributes&^attrLogAppendTime != before.Attributes {
			t.Fatalf("%v: header %+v (before %+v)", codec, h, before)
		}
		stamped := slices.Clone(b)
		SetMaxTimestampLogAppendTime(b, ts)
		if !bytes.Equal(b, stamped) {
			t.Fatalf("%v: restamping with the same time changed the batch", codec)
		}
		SetMaxTimestampLogAppendTime(b, ts+1)
		if h, err := Validate(b); err != nil || h.MaxTimestamp != ts+1 {
			t.Fatalf("%v: restamp: %+v %v", codec, h, err)
		}
		decoded, err := collect(b, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		checkRecords(t, decoded, recs)
	}
}

func TestRecordsLimit(t *testing.T) {
	// 1 MiB of records that compress to almost nothing: the zip bomb
	// shape.
	recs := []Record{{Value: make([]byte, 1<<20)}}
	raw, _ := appendRecords(nil, recs, 0)
	size := len(raw)
	for _, codec := range codecs[1:] {
		b := mustBuild(t, producerHeader(), recs, codec)
		if len(b) > 64<<10 {
			t.Fatalf("%v: bomb is %d bytes", codec, len(b))
		}
		for _, limit := range []int{-1, 0, 1000, 64 << 10, size - 1} {
			if _, err := collect(b, limit); err != ErrTooLarge {
				t.Errorf("%v: limit %d: %v, want ErrTooLarge", codec, limit, err)
			}
		}
		for _, limit := range []int{size, size + 1, math.MaxInt} {
			if _, err := collect(b, limit); err != nil {
				t.Errorf("%v: limit %d: %v", codec, limit, err)
			}
		}
	}
	// Uncompressed batches are already in memory; the limit is moot.
	if _, err := collect(mustBuild(t, producerHeader(), recs, None), 0); err != nil {
		t.Errorf("none: %v", err)
	}
}

func TestRecordsStopsEarly(t *testing.T) {
	b := mustBuild(t, producerHeader(), sampleRecords(rand.New(rand.NewPCG(11, 12)), 10, 5), Gzip)
	calls := 0
	err := Records(b, 1<<20, func(Record) bool {
		calls++
		return calls < 3
	})
	if err != nil || calls != 3 {
		t.Fatalf("calls=%d err=%v", calls, err)
	}
}

func TestRecordsErrors(t *testing.T) {
	good := mustBuild(t, producerHeader(), sampleRecords(rand.New(rand.NewPCG(13, 14)), 3, 5), None)
	bad := slices.Clone(good)
	bad[16] = 1
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"short", good[:10], ErrCorrupt},
		{"truncated", good[:len(good)-1], ErrCorrupt},
		{"magic", bad, ErrUnsupportedMagic},
		{"codec", batch(5, 1, 0, okRecord(0)), ErrUnsupportedCodec},
		{"count", batch(None, 2, 1, okRecord(0)), ErrInvalidRecord},
		{"surplus", batch(None, 1, 0, append(okRecord(0), okRecord(1)...)), ErrInvalidRecord},
		{"garbage", batch(None, 1, 0, append(okRecord(0), 1, 2)), ErrCorrupt},
		{"gzip garbage", batch(Gzip, 1, 0, []byte("nope")), ErrCorrupt},
		{"lz4 garbage", batch(LZ4, 1, 0, []byte("nope")), ErrCorrupt},
		{"snappy garbage", batch(Snappy, 1, 0, []byte{5, 0xff}), ErrCorrupt},
		{"snappy claims too much", batch(Snappy, 1, 0, []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 1}), ErrTooLarge},
		{"xerial short", batch(Snappy, 1, 0, []byte(xerialMagic+"\x00\x00")), ErrCorrupt},
		{"xerial block past end", batch(Snappy, 1, 0, []byte(xerialMagic+"\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x09ab")), ErrCorrupt},
		{"xerial length cut", batch(Snappy, 1, 0, []byte(xerialMagic+"\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00")), ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := 0
			err := Records(c.b, 1<<20, func(Record) bool { n++; return true })
			if !errors.Is(err, c.want) {
				t.Fatalf("Records = %v, want %v", err, c.want)
			}
			if c.name == "surplus" && n != 1 {
				t.Fatalf("surplus record delivered: %d calls", n)
			}
		})
	}
	// Compaction leaves gaps in offset deltas; Records reads them.
	gappy := batch(None, 2, 5, append(okRecord(0), okRecord(5)...))
	var deltas []int32
	if err := Records(gappy, 0, func(r Record) bool { deltas = append(deltas, r.OffsetDelta); return true }); err != nil || !slices.Equal(deltas, []int32{0, 5}) {
		t.Fatalf("gappy batch: %v %v", deltas, err)
	}
}

// xerialFrame frames src the way snappy-java does, in blocks of at most
// blockSize bytes.
func xerialFrame(src []byte, blockSize int) []byte {
	out := []byte(xerialMagic + "\x00\x00\x00\x01\x00\x00\x00\x01")
	for len(src) > 0 {
		n := min(blockSize, len(src))
		blk := snappy.Encode(nil, src[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(blk)))
		out = append(out, blk...)
		src = src[n:]
	}
	return out
}

func TestXerialSnappy(t *testing.T) {
	recs := sampleRecords(rand.New(rand.NewPCG(15, 16)), 40, 2000)
	raw, _ := appendRecords(nil, recs, recs[0].TimestampDelta)
	for _, blockSize := range []int{32 << 10, 1000, len(raw)} {
		b := batch(Snappy, int32(len(recs)), int32(len(recs)-1), xerialFrame(raw, blockSize))
		if _, err := Validate(b); err != nil {
			t.Fatal(err)
		}
		decoded, err := collect(b, len(raw))
		if err != nil {
			t.Fatalf("block size %d: %v", blockSize, err)
		}
		checkRecords(t, decoded, recs)
		if _, err := collect(b, len(raw)-1); err != ErrTooLarge {
			t.Fatalf("block size %d: limit: %v", blockSize, err)
		}
	}
	// Header-only framing decodes to no records.
	if err := Records(batch(Snappy, 0, -1, xerialFrame(nil, 1)), 0, func(Record) bool { return true }); err != nil {
		t.Fatal(err)
	}
}

// zstdStream compresses src the way a streaming producer does: in several
// writes and flushes, so the frame has no content size and declares the
// given window.
func zstdStream(t *testing.T, src []byte, window int) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithWindowSize(window), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	for len(src) > 0 {
		n := min(4096, len(src))
		enc.Write(src[:n])
		enc.Flush()
		src = src[n:]
	}
	enc.Close()
	var fh zstd.Header
	if err := fh.Decode(buf.Bytes()); err != nil || fh.HasFCS || fh.WindowSize != uint64(window) {
		t.Fatalf("test frame not as intended: %+v %v", fh, err)
	}
	return buf.Bytes()
}

func TestZstdStreamedLargeWindow(t *testing.T) {
	// Java's producer streams zstd, declaring a window from the level (8
	// MiB at level 19) however small the batch. Small limits must still
	// decode those.
	recs := sampleRecords(rand.New(rand.NewPCG(17, 18)), 30, 1000)
	raw, _ := appendRecords(nil, recs, recs[0].TimestampDelta)
	n := int32(len(recs))
	b := batch(Zstd, n, n-1, zstdStream(t, raw, 8<<20))
	decoded, err := collect(b, len(raw))
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, decoded, recs)
	for _, limit := range []int{0, 100, len(raw) - 1} {
		if _, err := collect(b, limit); err != ErrTooLarge {
			t.Fatalf("limit %d: %v", limit, err)
		}
	}

	// Windows beyond the allowance need a limit that covers them.
	b = batch(Zstd, n, n-1, zstdStream(t, raw, 32<<20))
	if _, err := collect(b, len(raw)); err != ErrTooLarge {
		t.Fatalf("32 MiB window: %v", err)
	}
	if _, err := collect(b, 32<<20); err != nil {
		t.Fatalf("32 MiB window and limit: %v", err)
	}

	// Two frames back to back, as concatenating producers write.
	two := append(zstdEncoder().EncodeAll(raw[:len(raw)/2], nil), zstdEncoder().EncodeAll(raw[len(raw)/2:], nil)...)
	decoded, err = collect(batch(Zstd, n, n-1, two), len(raw))
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, decoded, recs)
	if _, err := collect(batch(Zstd, n, n-1, two), len(raw)-1); err != ErrTooLarge {
		t.Fatalf("two frames over the limit: %v", err)
	}
}

func TestVarints(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 63, -64, 64, -65, 1 << 20, math.MaxInt32, math.MinInt32} {
		b := appendVarint(nil, v)
		if len(b) != varintLen(v) {
			t.Errorf("varintLen(%d) = %d, encoded %d", v, varintLen(v), len(b))
		}
		if got, n := readVarint(b); got != int32(v) || n != len(b) {
			t.Errorf("readVarint(%d) = %d, %d", v, got, n)
		}
	}
	for _, v := range []int64{0, -1, math.MaxInt32 + 1, math.MinInt32 - 1, math.MaxInt64, math.MinInt64} {
		b := appendVarint(nil, v)
		if got, n := readVarlong(b); got != v || n != len(b) {
			t.Errorf("readVarlong(%d) = %d, %d", v, got, n)
		}
	}
	for _, b := range [][]byte{nil, {0x80}, appendVarint(nil, math.MaxInt32+1), {0xff, 0xff, 0xff, 0xff, 0x1f}} {
		if _, n := readVarint(b); n > 0 {
			t.Errorf("readVarint(%x) accepted", b)
		}
	}
	for _, b := range [][]byte{nil, {0xff}, bytes.Repeat([]byte{0xff}, 10), append(bytes.Repeat([]byte{0xff}, 9), 0x02)} {
		if _, n := readVarlong(b); n > 0 {
			t.Errorf("readVarlong(%x) accepted", b)
		}
	}
}

func TestCodecString(t *testing.T) {
	for c, want := range map[Codec]string{None: "none", Gzip: "gzip", Snappy: "snappy", LZ4: "lz4", Zstd: "zstd", 6: "codec(6)"} {
		if c.String() != want {
			t.Errorf("%d: %q", c, c.String())
		}
	}
}
