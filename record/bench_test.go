package record

import (
	"testing"
)

// benchBatch builds a batch of n records with size-byte values, the shape
// of a produce request's partition data.
func benchBatch(b *testing.B, n, size int, codec Codec) []byte {
	recs := make([]Record, n)
	for i := range recs {
		v := make([]byte, size)
		for j := range v {
			v[j] = byte('a' + (i*7+j*13)%26)
		}
		recs[i] = Record{Key: []byte("key"), Value: v, TimestampDelta: int64(i)}
	}
	return mustBuild(b, producerHeader(), recs, codec)
}

func benchmarkValidate(b *testing.B, batch []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if _, err := Validate(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidate is the produce hot path: a 16 KiB uncompressed batch
// of 1 KiB records.
func BenchmarkValidate(b *testing.B) {
	benchmarkValidate(b, benchBatch(b, 16, 1024-16, None))
}

// BenchmarkValidateSmallRecords stresses the record walk rather than the
// CRC: 16 KiB of 64 byte records.
func BenchmarkValidateSmallRecords(b *testing.B) {
	benchmarkValidate(b, benchBatch(b, 256, 64-16, None))
}

func BenchmarkValidateZstd(b *testing.B) {
	benchmarkValidate(b, benchBatch(b, 16, 1024-16, Zstd))
}

func BenchmarkRecords(b *testing.B) {
	for _, codec := range codecs {
		b.Run(codec.String(), func(b *testing.B) {
			batch := benchBatch(b, 16, 1024-16, codec)
			b.ReportAllocs()
			b.SetBytes(16 << 10) // decoded bytes, comparable across codecs
			for b.Loop() {
				if err := Records(batch, 1<<20, func(Record) bool { return true }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBuild(b *testing.B) {
	recs := make([]Record, 16)
	for i := range recs {
		recs[i] = Record{Key: []byte("key"), Value: make([]byte, 1024-16)}
	}
	for _, codec := range codecs {
		b.Run(codec.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(16 << 10)
			var dst []byte
			for b.Loop() {
				var err error
				if dst, err = Build(dst[:0], producerHeader(), recs, codec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
