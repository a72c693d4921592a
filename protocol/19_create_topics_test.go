package protocol

import (
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newCreateTopic(name string, partitions int32, rf int16) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	return rt
}

func createTopics(t *testing.T, h *Handler, version int16, validateOnly bool, topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsResponse {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = version
	req.ValidateOnly = validateOnly
	req.TimeoutMillis = 30000
	req.Topics = topics
	return roundTrip(t, h, req).(*kmsg.CreateTopicsResponse)
}

// checkCode fails unless st has the code and, if msg is not empty, a
// message containing it.
func checkCode(t *testing.T, what string, code int16, message *string, want *kerr.Error, msg string) {
	t.Helper()
	wantCode := int16(0)
	if want != nil {
		wantCode = want.Code
	}
	if code != wantCode {
		t.Errorf("%s: %v, want %v", what, kerr.ErrorForCode(code), want)
		return
	}
	if msg != "" && (message == nil || !strings.Contains(*message, msg)) {
		got := "<null>"
		if message != nil {
			got = *message
		}
		t.Errorf("%s: message %q, want it to contain %q", what, got, msg)
	}
}

func TestCreateTopicsNameRules(t *testing.T) {
	h, store := newTestHandler(t)
	long := strings.Repeat("x", 249)
	cases := []struct {
		name string
		want *kerr.Error
		msg  string
	}{
		{"", kerr.InvalidTopicException, "can't be empty"},
		{".", kerr.InvalidTopicException, `cannot be "." or ".."`},
		{"..", kerr.InvalidTopicException, `cannot be "." or ".."`},
		{long + "x", kerr.InvalidTopicException, "can't be longer than 249 characters"},
		{"a/b", kerr.InvalidTopicException, "other than ASCII alphanumerics"},
		{"héllo", kerr.InvalidTopicException, "other than ASCII alphanumerics"},
		{"with space", kerr.InvalidTopicException, "other than ASCII alphanumerics"},
		{long, nil, ""},
		{"Valid.name_with-all-9", nil, ""},
		{"...", nil, ""},
	}
	for _, c := range cases {
		resp := createTopics(t, h, 7, false, newCreateTopic(c.name, 1, 1))
		st := resp.Topics[0]
		checkCode(t, fmt.Sprintf("%.20q", c.name), st.ErrorCode, st.ErrorMessage, c.want, c.msg)
		if _, ok := store.Topic(c.name); ok != (c.want == nil) {
			t.Errorf("%.20q: in the store %v", c.name, ok)
		}
		if err := validTopicName(c.name); (err == nil) != (c.want == nil) {
			t.Errorf("validTopicName(%.20q) = %v", c.name, err)
		}
	}
}

func TestCreateTopicsCountsAndReplication(t *testing.T) {
	h, store := newTestHandler(t)
	cases := []struct {
		name       string
		partitions int32
		rf         int16
		want       *kerr.Error
		msg        string
		wantParts  int32
	}{
		{"rf3", 1, 3, kerr.InvalidReplicationFactor, "Replication factor: 3 larger than available brokers: 1.", 0},
		{"rf0", 1, 0, kerr.InvalidReplicationFactor, "larger than 0", 0},
		{"rf-2", 1, -2, kerr.InvalidReplicationFactor, "", 0},
		{"p0", 0, 1, kerr.InvalidPartitions, "non-positive", 0},
		{"p-2", -2, 1, kerr.InvalidPartitions, "", 0},
		{"defaults", -1, -1, nil, "", 3},
		{"explicit", 5, 1, nil, "", 5},
	}
	for _, c := range cases {
		st := createTopics(t, h, 7, false, newCreateTopic(c.name, c.partitions, c.rf)).Topics[0]
		checkCode(t, c.name, st.ErrorCode, st.ErrorMessage, c.want, c.msg)
		topic, ok := store.Topic(c.name)
		if c.want != nil {
			if ok {
				t.Errorf("%s: created", c.name)
			}
			if st.NumPartitions != -1 || st.ReplicationFactor != -1 || st.TopicID != [16]byte{} || len(st.Configs) != 0 {
				t.Errorf("%s: failed answer %+v", c.name, st)
			}
			continue
		}
		if !ok || topic.Partitions != c.wantParts || st.NumPartitions != c.wantParts || st.ReplicationFactor != 1 || st.TopicID != topic.ID {
			t.Errorf("%s: store %+v (%v), answer %+v", c.name, topic, ok, st)
		}
	}

	// default.replication.factor above 1 cannot be met either.
	h3, _ := newTestHandler(t, func(c *Config) { c.DefaultReplicationFactor = 3 })
	st := createTopics(t, h3, 7, false, newCreateTopic("t", 1, -1)).Topics[0]
	checkCode(t, "default rf 3", st.ErrorCode, st.ErrorMessage, kerr.InvalidReplicationFactor, "Replication factor: 3 larger")
}

func TestCreateTopicsValidateOnlyCreatesNothing(t *testing.T) {
	h, store := newTestHandler(t)
	rt := newCreateTopic("dry-run", 4, -1)
	rt.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1000")}}
	bad := newCreateTopic("dry-bad", 1, 3)
	resp := createTopics(t, h, 7, true, rt, bad)
	st := resp.Topics[0]
	if st.ErrorCode != 0 || st.NumPartitions != 4 || st.ReplicationFactor != 1 || st.TopicID != [16]byte{} || len(st.Configs) == 0 {
		t.Errorf("validated topic: %+v", st)
	}
	checkCode(t, "dry-bad", resp.Topics[1].ErrorCode, resp.Topics[1].ErrorMessage, kerr.InvalidReplicationFactor, "")
	if n := len(store.Topics()); n != 0 {
		t.Fatalf("validate-only created %d topics", n)
	}
	// And the real thing afterwards works.
	if resp := createTopics(t, h, 7, false, rt); resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create after validate: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
}

func TestCreateTopicsConfigs(t *testing.T) {
	h, store := newTestHandler(t)
	rt := newCreateTopic("configured", 1, 1)
	rt.Configs = []kmsg.CreateTopicsRequestTopicConfig{
		{Name: "retention.ms", Value: kmsg.StringPtr("3600000")},
		{Name: "cleanup.policy", Value: nil}, // null: the default
		{Name: "segment.ms", Value: kmsg.StringPtr("60000")},
	}
	resp := createTopics(t, h, 5, false, rt)
	st := resp.Topics[0]
	if st.ErrorCode != 0 {
		t.Fatalf("%v: %v", kerr.ErrorForCode(st.ErrorCode), st.ErrorMessage)
	}
	topic, _ := store.Topic("configured")
	if len(topic.Configs) != 2 || topic.Configs["retention.ms"] != "3600000" || topic.Configs["segment.ms"] != "60000" {
		t.Errorf("stored overrides %v", topic.Configs)
	}
	got := map[string]kmsg.CreateTopicsResponseTopicConfig{}
	for _, c := range st.Configs {
		got[c.Name] = c
	}
	want := map[string]struct {
		value  string
		source kmsg.ConfigSource
	}{
		"retention.ms":           {"3600000", kmsg.ConfigSourceDynamicTopicConfig},
		"segment.ms":             {"60000", kmsg.ConfigSourceDynamicTopicConfig},
		"max.message.bytes":      {"2097152", kmsg.ConfigSourceStaticBrokerConfig},
		"cleanup.policy":         {"delete", kmsg.ConfigSourceDefaultConfig},
		"message.timestamp.type": {"CreateTime", kmsg.ConfigSourceDefaultConfig},
		"key.index.enable":       {"false", kmsg.ConfigSourceDefaultConfig},
	}
	if len(got) != len(want) {
		t.Errorf("%d configs, want %d: %+v", len(got), len(want), st.Configs)
	}
	for name, w := range want {
		c, ok := got[name]
		if !ok || c.Value == nil || *c.Value != w.value || kmsg.ConfigSource(c.Source) != w.source || c.ReadOnly || c.IsSensitive {
			t.Errorf("%s: %+v, want %s from %v", name, c, w.value, w.source)
		}
	}

	for _, c := range []struct{ name, value, msg string }{
		{"retention.ms", "soon", "retention.ms"},
		{"no.such.config", "1", "no.such.config"},
	} {
		rt := newCreateTopic("bad-config", 1, 1)
		rt.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: c.name, Value: kmsg.StringPtr(c.value)}}
		st := createTopics(t, h, 7, false, rt).Topics[0]
		checkCode(t, c.name+"="+c.value, st.ErrorCode, st.ErrorMessage, kerr.InvalidConfig, c.msg)
	}
	if _, ok := store.Topic("bad-config"); ok {
		t.Error("created with a bad config")
	}
}

