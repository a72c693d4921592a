package protocol

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/rocketkafka/broker/group"
	"github.com/rocketkafka/broker/log"
	"github.com/rocketkafka/broker/netpoll"
)

// ErrMalformed is a request that cannot be decoded; the connection closes.
var ErrMalformed = errors.New("protocol: malformed request")

// ErrUnsupported is an API key or version the broker does not serve; Kafka
// closes the connection for these too (ApiVersions excepted, see KIP-511).
var ErrUnsupported = errors.New("protocol: unsupported API key or version")

// ConfigEntry is a broker config as DescribeConfigs reports it.
type ConfigEntry struct {
	Name, Value string
	Default     bool // DEFAULT_CONFIG, else STATIC_BROKER_CONFIG
	ReadOnly    bool
	Sensitive   bool
	Type        string // Kafka's ConfigType name: BOOLEAN, STRING, INT, SHORT, LONG, DOUBLE, LIST, CLASS, PASSWORD
	Doc         string
}

// TopicConfigDefault is the broker-level default of one topic config.
type TopicConfigDefault struct {
	Value     string
	BrokerKey string // the broker config it comes from, e.g. log.retention.ms
	Default   bool   // the broker key itself was left at its default
	Type      string
}

// Config is what the protocol layer needs from the broker configuration.
type Config struct {
	NodeID                   int32
	AdvertisedHost           string
	AdvertisedPort           int32
	AutoCreateTopics         bool
	NumPartitions            int32
	DefaultReplicationFactor int16
	// FetchSendfileMinBytes: record ranges at least this long go to the
	// socket with sendfile; shorter ones are copied from the mmap.
	FetchSendfileMinBytes int64
	// FetchSessionSlots is how many incremental fetch sessions (KIP-227)
	// the handler keeps; 0 declines them.
	FetchSessionSlots int
	BrokerConfigs     []ConfigEntry
	TopicDefaults     map[string]TopicConfigDefault
	// ValidateTopicConfig checks a topic config name and value.
	ValidateTopicConfig func(name, value string) error
}

// Stats are cumulative counters of the protocol layer.
type Stats struct {
	Requests         uint64
	FetchBytesCopied uint64 // record bytes copied from the mmap into responses
	FetchBytesFile   uint64 // record bytes handed to the connection for sendfile
}

// Add adds o's counts to s, for a total over several handlers.
func (s *Stats) Add(o Stats) {
	s.Requests += o.Requests
	s.FetchBytesCopied += o.FetchBytesCopied
	s.FetchBytesFile += o.FetchBytesFile
}

// Handler serves Kafka requests on top of the store; it implements
// netpoll.Handler.
type Handler struct {
	cfg    Config
	store  *log.Log
	logger *zap.Logger
	groups *group.Coordinator // nil: the group APIs are not served
	// sessions are the incremental fetch sessions; nil declines them.
	sessions *fetchSessions

	requests         atomic.Uint64
	fetchBytesCopied atomic.Uint64
	fetchBytesFile   atomic.Uint64
}

// Option configures a Handler beyond its Config.
type Option func(*Handler)

// WithGroups serves the group APIs (JoinGroup, OffsetCommit, ...) with
// coordinator c. Without it, a request for one of them closes the
// connection as an unsupported API does; ApiVersions still lists them.
func WithGroups(c *group.Coordinator) Option {
	return func(h *Handler) { h.groups = c }
}

