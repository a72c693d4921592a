// Package netpoll is the broker's connection layer. It accepts TCP
// connections, splits the byte stream into Kafka frames (a 4-byte big-endian
// size, then the request), hands each frame to a Handler and writes the
// responses back in request order, sending file ranges with sendfile(2).
//
// Each connection has one reader goroutine, which serves requests one at a
// time as Kafka requires, and one writer goroutine, which batches queued
// responses into vectored writes. Go's runtime poller does the readiness
// waiting, so there is no event loop here. The package needs Linux for
// sendfile and TCP_CORK.
package netpoll

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// DefaultMaxFrameBytes is Kafka's default socket.request.max.bytes.
const DefaultMaxFrameBytes = 100 << 20

// DefaultMaxQueuedResponses bounds a connection's response queue when
// Config.MaxQueuedResponses is zero. It is a few times Kafka clients'
// default of 5 in-flight requests, so pipelining clients never stall on it
// while a client that stops reading stops the reader soon.
const DefaultMaxQueuedResponses = 16

// rejectLogInterval spaces out the log lines about refused connections: a
// connection storm past MaxConnections must not flood the log.
const rejectLogInterval = 10 * time.Second

// Piece is a part of a response: either bytes, or a range of an open file
// sent with sendfile.
type Piece struct {
	Bytes []byte
	Fd    int   // file descriptor when Bytes == nil
	Off   int64 // file offset
	Len   int64
}

// Response is written to the connection in request order, preceded by the
// 4-byte big-endian size prefix that netpoll computes from the pieces: the
// pieces carry the response without its prefix, as the handler's frame
// arrives without it. Release, if set, is called exactly once after the
// response was written or dropped (files must stay open until then).
type Response struct {
	Pieces  []Piece
	Release func()
}

// Handler serves one request frame (without the size prefix); it may retain
// frame. A nil *Response means no response is sent (Kafka produce with
// acks=0). A non-nil error closes the connection (logged once at warn with
// the remote address); a response returned along with it is still written
// first, so a handler can explain why it hangs up (e.g. failed
// authentication).
//
// ctx is cancelled when the connection closes under the handler (a response
// write failed) or when Shutdown starts, so long-polling handlers return
// early; what they return is still written. A handler that ignores it
// delays Shutdown.
type Handler interface {
	Serve(ctx context.Context, c *Conn, frame []byte) (*Response, error)
}

// FrameRecycler is a Handler that can tell, once Serve has returned,
// that it kept nothing of a frame (nor gave it to anything that runs
// later), so that the server may reuse the frame's memory.
type FrameRecycler interface {
	Recyclable(frame []byte) bool
}

// Config configures a Server.
type Config struct {
	Addr string // host:port
	// MaxFrameBytes is socket.request.max.bytes: a frame whose size prefix
	// is negative or larger closes the connection before anything is
	// allocated for it. Zero means DefaultMaxFrameBytes.
	MaxFrameBytes int32
	// MaxConnections caps open connections; past it, new connections are
	// accepted and closed at once. Zero means no limit.
	MaxConnections int
	// MaxQueuedResponses is how many responses a connection may have
	// waiting for its writer before its reader stops reading requests,
	// which pushes back on a client that does not read its responses.
	// Zero means DefaultMaxQueuedResponses.
	MaxQueuedResponses int
	// Logger receives connection-level events, never per-request ones.
	// Nil discards them.
	Logger *zap.Logger

	// noCork turns off TCP_CORK around file pieces, for the benchmark
	// that shows what corking is worth.
	noCork bool
}

// Stats are cumulative counters (atomic) the broker exposes as metrics and
// tests read. ActiveConnections is the only gauge.
type Stats struct {
	Connections         uint64 // connections admitted
	ActiveConnections   uint64 // connections open now
	RejectedConnections uint64 // connections closed at once because of MaxConnections
	Requests            uint64 // frames handed to the Handler
	BytesRead           uint64 // bytes read from sockets, size prefixes included
	BytesWritten        uint64 // SendfileBytes + BufferBytes
	SendfileBytes       uint64 // bytes sent by sendfile
	BufferBytes         uint64 // bytes written from Bytes pieces and size prefixes
}

// Add adds o's counts to s, for a total over several servers.
func (s *Stats) Add(o Stats) {
	s.Connections += o.Connections
	s.ActiveConnections += o.ActiveConnections
	s.RejectedConnections += o.RejectedConnections
	s.Requests += o.Requests
	s.BytesRead += o.BytesRead
	s.BytesWritten += o.BytesWritten
	s.SendfileBytes += o.SendfileBytes
	s.BufferBytes += o.BufferBytes
}

type counters struct {
	connections, active, rejected, requests        atomic.Uint64
	bytesRead, bytesWritten, sendfile, bufferBytes atomic.Uint64
}

