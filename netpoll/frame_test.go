package netpoll

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
)

// FuzzFrames feeds arbitrary byte streams through the frame reader. It must
// never panic, must return exactly the frames the stream holds, and must
// never allocate for a frame beyond the limit, whatever the size prefixes
// claim. The seed corpus is in testdata/fuzz/FuzzFrames.
func FuzzFrames(f *testing.F) {
	f.Fuzz(func(t *testing.T, stream []byte, limit int32) {
		// Keep the limit small enough that the allocation bound below
		// catches a reader that trusts the prefix.
		if limit < 0 {
			limit = ^limit
		}
		limit %= 1<<20 + 1
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)

		fr := newFrameReader(bytes.NewReader(stream), limit)
		rest := stream
		for {
			frame, err := fr.next()
			if err != nil {
				checkStreamEnd(t, rest, limit, err)
				break
			}
			n := int(binary.BigEndian.Uint32(rest))
			if n > int(limit) || !bytes.Equal(frame, rest[4:4+n]) {
				t.Fatalf("frame of %d bytes does not match the stream (limit %d)", len(frame), limit)
			}
			rest = rest[4+n:]
		}

		runtime.ReadMemStats(&after)
		// Accepted frames are backed by stream bytes; at most one more, the
		// truncated one, was allocated for. Slack covers the read buffer.
		if grown, bound := after.TotalAlloc-before.TotalAlloc, uint64(len(stream))+uint64(limit)+64<<10; grown > bound {
			t.Fatalf("allocated %d bytes for a %d-byte stream with limit %d", grown, len(stream), limit)
		}
	})
}

// checkStreamEnd checks the error that ended the stream against what is
// left of it.
func checkStreamEnd(t *testing.T, rest []byte, limit int32, err error) {
	t.Helper()
	var fse *FrameSizeError
	switch {
	case len(rest) == 0:
		if err != io.EOF {
			t.Fatalf("clean end of stream reported as %v", err)
		}
	case len(rest) < 4:
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("stream ending inside a size prefix reported as %v", err)
		}
	case errors.As(err, &fse):
		size := int32(binary.BigEndian.Uint32(rest))
		if fse.Size != size || (size >= 0 && size <= limit) {
			t.Fatalf("size %d refused as %v (limit %d)", size, err, limit)
		}
	case err == io.ErrUnexpectedEOF:
		if size := int32(binary.BigEndian.Uint32(rest)); size < 0 || size > limit || int(size) <= len(rest)-4 {
			t.Fatalf("complete or oversized frame of %d bytes reported truncated (%d left, limit %d)", size, len(rest)-4, limit)
		}
	default:
		t.Fatalf("unexpected error %v", err)
	}
}

// BenchmarkFrameReader reads 8 MiB frames, as Produce requests to many
// partitions are, with each frame's memory recycled for the next (as the
// server does for Produce) and without.
func BenchmarkFrameReader(b *testing.B) {
	const size = 8 << 20
	frame := make([]byte, 4+size)
	binary.BigEndian.PutUint32(frame, size)
	for _, recycle := range []bool{false, true} {
		b.Run(fmt.Sprintf("recycled=%v", recycle), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(size)
			fr := newFrameReader(&repeatReader{frame: frame}, size)
			for b.Loop() {
				f, err := fr.next()
				if err != nil {
					b.Fatal(err)
				}
				if recycle {
					recycleFrame(f)
				}
			}
		})
	}
}

// repeatReader yields frame again and again.
type repeatReader struct {
	frame []byte
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.frame[r.off:])
	r.off = (r.off + n) % len(r.frame)
	return n, nil
}