func TestCreateTopicsConflicts(t *testing.T) {
	h, store := newTestHandler(t)
	createTopic(t, h, "metrics.cpu", 1, nil)

	resp := createTopics(t, h, 7, false,
		newCreateTopic("twice", 1, 1),
		newCreateTopic("once", 1, 1),
		newCreateTopic("twice", 2, 1),
	)
	if len(resp.Topics) != 2 {
		t.Fatalf("answers %+v", resp.Topics)
	}
	byName := map[string][]kmsg.CreateTopicsResponseTopic{}
	for _, st := range resp.Topics {
		byName[st.Topic] = append(byName[st.Topic], st)
	}
	// A name given twice gets one answer, as in Kafka.
	if len(byName["twice"]) != 1 || byName["twice"][0].ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("duplicate: %+v", byName["twice"])
	}
	if _, ok := store.Topic("twice"); ok {
		t.Error("duplicate created")
	}
	if len(byName["once"]) != 1 || byName["once"][0].ErrorCode != 0 {
		t.Errorf("once: %+v", byName["once"])
	}

	st := createTopics(t, h, 7, false, newCreateTopic("metrics.cpu", 1, 1)).Topics[0]
	checkCode(t, "exists", st.ErrorCode, st.ErrorMessage, kerr.TopicAlreadyExists, "Topic 'metrics.cpu' already exists.")
	st = createTopics(t, h, 7, false, newCreateTopic("metrics_cpu", 1, 1)).Topics[0]
	checkCode(t, "collision", st.ErrorCode, st.ErrorMessage, kerr.InvalidTopicException, "collides with existing topic: metrics.cpu")
}

