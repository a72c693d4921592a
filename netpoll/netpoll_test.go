package netpoll

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// waitLimit bounds every wait in these tests; it only matters when a test is
// about to fail, so it is generous for slow CI machines under -race.
const waitLimit = 20 * time.Second

type handlerFunc func(ctx context.Context, c *Conn, frame []byte) (*Response, error)

func (f handlerFunc) Serve(ctx context.Context, c *Conn, frame []byte) (*Response, error) {
	return f(ctx, c, frame)
}

func echo(_ context.Context, _ *Conn, frame []byte) (*Response, error) {
	return &Response{Pieces: []Piece{{Bytes: frame}}}, nil
}

type testServer struct {
	*Server
	logs     *observer.ObservedLogs
	served   chan struct{} // closed when Serve returns
	serveErr error
}

// startServer runs a server on loopback. Its cleanup shuts the server down,
// checks Serve returned nil and that no goroutine outlives the server.
// Clients dialled later are closed before it runs, as cleanups run LIFO.
func startServer(t testing.TB, cfg Config, h Handler) *testServer {
	t.Helper()
	before := runtime.NumGoroutine()
	core, logs := observer.New(zap.DebugLevel)
	cfg.Addr = "127.0.0.1:0"
	cfg.Logger = zap.New(core)
	s, err := Listen(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, logs: logs, served: make(chan struct{})}
	go func() {
		ts.serveErr = s.Serve()
		close(ts.served)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		<-ts.served
		if ts.serveErr != nil {
			t.Errorf("Serve: %v", ts.serveErr)
		}
		waitFor(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
	})
	return ts
}

// waitFor polls cond, for conditions no event announces (such as goroutines
// having exited or a counter being updated after the bytes went out).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			if what == "goroutines to exit" {
				buf := make([]byte, 1<<20)
				t.Logf("%s", buf[:runtime.Stack(buf, true)])
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type client struct {
	net.Conn
	r *bufio.Reader
}

func dial(t testing.TB, s *testServer) *client {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	// A safety net against hangs, not synchronisation.
	_ = nc.SetDeadline(time.Now().Add(waitLimit))
	return &client{Conn: nc, r: bufio.NewReader(nc)}
}

// write sends the payloads as frames in one write, so that the server
// sees them pipelined.
func (c *client) write(payloads ...[]byte) error {
	var buf []byte
	for _, p := range payloads {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(p)))
		buf = append(buf, p...)
	}
	_, err := c.Write(buf)
	return err
}

func (c *client) send(t testing.TB, payloads ...[]byte) {
	t.Helper()
	if err := c.write(payloads...); err != nil {
		t.Fatal(err)
	}
}

func (c *client) recv() ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(c.r, b)
	return b, err
}

