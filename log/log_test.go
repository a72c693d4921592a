package log

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/rocketkafka/broker/record"
	"github.com/rocketkafka/broker/segment"
)

// testOptions uses small files so tests roll CommitLog and ConsumeQueue files.
func testOptions(fs segment.FS) Options {
	return Options{Dir: "/data", FS: fs, SegmentBytes: 64 << 10, ConsumeQueueEntries: 16, KeyIndexSlots: 64, KeyIndexEntries: 256}
}

func openTest(t testing.TB, o Options) *Log {
	t.Helper()
	l, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

type batchSpec struct {
	n         int
	valueSize int
	ts        int64 // first record timestamp; records are 1ms apart
	idem      bool  // idempotent: pid, epoch and seq apply
	pid       int64
	epoch     int16
	seq       int32
	codec     record.Codec
}

func buildBatch(t testing.TB, s batchSpec) []byte {
	t.Helper()
	if s.n == 0 {
		s.n = 1
	}
	if !s.idem {
		s.pid, s.epoch, s.seq = -1, -1, -1
	}
	recs := make([]record.Record, s.n)
	for i := range recs {
		recs[i] = record.Record{TimestampDelta: int64(i), Key: fmt.Appendf(nil, "k%d", i), Value: make([]byte, s.valueSize)}
	}
	b, err := record.Build(nil, record.Header{FirstTimestamp: s.ts, ProducerID: s.pid, ProducerEpoch: s.epoch, BaseSequence: s.seq}, recs, s.codec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAll returns the base offsets of every batch readable from offset.
func readAll(t *testing.T, p *Partition, offset int64) []int64 {
	t.Helper()
	var bases []int64
	for offset < p.HighWatermark() {
		chunks, err := p.Read(offset, 1<<20, true, nil)
		if err != nil {
			t.Fatalf("Read(%d): %v", offset, err)
		}
		if len(chunks) == 0 {
			t.Fatalf("Read(%d) below high watermark %d returned nothing", offset, p.HighWatermark())
		}
		for _, c := range chunks {
			b := make([]byte, c.Len)
			if err := c.Segment.ReadAt(b, c.Off); err != nil {
				t.Fatal(err)
			}
			h, err := record.Validate(b)
			if err != nil {
				t.Fatalf("stored batch at offset %d does not validate: %v", offset, err)
			}
			bases = append(bases, h.BaseOffset)
			offset = h.LastOffset() + 1
			c.Release()
		}
	}
	return bases
}

func TestAppendReadAcrossFilesAndRestart(t *testing.T) {
	fs := segment.NewMemFS()
	l := openTest(t, testOptions(fs))
	if _, err := l.CreateTopic("orders", 2, nil); err != nil {
		t.Fatal(err)
	}
	p, _ := l.Partition("orders", 1)
	var want []int64
	for i := range 40 {
		res, err := p.Append(buildBatch(t, batchSpec{n: 3, valueSize: 3000}))
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if res.BaseOffset != int64(3*i) {
			t.Fatalf("append %d got base offset %d, want %d", i, res.BaseOffset, 3*i)
		}
		want = append(want, res.BaseOffset)
	}
	if n := len(l.cl.queue.Segments()); n < 3 {
		t.Fatalf("40 batches of ~9 KiB in 64 KiB files used %d files, want rolling", n)
	}
	check := func(l *Log) {
		t.Helper()
		p, err := l.Partition("orders", 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, p, 0); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("read back %v, want %v", got, want)
		}
		if got := readAll(t, p, 7); got[0] != 6 {
			t.Fatalf("reading from offset 7 started at batch %d, want the batch holding it (6)", got[0])
		}
		if p.HighWatermark() != 120 {
			t.Fatalf("high watermark %d, want 120", p.HighWatermark())
		}
	}
	check(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, testOptions(fs))
	check(l)
	// Without Close, and with unsynced data dropped, the scan rebuilds the indexes.
	if _, err := l.cl.sync(); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	l = openTest(t, testOptions(fs))
	check(l)
	l.Close()
}

func TestOffsetOutOfRangeAndEmptyRead(t *testing.T) {
	l := openTest(t, testOptions(segment.NewMemFS()))
	defer l.Close()
	l.CreateTopic("t", 1, nil)
	p, _ := l.Partition("t", 0)
	if _, err := p.Append(buildBatch(t, batchSpec{n: 2})); err != nil {
		t.Fatal(err)
	}
	if chunks, err := p.Read(2, 100, true, nil); err != nil || len(chunks) != 0 {
		t.Fatalf("read at the high watermark: %v %v, want nothing and no error", chunks, err)
	}
	for _, off := range []int64{-1, 3} {
		if _, err := p.Read(off, 100, true, nil); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read at %d: %v, want ErrOffsetOutOfRange", off, err)
		}
	}
	if _, err := l.Partition("t", 1); !errors.Is(err, ErrUnknownPartition) {
		t.Fatalf("partition 1: %v", err)
	}
	if _, err := l.Partition("nope", 0); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("unknown topic: %v", err)
	}
}

