package config

import (
	"fmt"
	"maps"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
)

// key describes one configuration key: how to parse it into a Config, how
// to render it back, and which values Validate accepts. Keeping the three
// side by side is what lets Load, Validate, Entries and the flag set agree
// on every key.
type key struct {
	name string
	typ  string // Kafka's ConfigType name, as DescribeConfigs reports it
	doc  string
	// set parses s, already trimmed, into c.
	set func(c *Config, s string) *ValueError
	// get renders c's value in the form set accepts.
	get func(c *Config) string
	// check reports a value of c that the key does not accept.
	check func(c *Config) *ValueError
}

// keys lists every broker key. Load applies them in this order, which
// matters for the retention keys: hours, then minutes, then ms, so the
// most precise one that is set wins, as in Kafka.
var keys = []key{
	{
		name:  "listeners",
		typ:   "STRING",
		doc:   "Comma-separated NAME://host:port addresses to accept clients on; an empty host binds every interface, port 0 any free port. Each listener's security protocol must be PLAINTEXT; those named in controller.listener.names are not opened.",
		set:   func(c *Config, s string) (e *ValueError) { c.Listeners, e = parseListeners(s); return e },
		get:   func(c *Config) string { return joinListeners(c.Listeners) },
		check: func(c *Config) *ValueError { return checkListeners(c.Listeners, false) },
	},
	{
		name: "controller.listener.names",
		typ:  "LIST",
		doc:  "Names of listeners that belong to a KRaft controller quorum. This broker has none and does not open them, so KRaft-style configurations work unchanged.",
		set: func(c *Config, s string) *ValueError {
			c.ControllerListenerNames = nil
			for name := range strings.SplitSeq(s, ",") {
				if name = strings.ToUpper(strings.TrimSpace(name)); name != "" {
					c.ControllerListenerNames = append(c.ControllerListenerNames, name)
				}
			}
			return nil
		},
		get: func(c *Config) string { return strings.Join(c.ControllerListenerNames, ",") },
	},
	{
		name: "listener.security.protocol.map",
		typ:  "STRING",
		doc:  "Comma-separated NAME:PROTOCOL pairs giving each listener's security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL). Only PLAINTEXT listeners can be opened.",
		set: func(c *Config, s string) *ValueError {
			m := map[string]string{}
			for pair := range strings.SplitSeq(s, ",") {
				if pair = strings.TrimSpace(pair); pair == "" {
					continue
				}
				name, protocol, ok := strings.Cut(pair, ":")
				name, protocol = strings.ToUpper(strings.TrimSpace(name)), strings.ToUpper(strings.TrimSpace(protocol))
				if !ok || name == "" || !slices.Contains([]string{"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}, protocol) {
					return &ValueError{Value: pair, Expected: "NAME:PROTOCOL pairs, PROTOCOL one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"}
				}
				m[name] = protocol
			}
			c.ListenerProtocols = m
			return nil
		},
		get: func(c *Config) string {
			pairs := make([]string, 0, len(c.ListenerProtocols))
			for _, name := range slices.Sorted(maps.Keys(c.ListenerProtocols)) {
				pairs = append(pairs, name+":"+c.ListenerProtocols[name])
			}
			return strings.Join(pairs, ",")
		},
	},
	{
		name:  "advertised.listeners",
		typ:   "STRING",
		doc:   "Addresses given to clients in metadata responses. Defaults to listeners, with an empty or wildcard host advertised as localhost.",
		set:   func(c *Config, s string) (e *ValueError) { c.AdvertisedListeners, e = parseListeners(s); return e },
		get:   func(c *Config) string { return joinListeners(c.AdvertisedListeners) },
		check: func(c *Config) *ValueError { return checkListeners(c.AdvertisedListeners, true) },
	},
	{
		name: "log.dirs",
		typ:  "LIST",
		doc:  "Directory holding all data; exactly one is supported.",
		set: func(c *Config, s string) *ValueError {
			var dirs []string
			for d := range strings.SplitSeq(s, ",") {
				if d = strings.TrimSpace(d); d != "" {
					dirs = append(dirs, d)
				}
			}
			switch len(dirs) {
			case 0:
				return &ValueError{Value: s, Expected: "a directory path"}
			case 1:
				c.LogDir = dirs[0]
				return nil
			}
			return &ValueError{Value: s, Expected: "exactly one directory; several log directories are not supported"}
		},
		get: func(c *Config) string { return c.LogDir },
		check: func(c *Config) *ValueError {
			if c.LogDir == "" {
				return &ValueError{Value: c.LogDir, Expected: "a directory path"}
			}
			return nil
		},
	},
	intKey("node.id", "INT", "This broker's id, reported to clients in metadata.", func(c *Config) *int32 { return &c.NodeID }, 0, math.MaxInt32),
	intKey("broker.id", "INT", "Alias of node.id, as older Kafka configs name it.", func(c *Config) *int32 { return &c.NodeID }, 0, math.MaxInt32),
	{
		name:  "cluster.id",
		typ:   "STRING",
		doc:   "Cluster id reported to clients; when empty, one is generated on first start and kept in the data directory.",
		set:   func(c *Config, s string) *ValueError { c.ClusterID = s; return nil },
		get:   func(c *Config) string { return c.ClusterID },
		check: alwaysValid,
	},
	intKey("num.partitions", "INT", "Partitions of an automatically created topic, and of a created topic that does not give a count.", func(c *Config) *int32 { return &c.NumPartitions }, 1, 1000000),
	intKey("default.replication.factor", "INT", "Replication factor of a created topic that does not give one.", func(c *Config) *int16 { return &c.DefaultReplicationFactor }, 1, math.MaxInt16),
	boolKey("auto.create.topics.enable", "Create a topic when a client asks for metadata of, or produces to, a topic that does not exist.", func(c *Config) *bool { return &c.AutoCreateTopics }),
	intKey("message.max.bytes", "INT", "Largest record batch the broker accepts, in bytes.", func(c *Config) *int32 { return &c.MessageMaxBytes }, 0, math.MaxInt32),
	intKey("socket.request.max.bytes", "INT", "Largest request the broker reads, in bytes.", func(c *Config) *int32 { return &c.SocketRequestMaxBytes }, 1, math.MaxInt32),
	intKey("max.connections", "INT", "Most client connections open at once on each listener.", func(c *Config) *int { return &c.MaxConnections }, 0, math.MaxInt32),
	retentionKey("log.retention.hours", "INT", "Hours to keep data; -1 keeps it forever. Used when log.retention.minutes and log.retention.ms are unset.", 3600*1000, math.MaxInt32, "168"),
	retentionKey("log.retention.minutes", "INT", "Minutes to keep data; -1 keeps it forever. Used when log.retention.ms is unset.", 60*1000, math.MaxInt32, ""),
	retentionKey("log.retention.ms", "LONG", "Milliseconds to keep data; -1 keeps it forever. Overrides log.retention.minutes and log.retention.hours.", 1, math.MaxInt64, ""),
	intKey("log.retention.bytes", "LONG", "Bytes to keep per partition before deleting the oldest data; -1 means no limit.", func(c *Config) *int64 { return &c.LogRetentionBytes }, -1, math.MaxInt64),
	ratioKey("log.disk.reclaim.ratio", "Disk usage above which the oldest CommitLog files are reclaimed early, moving the log start offsets of the partitions whose data they hold (logged); 0 turns it off.", func(c *Config) *float64 { return &c.DiskReclaimRatio }),
	ratioKey("log.disk.critical.ratio", "Disk usage above which produce is refused with KAFKA_STORAGE_ERROR until usage falls; 0 turns it off.", func(c *Config) *float64 { return &c.DiskCriticalRatio }),
	intKey("checkpoint.interval.ms", "LONG", "How often the store records a checkpoint (CommitLog position, ConsumeQueue lengths, producer state, all synced) so recovery after a crash replays only what came after it, in milliseconds.", func(c *Config) *int64 { return &c.CheckpointIntervalMs }, 1, math.MaxInt64),
	intKey("log.retention.check.interval.ms", "LONG", "How often retention moves log start offsets and deletes CommitLog files nothing live needs, in milliseconds.", func(c *Config) *int64 { return &c.LogRetentionCheckIntervalMs }, 1, math.MaxInt64),
	intKey("log.flush.interval.messages", "LONG", "Flush to disk after this many messages.", func(c *Config) *int64 { return &c.LogFlushIntervalMessages }, 1, math.MaxInt64),
	intKey("log.flush.interval.ms", "LONG", "Flush to disk after data has waited this many milliseconds; -1 leaves it to flush.interval.ms.", func(c *Config) *int64 { return &c.LogFlushIntervalMs }, -1, math.MaxInt64),
	enumKey("flush.disk.type", "ASYNC_FLUSH flushes in the background every flush.interval.ms; SYNC_FLUSH flushes before acknowledging a produce.", func(c *Config) *string { return &c.FlushDiskType }, "ASYNC_FLUSH", "SYNC_FLUSH"),
	intKey("flush.interval.ms", "LONG", "Period of the background flush under ASYNC_FLUSH, in milliseconds.", func(c *Config) *int64 { return &c.FlushIntervalMs }, 1, math.MaxInt64),
	// Capped at the INT range because Kafka clients see this value as the
	// INT topic config segment.bytes.
	intKey("commitlog.segment.bytes", "LONG", "Size of a commit log segment file, in bytes; must exceed message.max.bytes + 4096.", func(c *Config) *int64 { return &c.CommitLogSegmentBytes }, 64<<10, math.MaxInt32),
	intKey("consumequeue.segment.entries", "LONG", "Index entries per consume queue file.", func(c *Config) *int64 { return &c.ConsumeQueueEntries }, 1, math.MaxInt64),
	intKey("max.incremental.fetch.session.cache.slots", "INT", "Incremental fetch sessions (KIP-227) kept on each listener; 0 declines them, so clients send full fetches.", func(c *Config) *int32 { return &c.FetchSessionCacheSlots }, 0, math.MaxInt32),
	intKey("fetch.sendfile.min.bytes", "LONG", "Fetched record ranges smaller than this are copied from memory instead of sent with sendfile.", func(c *Config) *int64 { return &c.FetchSendfileMinBytes }, 0, math.MaxInt64),
	enumKey("log.message.timestamp.type", "Whether record timestamps are the producer's (CreateTime) or the broker's append time (LogAppendTime).", func(c *Config) *string { return &c.MessageTimestampType }, "CreateTime", "LogAppendTime"),
	{
		name: "log.cleanup.policy",
		typ:  "LIST",
		doc:  "Default cleanup policy of topics: delete, compact, or both comma-separated.",
		set: func(c *Config, s string) *ValueError {
			p, ok := cleanupPolicy(s)
			if !ok {
				return &ValueError{Value: s, Expected: cleanupPolicyExpected}
			}
			c.LogCleanupPolicy = p
			return nil
		},
		get: func(c *Config) string { return c.LogCleanupPolicy },
		check: func(c *Config) *ValueError {
			if _, ok := cleanupPolicy(c.LogCleanupPolicy); !ok {
				return &ValueError{Value: c.LogCleanupPolicy, Expected: cleanupPolicyExpected}
			}
			return nil
		},
	},
	enumKey("logger.format", "Log output format.", func(c *Config) *string { return &c.LoggerFormat }, "console", "json"),
	enumKey("logger.level", "Least severe log level written.", func(c *Config) *string { return &c.LoggerLevel }, "debug", "info", "warn", "error"),
	{
		name:  "metrics.listener",
		typ:   "STRING",
		doc:   "host:port to serve plain-text /metrics over HTTP on; empty disables it.",
		set:   func(c *Config, s string) *ValueError { c.MetricsListener = s; return nil },
		get:   func(c *Config) string { return c.MetricsListener },
		check: checkMetricsListener,
	},
	intKey("shutdown.timeout.ms", "LONG", "How long a graceful shutdown may take before connections are closed, in milliseconds.", func(c *Config) *int64 { return &c.ShutdownTimeoutMs }, 0, math.MaxInt64),
	intKey("group.min.session.timeout.ms", "INT", "Shortest session timeout a consumer group member may ask for, in milliseconds.", func(c *Config) *int32 { return &c.GroupMinSessionTimeoutMs }, 0, math.MaxInt32),
	intKey("group.max.session.timeout.ms", "INT", "Longest session timeout a consumer group member may ask for, in milliseconds.", func(c *Config) *int32 { return &c.GroupMaxSessionTimeoutMs }, 0, math.MaxInt32),
	intKey("group.initial.rebalance.delay.ms", "INT", "How long the first rebalance of an empty consumer group waits for more members to join (longer while they keep joining, up to the rebalance timeout), in milliseconds.", func(c *Config) *int32 { return &c.InitialRebalanceDelayMs }, 0, math.MaxInt32),
	intKey("group.max.size", "INT", "The most members a classic consumer group takes; a member joining beyond it gets GROUP_MAX_SIZE_REACHED.", func(c *Config) *int32 { return &c.GroupMaxSize }, 1, math.MaxInt32),
	intKey("group.consumer.session.timeout.ms", "INT", "How long a KIP-848 consumer group member may go without a heartbeat before it is removed, in milliseconds.", func(c *Config) *int32 { return &c.ConsumerSessionTimeoutMs }, 1, math.MaxInt32),
	intKey("group.consumer.heartbeat.interval.ms", "INT", "How often KIP-848 consumer group members are told to heartbeat, in milliseconds.", func(c *Config) *int32 { return &c.ConsumerHeartbeatIntervalMs }, 1, math.MaxInt32),
	intKey("group.consumer.max.size", "INT", "The most members a KIP-848 consumer group takes; a member joining beyond it gets GROUP_MAX_SIZE_REACHED.", func(c *Config) *int32 { return &c.ConsumerMaxSize }, 1, math.MaxInt32),
	intKey("offsets.retention.minutes", "INT", "How long the committed offsets of a group without members are kept after it became empty (after the commit for groups never joined since the broker started), in minutes.", func(c *Config) *int32 { return &c.OffsetsRetentionMinutes }, 1, math.MaxInt32),
	intKey("offsets.retention.check.interval.ms", "LONG", "How often committed offsets are checked for expiry, empty groups without offsets removed and the offsets topic rewritten to its live content, in milliseconds.", func(c *Config) *int64 { return &c.OffsetsCheckIntervalMs }, 1, math.MaxInt64),
}

func knownKey(name string) bool {
	return slices.ContainsFunc(keys, func(k key) bool { return k.name == name })
}

// envName is the environment variable a key is read from, following the
// official Kafka Docker image.
func envName(key string) string {
	return "KAFKA_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func alwaysValid(*Config) *ValueError { return nil }

// intKey describes an integer key whose field has type T. lo and hi must
// fit in T, so a value that passes the range check converts exactly.
func intKey[T ~int | ~int16 | ~int32 | ~int64](name, typ, doc string, field func(*Config) *T, lo, hi int64) key {
	bad := func(value string) *ValueError {
		return &ValueError{Value: value, Expected: rangeText(lo, hi)}
	}
	return key{
		name: name,
		typ:  typ,
		doc:  doc,
		set: func(c *Config, s string) *ValueError {
			n, ok := parseInt(s, lo, hi)
			if !ok {
				return bad(s)
			}
			*field(c) = T(n)
			return nil
		},
		get: func(c *Config) string { return strconv.FormatInt(int64(*field(c)), 10) },
		check: func(c *Config) *ValueError {
			if n := int64(*field(c)); n < lo || n > hi {
				return bad(strconv.FormatInt(n, 10))
			}
			return nil
		},
	}
}

// ratioKey is a fraction between 0 and 1 (0 turns the feature off).
func ratioKey(name, doc string, field func(*Config) *float64) key {
	bad := func(value string) *ValueError {
		return &ValueError{Value: value, Expected: "a ratio between 0 (off) and 1, e.g. 0.9"}
	}
	return key{
		name: name,
		typ:  "DOUBLE",
		doc:  doc,
		set: func(c *Config, s string) *ValueError {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || f < 0 || f > 1 {
				return bad(s)
			}
			*field(c) = f
			return nil
		},
		get: func(c *Config) string { return strconv.FormatFloat(*field(c), 'g', -1, 64) },
		check: func(c *Config) *ValueError {
			if f := *field(c); f < 0 || f > 1 {
				return bad(strconv.FormatFloat(f, 'g', -1, 64))
			}
			return nil
		},
	}
}

// retentionKey describes log.retention.hours, .minutes or .ms. They have
// no fields of their own: each sets LogRetentionMs, which Validate checks,
// and Entries reports each as given, or unset, as Kafka does.
func retentionKey(name, typ, doc string, unitMs, hi int64, def string) key {
	return key{
		name: name,
		typ:  typ,
		doc:  doc,
		set: func(c *Config, s string) *ValueError {
			n, ok := parseInt(s, -1, hi)
			if !ok {
				return &ValueError{Value: s, Expected: rangeText(-1, hi)}
			}
			// hi keeps n*unitMs within int64.
			c.LogRetentionMs = max(n*unitMs, -1)
			return nil
		},
		get: func(c *Config) string {
			if s, ok := c.explicit[name]; ok {
				return s
			}
			return def
		},
		check: alwaysValid,
	}
}

func boolKey(name, doc string, field func(*Config) *bool) key {
	return key{
		name: name,
		typ:  "BOOLEAN",
		doc:  doc,
		set: func(c *Config, s string) *ValueError {
			b, ok := parseBool(s)
			if !ok {
				return &ValueError{Value: s, Expected: "true or false"}
			}
			*field(c) = b
			return nil
		},
		get:   func(c *Config) string { return strconv.FormatBool(*field(c)) },
		check: alwaysValid,
	}
}

// enumKey describes a string key limited to allowed, matched exactly as
// Kafka matches its own enumerated values.
func enumKey(name, doc string, field func(*Config) *string, allowed ...string) key {
	bad := func(value string) *ValueError {
		return &ValueError{Value: value, Expected: oneOf(allowed)}
	}
	return key{
		name: name,
		typ:  "STRING",
		doc:  doc + " One of " + strings.Join(allowed, ", ") + ".",
		set: func(c *Config, s string) *ValueError {
			if !slices.Contains(allowed, s) {
				return bad(s)
			}
			*field(c) = s
			return nil
		},
		get: func(c *Config) string { return *field(c) },
		check: func(c *Config) *ValueError {
			if !slices.Contains(allowed, *field(c)) {
				return bad(*field(c))
			}
			return nil
		},
	}
}

func parseInt(s string, lo, hi int64) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= lo && n <= hi
}

// parseBool accepts what Kafka accepts: true or false in any case, and
// nothing else (no 1, yes or on).
func parseBool(s string) (value, ok bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

func rangeText(lo, hi int64) string {
	if hi == math.MaxInt64 {
		return fmt.Sprintf("an integer >= %d", lo)
	}
	return fmt.Sprintf("an integer between %d and %d", lo, hi)
}

func oneOf(allowed []string) string {
	return "one of " + strings.Join(allowed, ", ")
}

const cleanupPolicyExpected = "delete, compact, or both comma-separated"

// cleanupPolicy normalizes a cleanup.policy list, reporting whether every
// element is a policy Kafka knows.
func cleanupPolicy(s string) (string, bool) {
	var policies []string
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if p != "delete" && p != "compact" {
			return "", false
		}
		if !slices.Contains(policies, p) {
			policies = append(policies, p)
		}
	}
	return strings.Join(policies, ","), true
}

const listenerExpected = "listeners written as NAME://host:port, e.g. PLAINTEXT://localhost:9092"

// parseListeners parses the syntax of a listener list; Validate checks the
// names, hosts and ports.
func parseListeners(s string) ([]Listener, *ValueError) {
	var out []Listener
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, addr, found := strings.Cut(part, "://")
		host, port, err := net.SplitHostPort(addr)
		if !found || name == "" || err != nil {
			return nil, &ValueError{Value: part, Expected: listenerExpected}
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, &ValueError{Value: part, Expected: "a numeric port between 0 and 65535"}
		}
		// Kafka treats listener names case-insensitively and upper-cases them.
		out = append(out, Listener{Name: strings.ToUpper(name), Host: host, Port: p})
	}
	if len(out) == 0 {
		return nil, &ValueError{Value: s, Expected: listenerExpected}
	}
	return out, nil
}

