package netpoll

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// The fetch benchmarks serve a stream of fetch-like requests, each asking
// for one range of a log segment that is in the page cache, and compare
// ways of getting the range onto the socket. They exist to pick the range
// size above which sendfile beats copying.

var benchSizes = []int{1 << 10, 4 << 10, 16 << 10, 64 << 10, 1 << 20}

// benchFileSize holds enough distinct ranges of the largest size that
// consecutive requests do not send the same pages.
const benchFileSize = 32 << 20

// benchHeader stands in for the Kafka response header and partition fields
// that precede the records in a fetch response.
var benchHeader = make([]byte, 64)

// rangeBuilder turns a requested range into a response.
type rangeBuilder func(fd int, mapped []byte, off int64, n int) *Response

// BenchmarkSendfile sends the range from the file with sendfile(2).
func BenchmarkSendfile(b *testing.B) {
	benchFetch(b, Config{}, sendfileRange)
}

// BenchmarkSendfileNoCork is BenchmarkSendfile without TCP_CORK: compare
// segs/op and ns/op to see what corking buys.
func BenchmarkSendfileNoCork(b *testing.B) {
	benchFetch(b, Config{noCork: true}, sendfileRange)
}

func sendfileRange(fd int, _ []byte, off int64, n int) *Response {
	return &Response{Pieces: []Piece{{Bytes: benchHeader}, {Fd: fd, Off: off, Len: int64(n)}}}
}

// BenchmarkCopyFromMmap copies the range out of a mapping of the file into
// a fresh buffer, as a handler would to own the bytes beyond the mapping's
// lifetime, and writes that.
func BenchmarkCopyFromMmap(b *testing.B) {
	benchFetch(b, Config{}, func(_ int, mapped []byte, off int64, n int) *Response {
		buf := make([]byte, n)
		copy(buf, mapped[off:])
		return &Response{Pieces: []Piece{{Bytes: benchHeader}, {Bytes: buf}}}
	})
}

// BenchmarkWriteBuffer writes the mapped range directly: the cost of the
// write path alone, for bytes already in memory.
func BenchmarkWriteBuffer(b *testing.B) {
	benchFetch(b, Config{}, func(_ int, mapped []byte, off int64, n int) *Response {
		return &Response{Pieces: []Piece{{Bytes: benchHeader}, {Bytes: mapped[off : off+int64(n)]}}}
	})
}

func benchFetch(b *testing.B, cfg Config, build rangeBuilder) {
	tf := newTestFile(b, benchFileSize)
	fd := int(tf.f.Fd())
	mapped, err := unix.Mmap(fd, 0, benchFileSize, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = unix.Munmap(mapped) })
	for _, size := range benchSizes {
		for _, depth := range []int{1, 16} {
			b.Run(fmt.Sprintf("size=%dKiB/depth=%d", size>>10, depth), func(b *testing.B) {
				h := handlerFunc(func(_ context.Context, _ *Conn, frame []byte) (*Response, error) {
					return build(fd, mapped, int64(binary.BigEndian.Uint64(frame)), size), nil
				})
				runFetches(b, startServer(b, cfg, h), size, depth)
			})
		}
	}
}

// runFetches keeps up to depth requests in flight on one connection, as a
// consumer pipelining fetches would, and reads every response whole.
func runFetches(b *testing.B, s *testServer, size, depth int) {
	c := dial(b, s)
	respLen := 4 + len(benchHeader) + size
	ranges := int64(benchFileSize / size)
	inFlight := make(chan struct{}, depth)
	var wg sync.WaitGroup
	b.SetBytes(int64(size))
	b.ReportAllocs()
	segs := segmentsIn(b, c.Conn)
	b.ResetTimer()

	inBackground(b, &wg, func() error {
		w := bufio.NewWriter(c)
		req := make([]byte, 12)
		binary.BigEndian.PutUint32(req, 8)
		for i := range int64(b.N) {
			select {
			case inFlight <- struct{}{}:
			default:
				// About to wait for responses: let the server see what
				// was batched so far.
				if err := w.Flush(); err != nil {
					return err
				}
				inFlight <- struct{}{}
			}
			binary.BigEndian.PutUint64(req[4:], uint64(i%ranges*int64(size)))
			if _, err := w.Write(req); err != nil {
				return err
			}
		}
		return w.Flush()
	})
	r := bufio.NewReaderSize(c, 256<<10)
	buf := make([]byte, respLen)
	for range b.N {
		if _, err := io.ReadFull(r, buf); err != nil {
			b.Fatal(err)
		}
		<-inFlight
	}
	b.StopTimer()
	wg.Wait()
	b.ReportMetric(float64(segmentsIn(b, c.Conn)-segs)/float64(b.N), "segs/op")
}

// segmentsIn is how many TCP segments the connection has received, which
// shows whether headers and records travel together.
func segmentsIn(b *testing.B, nc net.Conn) uint32 {
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	var info *unix.TCPInfo
	var infoErr error
	if err := rc.Control(func(fd uintptr) {
		info, infoErr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		b.Fatal(err)
	}
	if infoErr != nil {
		b.Fatal(infoErr)
	}
	return info.Segs_in
}