func (c *client) check(want []byte) error {
	got, err := c.recv()
	if err != nil {
		return fmt.Errorf("reading response: %w", err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("response %q (%d bytes), want %q (%d bytes)", trim(got), len(got), trim(want), len(want))
	}
	return nil
}

func (c *client) expect(t testing.TB, want []byte) {
	t.Helper()
	if err := c.check(want); err != nil {
		t.Fatal(err)
	}
}

// inBackground runs f on another goroutine, where t.Fatal is not allowed.
func inBackground(t testing.TB, wg *sync.WaitGroup, f func() error) {
	wg.Go(func() {
		if err := f(); err != nil {
			t.Error(err)
		}
	})
}

func trim(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// expectClosed checks that the server closed the connection.
func (c *client) expectClosed(t testing.TB) {
	t.Helper()
	n, err := c.r.Read(make([]byte, 1))
	if n != 0 || !(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("read %d bytes, %v; want the connection closed", n, err)
	}
}

func TestPipelinedEcho(t *testing.T) {
	// Each response is the request prefixed by how many requests the
	// connection served before it, which exercises Value and SetValue.
	h := handlerFunc(func(_ context.Context, c *Conn, frame []byte) (*Response, error) {
		n, _ := c.Value().(int)
		c.SetValue(n + 1)
		return &Response{Pieces: []Piece{{Bytes: []byte(fmt.Sprintf("%d:", n))}, {Bytes: frame}}}, nil
	})
	s := startServer(t, Config{}, h)
	rng := rand.New(rand.NewPCG(1, 2))
	const conns, requests = 3, 300
	clients := make([]*client, conns)
	for i := range clients {
		clients[i] = dial(t, s)
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		payloads := make([][]byte, requests)
		for i := range payloads {
			payloads[i] = make([]byte, rng.IntN(9000))
			for j := range payloads[i] {
				payloads[i][j] = byte(rng.Uint32())
			}
		}
		// Writing everything before reading would deadlock once both
		// directions' socket buffers are full; that is the backpressure.
		inBackground(t, &wg, func() error { return c.write(payloads...) })
		for i, p := range payloads {
			c.expect(t, append([]byte(fmt.Sprintf("%d:", i)), p...))
		}
	}
	wg.Wait()
	st := s.Stats()
	if st.Requests != conns*requests || st.Connections != conns || st.ActiveConnections != conns {
		t.Errorf("stats %+v", st)
	}
}

func TestConnIDsDiffer(t *testing.T) {
	h := handlerFunc(func(_ context.Context, c *Conn, _ []byte) (*Response, error) {
		msg := fmt.Sprintf("%d %v", c.ID(), c.RemoteAddr())
		return &Response{Pieces: []Piece{{Bytes: []byte(msg)}}}, nil
	})
	s := startServer(t, Config{}, h)
	a, b := dial(t, s), dial(t, s)
	a.send(t, nil)
	b.send(t, nil)
	ra, _ := a.recv()
	rb, _ := b.recv()
	if want := fmt.Sprint(a.LocalAddr()); !bytes.HasSuffix(ra, []byte(want)) {
		t.Errorf("got %q, want remote address %s", ra, want)
	}
	if bytes.Equal(ra, rb) {
		t.Errorf("both connections report %q", ra)
	}
}

// testFile is a temp file of pseudo-random bytes, open for sendfile.
type testFile struct {
	f    *os.File
	data []byte
}

func newTestFile(t testing.TB, size int) *testFile {
	t.Helper()
	data := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{7})
	_, _ = rng.Read(data)
	path := filepath.Join(t.TempDir(), "segment.log")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &testFile{f: f, data: data}
}

// rangeHandler answers a request listing (offset, length) pairs with, per
// range, a short header and the range sent from the file, and a trailer.
type rangeHandler struct {
	fd                     int
	responses, released    atomic.Int64
	wantFile, wantBuffered atomic.Int64
}

func (h *rangeHandler) Serve(_ context.Context, _ *Conn, frame []byte) (*Response, error) {
	var pieces []Piece
	for i := 0; len(frame) >= 16; i++ {
		off := int64(binary.BigEndian.Uint64(frame))
		n := int64(binary.BigEndian.Uint64(frame[8:]))
		frame = frame[16:]
		hdr := []byte(fmt.Sprintf("<%d>", i))
		pieces = append(pieces, Piece{Bytes: hdr}, Piece{Fd: h.fd, Off: off, Len: n})
		h.wantBuffered.Add(int64(len(hdr)))
		h.wantFile.Add(n)
	}
	pieces = append(pieces, Piece{Bytes: []byte("end")})
	h.wantBuffered.Add(3 + 4) // trailer and size prefix
	h.responses.Add(1)
	return &Response{Pieces: pieces, Release: func() { h.released.Add(1) }}, nil
}

type span struct{ off, n int64 }

func rangeRequest(spans ...span) []byte {
	var b []byte
	for _, s := range spans {
		b = binary.BigEndian.AppendUint64(b, uint64(s.off))
		b = binary.BigEndian.AppendUint64(b, uint64(s.n))
	}
	return b
}

func (tf *testFile) rangeResponse(spans ...span) []byte {
	var b []byte
	for i, s := range spans {
		b = append(b, fmt.Sprintf("<%d>", i)...)
		b = append(b, tf.data[s.off:s.off+s.n]...)
	}
	return append(b, "end"...)
}

func TestFilePieces(t *testing.T) {
	const size = 3 << 20
	tf := newTestFile(t, size)
	h := &rangeHandler{fd: int(tf.f.Fd())}
	s := startServer(t, Config{}, h)

	c := dial(t, s)
	for _, spans := range [][]span{
		{{0, 1}},
		{{0, 4096}, {4096, 4096}},
		{{1, 4095}, {4095, 2}, {12345, 100}},
		{{size - 1, 1}, {0, 0}, {size - 10, 10}},
		{{7, 1 << 20}, {size - (1 << 20) - 3, 1 << 20}},
		{},
	} {
		c.send(t, rangeRequest(spans...))
		c.expect(t, tf.rangeResponse(spans...))
	}

	// Concurrent connections sending different ranges of the same
	// descriptor must not disturb each other's offsets.
	var wg sync.WaitGroup
	for i := range 8 {
		c := dial(t, s)
		rng := rand.New(rand.NewPCG(uint64(i), 99))
		var reqs [][]byte
		var want [][]byte
		for range 40 {
			var spans []span
			for range 1 + rng.IntN(3) {
				off := rng.Int64N(size)
				spans = append(spans, span{off, rng.Int64N(min(size-off, 256<<10) + 1)})
			}
			reqs = append(reqs, rangeRequest(spans...))
			want = append(want, tf.rangeResponse(spans...))
		}
		inBackground(t, &wg, func() error { return c.write(reqs...) })
		inBackground(t, &wg, func() error {
			for _, w := range want {
				if err := c.check(w); err != nil {
					return err
				}
			}
			return nil
		})
	}
	wg.Wait()

	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if got, want := st.SendfileBytes, uint64(h.wantFile.Load()); got != want {
		t.Errorf("SendfileBytes = %d, want %d", got, want)
	}
	if got, want := st.BufferBytes, uint64(h.wantBuffered.Load()); got != want {
		t.Errorf("BufferBytes = %d, want %d", got, want)
	}
	if st.BytesWritten != st.SendfileBytes+st.BufferBytes {
		t.Errorf("BytesWritten = %d, want %d", st.BytesWritten, st.SendfileBytes+st.BufferBytes)
	}
	if r, d := h.responses.Load(), h.released.Load(); r != d {
		t.Errorf("%d responses, %d released", r, d)
	}
}

func TestFileShorterThanRange(t *testing.T) {
	tf := newTestFile(t, 100)
	h := &rangeHandler{fd: int(tf.f.Fd())}
	s := startServer(t, Config{}, h)
	c := dial(t, s)
	c.send(t, rangeRequest(span{0, 10}))
	c.expect(t, tf.rangeResponse(span{0, 10}))
	// The size prefix promises bytes the file does not have: the stream
	// is beyond repair, so the connection must close rather than hang.
	c.send(t, rangeRequest(span{90, 20}))
	if _, err := c.recv(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want the connection closed mid-response", err)
	}
	waitFor(t, "release", func() bool { return h.released.Load() == 2 })
}

func TestOversizedFrame(t *testing.T) {
	var served atomic.Int64
	h := handlerFunc(func(ctx context.Context, c *Conn, frame []byte) (*Response, error) {
		served.Add(1)
		return echo(ctx, c, frame)
	})
	s := startServer(t, Config{MaxFrameBytes: 1024}, h)
	good := dial(t, s)
	good.send(t, make([]byte, 1024)) // the limit itself is allowed
	good.expect(t, make([]byte, 1024))

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, prefix := range []uint32{1025, 0xffffffff, 0x80000000, 0x7fffffff} {
		c := dial(t, s)
		if _, err := c.Write(binary.BigEndian.AppendUint32(nil, prefix)); err != nil {
			t.Fatal(err)
		}
		c.expectClosed(t)
	}
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 16<<20 {
		t.Errorf("allocated %d bytes while refusing oversized frames", grown)
	}

	good.send(t, []byte("still here"))
	good.expect(t, []byte("still here"))
	if n := served.Load(); n != 2 {
		t.Errorf("handler served %d frames, want 2", n)
	}
	waitFor(t, "closed connections", func() bool { return s.Stats().ActiveConnections == 1 })
	if n := s.logs.FilterMessage("frame size out of range; closing connection").Len(); n != 4 {
		t.Errorf("%d log lines about frame sizes, want one per connection (4)", n)
	}
}

func TestTruncatedFrame(t *testing.T) {
	var served atomic.Int64
	h := handlerFunc(func(ctx context.Context, c *Conn, frame []byte) (*Response, error) {
		served.Add(1)
		return echo(ctx, c, frame)
	})
	s := startServer(t, Config{}, h)
	for _, partial := range [][]byte{
		{0, 0},         // inside the size prefix
		{0, 0, 0, 100}, // after the prefix
		append([]byte{0, 0, 0, 100}, make([]byte, 60)...), // inside the frame
	} {
		c := dial(t, s)
		if _, err := c.Write(partial); err != nil {
			t.Fatal(err)
		}
		// Half-close, so that we can see the server close its side.
		if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		c.expectClosed(t)
	}
	abrupt := dial(t, s)
	if _, err := abrupt.Write([]byte{0, 0, 0, 100, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	abrupt.Close()

	c := dial(t, s)
	c.send(t, []byte("whole"))
	c.expect(t, []byte("whole"))
	if n := served.Load(); n != 1 {
		t.Errorf("handler served %d frames, want 1", n)
	}
	waitFor(t, "closed connections", func() bool { return s.Stats().ActiveConnections == 1 })
}

func TestNilResponseKeepsOrder(t *testing.T) {
	h := handlerFunc(func(ctx context.Context, c *Conn, frame []byte) (*Response, error) {
		if bytes.HasPrefix(frame, []byte("acks=0")) {
			return nil, nil
		}
		return echo(ctx, c, frame)
	})
	s := startServer(t, Config{}, h)
	c := dial(t, s)
	var reqs, want [][]byte
	for i := range 50 {
		p := []byte(fmt.Sprintf("request %d", i))
		if i%3 != 0 {
			p = []byte(fmt.Sprintf("acks=0 %d", i))
		} else {
			want = append(want, p)
		}
		reqs = append(reqs, p)
	}
	c.send(t, reqs...)
	for _, w := range want {
		c.expect(t, w)
	}
	c.send(t, []byte("last"))
	c.expect(t, []byte("last"))
}

func TestHandlerError(t *testing.T) {
	h := handlerFunc(func(ctx context.Context, c *Conn, frame []byte) (*Response, error) {
		switch string(frame) {
		case "fail":
			return nil, errors.New("bad request")
		case "auth":
			return &Response{Pieces: []Piece{{Bytes: []byte("denied")}}}, errors.New("authentication failed")
		}
		return echo(ctx, c, frame)
	})
	s := startServer(t, Config{}, h)
	other := dial(t, s)

	c := dial(t, s)
	c.send(t, []byte("ok"), []byte("fail"))
	c.expect(t, []byte("ok"))
	c.expectClosed(t)

	c = dial(t, s)
	c.send(t, []byte("auth"))
	c.expect(t, []byte("denied"))
	c.expectClosed(t)

	other.send(t, []byte("unaffected"))
	other.expect(t, []byte("unaffected"))
	if n := s.logs.FilterMessage("request failed; closing connection").FilterLevelExact(zap.WarnLevel).Len(); n != 2 {
		t.Errorf("%d log lines about failed requests, want 2", n)
	}
}

func TestMalformedResponse(t *testing.T) {
	var released atomic.Int64
	h := handlerFunc(func(ctx context.Context, c *Conn, frame []byte) (*Response, error) {
		r := &Response{Pieces: []Piece{{Bytes: frame}}, Release: func() { released.Add(1) }}
		if string(frame) == "bad" {
			r.Pieces = append(r.Pieces, Piece{Fd: 1, Off: 0, Len: -5})
		}
		return r, nil
	})
	s := startServer(t, Config{}, h)
	c := dial(t, s)
	c.send(t, []byte("good"), []byte("bad"))
	c.expect(t, []byte("good"))
	c.expectClosed(t)
	waitFor(t, "release", func() bool { return released.Load() == 2 })
}

func TestMaxConnections(t *testing.T) {
	s := startServer(t, Config{MaxConnections: 2}, handlerFunc(echo))
	a, b := dial(t, s), dial(t, s)
	for _, c := range []*client{a, b} {
		c.send(t, []byte("hi"))
		c.expect(t, []byte("hi"))
	}
	for range 3 {
		dial(t, s).expectClosed(t)
	}
	// The client may see the close before the server counts it.
	waitFor(t, "3 rejections", func() bool { return s.Stats().RejectedConnections == 3 })
	if st := s.Stats(); st.RejectedConnections != 3 || st.Connections != 2 {
		t.Errorf("stats %+v", st)
	}
	if n := s.logs.FilterMessage("connection limit reached; closing new connections").Len(); n != 1 {
		t.Errorf("%d log lines about the limit, want 1", n)
	}

	a.Close()
	waitFor(t, "a slot", func() bool { return s.Stats().ActiveConnections == 1 })
	c := dial(t, s)
	c.send(t, []byte("room again"))
	c.expect(t, []byte("room again"))
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	entered, proceed := make(chan struct{}), make(chan struct{})
	var servedAfter atomic.Bool
	h := handlerFunc(func(ctx context.Context, c *Conn, frame []byte) (*Response, error) {
		switch string(frame) {
		case "block":
			close(entered)
			<-proceed
			return &Response{Pieces: []Piece{{Bytes: []byte("done")}}}, nil
		case "after":
			servedAfter.Store(true)
		}
		return echo(ctx, c, frame)
	})
	s := startServer(t, Config{}, h)
	idle := dial(t, s)
	idle.send(t, []byte("ping"))
	idle.expect(t, []byte("ping"))

	c := dial(t, s)
	// "after" arrives with "block", so it sits in the read buffer when
	// Shutdown starts; it is a new request and must not be served.
	c.send(t, []byte("block"), []byte("after"))
	<-entered

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	idle.expectClosed(t)
	waitFor(t, "the listener to close", func() bool {
		nc, err := net.Dial("tcp", s.Addr().String())
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while a request was being served", err)
	default:
	}

	close(proceed)
	c.expect(t, []byte("done"))
	c.expectClosed(t)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-s.served
	if s.serveErr != nil {
		t.Fatalf("Serve: %v", s.serveErr)
	}
	if servedAfter.Load() {
		t.Error("a request read after Shutdown started was served")
	}
}

func TestShutdownEndsLongPolls(t *testing.T) {
	entered := make(chan struct{})
	h := handlerFunc(func(ctx context.Context, _ *Conn, _ []byte) (*Response, error) {
		close(entered)
		<-ctx.Done() // a long poll that only ends when told to
		return &Response{Pieces: []Piece{{Bytes: []byte("empty")}}}, nil
	})
	s := startServer(t, Config{}, h)
	c := dial(t, s)
	c.send(t, []byte("fetch"))
	<-entered
	// The deadline is far off: the long poll must end when Shutdown starts,
	// and its answer must still reach the client.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }()
	c.expect(t, []byte("empty"))
	c.expectClosed(t)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := s.logs.FilterLevelExact(zap.WarnLevel).Len(); n != 0 {
		t.Errorf("shutdown logged %d warnings", n)
	}
}

func TestReleaseWhenClientGoesAway(t *testing.T) {
	tf := newTestFile(t, 1<<20)
	var responses, released atomic.Int64
	big := make([]byte, 4<<20)
	h := handlerFunc(func(context.Context, *Conn, []byte) (*Response, error) {
		responses.Add(1)
		return &Response{
			Pieces:  []Piece{{Bytes: big}, {Fd: int(tf.f.Fd()), Len: 1 << 20}},
			Release: func() { released.Add(1) },
		}, nil
	})
	s := startServer(t, Config{MaxQueuedResponses: 2}, h)
	c := dial(t, s)
	for range 20 {
		c.send(t, []byte("fetch"))
	}
	waitFor(t, "a request to be served", func() bool { return responses.Load() > 0 })
	c.Close()
	waitFor(t, "the connection to close", func() bool { return s.Stats().ActiveConnections == 0 })
	if r, d := responses.Load(), released.Load(); r != d || r == 0 {
		t.Errorf("%d responses, %d released", r, d)
	}
}

func TestServeAfterShutdown(t *testing.T) {
	s, err := Listen(Config{Addr: "127.0.0.1:0"}, handlerFunc(echo))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func TestListenRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg Config
		h   Handler
	}{
		{Config{Addr: "127.0.0.1:0"}, nil},
		{Config{Addr: "127.0.0.1:0", MaxFrameBytes: -1}, handlerFunc(echo)},
		{Config{Addr: "127.0.0.1:0", MaxConnections: -1}, handlerFunc(echo)},
		{Config{Addr: "127.0.0.1:0", MaxQueuedResponses: -1}, handlerFunc(echo)},
		{Config{Addr: "not an address"}, handlerFunc(echo)},
	} {
		if s, err := Listen(tc.cfg, tc.h); err == nil {
			s.Shutdown(context.Background())
			t.Errorf("Listen(%+v) succeeded", tc.cfg)
		}
	}
}