func TestMaxBytesKIP74(t *testing.T) {
	l := openTest(t, testOptions(segment.NewMemFS()))
	defer l.Close()
	l.CreateTopic("t", 1, nil)
	p, _ := l.Partition("t", 0)
	var size int64
	for range 4 {
		b := buildBatch(t, batchSpec{n: 1, valueSize: 1000})
		size = int64(len(b))
		p.Append(b)
	}
	if c, _ := p.Read(0, 10, true, nil); len(c) != 1 {
		t.Fatalf("minOne with a tiny limit returned %d batches, want 1", len(c))
	}
	if c, _ := p.Read(0, 10, false, nil); len(c) != 0 {
		t.Fatalf("without minOne a tiny limit returned %d batches, want 0", len(c))
	}
	if c, _ := p.Read(0, 2*size+size/2, false, nil); len(c) != 2 {
		t.Fatalf("limit of 2.5 batches returned %d, want 2", len(c))
	}
}

func TestValidationFailuresStoreNothing(t *testing.T) {
	l := openTest(t, testOptions(segment.NewMemFS()))
	defer l.Close()
	l.CreateTopic("t", 1, map[string]string{"max.message.bytes": "2000"})
	p, _ := l.Partition("t", 0)
	good := buildBatch(t, batchSpec{n: 2, valueSize: 10})
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 0xff
	cases := map[string]struct {
		batch []byte
		want  error
	}{
		"crc":       {badCRC, record.ErrCorrupt},
		"truncated": {good[:len(good)-3], record.ErrCorrupt},
		"too large": {buildBatch(t, batchSpec{n: 1, valueSize: 3000}), ErrTooLarge},
	}
	for name, c := range cases {
		if _, err := p.Append(c.batch); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if p.HighWatermark() != 0 || l.cl.written.Load() != 0 {
		t.Fatalf("rejected batches moved the log: hwm %d, CommitLog end %d", p.HighWatermark(), l.cl.written.Load())
	}
}

func TestIdempotentProducer(t *testing.T) {
	fs := segment.NewMemFS()
	l := openTest(t, testOptions(fs))
	l.CreateTopic("t", 1, nil)
	p, _ := l.Partition("t", 0)
	pid, epoch, err := l.InitProducerID()
	if err != nil {
		t.Fatal(err)
	}
	send := func(seq int32, n int) (AppendResult, error) {
		return p.Append(buildBatch(t, batchSpec{n: n, idem: true, pid: pid, epoch: epoch, seq: seq}))
	}
	first, _ := send(0, 2)
	send(2, 3)
	dup, err := send(0, 2)
	if err != nil || !dup.Duplicate || dup.BaseOffset != first.BaseOffset {
		t.Fatalf("duplicate: %+v %v, want the original offset %d", dup, err, first.BaseOffset)
	}
	if _, err := send(9, 1); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("sequence gap: %v", err)
	}
	if p.HighWatermark() != 5 {
		t.Fatalf("high watermark %d, want 5: duplicates must not be stored", p.HighWatermark())
	}
	// Producer state survives a clean restart and a crash alike.
	l.Close()
	for _, crash := range []bool{false, true} {
		l = openTest(t, testOptions(fs))
		p, _ = l.Partition("t", 0)
		if dup, err := send(2, 3); err != nil || !dup.Duplicate || dup.BaseOffset != 2 {
			t.Fatalf("crash=%v: retry after restart: %+v %v", crash, dup, err)
		}
		if crash {
			break
		}
		l.cl.sync()
		fs.Crash()
	}
	if _, err := p.Append(buildBatch(t, batchSpec{n: 1, idem: true, pid: pid, epoch: epoch - 1, seq: 5})); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("fenced epoch: %v", err)
	}
	if _, err := p.Append(buildBatch(t, batchSpec{n: 1, idem: true, pid: pid, epoch: epoch + 1, seq: 3})); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch not starting at 0: %v", err)
	}
	if _, err := p.Append(buildBatch(t, batchSpec{n: 1, idem: true, pid: pid, epoch: epoch + 1, seq: 0})); err != nil {
		t.Fatalf("new epoch at 0: %v", err)
	}
	l.Close()
}

