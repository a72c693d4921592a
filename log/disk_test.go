package log

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/rocketkafka/broker/segment"
)

func TestDiskMarks(t *testing.T) {
	fs := segment.NewMemFS()
	var used atomic.Uint64
	o := testOptions(fs)
	o.DiskReclaimRatio, o.DiskCriticalRatio = 0.8, 0.9
	o.DiskUsage = func() (uint64, uint64, error) { return used.Load(), 100, nil }
	l := openTest(t, o)
	defer l.Close()
	l.CreateTopic("t", 2, nil)
	p0, _ := l.Partition("t", 0)
	p1, _ := l.Partition("t", 1)
	for range 20 {
		p0.Append(buildBatch(t, batchSpec{n: 1, valueSize: 8000}))
		p1.Append(buildBatch(t, batchSpec{n: 1, valueSize: 100}))
	}
	files := len(l.cl.queue.Segments())
	if files < 3 {
		t.Fatalf("%d CommitLog files, want several", files)
	}

	// Above the critical mark: produce is refused, reads go on.
	waitIndexed(t, l)
	used.Store(95)
	// Reclaim frees one file per step while usage stays high; it stops at
	// the file being written.
	if err := l.checkDisk(); err != nil {
		t.Fatal(err)
	}
	if n := len(l.cl.queue.Segments()); n != 1 {
		t.Fatalf("%d CommitLog files after reclaiming under pressure, want only the active one", n)
	}
	if p0.LogStartOffset() == 0 || p1.LogStartOffset() == 0 {
		t.Fatalf("reclaim did not move the start offsets: %d, %d", p0.LogStartOffset(), p1.LogStartOffset())
	}
	if _, err := p0.Append(buildBatch(t, batchSpec{n: 1})); !errors.Is(err, ErrDiskFull) || !errors.Is(err, ErrStorage) {
		t.Fatalf("append above the critical mark: %v", err)
	}
	readAll(t, p0, p0.LogStartOffset())

	used.Store(50)
	if err := l.checkDisk(); err != nil {
		t.Fatal(err)
	}
	if res, err := p0.Append(buildBatch(t, batchSpec{n: 1})); err != nil || res.BaseOffset != 20 {
		t.Fatalf("append once usage fell: %+v %v", res, err)
	}
}
