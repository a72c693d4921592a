package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

var (
	// ErrUnknownTopicConfig is matched by errors.Is for a topic config name
	// Kafka does not define.
	ErrUnknownTopicConfig = errors.New("unknown topic config")
	// ErrInvalidTopicConfig is matched by errors.Is for a topic config
	// value its config does not accept.
	ErrInvalidTopicConfig = errors.New("invalid topic config")
)

// ValidateTopicConfig checks a topic config name and value as CreateTopics
// and AlterConfigs receive them. It accepts every topic config Kafka
// defines, with Kafka's rules for its value, because clients such as Kafka
// Streams set configs this broker does not act on and would fail if they
// were refused; only the configs in TopicDefaults have an effect. An
// unknown name yields an error matching ErrUnknownTopicConfig, a bad value
// a *ValueError matching ErrInvalidTopicConfig.
func ValidateTopicConfig(name, value string) error {
	tc, ok := topicConfigs[name]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownTopicConfig, name)
	}
	if expected := tc.check(strings.TrimSpace(value)); expected != "" {
		return &ValueError{Key: name, Value: value, Expected: expected, kind: ErrInvalidTopicConfig}
	}
	return nil
}

type topicConfig struct {
	typ string
	// check returns what the config accepts when s is not acceptable, and
	// "" when it is.
	check func(s string) string
}

// topicConfigs are Kafka's topic configs (those of 3.x, some since removed
// but still sent by older clients) and key.index.enable, this broker's own.
var topicConfigs = map[string]topicConfig{
	"cleanup.policy": {"LIST", func(s string) string {
		if _, ok := cleanupPolicy(s); !ok {
			return cleanupPolicyExpected
		}
		return ""
	}},
	"compression.gzip.level": {"INT", func(s string) string {
		if n, ok := parseInt(s, -1, 9); !ok || n == 0 {
			return "an integer between 1 and 9, or -1"
		}
		return ""
	}},
	"compression.lz4.level":                   intConfig(1, 17),
	"compression.type":                        stringConfig("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
	"compression.zstd.level":                  intConfig(-131072, 22),
	"delete.retention.ms":                     longConfig(0),
	"file.delete.delay.ms":                    longConfig(0),
	"flush.messages":                          longConfig(1),
	"flush.ms":                                longConfig(0),
	"follower.replication.throttled.replicas": throttledReplicasConfig,
	"index.interval.bytes":                    intConfig(0, math.MaxInt32),
	"key.index.enable":                        booleanConfig,
	"leader.replication.throttled.replicas":   throttledReplicasConfig,
	"local.retention.bytes":                   longConfig(-2),
	"local.retention.ms":                      longConfig(-2),
	"max.compaction.lag.ms":                   longConfig(1),
	"max.message.bytes":                       intConfig(0, math.MaxInt32),
	"message.downconversion.enable":           booleanConfig,
	"message.format.version":                  {"STRING", func(string) string { return "" }},
	"message.timestamp.after.max.ms":          longConfig(0),
	"message.timestamp.before.max.ms":         longConfig(0),
	"message.timestamp.difference.max.ms":     longConfig(0),
	"message.timestamp.type":                  stringConfig("CreateTime", "LogAppendTime"),
	"min.cleanable.dirty.ratio": {"DOUBLE", func(s string) string {
		if f, err := strconv.ParseFloat(s, 64); err != nil || !(f >= 0 && f <= 1) {
			return "a number between 0 and 1"
		}
		return ""
	}},
	"min.compaction.lag.ms":          longConfig(0),
	"min.insync.replicas":            intConfig(1, math.MaxInt32),
	"preallocate":                    booleanConfig,
	"remote.log.copy.disable":        booleanConfig,
	"remote.log.delete.on.disable":   booleanConfig,
	"remote.storage.enable":          booleanConfig,
	"retention.bytes":                longConfig(math.MinInt64),
	"retention.ms":                   longConfig(-1),
	"segment.bytes":                  intConfig(14, math.MaxInt32),
	"segment.index.bytes":            intConfig(4, math.MaxInt32),
	"segment.jitter.ms":              longConfig(0),
	"segment.ms":                     longConfig(1),
	"unclean.leader.election.enable": booleanConfig,
}

func intConfig(lo, hi int64) topicConfig {
	return topicConfig{"INT", func(s string) string {
		if _, ok := parseInt(s, lo, hi); !ok {
			return rangeText(lo, hi)
		}
		return ""
	}}
}

func longConfig(lo int64) topicConfig {
	return topicConfig{"LONG", func(s string) string {
		if _, ok := parseInt(s, lo, math.MaxInt64); !ok {
			if lo == math.MinInt64 {
				return "an integer"
			}
			return rangeText(lo, math.MaxInt64)
		}
		return ""
	}}
}

func stringConfig(allowed ...string) topicConfig {
	return topicConfig{"STRING", func(s string) string {
		if !slices.Contains(allowed, s) {
			return oneOf(allowed)
		}
		return ""
	}}
}

var booleanConfig = topicConfig{"BOOLEAN", func(s string) string {
	if _, ok := parseBool(s); !ok {
		return "true or false"
	}
	return ""
}}

// throttledReplicasConfig accepts what Kafka accepts for the replication
// throttle lists: nothing, "*", or partition:broker pairs.
var throttledReplicasConfig = topicConfig{"LIST", func(s string) string {
	if s == "" || s == "*" {
		return ""
	}
	for pair := range strings.SplitSeq(s, ",") {
		partition, broker, found := strings.Cut(strings.TrimSpace(pair), ":")
		_, perr := strconv.ParseUint(strings.TrimSpace(partition), 10, 31)
		_, berr := strconv.ParseUint(strings.TrimSpace(broker), 10, 31)
		if !found || perr != nil || berr != nil {
			return `"*" or a list of partition:broker pairs`
		}
	}
	return ""
}}
