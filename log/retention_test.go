package log

import (
	"errors"
	"testing"
	"time"

	"github.com/rocketkafka/broker/segment"
)

func TestRetentionByTime(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	o := testOptions(segment.NewMemFS())
	o.Now = func() time.Time { return now }
	l := openTest(t, o)
	defer l.Close()
	l.CreateTopic("t", 1, map[string]string{"retention.ms": "1000"})
	p, _ := l.Partition("t", 0)
	for i := range 5 {
		p.Append(buildBatch(t, batchSpec{n: 2, ts: 990_000 + int64(i)*2_000}))
	}
	// Batches at 990000.., 992000.., ... 998000..; the cutoff is 999000.
	if err := l.retain(); err != nil {
		t.Fatal(err)
	}
	if p.LogStartOffset() != 10 || p.HighWatermark() != 10 {
		t.Fatalf("start %d hwm %d, want every batch expired (10, 10)", p.LogStartOffset(), p.HighWatermark())
	}
	if _, err := p.Read(0, 1<<20, true, nil); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the start: %v", err)
	}
	res, _ := p.Append(buildBatch(t, batchSpec{n: 1, ts: 999_500}))
	if res.BaseOffset != 10 {
		t.Fatalf("next offset %d, want 10", res.BaseOffset)
	}
	now = now.Add(time.Second)
	l.retain()
	if p.LogStartOffset() != 11 {
		t.Fatalf("start %d after the last batch expired, want 11", p.LogStartOffset())
	}
}

func TestRetentionByBytes(t *testing.T) {
	l := openTest(t, testOptions(segment.NewMemFS()))
	defer l.Close()
	batch := buildBatch(t, batchSpec{n: 1, valueSize: 100})
	l.CreateTopic("t", 1, map[string]string{"retention.bytes": "350"})
	p, _ := l.Partition("t", 0)
	for range 10 {
		p.Append(append([]byte(nil), batch...))
	}
	l.retain()
	kept := (p.HighWatermark() - p.LogStartOffset()) * int64(len(batch))
	if kept > 350 || kept+int64(len(batch)) <= 350 {
		t.Fatalf("kept %d bytes (start %d) for retention.bytes=350 with %d-byte batches", kept, p.LogStartOffset(), len(batch))
	}
}

func TestDeleteRecordsSurvivesRestartAndCrash(t *testing.T) {
	fs := segment.NewMemFS()
	l := openTest(t, testOptions(fs))
	l.CreateTopic("t", 1, nil)
	p, _ := l.Partition("t", 0)
	for range 4 {
		p.Append(buildBatch(t, batchSpec{n: 3}))
	}
	if _, err := p.DeleteRecords(13); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("beyond the high watermark: %v", err)
	}
	if low, err := p.DeleteRecords(5); err != nil || low != 5 {
		t.Fatalf("DeleteRecords(5) = %d, %v", low, err)
	}
	if low, _ := p.DeleteRecords(2); low != 5 {
		t.Fatalf("moving back: low watermark %d", low)
	}
	// The batch holding offset 5 (3..5) is still served whole.
	if got := readAll(t, p, 5); got[0] != 3 {
		t.Fatalf("read from the start offset began at batch %d", got[0])
	}
	l.Close()
	for _, crash := range []bool{false, true} {
		l = openTest(t, testOptions(fs))
		p, _ = l.Partition("t", 0)
		if p.LogStartOffset() != 5 || p.HighWatermark() != 12 {
			t.Fatalf("crash=%v: start %d hwm %d, want 5 and 12", crash, p.LogStartOffset(), p.HighWatermark())
		}
		l.cl.sync()
		fs.Crash()
	}
	// Deleting everything, then a crash: the offsets do not start over.
	p.DeleteRecords(-1)
	l.retain()
	l.cl.sync()
	fs.Crash()
	l = openTest(t, testOptions(fs))
	p, _ = l.Partition("t", 0)
	if res, err := p.Append(buildBatch(t, batchSpec{n: 1})); err != nil || res.BaseOffset != 12 {
		t.Fatalf("append after everything was deleted: %+v %v, want offset 12", res, err)
	}
	l.Close()
}

func TestCommitLogFilesFreedWhenNothingLiveRemains(t *testing.T) {
	fs := segment.NewMemFS()
	l := openTest(t, testOptions(fs))
	l.CreateTopic("old", 1, nil)
	l.CreateTopic("keep", 1, nil)
	old, _ := l.Partition("old", 0)
	keep, _ := l.Partition("keep", 0)
	for range 30 {
		old.Append(buildBatch(t, batchSpec{n: 1, valueSize: 8000}))
	}
	if n := len(l.cl.queue.Segments()); n < 4 {
		t.Fatalf("%d CommitLog files, want several", n)
	}
	keep.Append(buildBatch(t, batchSpec{n: 1}))
	// A live batch in the newest file pins only that file.
	l.DeleteTopic("old")
	waitIndexed(t, l)
	if err := l.retain(); err != nil {
		t.Fatal(err)
	}
	if n := len(l.cl.queue.Segments()); n != 1 {
		t.Fatalf("%d CommitLog files left after the only other topic was deleted, want 1", n)
	}
	if got := readAll(t, keep, 0); len(got) != 1 {
		t.Fatalf("the live partition lost its batch: %v", got)
	}
	// Recovery from the remaining file still works.
	l.cl.sync()
	fs.Crash()
	l = openTest(t, testOptions(fs))
	keep, _ = l.Partition("keep", 0)
	if keep.HighWatermark() != 1 {
		t.Fatalf("hwm %d after recovery", keep.HighWatermark())
	}
	l.Close()
}