func joinListeners(ls []Listener) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.String()
	}
	return strings.Join(parts, ",")
}

// checkListeners checks a listener list. Advertised listeners must carry a
// host a client can dial, so an empty or wildcard host is refused there;
// they are derived from listeners when not set, so none means there is no
// client listener, which Validate reports.
func checkListeners(ls []Listener, advertised bool) *ValueError {
	if len(ls) == 0 && !advertised {
		return &ValueError{Value: "", Expected: listenerExpected}
	}
	seen := map[string]bool{}
	for _, l := range ls {
		bad := func(expected string) *ValueError {
			return &ValueError{Value: l.String(), Expected: expected}
		}
		switch {
		case l.Port < 0 || l.Port > 65535:
			return bad("a port between 0 and 65535")
		case !validHost(l.Host):
			return bad("a host name or IP address")
		case advertised && wildcardHost(l.Host):
			return bad("a host clients can connect to, not an empty or wildcard address")
		case seen[l.Name]:
			return &ValueError{Value: joinListeners(ls), Expected: "each listener name at most once"}
		}
		seen[l.Name] = true
	}
	return nil
}

// validHost accepts the characters of host names and of IP addresses,
// including an IPv6 zone, and the empty host meaning every interface.
func validHost(host string) bool {
	for _, r := range host {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("-._:%", r)
		if !ok {
			return false
		}
	}
	return true
}

func checkMetricsListener(c *Config) *ValueError {
	if c.MetricsListener == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(c.MetricsListener)
	if _, ok := parseInt(port, 0, 65535); err != nil || !ok || !validHost(host) {
		return &ValueError{Value: c.MetricsListener, Expected: "host:port with a port between 0 and 65535, or nothing to disable metrics"}
	}
	return nil
}