func TestProducerIDsNeverRepeat(t *testing.T) {
	fs := segment.NewMemFS()
	l := openTest(t, testOptions(fs))
	a, _, _ := l.InitProducerID()
	fs.Crash() // the reserved block was synced before the ID was handed out
	l = openTest(t, testOptions(fs))
	b, _, _ := l.InitProducerID()
	if b <= a {
		t.Fatalf("producer id %d after a crash, not above %d", b, a)
	}
	l.Close()
}

func TestRecreatedTopicNeverShowsOldRecords(t *testing.T) {
	fs := segment.NewMemFS()
	l := openTest(t, testOptions(fs))
	old, _ := l.CreateTopic("t", 1, nil)
	p, _ := l.Partition("t", 0)
	for range 3 {
		p.Append(buildBatch(t, batchSpec{n: 1}))
	}
	if _, err := l.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	fresh, _ := l.CreateTopic("t", 1, nil)
	if fresh.ID == old.ID {
		t.Fatal("re-created topic kept its ID")
	}
	p, _ = l.Partition("t", 0)
	if p.HighWatermark() != 0 {
		t.Fatalf("re-created topic starts at %d", p.HighWatermark())
	}
	p.Append(buildBatch(t, batchSpec{n: 1}))
	l.cl.sync()
	fs.Crash() // recovery scans the old topic's entries too
	l = openTest(t, testOptions(fs))
	p, _ = l.Partition("t", 0)
	if p.HighWatermark() != 1 {
		t.Fatalf("after recovery the re-created topic has %d records, want 1", p.HighWatermark())
	}
	l.Close()
}

func TestOffsetForTimestamp(t *testing.T) {
	l := openTest(t, testOptions(segment.NewMemFS()))
	defer l.Close()
	l.CreateTopic("t", 1, nil)
	p, _ := l.Partition("t", 0)
	// Batches of 3 records at 1000,1001,1002 / 2000.. / 3000.. ; the
	// middle batch is gzip so the lookup must decompress.
	for i, codec := range []record.Codec{record.None, record.Gzip, record.None} {
		p.Append(buildBatch(t, batchSpec{n: 3, ts: int64(1000 * (i + 1)), codec: codec}))
	}
	for _, c := range []struct{ ts, offset, found int64 }{{0, 0, 1000}, {1000, 0, 1000}, {1001, 1, 1001}, {1003, 3, 2000}, {2002, 5, 2002}, {3002, 8, 3002}, {3003, -1, -1}} {
		off, ts, ok, err := p.OffsetForTimestamp(c.ts)
		if err != nil || off != c.offset || (ok && ts != c.found) || ok != (c.offset >= 0) {
			t.Errorf("OffsetForTimestamp(%d) = %d, %d, %v, %v; want %d, %d", c.ts, off, ts, ok, err, c.offset, c.found)
		}
	}
	if off, ts, err := p.MaxTimestamp(); err != nil || off != 8 || ts != 3002 {
		t.Errorf("MaxTimestamp = %d, %d, %v; want 8, 3002", off, ts, err)
	}
}

