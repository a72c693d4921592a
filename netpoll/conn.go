package netpoll

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// errBadResponse marks a Response the handler built wrongly; the connection
// is closed because its byte stream can no longer be framed correctly.
var errBadResponse = errors.New("netpoll: malformed response")

// aLongTimeAgo is a read deadline in the past, which wakes a blocked read at
// once and fails every later one.
var aLongTimeAgo = time.Unix(1, 0)

// Conn is one client connection. Its reader goroutine calls the Handler; its
// writer goroutine writes the responses.
type Conn struct {
	srv    *Server
	id     uint64
	nc     *net.TCPConn
	rc     syscall.RawConn
	remote net.Addr

	// ctx is cancelled when the connection closes or Shutdown gives up
	// waiting; then responses are no longer queued.
	ctx    context.Context
	cancel context.CancelFunc
	// serveCtx is what the handler gets: ctx, also cancelled when Shutdown
	// starts, so that long polls answer at once while their answers are
	// still written.
	serveCtx    context.Context
	serveCancel context.CancelFunc

	// queue carries responses from the reader to the writer. Only the
	// reader sends and closes it; its capacity is the backpressure bound.
	queue chan *Response

	stopping atomic.Bool // Shutdown asked the reader to read no more requests
	closed   atomic.Bool // the socket was closed here, so I/O errors are expected

	valueMu sync.Mutex
	value   any

	// Writer-goroutine state, reused from batch to batch so that steady
	// state writing does not allocate.
	batch    []*Response
	prefixes []byte // size prefixes of the batch; iov points into it
	iov      [][]byte
	bufs     net.Buffers // consumed by WriteTo, so kept apart from iov
	sf       sendfileOp
	sfStep   func(uintptr) bool // c.sendfileStep, bound once
}

func newConn(s *Server, nc *net.TCPConn) (*Conn, error) {
	rc, err := nc.SyscallConn()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(s.ctx)
	serveCtx, serveCancel := context.WithCancel(ctx)
	c := &Conn{
		srv:         s,
		id:          s.nextID.Add(1),
		nc:          nc,
		rc:          rc,
		remote:      nc.RemoteAddr(),
		ctx:         ctx,
		cancel:      cancel,
		serveCtx:    serveCtx,
		serveCancel: serveCancel,
		queue:       make(chan *Response, s.maxQueue),
	}
	c.sfStep = c.sendfileStep
	return c, nil
}

// ID is unique among the server's connections.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr is the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// Value returns what the handler last stored with SetValue, or nil.
func (c *Conn) Value() any {
	c.valueMu.Lock()
	defer c.valueMu.Unlock()
	return c.value
}

// SetValue stores per-connection handler state, such as SASL progress.
func (c *Conn) SetValue(v any) {
	c.valueMu.Lock()
	c.value = v
	c.valueMu.Unlock()
}

func (c *Conn) logFields(extra ...zap.Field) []zap.Field {
	return append([]zap.Field{zap.Uint64("conn", c.id), zap.Stringer("remote", c.remote)}, extra...)
}

// stopReading is Shutdown's request to read no further requests. The past
// deadline wakes a reader blocked between requests; a reader inside the
// handler sees the flag when it returns, which the cancelled serveCtx
// hastens.
func (c *Conn) stopReading() {
	c.stopping.Store(true)
	c.serveCancel()
	_ = c.nc.SetReadDeadline(aLongTimeAgo) // fails only if already closed
}

func (c *Conn) closeSocket() {
	if c.closed.CompareAndSwap(false, true) {
		c.nc.Close()
	}
}

// countingReader feeds the frame reader and counts the bytes it reads.
type countingReader struct{ c *Conn }

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.c.nc.Read(p)
	r.c.srv.stats.bytesRead.Add(uint64(n))
	return n, err
}

// readLoop serves requests one at a time, in order, as Kafka requires. When
// it returns it closes the queue, which lets the writer finish the responses
// already queued and then close the connection.
func (c *Conn) readLoop() {
	defer close(c.queue)
	fr := newFrameReader(countingReader{c}, c.srv.maxFrame)
	for !c.stopping.Load() {
		frame, err := fr.next()
		if err != nil {
			c.logReadError(err)
			return
		}
		c.srv.stats.requests.Add(1)
		resp, err := c.srv.handler.Serve(c.serveCtx, c, frame)
		if r, ok := c.srv.handler.(FrameRecycler); ok && r.Recyclable(frame) {
			recycleFrame(frame)
		}
		if resp != nil && !c.enqueue(resp) {
			return
		}
		if err != nil {
			// An error after our own cancellation is the handler giving up,
			// not news.
			if c.serveCtx.Err() == nil {
				c.srv.log.Warn("request failed; closing connection", c.logFields(zap.Error(err))...)
			}
			return
		}
	}
}

