package config

import (
	"fmt"
	"maps"
	"math"
	"net"
	"slices"
	"strconv"
)

// DefaultFetchSendfileMinBytes is the default of fetch.sendfile.min.bytes.
// Below it, the cost of a sendfile call outweighs copying the bytes out of
// the memory-mapped segment: netpoll's benchmarks on loopback have copying
// 3.5x faster at 1 KiB, the two even at 16 KiB, and sendfile ahead from
// 64 KiB.
const DefaultFetchSendfileMinBytes = 16384

// segmentHeadroom is how much larger than message.max.bytes a commit log
// segment has to be, so the largest accepted batch plus the store's own
// framing always fits in one segment.
const segmentHeadroom = 4096

// Listener is one endpoint from listeners or advertised.listeners, written
// as NAME://host:port.
type Listener struct {
	// Name is the listener name, upper-cased; its security protocol
	// (listener.security.protocol.map) must be PLAINTEXT.
	Name string
	// Host is empty when the listener binds every interface.
	Host string
	// Port 0 on listeners asks for any free port; the server advertises the
	// port it actually bound.
	Port int
}

// Addr returns host:port in the form net.Listen and net.Dial take.
func (l Listener) Addr() string {
	return net.JoinHostPort(l.Host, strconv.Itoa(l.Port))
}

// String returns the listener in the form it is configured in.
func (l Listener) String() string {
	return l.Name + "://" + l.Addr()
}

// Config is the broker configuration. Each field's comment names the key it
// is read from.
type Config struct {
	Listeners                   []Listener        // listeners
	AdvertisedListeners         []Listener        // advertised.listeners
	ControllerListenerNames     []string          // controller.listener.names
	ListenerProtocols           map[string]string // listener.security.protocol.map: listener name -> security protocol
	LogDir                      string            // log.dirs (exactly one directory)
	NodeID                      int32             // node.id, or its alias broker.id
	ClusterID                   string            // cluster.id; empty lets the store generate and keep one
	NumPartitions               int32             // num.partitions
	DefaultReplicationFactor    int16             // default.replication.factor
	AutoCreateTopics            bool              // auto.create.topics.enable
	MessageMaxBytes             int32             // message.max.bytes
	SocketRequestMaxBytes       int32             // socket.request.max.bytes
	MaxConnections              int               // max.connections
	LogRetentionMs              int64             // log.retention.ms, .minutes or .hours; -1 keeps data forever
	LogRetentionBytes           int64             // log.retention.bytes; -1 means no size limit
	LogFlushIntervalMessages    int64             // log.flush.interval.messages
	LogRetentionCheckIntervalMs int64             // log.retention.check.interval.ms
	CheckpointIntervalMs        int64             // checkpoint.interval.ms
	DiskReclaimRatio            float64           // log.disk.reclaim.ratio
	DiskCriticalRatio           float64           // log.disk.critical.ratio
	LogFlushIntervalMs          int64             // log.flush.interval.ms; -1 leaves flushing to FlushIntervalMs
	FlushDiskType               string            // flush.disk.type: ASYNC_FLUSH or SYNC_FLUSH
	FlushIntervalMs             int64             // flush.interval.ms
	CommitLogSegmentBytes       int64             // commitlog.segment.bytes
	ConsumeQueueEntries         int64             // consumequeue.segment.entries
	FetchSendfileMinBytes       int64             // fetch.sendfile.min.bytes
	FetchSessionCacheSlots      int32             // max.incremental.fetch.session.cache.slots
	MessageTimestampType        string            // log.message.timestamp.type: CreateTime or LogAppendTime
	LogCleanupPolicy            string            // log.cleanup.policy
	LoggerFormat                string            // logger.format: console or json
	LoggerLevel                 string            // logger.level: debug, info, warn or error
	MetricsListener             string            // metrics.listener; empty disables /metrics
	ShutdownTimeoutMs           int64             // shutdown.timeout.ms
	GroupMinSessionTimeoutMs    int32             // group.min.session.timeout.ms
	GroupMaxSessionTimeoutMs    int32             // group.max.session.timeout.ms
	InitialRebalanceDelayMs     int32             // group.initial.rebalance.delay.ms
	OffsetsRetentionMinutes     int32             // offsets.retention.minutes
	OffsetsCheckIntervalMs      int64             // offsets.retention.check.interval.ms
	GroupMaxSize                int32             // group.max.size
	ConsumerSessionTimeoutMs    int32             // group.consumer.session.timeout.ms
	ConsumerHeartbeatIntervalMs int32             // group.consumer.heartbeat.interval.ms
	ConsumerMaxSize             int32             // group.consumer.max.size

	// explicit holds the trimmed value of every key Load found in a flag,
	// the environment or the file. Entries needs it to tell a value that
	// was set from one left at its default, and to report the retention
	// keys that only feed LogRetentionMs.
	explicit map[string]string
}

