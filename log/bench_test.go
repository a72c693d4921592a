package log

import (
	"testing"

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