func TestCreateTopicsReplicaAssignment(t *testing.T) {
	h, store := newTestHandler(t)
	assign := func(parts ...[]int32) []kmsg.CreateTopicsRequestTopicReplicaAssignment {
		var out []kmsg.CreateTopicsRequestTopicReplicaAssignment
		for i, r := range parts {
			out = append(out, kmsg.CreateTopicsRequestTopicReplicaAssignment{Partition: int32(i), Replicas: r})
		}
		return out
	}
	cases := []struct {
		name       string
		partitions int32
		rf         int16
		assignment []kmsg.CreateTopicsRequestTopicReplicaAssignment
		want       *kerr.Error
	}{
		{"manual", -1, -1, assign([]int32{testNodeID}, []int32{testNodeID}), nil},
		{"other-broker", -1, -1, assign([]int32{2}), kerr.InvalidReplicaAssignment},
		{"two-replicas", -1, -1, assign([]int32{testNodeID, 2}), kerr.InvalidReplicaAssignment},
		{"same-twice", -1, -1, assign([]int32{testNodeID, testNodeID}), kerr.InvalidReplicaAssignment},
		{"empty-replicas", -1, -1, assign([]int32{}), kerr.InvalidReplicaAssignment},
		{"gap", -1, -1, []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{testNodeID}}, {Partition: 2, Replicas: []int32{testNodeID}}}, kerr.InvalidReplicaAssignment},
		{"with-count", 2, -1, assign([]int32{testNodeID}), kerr.InvalidRequest},
		{"with-rf", -1, 1, assign([]int32{testNodeID}), kerr.InvalidRequest},
	}
	for _, c := range cases {
		rt := newCreateTopic(c.name, c.partitions, c.rf)
		rt.ReplicaAssignment = c.assignment
		st := createTopics(t, h, 7, false, rt).Topics[0]
		checkCode(t, c.name, st.ErrorCode, st.ErrorMessage, c.want, "")
		topic, ok := store.Topic(c.name)
		if ok != (c.want == nil) || (ok && topic.Partitions != int32(len(c.assignment))) {
			t.Errorf("%s: store %+v (%v)", c.name, topic, ok)
		}
	}
}

func TestCreateTopicsTooManyPartitions(t *testing.T) {
	h, store := newTestHandler(t)
	resp := createTopics(t, h, 7, false, newCreateTopic("big-a", 6000, 1), newCreateTopic("big-b", 5000, 1))
	for _, st := range resp.Topics {
		checkCode(t, st.Topic, st.ErrorCode, st.ErrorMessage, kerr.PolicyViolation, "Excessively large number of partitions")
	}
	if n := len(store.Topics()); n != 0 {
		t.Errorf("%d topics created", n)
	}
}

func TestCreateTopicsVersions(t *testing.T) {
	h, store := newTestHandler(t)
	for v := int16(2); v <= 7; v++ {
		name := fmt.Sprintf("v%d", v)
		st := createTopics(t, h, v, false, newCreateTopic(name, 2, 1)).Topics[0]
		if st.ErrorCode != 0 || st.Topic != name {
			t.Fatalf("v%d: %+v", v, st)
		}
		topic, ok := store.Topic(name)
		if !ok || topic.Partitions != 2 {
			t.Fatalf("v%d: store %+v", v, topic)
		}
		if v >= 5 && (st.NumPartitions != 2 || st.ReplicationFactor != 1 || len(st.Configs) == 0) {
			t.Errorf("v%d: answer %+v", v, st)
		}
		if v >= 7 && st.TopicID != topic.ID {
			t.Errorf("v%d: topic ID %x, want %x", v, st.TopicID, topic.ID)
		}
	}
}