// Default returns the configuration used when nothing is set: one
// PLAINTEXT listener on localhost:9092 and data under ./data, which is what
// a developer expects from a broker started without arguments.
func Default() *Config {
	listeners := []Listener{{Name: "PLAINTEXT", Host: "localhost", Port: 9092}}
	return &Config{
		Listeners:                   listeners,
		AdvertisedListeners:         advertise(listeners),
		ListenerProtocols:           maps.Clone(defaultListenerProtocols),
		LogDir:                      "./data",
		NodeID:                      1,
		NumPartitions:               1,
		DefaultReplicationFactor:    1,
		AutoCreateTopics:            true,
		MessageMaxBytes:             1048588,
		SocketRequestMaxBytes:       104857600,
		MaxConnections:              math.MaxInt32,
		LogRetentionMs:              168 * 3600 * 1000,
		LogRetentionBytes:           -1,
		LogFlushIntervalMessages:    math.MaxInt64,
		LogRetentionCheckIntervalMs: 300000,
		CheckpointIntervalMs:        10000,
		DiskReclaimRatio:            0.90,
		DiskCriticalRatio:           0.95,
		LogFlushIntervalMs:          -1,
		FlushDiskType:               "ASYNC_FLUSH",
		FlushIntervalMs:             500,
		CommitLogSegmentBytes:       1 << 30,
		ConsumeQueueEntries:         300000,
		FetchSendfileMinBytes:       DefaultFetchSendfileMinBytes,
		FetchSessionCacheSlots:      1000,
		MessageTimestampType:        "CreateTime",
		LogCleanupPolicy:            "delete",
		LoggerFormat:                "console",
		LoggerLevel:                 "info",
		ShutdownTimeoutMs:           30000,
		GroupMinSessionTimeoutMs:    6000,
		GroupMaxSessionTimeoutMs:    1800000,
		InitialRebalanceDelayMs:     3000,
		GroupMaxSize:                math.MaxInt32,
		ConsumerSessionTimeoutMs:    45000,
		ConsumerHeartbeatIntervalMs: 5000,
		ConsumerMaxSize:             math.MaxInt32,
		OffsetsRetentionMinutes:     10080,
		OffsetsCheckIntervalMs:      600000,
	}
}

// defaultListenerProtocols is Kafka's default listener.security.protocol.map.
var defaultListenerProtocols = map[string]string{
	"PLAINTEXT": "PLAINTEXT", "SSL": "SSL", "SASL_PLAINTEXT": "SASL_PLAINTEXT", "SASL_SSL": "SASL_SSL",
}

// ClientListeners are the listeners clients connect to: every listener
// but those controller.listener.names names, which a KRaft configuration
// has for its controller quorum and this single broker, which has none,
// does not open.
func (c *Config) ClientListeners() []Listener {
	var out []Listener
	for _, l := range c.Listeners {
		if !slices.Contains(c.ControllerListenerNames, l.Name) {
			out = append(out, l)
		}
	}
	return out
}

// AdvertisedFor is the address advertised to clients of listener l: the
// advertised listener of the same name, or l itself with a wildcard host
// advertised as localhost (Kafka would not advertise a listener missing
// from advertised.listeners at all, and its clients would find no broker).
func (c *Config) AdvertisedFor(l Listener) Listener {
	for _, a := range c.AdvertisedListeners {
		if a.Name == l.Name {
			return a
		}
	}
	return advertise([]Listener{l})[0]
}

// advertise derives advertised.listeners from listeners. A listener bound
// to every interface has no address a client could use, so it is
// advertised as localhost, which is right for the single-machine setups
// that leave advertised.listeners unset.
func advertise(listeners []Listener) []Listener {
	out := make([]Listener, len(listeners))
	for i, l := range listeners {
		if wildcardHost(l.Host) {
			l.Host = "localhost"
		}
		out[i] = l
	}
	return out
}

