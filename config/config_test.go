package config

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestDefault(t *testing.T) {
	c := Default()
	want := &Config{
		Listeners:                   []Listener{{Name: "PLAINTEXT", Host: "localhost", Port: 9092}},
		AdvertisedListeners:         []Listener{{Name: "PLAINTEXT", Host: "localhost", Port: 9092}},
		LogDir:                      "./data",
		NodeID:                      1,
		NumPartitions:               1,
		DefaultReplicationFactor:    1,
		AutoCreateTopics:            true,
		MessageMaxBytes:             1048588,
		SocketRequestMaxBytes:       104857600,
		MaxConnections:              2147483647,
		LogRetentionMs:              604800000,
		LogRetentionBytes:           -1,
		LogFlushIntervalMessages:    9223372036854775807,
		LogRetentionCheckIntervalMs: 300000,
		CheckpointIntervalMs:        10000,
		DiskReclaimRatio:            0.90,
		DiskCriticalRatio:           0.95,
		LogFlushIntervalMs:          -1,
		FlushDiskType:               "ASYNC_FLUSH",
		FlushIntervalMs:             500,
		CommitLogSegmentBytes:       1073741824,
		ConsumeQueueEntries:         300000,
		FetchSendfileMinBytes:       16384,
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
		ListenerProtocols:           map[string]string{"PLAINTEXT": "PLAINTEXT", "SSL": "SSL", "SASL_PLAINTEXT": "SASL_PLAINTEXT", "SASL_SSL": "SASL_SSL"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Default() = %+v\nwant %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

func TestLoadWithNothingIsDefault(t *testing.T) {
	c, unknown, err := Load(nil, nil)
	if err != nil || unknown != nil {
		t.Fatalf("Load(nil, nil) = _, %v, %v", unknown, err)
	}
	if got, want := c.Entries(), Default().Entries(); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(nil, nil).Entries() = %+v\nwant %+v", got, want)
	}
	for _, e := range c.Entries() {
		if !e.Default {
			t.Errorf("entry %s = %q is not reported as default", e.Name, e.Value)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(c *Config)
		wantKey string
	}{
		{"no listeners", func(c *Config) { c.Listeners = nil }, "listeners"},
		{"SSL listener", func(c *Config) { c.Listeners[0].Name = "SSL" }, "listeners"},
		{"port too large", func(c *Config) { c.Listeners[0].Port = 70000 }, "listeners"},
		{"host with a slash", func(c *Config) { c.Listeners[0].Host = "a/b" }, "listeners"},
		{"advertised wildcard", func(c *Config) { c.AdvertisedListeners[0].Host = "::" }, "advertised.listeners"},
		{"no log dir", func(c *Config) { c.LogDir = "" }, "log.dirs"},
		{"negative node id", func(c *Config) { c.NodeID = -1 }, "node.id"},
		{"zero partitions", func(c *Config) { c.NumPartitions = 0 }, "num.partitions"},
		{"zero replication factor", func(c *Config) { c.DefaultReplicationFactor = 0 }, "default.replication.factor"},
		{"retention below -1", func(c *Config) { c.LogRetentionMs = -2 }, "log.retention.ms"},
		{"unknown flush type", func(c *Config) { c.FlushDiskType = "LAZY" }, "flush.disk.type"},
		{"min session timeout above max", func(c *Config) { c.GroupMinSessionTimeoutMs = 2000000 }, "group.min.session.timeout.ms"},
		{"unknown timestamp type", func(c *Config) { c.MessageTimestampType = "createtime" }, "log.message.timestamp.type"},
		{"unknown cleanup policy", func(c *Config) { c.LogCleanupPolicy = "delete,keep" }, "log.cleanup.policy"},
		{"unknown logger format", func(c *Config) { c.LoggerFormat = "text" }, "logger.format"},
		{"metrics without port", func(c *Config) { c.MetricsListener = "localhost" }, "metrics.listener"},
		{"segment too small for a message", func(c *Config) { c.CommitLogSegmentBytes = int64(c.MessageMaxBytes) + 4096 }, "commitlog.segment.bytes"},
		{"advertised name not listened on", func(c *Config) {
			c.Listeners = []Listener{{Name: "PLAINTEXT", Port: 9092}}
			c.AdvertisedListeners = []Listener{{Name: "PLAINTEXT", Host: "a", Port: 1}, {Name: "PLAINTEXT", Host: "b", Port: 2}}
		}, "advertised.listeners"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(c)
			err := c.Validate()
			var ve *ValueError
			if !errors.As(err, &ve) || ve.Key != tt.wantKey {
				t.Fatalf("Validate() = %v, want an error for %s", err, tt.wantKey)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantKey) || strings.Contains(msg, "\n") {
				t.Errorf("message %q should be one line naming %s", msg, tt.wantKey)
			}
		})
	}
}

func TestSegmentJustLargeEnough(t *testing.T) {
	c := Default()
	c.CommitLogSegmentBytes = int64(c.MessageMaxBytes) + 4096 + 1
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

func TestListenerString(t *testing.T) {
	tests := []struct {
		l          Listener
		str, addr  string
		roundTrips bool
	}{
		{Listener{"PLAINTEXT", "127.0.0.1", 19092}, "PLAINTEXT://127.0.0.1:19092", "127.0.0.1:19092", true},
		{Listener{"PLAINTEXT", "", 9092}, "PLAINTEXT://:9092", ":9092", true},
		{Listener{"PLAINTEXT", "::1", 9092}, "PLAINTEXT://[::1]:9092", "[::1]:9092", true},
	}
	for _, tt := range tests {
		if got := tt.l.String(); got != tt.str {
			t.Errorf("%+v.String() = %q, want %q", tt.l, got, tt.str)
		}
		if got := tt.l.Addr(); got != tt.addr {
			t.Errorf("%+v.Addr() = %q, want %q", tt.l, got, tt.addr)
		}
		ls, err := parseListeners(tt.str)
		if err != nil || len(ls) != 1 || ls[0] != tt.l {
			t.Errorf("parseListeners(%q) = %+v, %v", tt.str, ls, err)
		}
	}
}

func TestEntries(t *testing.T) {
	c, _, err := Load([]string{"--num.partitions=3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	entries := c.Entries()
	if len(entries) != len(keys) {
		t.Errorf("Entries() has %d entries, want one per key (%d)", len(entries), len(keys))
	}
	if !slices.IsSortedFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("Entries() is not sorted by name")
	}
	kafkaTypes := []string{"BOOLEAN", "STRING", "INT", "SHORT", "LONG", "DOUBLE", "LIST", "CLASS", "PASSWORD"}
	for _, e := range entries {
		if !slices.Contains(kafkaTypes, e.Type) {
			t.Errorf("entry %s has type %q, not a Kafka ConfigType", e.Name, e.Type)
		}
		if !e.ReadOnly || e.Sensitive || e.Doc == "" {
			t.Errorf("entry %s: ReadOnly=%v Sensitive=%v Doc=%q", e.Name, e.ReadOnly, e.Sensitive, e.Doc)
		}
		if e.Name == "num.partitions" && (e.Value != "3" || e.Default) {
			t.Errorf("num.partitions entry = %+v, want 3 and not default", e)
		}
		if e.Name == "log.retention.minutes" && e.Value != "" {
			t.Errorf("unset log.retention.minutes reported as %q", e.Value)
		}
	}
}

func TestEntriesDefaultFollowsListeners(t *testing.T) {
	// advertised.listeners left unset follows listeners, so it is still a
	// default even though its value changed.
	c, _, err := Load([]string{"--listeners=PLAINTEXT://:19092"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range c.Entries() {
		switch e.Name {
		case "listeners":
			if e.Default {
				t.Errorf("listeners reported as default: %+v", e)
			}
		case "advertised.listeners":
			if !e.Default || e.Value != "PLAINTEXT://localhost:19092" {
				t.Errorf("advertised.listeners = %+v, want the derived default", e)
			}
		}
	}
}

func TestTopicDefaults(t *testing.T) {
	d := Default().TopicDefaults()
	want := map[string]TopicDefault{
		"retention.ms":           {"604800000", "log.retention.hours", true, "LONG"},
		"retention.bytes":        {"-1", "log.retention.bytes", true, "LONG"},
		"max.message.bytes":      {"1048588", "message.max.bytes", true, "INT"},
		"message.timestamp.type": {"CreateTime", "log.message.timestamp.type", true, "STRING"},
		"cleanup.policy":         {"delete", "log.cleanup.policy", true, "LIST"},
		"segment.bytes":          {"1073741824", "commitlog.segment.bytes", true, "INT"},
		"flush.messages":         {"9223372036854775807", "log.flush.interval.messages", true, "LONG"},
		"flush.ms":               {"9223372036854775807", "log.flush.interval.ms", true, "LONG"},
		"key.index.enable":       {"true", "", true, "BOOLEAN"},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("TopicDefaults() = %+v\nwant %+v", d, want)
	}

	c, _, err := Load([]string{"--log.flush.interval.ms=1000", "--log.retention.minutes=5"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d = c.TopicDefaults()
	if got := d["flush.ms"]; got.Value != "1000" || got.Default {
		t.Errorf("flush.ms = %+v, want 1000 set explicitly", got)
	}
	if got := d["retention.ms"]; got.Value != "300000" || got.BrokerKey != "log.retention.minutes" || got.Default {
		t.Errorf("retention.ms = %+v, want 300000 from log.retention.minutes", got)
	}
}

// Every derived default must be a value the topic config itself accepts,
// since clients send DescribeConfigs values back in AlterConfigs.
func TestTopicDefaultsAreValidTopicConfigs(t *testing.T) {
	c := Default()
	c.LogRetentionMs = -1
	c.LogFlushIntervalMs = 0
	for _, cfg := range []*Config{Default(), c} {
		for name, d := range cfg.TopicDefaults() {
			if err := ValidateTopicConfig(name, d.Value); err != nil {
				t.Errorf("default %s=%s: %v", name, d.Value, err)
			}
		}
	}
}

func TestCommitLogSegmentFitsTopicINT(t *testing.T) {
	c := Default()
	c.CommitLogSegmentBytes = math.MaxInt32 + 1
	if err := c.Validate(); err == nil {
		t.Error("Validate() accepted a segment size beyond the INT range of segment.bytes")
	}
}