func TestTornTailIsCut(t *testing.T) {
	for seed := range int64(50) {
		fs := segment.NewMemFS()
		l := openTest(t, testOptions(fs))
		l.CreateTopic("t", 3, nil)
		rng := rand.New(rand.NewPCG(uint64(seed), 1))
		synced := map[int32]int64{}
		for i := range 30 {
			part := int32(rng.IntN(3))
			p, _ := l.Partition("t", part)
			if _, err := p.Append(buildBatch(t, batchSpec{n: 1 + rng.IntN(4), valueSize: rng.IntN(4000)})); err != nil {
				t.Fatal(err)
			}
			if i%7 == 0 {
				l.cl.sync()
				for j := int32(0); j < 3; j++ {
					q, _ := l.Partition("t", j)
					synced[j] = q.HighWatermark()
				}
			}
		}
		fs.CrashTorn(rng)
		l = openTest(t, testOptions(fs))
		for j := int32(0); j < 3; j++ {
			p, _ := l.Partition("t", j)
			if p.HighWatermark() < synced[j] {
				t.Fatalf("seed %d: partition %d lost synced records: %d < %d", seed, j, p.HighWatermark(), synced[j])
			}
			readAll(t, p, 0)
		}
		// The store keeps working after recovery, and again after a clean restart.
		p, _ := l.Partition("t", 0)
		hwm := p.HighWatermark()
		if res, err := p.Append(buildBatch(t, batchSpec{n: 1})); err != nil || res.BaseOffset != hwm {
			t.Fatalf("seed %d: append after recovery: %+v %v", seed, res, err)
		}
		l.Close()
		l = openTest(t, testOptions(fs))
		p, _ = l.Partition("t", 0)
		readAll(t, p, 0)
		l.Close()
	}
}