func wildcardHost(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

// Validate checks every field against the range its key allows and the
// relations between keys. Load calls it; code that builds a Config by hand
// should too.
func (c *Config) Validate() error {
	for _, k := range keys {
		if k.check == nil {
			continue
		}
		if e := k.check(c); e != nil {
			e.Key = k.name
			return e
		}
	}
	if c.LogRetentionMs < -1 {
		return &ValueError{
			Key:      "log.retention.ms",
			Value:    strconv.FormatInt(c.LogRetentionMs, 10),
			Expected: rangeText(-1, math.MaxInt64),
		}
	}
	if c.GroupMinSessionTimeoutMs > c.GroupMaxSessionTimeoutMs {
		return &ValueError{
			Key:      "group.min.session.timeout.ms",
			Value:    strconv.FormatInt(int64(c.GroupMinSessionTimeoutMs), 10),
			Expected: fmt.Sprintf("at most group.max.session.timeout.ms = %d", c.GroupMaxSessionTimeoutMs),
		}
	}
	if c.ConsumerHeartbeatIntervalMs >= c.ConsumerSessionTimeoutMs {
		return &ValueError{
			Key:      "group.consumer.heartbeat.interval.ms",
			Value:    strconv.FormatInt(int64(c.ConsumerHeartbeatIntervalMs), 10),
			Expected: fmt.Sprintf("below group.consumer.session.timeout.ms = %d", c.ConsumerSessionTimeoutMs),
		}
	}
	if limit := int64(c.MessageMaxBytes) + segmentHeadroom; c.CommitLogSegmentBytes <= limit {
		return &ValueError{
			Key:      "commitlog.segment.bytes",
			Value:    strconv.FormatInt(c.CommitLogSegmentBytes, 10),
			Expected: fmt.Sprintf("more than message.max.bytes + %d = %d, so the largest batch fits in a segment", segmentHeadroom, limit),
		}
	}
	clients := c.ClientListeners()
	if len(clients) == 0 {
		return &ValueError{
			Key:      "listeners",
			Value:    joinListeners(c.Listeners),
			Expected: "at least one listener not named in controller.listener.names",
		}
	}
	for _, l := range clients {
		if p := c.ListenerProtocols[l.Name]; p != "PLAINTEXT" {
			return &ValueError{
				Key:      "listeners",
				Value:    l.String(),
				Expected: fmt.Sprintf("a listener whose security protocol (listener.security.protocol.map) is PLAINTEXT, not %q; other protocols are not supported", p),
			}
		}
	}
	advertised := 0
	for _, l := range c.AdvertisedListeners {
		if slices.Contains(c.ControllerListenerNames, l.Name) {
			continue // as Kafka, controller listeners are not advertised to clients
		}
		if !slices.ContainsFunc(clients, func(cl Listener) bool { return cl.Name == l.Name }) {
			return &ValueError{
				Key:      "advertised.listeners",
				Value:    l.String(),
				Expected: "a listener whose name also appears in listeners",
			}
		}
		advertised++
	}
	if advertised == 0 {
		return &ValueError{
			Key:      "advertised.listeners",
			Value:    joinListeners(c.AdvertisedListeners),
			Expected: "at least one listener that is not a controller listener",
		}
	}
	for i, a := range clients {
		for _, b := range clients[i+1:] {
			if a.Port != 0 && a.Port == b.Port && (a.Host == b.Host || wildcardHost(a.Host) || wildcardHost(b.Host)) {
				return &ValueError{
					Key:      "listeners",
					Value:    joinListeners(c.Listeners),
					Expected: "listeners on different ports",
				}
			}
		}
	}
	return nil
}

// ValueError reports a value that a key does not accept. Its message is one
// line, so main can print it as it is.
type ValueError struct {
	Key      string // the key, e.g. "num.partitions"
	Value    string // the value as given
	Expected string // what the key accepts, phrased to follow "expected"
	// Source says where the value came from ("flag --num.partitions",
	// "env KAFKA_NUM_PARTITIONS", "file server.properties"); it is empty
	// when the value did not come from Load.
	Source string

	// kind is a sentinel that errors.Is matches, such as
	// ErrInvalidTopicConfig; nil for broker keys.
	kind error
}

func (e *ValueError) Error() string {
	from := ""
	if e.Source != "" {
		from = " (from " + e.Source + ")"
	}
	return fmt.Sprintf("invalid value %q for %s%s: expected %s", e.Value, e.Key, from, e.Expected)
}

func (e *ValueError) Unwrap() error { return e.kind }
