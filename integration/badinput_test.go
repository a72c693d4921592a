package integration

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const closeTimeout = 10 * time.Second

func dialRaw(t testing.TB, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// expectClosed reads from conn until the broker closes it, failing if it
// is still open after closeTimeout.
func expectClosed(t testing.TB, conn net.Conn, what string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(closeTimeout))
	buf := make([]byte, 4096)
	read := 0
	for {
		n, err := conn.Read(buf)
		read += n
		if err == nil {
			continue
		}
		var ne net.Error
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
			return
		case errors.As(err, &ne) && ne.Timeout():
			t.Errorf("after %s the broker kept the connection open for %v (read %d bytes); Kafka closes it", what, closeTimeout, read)
			return
		default:
			t.Logf("after %s: read error %v (taken as closed)", what, err)
			return
		}
	}
}

// frame prefixes payload with its size.
func frame(payload []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...)
}

// requestHeader encodes a request header v1 (v2 adds an empty tag section).
func requestHeader(key, version int16, correlation int32, clientID string, flexible bool) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(correlation))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	if flexible {
		b = append(b, 0)
	}
	return b
}

// readResponse reads one response frame and returns its correlation ID
// and the rest.
func readResponse(t testing.TB, conn net.Conn) (int32, []byte) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(requestTimeout))
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		t.Fatalf("reading a response size: %v", err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<20 {
		t.Fatalf("response size %d", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatalf("reading a %d-byte response: %v", n, err)
	}
	return int32(binary.BigEndian.Uint32(body)), body[4:]
}

// apiVersions sends ApiVersions at version with an empty body (header v2,
// with its tag section, from v3 on, as clients send it) and returns the
// response error code.
func apiVersions(t testing.TB, conn net.Conn, version int16, correlation int32) int16 {
	t.Helper()
	if _, err := conn.Write(frame(requestHeader(18, version, correlation, "raw", version >= 3))); err != nil {
		t.Fatalf("writing ApiVersions: %v", err)
	}
	corr, body := readResponse(t, conn)
	if corr != correlation {
		t.Fatalf("ApiVersions response has correlation ID %d, want %d", corr, correlation)
	}
	if len(body) < 2 {
		t.Fatalf("ApiVersions response of %d bytes", len(body))
	}
	return int16(binary.BigEndian.Uint16(body))
}

// TestBadInput feeds malformed frames over raw TCP. Each bad connection
// must be closed while clients on other connections keep working, and the
// broker must survive with its data intact.
func TestBadInput(t *testing.T) {
	t.Parallel()
	const maxRequest = 1 << 20
	b := startBroker(t, t.TempDir(), fmt.Sprintf("--socket.request.max.bytes=%d", maxRequest))
	adm := newAdmin(t, b)
	const topic = "survivor"
	createTopic(t, adm, topic, 1, nil)
	good := newClient(t, b)
	var produced []*kgo.Record
	produce := func(what string) {
		t.Helper()
		r := &kgo.Record{Topic: topic, Value: []byte(what)}
		produceSync(t, good, r)
		produced = append(produced, r)
	}
	for i := range 50 {
		produce(fmt.Sprintf("before %d", i))
	}

	rng := rand.New(rand.NewPCG(7, 8))
	garbage := make([]byte, 200)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	garbage[0], garbage[1] = 0xff, 0xfe // API key -2: not a Kafka API

	// Produce v9 with a valid header and a body of 0xff bytes.
	badBody := requestHeader(0, 9, 1, "raw", true)
	for range 32 {
		badBody = append(badBody, 0xff)
	}
	// Metadata v1 whose client ID length runs past the frame.
	overrun := requestHeader(3, 1, 1, "", false)
	binary.BigEndian.PutUint16(overrun[8:], 1000)

	cases := []struct {
		name string
		send []byte
	}{
		{"size-above-socket.request.max.bytes", append(binary.BigEndian.AppendUint32(nil, 2*maxRequest), make([]byte, 64<<10)...)},
		{"size-max-int32", append(binary.BigEndian.AppendUint32(nil, 0x7fffffff), make([]byte, 1024)...)},
		{"size-negative", binary.BigEndian.AppendUint32(nil, 0xffffffff)},
		{"size-zero", binary.BigEndian.AppendUint32(nil, 0)},
		{"garbage-unknown-api-key", frame(garbage)},
		{"garbage-produce-body", frame(badBody)},
		{"client-id-overruns-frame", frame(overrun)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := dialRaw(t, b.addr)
			// The broker may close before everything is written.
			_, _ = conn.Write(c.send)
			expectClosed(t, conn, c.name)
			produce("after " + c.name)
		})
	}

	t.Run("truncated-frame", func(t *testing.T) {
		conn := dialRaw(t, b.addr)
		msg := requestHeader(18, 0, 1, "raw", false)
		_, _ = conn.Write(append(binary.BigEndian.AppendUint32(nil, 100), msg...))
		conn.Close()
		// A half-sent frame on an open connection does not block others.
		conn2 := dialRaw(t, b.addr)
		_, _ = conn2.Write(append(binary.BigEndian.AppendUint32(nil, 100), msg...))
		produce("after a truncated frame")
		if code := apiVersions(t, dialRaw(t, b.addr), 0, 42); code != 0 {
			t.Errorf("ApiVersions v0 after a truncated frame: error %s", errName(code))
		}
	})

	t.Run("apiversions-unsupported-version", func(t *testing.T) {
		// KIP-511: an ApiVersions version the broker does not know gets
		// UNSUPPORTED_VERSION and the connection stays usable.
		conn := dialRaw(t, b.addr)
		if code := apiVersions(t, conn, 0, 1); code != 0 {
			t.Fatalf("ApiVersions v0: error %s", errName(code))
		}
		if code := apiVersions(t, conn, 999, 2); code != 35 {
			t.Errorf("ApiVersions v999: error %s, want UNSUPPORTED_VERSION", errName(code))
		}
		if code := apiVersions(t, conn, 0, 3); code != 0 {
			t.Errorf("ApiVersions v0 after v999 on the same connection: error %s", errName(code))
		}
	})

	t.Run("many-bad-connections", func(t *testing.T) {
		var conns []net.Conn
		for i := range 50 {
			conn := dialRaw(t, b.addr)
			_, _ = conn.Write(frame(garbage[:20+i]))
			conns = append(conns, conn)
		}
		for i, conn := range conns {
			expectClosed(t, conn, fmt.Sprintf("garbage on connection %d", i))
		}
		produce("after many bad connections")
	})

	if b.exited() {
		t.Fatalf("the broker exited: %v", b.cmd.ProcessState)
	}
	checkConsumed(t, produced, consumeTopic(t, b, topic, len(produced)))
}