func (c *Conn) logReadError(err error) {
	if c.closed.Load() || c.stopping.Load() || errors.Is(err, io.EOF) {
		return
	}
	var fse *FrameSizeError
	switch {
	case errors.As(err, &fse):
		c.srv.log.Warn("frame size out of range; closing connection",
			c.logFields(zap.Int32("size", fse.Size), zap.Int32("max_frame_bytes", fse.Max))...)
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.srv.log.Debug("connection closed inside a frame", c.logFields()...)
	default:
		c.srv.log.Debug("read failed; closing connection", c.logFields(zap.Error(err))...)
	}
}

// enqueue hands r to the writer, blocking while the queue is full. It drops
// r if the connection is closing, since the writer may no longer drain.
func (c *Conn) enqueue(r *Response) bool {
	select {
	case c.queue <- r:
		return true
	case <-c.ctx.Done():
		release(r)
		return false
	}
}

func release(r *Response) {
	if r.Release != nil {
		r.Release()
	}
}

// writeLoop writes queued responses until the reader closes the queue. It
// batches whatever is queued so that one writev can carry several small
// responses. After a write error it keeps draining, only to release.
func (c *Conn) writeLoop() {
	defer c.finish()
	failed := false
	for r := range c.queue {
		c.batch = append(c.batch[:0], r)
		c.gather()
		if !failed {
			if err := c.writeBatch(); err != nil {
				failed = true
				c.logWriteError(err)
				// Wake the reader, whether it is reading, serving or
				// blocked on the full queue.
				c.closeSocket()
				c.cancel()
			}
		}
		for i, r := range c.batch {
			release(r)
			c.batch[i] = nil
		}
	}
}

// gather adds to the batch the responses already queued, without waiting.
func (c *Conn) gather() {
	for len(c.batch) < cap(c.queue) {
		select {
		case r, ok := <-c.queue:
			if !ok {
				return
			}
			c.batch = append(c.batch, r)
		default:
			return
		}
	}
}

func (c *Conn) finish() {
	c.closeSocket()
	c.cancel() // also cancels serveCtx
	c.srv.forget(c)
}

func (c *Conn) logWriteError(err error) {
	switch {
	case c.closed.Load():
	case errors.Is(err, errBadResponse):
		c.srv.log.Error("handler built a malformed response; closing connection", c.logFields(zap.Error(err))...)
	case errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNRESET):
		c.srv.log.Debug("client went away", c.logFields(zap.Error(err))...)
	default:
		c.srv.log.Info("write failed; closing connection", c.logFields(zap.Error(err))...)
	}
}

// writeBatch writes every response of the batch with its size prefix. Runs
// of Bytes pieces, across response boundaries, go out in one writev; file
// pieces go out with sendfile. A malformed response is reported after the
// ones before it were written.
func (c *Conn) writeBatch() error {
	if n := 4 * len(c.batch); cap(c.prefixes) < n {
		c.prefixes = make([]byte, n)
	}
	valid := len(c.batch)
	var bad error
	hasFile := false
	for i, r := range c.batch {
		size, file, err := r.size()
		if err != nil {
			valid, bad = i, err
			break
		}
		hasFile = hasFile || file
		binary.BigEndian.PutUint32(c.prefixes[4*i:], uint32(size))
	}
	if hasFile && c.srv.cork {
		c.setCork(true)
		defer c.setCork(false)
	}
	for i, r := range c.batch[:valid] {
		c.iov = append(c.iov, c.prefixes[4*i:4*i+4:4*i+4])
		for _, p := range r.Pieces {
			switch {
			case p.Bytes != nil:
				if len(p.Bytes) > 0 {
					c.iov = append(c.iov, p.Bytes)
				}
			case p.Len > 0:
				if err := c.flush(); err != nil {
					return err
				}
				if err := c.sendfile(p.Fd, p.Off, p.Len); err != nil {
					return err
				}
			}
		}
	}
	if err := c.flush(); err != nil {
		return err
	}
	return bad
}

// size is the response's size prefix; file reports whether it has pieces
// to send with sendfile.
func (r *Response) size() (size int32, file bool, err error) {
	var n int64
	for _, p := range r.Pieces {
		l := int64(len(p.Bytes))
		if p.Bytes == nil {
			if p.Off < 0 || p.Len < 0 {
				return 0, false, fmt.Errorf("%w: file piece at offset %d with length %d", errBadResponse, p.Off, p.Len)
			}
			l = p.Len
			file = file || l > 0
		}
		if l > math.MaxInt32-n {
			return 0, false, fmt.Errorf("%w: larger than %d bytes", errBadResponse, math.MaxInt32)
		}
		n += l
	}
	return int32(n), file, nil
}

// flush writes the gathered Bytes pieces with one writev.
func (c *Conn) flush() error {
	if len(c.iov) == 0 {
		return nil
	}
	c.bufs = c.iov
	n, err := c.bufs.WriteTo(c.nc)
	c.srv.stats.bufferBytes.Add(uint64(n))
	c.srv.stats.bytesWritten.Add(uint64(n))
	// Drop the references so written responses can be collected.
	clear(c.iov)
	c.iov = c.iov[:0]
	return err
}
