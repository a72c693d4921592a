package netpoll

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// maxSendfileChunk keeps each sendfile(2) call below Linux's per-call limit
// of 0x7ffff000 bytes.
const maxSendfileChunk = 1 << 30

// sendfileOp is the state of the sendfile in progress. It lives in the Conn
// so that the callback handed to RawConn.Write is bound once per connection
// instead of allocated per piece.
type sendfileOp struct {
	fd        int
	off       int64 // advanced by the kernel, never the file's own position
	remaining int64
	sent      int64
	err       error
}

// sendfile sends n bytes of fd from off. It passes the offset explicitly,
// so concurrent fetches of one file do not race on its file position.
func (c *Conn) sendfile(fd int, off, n int64) error {
	c.sf = sendfileOp{fd: fd, off: off, remaining: n}
	err := c.rc.Write(c.sfStep)
	c.srv.stats.sendfile.Add(uint64(c.sf.sent))
	c.srv.stats.bytesWritten.Add(uint64(c.sf.sent))
	if err == nil {
		err = c.sf.err
	}
	c.sf = sendfileOp{}
	return err
}

// sendfileStep runs with the socket's descriptor. Returning false on EAGAIN
// makes the runtime poller wait for writability and call it again.
func (c *Conn) sendfileStep(sock uintptr) bool {
	op := &c.sf
	for op.remaining > 0 {
		n, err := unix.Sendfile(int(sock), op.fd, &op.off, int(min(op.remaining, maxSendfileChunk)))
		if n > 0 {
			op.remaining -= int64(n)
			op.sent += int64(n)
		}
		switch {
		case err == unix.EAGAIN:
			return false
		case err == unix.EINTR:
		case err != nil:
			op.err = os.NewSyscallError("sendfile", err)
			return true
		case n == 0:
			// The file ends inside the range; the size prefix already
			// promised these bytes, so the stream cannot be continued.
			op.err = io.ErrUnexpectedEOF
			return true
		}
	}
	return true
}

// setCork holds back partial segments while a batch's header bytes and
// file pieces go out through separate system calls, so that despite
// TCP_NODELAY a small header does not leave as a packet of its own, and
// pipelined fetch responses share packets. Unsetting it pushes out what is
// held. BenchmarkSendfileNoCork shows the difference.
func (c *Conn) setCork(on bool) {
	f := uncork
	if on {
		f = cork
	}
	// Errors only cost packetization; a broken socket shows on the write.
	_ = c.rc.Control(f)
}

// cork and uncork are plain functions so that Control does not allocate a
// closure per batch.
func cork(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, 1) }

func uncork(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, 0) }