func TestSyncFlushWaitsForFsync(t *testing.T) {
	fs := segment.NewMemFS()
	o := testOptions(fs)
	o.SyncFlush = true
	o.FlushInterval = time.Hour
	l := openTest(t, o)
	l.CreateTopic("t", 1, nil)
	p, _ := l.Partition("t", 0)
	res, err := p.Append(buildBatch(t, batchSpec{n: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitDurable(t.Context(), res.End); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	l = openTest(t, o)
	p, _ = l.Partition("t", 0)
	if p.HighWatermark() != 1 {
		t.Fatalf("acknowledged SYNC_FLUSH record lost in a crash")
	}
	l.Close()
}

func TestAppendManyPartitionsInOneWrite(t *testing.T) {
	fs := segment.NewMemFS()
	l := openTest(t, testOptions(fs))
	l.CreateTopic("a", 3, nil)
	l.CreateTopic("b", 1, nil)
	part := func(topic string, i int32) *Partition {
		p, err := l.Partition(topic, i)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := buildBatch(t, batchSpec{n: 1})
	bad[len(bad)-1] ^= 1
	appends := []BatchAppend{
		{Partition: part("b", 0), Batch: buildBatch(t, batchSpec{n: 2})},
		{Partition: part("a", 2), Batch: buildBatch(t, batchSpec{n: 3, valueSize: 10000})},
		{Partition: part("a", 2), Batch: bad},
		{Partition: part("a", 0), Batch: buildBatch(t, batchSpec{n: 1, valueSize: 40000})},
		{Partition: part("a", 2), Batch: buildBatch(t, batchSpec{n: 4})},
	}
	l.Append(appends)
	want := []struct {
		base int64
		err  error
	}{{0, nil}, {0, nil}, {0, record.ErrCorrupt}, {0, nil}, {3, nil}}
	for i, w := range want {
		a := appends[i]
		if !errors.Is(a.Err, w.err) || (w.err == nil && a.Result.BaseOffset != w.base) {
			t.Fatalf("append %d: base %d err %v, want base %d err %v", i, a.Result.BaseOffset, a.Err, w.base, w.err)
		}
	}
	// ~70 KiB in 64 KiB files: the write crossed a file boundary.
	check := func() {
		t.Helper()
		if got := readAll(t, part("a", 2), 0); fmt.Sprint(got) != "[0 3]" {
			t.Fatalf("a-2 holds batches %v", got)
		}
		if part("a", 2).HighWatermark() != 7 || part("a", 0).HighWatermark() != 1 || part("b", 0).HighWatermark() != 2 {
			t.Fatal("high watermarks are off")
		}
	}
	check()
	l.cl.sync()
	fs.Crash()
	l = openTest(t, testOptions(fs))
	check()
	l.Close()
}

func TestDiskFullRefusesAppendsAndKeepsServing(t *testing.T) {
	fs := segment.NewMemFS()
	l := openTest(t, testOptions(fs))
	l.CreateTopic("t", 1, nil)
	p, _ := l.Partition("t", 0)
	for range 3 {
		if _, err := p.Append(buildBatch(t, batchSpec{n: 2, valueSize: 100})); err != nil {
			t.Fatal(err)
		}
	}
	fs.FailWrites(syscall.ENOSPC)
	for range 5 {
		if _, err := p.Append(buildBatch(t, batchSpec{n: 1, valueSize: 20000})); !errors.Is(err, ErrStorage) {
			t.Fatalf("append on a full disk: %v, want ErrStorage", err)
		}
	}
	if p.HighWatermark() != 6 {
		t.Fatalf("failed appends moved the high watermark to %d", p.HighWatermark())
	}
	if got := readAll(t, p, 0); fmt.Sprint(got) != "[0 2 4]" {
		t.Fatalf("reads on a full disk: %v", got)
	}
	fs.FailWrites(nil)
	if res, err := p.Append(buildBatch(t, batchSpec{n: 1})); err != nil || res.BaseOffset != 6 {
		t.Fatalf("append once space is back: %+v %v", res, err)
	}
	l.cl.sync()
	fs.Crash()
	l = openTest(t, testOptions(fs))
	p, _ = l.Partition("t", 0)
	if got := readAll(t, p, 0); fmt.Sprint(got) != "[0 2 4 6]" {
		t.Fatalf("after a crash: %v", got)
	}
	l.Close()
}

func TestSecondOpenOfADirectoryIsRefused(t *testing.T) {
	o := Options{Dir: t.TempDir(), FS: segment.OS, KeyIndexSlots: 64, KeyIndexEntries: 256}
	l := openTest(t, o)
	if _, err := Open(o); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open of %s: %v, want ErrLocked", o.Dir, err)
	}
	l.Close()
	l = openTest(t, o) // the lock went with Close
	l.Close()
}

// TestRequestFailingInItsSecondWrite: a request written in two pwritev
// calls (here because it crosses into the next file) whose first-issued
// call succeeds and second fails fails as a whole: no partition moves,
// nothing is readable, and the next request takes the same offsets and
// position; after a crash, none of the failed request comes back.
func TestRequestFailingInItsSecondWrite(t *testing.T) {
	fs := segment.NewMemFS()
	l := openTest(t, testOptions(fs))
	if _, err := l.CreateTopic("t", 3, nil); err != nil {
		t.Fatal(err)
	}
	request := func() []BatchAppend {
		var appends []BatchAppend
		for i := range int32(3) {
			p, _ := l.Partition("t", i)
			appends = append(appends, BatchAppend{Partition: p, Batch: buildBatch(t, batchSpec{n: 1, valueSize: 30000})})
		}
		return appends
	}
	failed := request()
	fs.FailWritesAfter(1, syscall.EIO)
	l.Append(failed)
	fs.FailWrites(nil)
	for i, a := range failed {
		if !errors.Is(a.Err, ErrStorage) || a.Partition.HighWatermark() != 0 {
			t.Fatalf("partition %d of the failed request: %v, high watermark %d", i, a.Err, a.Partition.HighWatermark())
		}
	}
	again := request()
	l.Append(again)
	for i, a := range again {
		if a.Err != nil || a.Result.BaseOffset != 0 {
			t.Fatalf("partition %d of the next request: %+v %v", i, a.Result, a.Err)
		}
	}
	l.cl.sync()
	fs.Crash()
	l = openTest(t, testOptions(fs))
	defer l.Close()
	for i := range int32(3) {
		p, _ := l.Partition("t", i)
		if got := readAll(t, p, 0); fmt.Sprint(got) != "[0]" {
			t.Fatalf("partition %d after a crash: %v", i, got)
		}
	}
}
