package log

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rocketkafka/broker/segment"
)

// BenchmarkAppend measures CommitLog append throughput on the real
// filesystem (page cache, async flush) with 16 KiB batches, the size
// franz-go sends under load; allocations per append should be zero.
func BenchmarkAppend(b *testing.B) {
	o := Options{Dir: b.TempDir(), FS: segment.OS, SegmentBytes: 256 << 20, FlushInterval: 0}
	l := openTest(b, o)
	defer l.Close()
	l.CreateTopic("bench", 1, nil)
	p, _ := l.Partition("bench", 0)
	batch := buildBatch(b, batchSpec{n: 16, valueSize: 1000})
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawPwrite is the baseline for BenchmarkAppend: the same bytes
// written with one pwritev per batch into a preallocated file.
func BenchmarkRawPwrite(b *testing.B) {
	seg, err := segment.Create(segment.OS, b.TempDir(), 0, 256<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer seg.Close()
	batch := buildBatch(b, batchSpec{n: 16, valueSize: 1000})
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	var off int64
	for b.Loop() {
		if off+int64(len(batch)) > seg.Size() {
			off = 0
		}
		if err := seg.WriteAt([][]byte{batch}, off); err != nil {
			b.Fatal(err)
		}
		off += int64(len(batch))
	}
}

// BenchmarkRead measures locating a fetch's batches via the ConsumeQueue.
func BenchmarkRead(b *testing.B) {
	l := openTest(b, Options{Dir: b.TempDir(), FS: segment.OS, SegmentBytes: 256 << 20})
	defer l.Close()
	l.CreateTopic("bench", 1, nil)
	p, _ := l.Partition("bench", 0)
	batch := buildBatch(b, batchSpec{n: 4, valueSize: 100})
	for range 100000 {
		p.Append(batch)
	}
	chunks := make([]Chunk, 0, 64)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		i = (i + 7919) % 400000
		chunks, _ = p.Read(i, 1<<20, true, chunks[:0])
		for _, c := range chunks {
			c.Release()
		}
	}
}

// BenchmarkRecovery measures crash recovery on the real filesystem: a
// CommitLog of BENCH_RECOVERY_MIB (default 1024) MiB over 16 partitions is
// replayed in full (no checkpoint since the data was written), reported as
// seconds per GiB scanned; then, after a checkpoint and 16 MiB more, a
// second crash recovery scans only the 16 MiB past the checkpoint.
func BenchmarkRecovery(b *testing.B) {
	mib := 1024
	if s := os.Getenv("BENCH_RECOVERY_MIB"); s != "" {
		mib, _ = strconv.Atoi(s)
	}
	dir := b.TempDir()
	o := Options{Dir: dir, FS: segment.OS, CheckpointInterval: time.Hour}
	l := openTest(b, o)
	l.CreateTopic("bench", 16, nil)
	batch := buildBatch(b, batchSpec{n: 16, valueSize: 1000})
	fill := func(bytes int) {
		for i := 0; i < bytes/len(batch); i++ {
			p, _ := l.Partition("bench", int32(i%16))
			if _, err := p.Append(append([]byte(nil), batch...)); err != nil {
				b.Fatal(err)
			}
		}
	}
	fill(mib << 20)
	// A "crash": a second store opens the directory while the first is
	// abandoned unclosed, so only the checkpoint taken at its open counts.
	crashOpen := func() (time.Duration, *Log) {
		l.lock.Close() // the abandoned store's lock, which a crash would release
		began := time.Now()
		l2, err := Open(o)
		if err != nil {
			b.Fatal(err)
		}
		return time.Since(began), l2
	}
	b.ResetTimer()
	full, l2 := crashOpen()
	b.StopTimer()
	b.ReportMetric(full.Seconds()/(float64(mib)/1024), "s/GiB-full-replay")
	l = l2 // keep appending through the recovered store
	if err := l.writeCheckpoint(false); err != nil {
		b.Fatal(err)
	}
	fill(16 << 20)
	short, l3 := crashOpen()
	b.ReportMetric(short.Seconds(), "s-restart-16MiB-past-checkpoint")
	b.ReportMetric(float64(mib), "MiB-commitlog")
	l3.Close()
}
