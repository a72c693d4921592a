package integration

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func codeOf(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	if err != nil {
		return -1
	}
	return 0
}

// listTopicNames lists every topic the broker reports.
func listTopicNames(t testing.TB, adm *kadm.Client) map[string]bool {
	t.Helper()
	tds, err := adm.ListTopics(testCtx(t, requestTimeout))
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	out := map[string]bool{}
	for name := range tds {
		out[name] = true
	}
	return out
}

// TestTopicAdmin checks CreateTopics validation (names, replication
// factor, partitions, configs), validate-only, DeleteTopics, and that a
// deleted and re-created topic never shows the old topic's records, even
// after a crash and recovery.
func TestTopicAdmin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	extra := []string{"--auto.create.topics.enable=false"}
	b := startBroker(t, dir, extra...)
	adm := newAdmin(t, b)

	t.Run("illegal-names", func(t *testing.T) {
		names := []string{"", ".", "..", "a/b", strings.Repeat("a", 250), "with space", "ünicode", "a\\b"}
		resp, err := adm.CreateTopics(testCtx(t, requestTimeout), 1, 1, nil, names...)
		if err != nil {
			t.Fatalf("CreateTopics: %v", err)
		}
		for _, name := range names {
			r, ok := resp[name]
			if !ok {
				t.Errorf("CreateTopics(%.20q): no result for it", name)
				continue
			}
			if codeOf(r.Err) != codeInvalidTopic {
				t.Errorf("CreateTopics(%.20q) (%d chars): %v, want INVALID_TOPIC_EXCEPTION", name, len(name), r.Err)
			}
		}
		have := listTopicNames(t, adm)
		for _, name := range names {
			if have[name] {
				t.Errorf("illegal topic %.20q was created", name)
			}
		}
		// 249 characters of [a-zA-Z0-9._-] is legal.
		longest := strings.Repeat("x", 240) + "._-AZaz09"
		createTopic(t, adm, longest, 1, nil)
		prod := newClient(t, b)
		produceSync(t, prod, &kgo.Record{Topic: longest, Value: []byte("long name")})
		if got := consumeTopic(t, b, longest, 1); string(got[0].Value) != "long name" {
			t.Errorf("read %q from the 249-character topic", got[0].Value)
		}
	})

	t.Run("bad-arguments", func(t *testing.T) {
		for _, c := range []struct {
			name       string
			partitions int32
			rf         int16
			configs    map[string]*string
			want       int16
		}{
			{"rf3", 1, 3, nil, codeInvalidRF},
			{"rf0", 1, 0, nil, codeInvalidRF},
			{"partitions0", 0, 1, nil, codeInvalidPartitions},
			{"partitions-negative", -5, 1, nil, codeInvalidPartitions},
			{"bad-config-value", 1, 1, map[string]*string{"retention.ms": ptr("soon")}, codeInvalidConfig},
			{"unknown-config", 1, 1, map[string]*string{"no.such.config": ptr("1")}, codeInvalidConfig},
		} {
			for _, validateOnly := range []bool{false, true} {
				create := adm.CreateTopics
				if validateOnly {
					create = adm.ValidateCreateTopics
				}
				topic := "bad-" + c.name
				resp, err := create(testCtx(t, requestTimeout), c.partitions, c.rf, c.configs, topic)
				if err != nil {
					t.Fatalf("CreateTopics %s: %v", topic, err)
				}
				if got := codeOf(resp[topic].Err); got != c.want {
					t.Errorf("CreateTopics(%s, partitions %d, rf %d, configs %v, validateOnly %v): %v, want %s", topic, c.partitions, c.rf, c.configs, validateOnly, resp[topic].Err, errName(c.want))
				}
			}
		}
		have := listTopicNames(t, adm)
		for name := range have {
			if strings.HasPrefix(name, "bad-") {
				t.Errorf("topic %s was created by a rejected CreateTopics", name)
			}
		}
	})

	t.Run("defaults", func(t *testing.T) {
		// -1 partitions and replication factor take the broker defaults
		// (num.partitions=1, default.replication.factor=1).
		resp, err := adm.CreateTopics(testCtx(t, requestTimeout), -1, -1, nil, "defaults")
		if err != nil || resp["defaults"].Err != nil {
			t.Fatalf("CreateTopics with broker defaults: %v %v", err, resp["defaults"].Err)
		}
		if r := resp["defaults"]; r.NumPartitions != 1 || r.ReplicationFactor != 1 {
			t.Errorf("created with %d partitions rf %d, want the defaults 1 and 1", r.NumPartitions, r.ReplicationFactor)
		}
		resp, err = adm.CreateTopics(testCtx(t, requestTimeout), 2, 1, nil, "defaults")
		if err != nil || codeOf(resp["defaults"].Err) != codeTopicExists {
			t.Errorf("creating an existing topic: %v %v, want TOPIC_ALREADY_EXISTS", err, resp["defaults"].Err)
		}
	})

	t.Run("validate-only", func(t *testing.T) {
		resp, err := adm.ValidateCreateTopics(testCtx(t, requestTimeout), 5, 1, map[string]*string{"retention.ms": ptr("60000")}, "validated")
		if err != nil || resp["validated"].Err != nil {
			t.Fatalf("validate-only CreateTopics: %v %v", err, resp["validated"].Err)
		}
		if n := resp["validated"].NumPartitions; n != 5 {
			t.Errorf("validate-only CreateTopics reports %d partitions, want 5", n)
		}
		if listTopicNames(t, adm)["validated"] {
			t.Fatalf("validate-only CreateTopics created the topic")
		}
		tds, err := adm.ListTopics(testCtx(t, requestTimeout), "validated")
		if err != nil {
			t.Fatalf("metadata: %v", err)
		}
		if codeOf(tds["validated"].Err) != codeUnknownTopic {
			t.Errorf("metadata for a validated-only topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", tds["validated"].Err)
		}
		resp, err = adm.ValidateCreateTopics(testCtx(t, requestTimeout), 1, 1, nil, "defaults")
		if err != nil || codeOf(resp["defaults"].Err) != codeTopicExists {
			t.Errorf("validate-only create of an existing topic: %v %v, want TOPIC_ALREADY_EXISTS", err, resp["defaults"].Err)
		}
		// The name is still free.
		createTopic(t, adm, "validated", 5, nil)
	})

	t.Run("delete-unknown", func(t *testing.T) {
		resp, err := adm.DeleteTopics(testCtx(t, requestTimeout), "never-created")
		if err != nil {
			t.Fatalf("DeleteTopics: %v", err)
		}
		if codeOf(resp["never-created"].Err) != codeUnknownTopic {
			t.Errorf("deleting a topic that does not exist: %v, want UNKNOWN_TOPIC_OR_PARTITION", resp["never-created"].Err)
		}
	})

	t.Run("delete-and-recreate", func(t *testing.T) {
		const topic = "recreated"
		createTopic(t, adm, topic, 1, nil)
		oldID := topicID(t, adm, topic)
		prod := newClient(t, b)
		for i := range 5 {
			produceSync(t, prod, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("old %d", i))})
		}
		prod.Close()

		resp, err := adm.DeleteTopics(testCtx(t, requestTimeout), topic)
		if err != nil || resp[topic].Err != nil {
			t.Fatalf("DeleteTopics: %v %v", err, resp[topic].Err)
		}
		eventually(t, 10*time.Second, "deleted topic disappears from metadata", func() error {
			if listTopicNames(t, adm)[topic] {
				return errors.New("still listed")
			}
			return nil
		})
		var createdID [16]byte
		eventually(t, 10*time.Second, "re-creating the deleted topic", func() error {
			resp, err := adm.CreateTopics(testCtx(t, requestTimeout), 1, 1, nil, topic)
			if err != nil {
				return err
			}
			createdID = resp[topic].ID
			return resp[topic].Err
		})
		newID := topicID(t, adm, topic)
		if newID == oldID || createdID == oldID {
			t.Errorf("re-created topic has the deleted topic's ID %v (CreateTopics said %v, metadata says %v)", oldID, createdID, newID)
		}
		if createdID != newID {
			t.Errorf("CreateTopics returned topic ID %v, metadata says %v", createdID, newID)
		}
		if e, s := endOffsets(t, adm, topic), startOffsets(t, adm, topic); e[0] != 0 || s[0] != 0 {
			t.Fatalf("re-created topic: start %d end %d, want 0 and 0", s[0], e[0])
		}
		prod = newClient(t, b)
		var recs []*kgo.Record
		for i := range 3 {
			recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("new %d", i))})
		}
		produceSync(t, prod, recs...)
		checkConsumed(t, recs, consumeTopic(t, b, topic, 3))
		// Beyond the new end there is nothing (the old records had
		// offsets 3 and 4).
		fp := rawFetch(t, newClient(t, b), topic, newID, 0, 3, 0)
		if fp.ErrorCode != 0 || len(batchesOf(t, fp.RecordBatches)) != 0 {
			t.Errorf("fetch at the re-created topic's end offset 3: error %s, %d bytes", errName(fp.ErrorCode), len(fp.RecordBatches))
		}

		// Recovery after a crash must not bring the old records back.
		b.kill()
		b = startBroker(t, dir, extra...)
		adm = newAdmin(t, b)
		if got := topicID(t, adm, topic); got != newID {
			t.Errorf("after kill -9 the topic ID is %v, want %v", got, newID)
		}
		if e := endOffsets(t, adm, topic); e[0] != 3 {
			t.Errorf("after kill -9 the re-created topic's end offset is %d, want 3", e[0])
		}
		checkConsumed(t, recs, consumeTopic(t, b, topic, 3))
	})
}

