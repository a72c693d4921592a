package config

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateTopicConfig(t *testing.T) {
	valid := [][2]string{
		{"retention.ms", "-1"},
		{"retention.ms", "86400000"},
		{"retention.bytes", "-1"},
		{"max.message.bytes", "1048588"},
		{"message.timestamp.type", "LogAppendTime"},
		{"cleanup.policy", "compact,delete"},
		{"cleanup.policy", " delete "},
		{"segment.bytes", "52428800"},
		{"flush.messages", "1"},
		{"flush.ms", "0"},
		{"key.index.enable", "FALSE"},
		{"compression.type", "zstd"},
		{"compression.gzip.level", "-1"},
		{"min.insync.replicas", "2"},
		{"min.cleanable.dirty.ratio", "0.5"},
		{"unclean.leader.election.enable", "true"},
		{"leader.replication.throttled.replicas", "*"},
		{"follower.replication.throttled.replicas", "0:1, 1:2"},
		{"local.retention.ms", "-2"},
		{"message.format.version", "2.8-IV1"},
	}
	for _, tc := range valid {
		if err := ValidateTopicConfig(tc[0], tc[1]); err != nil {
			t.Errorf("ValidateTopicConfig(%q, %q) = %v", tc[0], tc[1], err)
		}
	}

	invalid := [][2]string{
		{"retention.ms", "-2"},
		{"retention.ms", "a week"},
		{"retention.bytes", "1.5"},
		{"max.message.bytes", "2147483648"},
		{"message.timestamp.type", "createtime"},
		{"cleanup.policy", "delete,keep"},
		{"cleanup.policy", ""},
		{"segment.bytes", "13"},
		{"flush.messages", "0"},
		{"key.index.enable", "yes"},
		{"compression.type", "brotli"},
		{"compression.gzip.level", "0"},
		{"compression.lz4.level", "18"},
		{"min.insync.replicas", "0"},
		{"min.cleanable.dirty.ratio", "1.5"},
		{"min.cleanable.dirty.ratio", "NaN"},
		{"leader.replication.throttled.replicas", "0-1"},
	}
	for _, tc := range invalid {
		err := ValidateTopicConfig(tc[0], tc[1])
		if !errors.Is(err, ErrInvalidTopicConfig) {
			t.Errorf("ValidateTopicConfig(%q, %q) = %v, want ErrInvalidTopicConfig", tc[0], tc[1], err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc[0]) || !strings.Contains(msg, `"`+tc[1]+`"`) {
			t.Errorf("message %q does not name %s and %q", msg, tc[0], tc[1])
		}
	}

	for _, name := range []string{"retention.hours", "log.retention.ms", ""} {
		err := ValidateTopicConfig(name, "1")
		if !errors.Is(err, ErrUnknownTopicConfig) || errors.Is(err, ErrInvalidTopicConfig) {
			t.Errorf("ValidateTopicConfig(%q) = %v, want ErrUnknownTopicConfig", name, err)
		} else if !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("message %q does not name %q", err, name)
		}
	}
}

func TestTopicDefaultsAreKnownTopicConfigs(t *testing.T) {
	for name, d := range Default().TopicDefaults() {
		if tc, ok := topicConfigs[name]; !ok || tc.typ != d.Type {
			t.Errorf("topic default %s: known=%v, type %q vs %q", name, ok, tc.typ, d.Type)
		}
	}
}
