package log

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rocketkafka/broker/segment"
)

// TestCrashReplaysOnlyPastTheCheckpoint: after a crash, recovery trusts
// the ConsumeQueues and producer state up to the last checkpoint and scans
// only the CommitLog written after it.
func TestCrashReplaysOnlyPastTheCheckpoint(t *testing.T) {
	fs := segment.NewMemFS()
	l := openTest(t, testOptions(fs))
	l.CreateTopic("t", 2, nil)
	p0, _ := l.Partition("t", 0)
	p1, _ := l.Partition("t", 1)
	pid, epoch, _ := l.InitProducerID()
	for i := range 20 {
		p0.Append(buildBatch(t, batchSpec{n: 1, valueSize: 2000, idem: true, pid: pid, epoch: epoch, seq: int32(i)}))
		p1.Append(buildBatch(t, batchSpec{n: 1, valueSize: 2000}))
	}
	if err := l.writeCheckpoint(false); err != nil {
		t.Fatal(err)
	}
	checkpointAt := l.cl.written.Load()
	for i := 20; i < 25; i++ {
		p0.Append(buildBatch(t, batchSpec{n: 1, valueSize: 2000, idem: true, pid: pid, epoch: epoch, seq: int32(i)}))
	}
	l.cl.sync()
	end := l.cl.written.Load()
	fs.Crash()

	core, logs := observer.New(zap.InfoLevel)
	o := testOptions(fs)
	o.Logger = zap.New(core)
	l = openTest(t, o)
	defer l.Close()
	replays := logs.FilterMessage("store recovered by replaying the CommitLog past the checkpoint").All()
	if len(replays) != 1 {
		t.Fatalf("%d replay log lines", len(replays))
	}
	fields := replays[0].ContextMap()
	if fields["from"] != checkpointAt || fields["scanned_bytes"] != end-checkpointAt || fields["entries"] != int64(5) {
		t.Fatalf("replay %v, want from %d, %d bytes, 5 entries", fields, checkpointAt, end-checkpointAt)
	}
	p0, _ = l.Partition("t", 0)
	p1, _ = l.Partition("t", 1)
	if p0.HighWatermark() != 25 || p1.HighWatermark() != 20 {
		t.Fatalf("high watermarks %d and %d, want 25 and 20", p0.HighWatermark(), p1.HighWatermark())
	}
	if got := readAll(t, p0, 0); len(got) != 25 {
		t.Fatalf("partition 0 serves %d batches", len(got))
	}
	// Producer state from the checkpoint plus the replay: a retry of the
	// last batch is a duplicate, the next sequence is accepted.
	if res, err := p0.Append(buildBatch(t, batchSpec{n: 1, idem: true, pid: pid, epoch: epoch, seq: 24})); err != nil || !res.Duplicate || res.BaseOffset != 24 {
		t.Fatalf("retry of the last batch: %+v %v", res, err)
	}
	if res, err := p0.Append(buildBatch(t, batchSpec{n: 1, idem: true, pid: pid, epoch: epoch, seq: 25})); err != nil || res.BaseOffset != 25 {
		t.Fatalf("next batch: %+v %v", res, err)
	}
}

// TestCleanRestartScansNothing: Close leaves a clean checkpoint.
func TestCleanRestartScansNothing(t *testing.T) {
	fs := segment.NewMemFS()
	l := openTest(t, testOptions(fs))
	l.CreateTopic("t", 1, nil)
	p, _ := l.Partition("t", 0)
	for range 10 {
		p.Append(buildBatch(t, batchSpec{n: 1, valueSize: 1000}))
	}
	l.Close()
	core, logs := observer.New(zap.InfoLevel)
	o := testOptions(fs)
	o.Logger = zap.New(core)
	l = openTest(t, o)
	defer l.Close()
	if n := logs.FilterMessage("store opened after a clean shutdown").Len(); n != 1 {
		t.Fatalf("clean restart: %d 'clean shutdown' lines; log: %v", n, logs.All())
	}
	if n := logs.FilterMessage("store recovered by replaying the CommitLog past the checkpoint").Len(); n != 0 {
		t.Fatal("a clean restart replayed the CommitLog")
	}
}
