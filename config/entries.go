package config

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// Entry is a broker config as DescribeConfigs reports it.
type Entry struct {
	Name  string
	Value string
	// Default is true when the value was not set by a file, the
	// environment or a flag and equals the default: Kafka's DEFAULT_CONFIG
	// source rather than STATIC_BROKER_CONFIG.
	Default bool
	// ReadOnly is always true: no key can be changed while the broker runs.
	ReadOnly bool
	// Sensitive marks values DescribeConfigs must not reveal; none of the
	// current keys holds a secret.
	Sensitive bool
	// Type is Kafka's ConfigType name: BOOLEAN, STRING, INT, SHORT, LONG,
	// DOUBLE, LIST, CLASS or PASSWORD.
	Type string
	Doc  string
}

// Entries returns every key, sorted by name, with its current value. The
// three log.retention keys are reported as given, or at their defaults
// (168 hours, the others unset), as Kafka reports them; the retention in
// effect is TopicDefaults' retention.ms.
func (c *Config) Entries() []Entry {
	defaults := Default()
	// advertised.listeners defaults to a value derived from listeners, so
	// its default is the one derived from this config's listeners.
	defaults.AdvertisedListeners = advertise(c.ClientListeners())
	out := make([]Entry, 0, len(keys))
	for _, k := range keys {
		_, set := c.explicit[k.name]
		value := k.get(c)
		out = append(out, Entry{
			Name:     k.name,
			Value:    value,
			Default:  !set && value == k.get(defaults),
			ReadOnly: true,
			Type:     k.typ,
			Doc:      k.doc,
		})
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// TopicDefault is the broker-level default of a topic config.
type TopicDefault struct {
	Value string
	// BrokerKey is the broker key the value comes from, for
	// DescribeConfigs synonyms; empty for configs only topics have.
	BrokerKey string
	// Default is true when BrokerKey was left at its default (or there is
	// no broker key), so a synonym is reported as DEFAULT_CONFIG rather
	// than STATIC_BROKER_CONFIG.
	Default bool
	Type    string // Kafka's ConfigType name of the topic config
}

// TopicDefaults returns the value a topic config takes when the topic does
// not set it, keyed by topic config name, derived from the broker keys the
// way Kafka derives them. segment.bytes is informational: all topics share
// the commit log, whose segments are commitlog.segment.bytes long.
func (c *Config) TopicDefaults() map[string]TopicDefault {
	flushMs := c.LogFlushIntervalMs
	if flushMs < 0 {
		// Kafka reports an unset flush interval as "never".
		flushMs = math.MaxInt64
	}
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	isDefault := map[string]bool{"": true}
	for _, e := range c.Entries() {
		isDefault[e.Name] = e.Default
	}
	defaults := map[string]TopicDefault{}
	for _, td := range []struct{ name, value, brokerKey string }{
		{"retention.ms", itoa(c.LogRetentionMs), c.retentionKey()},
		{"retention.bytes", itoa(c.LogRetentionBytes), "log.retention.bytes"},
		{"max.message.bytes", itoa(int64(c.MessageMaxBytes)), "message.max.bytes"},
		{"message.timestamp.type", c.MessageTimestampType, "log.message.timestamp.type"},
		{"cleanup.policy", c.LogCleanupPolicy, "log.cleanup.policy"},
		{"segment.bytes", itoa(c.CommitLogSegmentBytes), "commitlog.segment.bytes"},
		{"flush.messages", itoa(c.LogFlushIntervalMessages), "log.flush.interval.messages"},
		{"flush.ms", itoa(flushMs), "log.flush.interval.ms"},
		{"key.index.enable", "true", ""},
	} {
		defaults[td.name] = TopicDefault{
			Value:     td.value,
			BrokerKey: td.brokerKey,
			Default:   isDefault[td.brokerKey],
			Type:      topicConfigs[td.name].typ,
		}
	}
	return defaults
}

// retentionKey names the retention key that decided LogRetentionMs: the
// most precise one that was set, else log.retention.hours, whose default
// applies.
func (c *Config) retentionKey() string {
	for _, name := range []string{"log.retention.ms", "log.retention.minutes"} {
		if _, ok := c.explicit[name]; ok {
			return name
		}
	}
	return "log.retention.hours"
}