// New returns a Handler serving store.
func New(cfg Config, store *log.Log, logger *zap.Logger, opts ...Option) *Handler {
	h := &Handler{cfg: cfg, store: store, logger: logger}
	if cfg.FetchSessionSlots > 0 {
		h.sessions = newFetchSessions(cfg.FetchSessionSlots)
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Recyclable reports whether Serve kept nothing of frame once it
// returned: true for Produce, whose record batches are written to the
// CommitLog before Serve returns and referenced by nothing after, and
// which carries nearly all the bytes clients send.
func (h *Handler) Recyclable(frame []byte) bool {
	return len(frame) >= 2 && binary.BigEndian.Uint16(frame) == produceKey
}

// Stats returns the protocol counters.
func (h *Handler) Stats() Stats {
	return Stats{Requests: h.requests.Load(), FetchBytesCopied: h.fetchBytesCopied.Load(), FetchBytesFile: h.fetchBytesFile.Load()}
}

// request is a decoded request header plus its body.
type request struct {
	key, version  int16
	correlationID int32
	clientID      string
	body          []byte
	conn          *netpoll.Conn
}

// serveFunc serves one request of an API; a nil response sends nothing.
type serveFunc func(h *Handler, ctx context.Context, r *request) (*netpoll.Response, error)

// api is one served API key: the versions it serves and its handler.
type api struct {
	key      int16
	min, max int16
	groups   bool // needs the group coordinator
	serve    serveFunc
}

var apis = map[int16]api{}

// register is called from each API file's init.
func register(a api) {
	if _, dup := apis[a.key]; dup {
		panic(fmt.Sprintf("protocol: API key %d registered twice", a.key))
	}
	apis[a.key] = a
}

// servedAPIs lists the served APIs by key, for ApiVersions.
func servedAPIs() []api {
	out := make([]api, 0, len(apis))
	for _, a := range apis {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// typed adapts a handler of kmsg structs: it decodes the body at the
// request's version and encodes the response, header included.
func typed[Req kmsg.Request, Resp kmsg.Response](fn func(h *Handler, ctx context.Context, r *request, req Req) (Resp, error)) serveFunc {
	return func(h *Handler, ctx context.Context, r *request) (*netpoll.Response, error) {
		req := kmsg.RequestForKey(r.key).(Req)
		req.SetVersion(r.version)
		if err := req.ReadFrom(r.body); err != nil {
			return nil, fmt.Errorf("%w: %s v%d: %v", ErrMalformed, kmsg.NameForKey(r.key), r.version, err)
		}
		resp, err := fn(h, ctx, r, req)
		if err != nil {
			return nil, err
		}
		return encodeResponse(r, resp), nil
	}
}

// encodeResponse encodes resp after its header: the correlation ID, then
// the header's tagged fields when flexible (never for ApiVersions). netpoll
// adds the size prefix.
func encodeResponse(r *request, resp kmsg.Response) *netpoll.Response {
	resp.SetVersion(r.version)
	buf := make([]byte, 4, 256)
	binary.BigEndian.PutUint32(buf, uint32(r.correlationID))
	if resp.IsFlexible() && r.key != 18 {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	return &netpoll.Response{Pieces: []netpoll.Piece{{Bytes: buf}}}
}

// Serve implements netpoll.Handler.
func (h *Handler) Serve(ctx context.Context, c *netpoll.Conn, frame []byte) (*netpoll.Response, error) {
	h.requests.Add(1)
	r, err := parseHeader(frame)
	if err != nil {
		return nil, err
	}
	r.conn = c
	a, ok := apis[r.key]
	if !ok || (a.groups && h.groups == nil) {
		return nil, fmt.Errorf("%w: key %d", ErrUnsupported, r.key)
	}
	if r.version < a.min || r.version > a.max {
		if r.key == 18 {
			return unsupportedAPIVersions(r), nil
		}
		return nil, fmt.Errorf("%w: %s v%d (serving v%d-v%d)", ErrUnsupported, kmsg.NameForKey(r.key), r.version, a.min, a.max)
	}
	return a.serve(h, ctx, r)
}

// parseHeader decodes a request header (v1, or v2 with tagged fields when
// the API version is flexible) and leaves the body in r.body.
func parseHeader(frame []byte) (*request, error) {
	if len(frame) < 10 {
		return nil, fmt.Errorf("%w: %d-byte frame is shorter than a request header", ErrMalformed, len(frame))
	}
	r := &request{
		key:           int16(binary.BigEndian.Uint16(frame[0:])),
		version:       int16(binary.BigEndian.Uint16(frame[2:])),
		correlationID: int32(binary.BigEndian.Uint32(frame[4:])),
	}
	n := int(int16(binary.BigEndian.Uint16(frame[8:])))
	rest := frame[10:]
	if n > 0 {
		if n > len(rest) {
			return nil, fmt.Errorf("%w: client id of %d bytes overruns the frame", ErrMalformed, n)
		}
		r.clientID, rest = string(rest[:n]), rest[n:]
	}
	req := kmsg.RequestForKey(r.key)
	if req == nil {
		return nil, fmt.Errorf("%w: key %d", ErrUnsupported, r.key)
	}
	req.SetVersion(r.version)
	if req.IsFlexible() {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return nil, err
		}
	}
	r.body = rest
	return r, nil
}

// skipTags skips a tagged-field section.
func skipTags(b []byte) ([]byte, error) {
	count, b, err := uvarint(b)
	if err != nil {
		return nil, err
	}
	for range count {
		if _, b, err = uvarint(b); err != nil {
			return nil, err
		}
		var size uint64
		if size, b, err = uvarint(b); err != nil {
			return nil, err
		}
		if size > uint64(len(b)) {
			return nil, fmt.Errorf("%w: tagged field of %d bytes overruns the frame", ErrMalformed, size)
		}
		b = b[size:]
	}
	return b, nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 || v > 1<<31 {
		return 0, nil, fmt.Errorf("%w: bad varint", ErrMalformed)
	}
	return v, b[n:], nil
}