// describeTopic returns a topic's configs by name.
func describeTopic(t testing.TB, adm *kadm.Client, topic string) map[string]kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(testCtx(t, requestTimeout), topic)
	if err != nil {
		t.Fatalf("DescribeTopicConfigs %s: %v", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("DescribeTopicConfigs %s: %v %v", topic, err, rc.Err)
	}
	out := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		if _, dup := out[c.Key]; dup {
			t.Errorf("DescribeTopicConfigs %s lists %s twice", topic, c.Key)
		}
		out[c.Key] = c
	}
	return out
}

// checkTopicConfig checks a topic config set at creation is reported as
// such.
func checkTopicConfig(t testing.TB, adm *kadm.Client, topic, key, value string) {
	t.Helper()
	c, ok := describeTopic(t, adm, topic)[key]
	if !ok || c.MaybeValue() != value || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("topic %s config %s = %q (source %v, present %v), want %q from DYNAMIC_TOPIC_CONFIG", topic, key, c.MaybeValue(), c.Source, ok, value)
	}
}

// TestDescribeConfigs checks DescribeConfigs for topics and the broker:
// values and sources as Kafka reports them.
func TestDescribeConfigs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := startBroker(t, dir)
	adm := newAdmin(t, b)
	cl := newClient(t, b)
	createTopic(t, adm, "configured", 1, map[string]*string{"retention.ms": ptr("1234")})
	createTopic(t, adm, "plain", 1, nil)

	t.Run("topic", func(t *testing.T) {
		cfgs := describeTopic(t, adm, "configured")
		checkTopicConfig(t, adm, "configured", "retention.ms", "1234")
		for _, key := range []string{"cleanup.policy", "retention.bytes", "segment.bytes", "max.message.bytes", "message.timestamp.type"} {
			if _, ok := cfgs[key]; !ok {
				t.Errorf("topic config %s is not described", key)
			}
		}
		for key, c := range cfgs {
			if key != "retention.ms" && c.Source != kmsg.ConfigSourceDefaultConfig {
				t.Errorf("topic config %s = %q has source %v, want DEFAULT_CONFIG (nothing set it)", key, c.MaybeValue(), c.Source)
			}
		}
		if c := cfgs["max.message.bytes"]; c.MaybeValue() != "1048588" {
			t.Errorf("max.message.bytes = %q, want the broker's message.max.bytes default 1048588", c.MaybeValue())
		}
		if c := cfgs["cleanup.policy"]; c.MaybeValue() != "delete" {
			t.Errorf("cleanup.policy = %q, want delete", c.MaybeValue())
		}
		plain := describeTopic(t, adm, "plain")
		if c := plain["retention.ms"]; c.MaybeValue() != "604800000" || c.Source != kmsg.ConfigSourceDefaultConfig {
			t.Errorf("retention.ms of a topic created without configs = %q (source %v), want 604800000 from DEFAULT_CONFIG", c.MaybeValue(), c.Source)
		}
	})

	t.Run("topic-config-names", func(t *testing.T) {
		// Asking for named configs returns just those.
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType = kmsg.ConfigResourceTypeTopic
		rr.ResourceName = "configured"
		rr.ConfigNames = []string{"retention.ms", "cleanup.policy"}
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(testCtx(t, requestTimeout), cl)
		if err != nil {
			t.Fatalf("DescribeConfigs: %v", err)
		}
		if len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("DescribeConfigs: %+v", resp.Resources)
		}
		var names []string
		for _, c := range resp.Resources[0].Configs {
			names = append(names, c.Name)
		}
		if len(names) != 2 || !(names[0] == "retention.ms" && names[1] == "cleanup.policy" || names[1] == "retention.ms" && names[0] == "cleanup.policy") {
			t.Errorf("DescribeConfigs for retention.ms and cleanup.policy returned %v", names)
		}
	})

	t.Run("unknown-topic", func(t *testing.T) {
		rcs, err := adm.DescribeTopicConfigs(testCtx(t, requestTimeout), "no-such-topic")
		if err != nil {
			t.Fatalf("DescribeTopicConfigs: %v", err)
		}
		rc, _ := rcs.On("no-such-topic", nil)
		if codeOf(rc.Err) != codeUnknownTopic {
			t.Errorf("DescribeConfigs of a missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", rc.Err)
		}
	})

	t.Run("broker", func(t *testing.T) {
		cfgs := describeBroker(t, adm)
		for _, c := range []struct {
			key, value string
			source     kmsg.ConfigSource
		}{
			{"log.dirs", dir, kmsg.ConfigSourceStaticBrokerConfig},
			{"num.partitions", "1", kmsg.ConfigSourceDefaultConfig},
			{"message.max.bytes", "1048588", kmsg.ConfigSourceDefaultConfig},
			{"auto.create.topics.enable", "true", kmsg.ConfigSourceDefaultConfig},
			{"log.retention.hours", "168", kmsg.ConfigSourceDefaultConfig},
		} {
			got, ok := cfgs[c.key]
			if !ok {
				t.Errorf("broker config %s is not described", c.key)
				continue
			}
			if got.MaybeValue() != c.value || got.Source != c.source {
				t.Errorf("broker config %s = %q from %v, want %q from %v", c.key, got.MaybeValue(), got.Source, c.value, c.source)
			}
		}
		if len(cfgs) < 10 {
			t.Errorf("only %d broker configs described", len(cfgs))
		}
	})

	t.Run("static-broker-default", func(t *testing.T) {
		// A topic config inherited from a broker key set at startup is
		// STATIC_BROKER_CONFIG.
		b2 := startBroker(t, t.TempDir(), "--log.retention.ms=5000")
		adm2 := newAdmin(t, b2)
		createTopic(t, adm2, "inherits", 1, nil)
		c := describeTopic(t, adm2, "inherits")["retention.ms"]
		if c.MaybeValue() != "5000" || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
			t.Errorf("retention.ms with --log.retention.ms=5000 = %q from %v, want 5000 from STATIC_BROKER_CONFIG", c.MaybeValue(), c.Source)
		}
		if c := describeBroker(t, adm2)["log.retention.ms"]; c.MaybeValue() != "5000" || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
			t.Errorf("broker log.retention.ms = %q from %v, want 5000 from STATIC_BROKER_CONFIG", c.MaybeValue(), c.Source)
		}
	})
}

// describeBroker describes the configs of the (only) broker.
func describeBroker(t testing.TB, adm *kadm.Client) map[string]kadm.Config {
	t.Helper()
	bm, err := adm.BrokerMetadata(testCtx(t, requestTimeout))
	if err != nil || len(bm.Brokers) != 1 {
		t.Fatalf("broker metadata: %v, %d brokers", err, len(bm.Brokers))
	}
	node := bm.Brokers[0].NodeID
	rcs, err := adm.DescribeBrokerConfigs(testCtx(t, requestTimeout), node)
	if err != nil {
		t.Fatalf("DescribeBrokerConfigs %d: %v", node, err)
	}
	rc, err := rcs.On(fmt.Sprint(node), nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("DescribeBrokerConfigs %d: %v %v", node, err, rc.Err)
	}
	out := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		out[c.Key] = c
	}
	return out
}