// Server accepts connections and serves their requests with a Handler.
type Server struct {
	ln      net.Listener
	handler Handler
	log     *zap.Logger

	maxFrame int32
	maxConns int
	maxQueue int
	cork     bool // see Conn.setCork

	// ctx is the parent of every connection's context; cancelling it is the
	// forced part of Shutdown.
	ctx    context.Context
	cancel context.CancelFunc
	// done is closed when Shutdown starts, to cut short accept back-off.
	done chan struct{}

	nextID atomic.Uint64
	stats  counters

	mu        sync.Mutex
	closing   bool
	conns     map[*Conn]struct{}
	rejectLog time.Time // when the last line about refused connections was logged
	rejectNew uint64    // connections refused since that line
	// wg tracks the accept loop and both goroutines of every connection.
	// Add is only called under mu while !closing, so it never races
	// Shutdown's Wait.
	wg sync.WaitGroup
}

// Listen binds cfg.Addr now, so that Addr is known (port 0 works) before
// Serve runs.
func Listen(cfg Config, h Handler) (*Server, error) {
	if h == nil {
		return nil, errors.New("netpoll: nil Handler")
	}
	if cfg.MaxFrameBytes < 0 || cfg.MaxConnections < 0 || cfg.MaxQueuedResponses < 0 {
		return nil, errors.New("netpoll: negative limit in Config")
	}
	if cfg.MaxFrameBytes == 0 {
		cfg.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if cfg.MaxQueuedResponses == 0 {
		cfg.MaxQueuedResponses = DefaultMaxQueuedResponses
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		ln:       ln,
		handler:  h,
		log:      cfg.Logger,
		maxFrame: cfg.MaxFrameBytes,
		maxConns: cfg.MaxConnections,
		maxQueue: cfg.MaxQueuedResponses,
		cork:     !cfg.noCork,
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		conns:    make(map[*Conn]struct{}),
	}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Connections:         s.stats.connections.Load(),
		ActiveConnections:   s.stats.active.Load(),
		RejectedConnections: s.stats.rejected.Load(),
		Requests:            s.stats.requests.Load(),
		BytesRead:           s.stats.bytesRead.Load(),
		BytesWritten:        s.stats.bytesWritten.Load(),
		SendfileBytes:       s.stats.sendfile.Load(),
		BufferBytes:         s.stats.bufferBytes.Load(),
	}
}

// Serve runs the accept loop. It returns nil after Shutdown, or the error
// that stopped accepting.
func (s *Server) Serve() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.isClosing() {
				return nil
			}
			if !resourceExhausted(err) {
				return err
			}
			// Out of descriptors or memory: retrying at once would spin, so
			// back off like net/http does until a connection closes.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error("accept failed; backing off", zap.Error(err), zap.Duration("backoff", backoff))
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return nil
			}
			continue
		}
		backoff = 0
		s.admit(nc.(*net.TCPConn))
	}
}

func resourceExhausted(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// admit starts serving nc, or closes it when the server is shutting down or
// full.
func (s *Server) admit(nc *net.TCPConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		nc.Close()
		return
	}
	if s.maxConns > 0 && len(s.conns) >= s.maxConns {
		// Counted before closing, so a client seeing the close sees it
		// counted.
		s.stats.rejected.Add(1)
		nc.Close()
		s.rejectNew++
		if now := time.Now(); now.Sub(s.rejectLog) >= rejectLogInterval {
			s.log.Warn("connection limit reached; closing new connections",
				zap.Int("max_connections", s.maxConns),
				zap.Uint64("rejected", s.rejectNew),
				zap.Stringer("remote", nc.RemoteAddr()))
			s.rejectLog, s.rejectNew = now, 0
		}
		return
	}
	c, err := newConn(s, nc)
	if err != nil {
		// Only fails if the socket is already unusable; nothing to serve.
		s.log.Info("dropping connection", zap.Stringer("remote", nc.RemoteAddr()), zap.Error(err))
		nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.stats.connections.Add(1)
	s.stats.active.Add(1)
	s.wg.Go(c.readLoop)
	s.wg.Go(c.writeLoop)
}

// forget is called by a connection's last goroutine as it exits.
func (s *Server) forget(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.stats.active.Add(^uint64(0))
}

// Shutdown stops accepting, stops reading new requests, lets requests
// already being served finish and their responses be written, then closes
// every connection and waits for every goroutine. Handlers' ctx is
// cancelled at once, so long polls answer now rather than at their
// deadline. ctx bounds the graceful part: when it is done, every socket is
// closed and queued responses are dropped, and Shutdown returns ctx.Err()
// once the goroutines have exited. Waiting for them even then guarantees
// that no Release call or sendfile on a caller's file is still pending
// when Shutdown returns.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.done)
		s.ln.Close()
		for c := range s.conns {
			c.stopReading()
		}
	}
	s.mu.Unlock()

	idle := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		s.cancel()
		return nil
	case <-ctx.Done():
	}
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.closeSocket()
	}
	s.mu.Unlock()
	<-idle
	return ctx.Err()
}
