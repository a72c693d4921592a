package protocol

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/rocketkafka/broker/log"
)

// Topic names, topic creation and the description of topic configs, shared
// by Metadata (auto-creation), CreateTopics, CreatePartitions and
// DescribeConfigs.

// maxTopicNameLen is Kafka's limit: a partition directory name is the topic
// name plus "-" and the partition number, and must fit in 255 bytes.
const maxTopicNameLen = 249

// maxPartitionsPerRequest is the most partitions one CreateTopics request
// may create; Kafka's controller refuses more with POLICY_VIOLATION
// (KAFKA-17870). CreatePartitions applies the same bound.
const maxPartitionsPerRequest = 10000

// apiError is an error code with the message Kafka sends along with it.
type apiError struct {
	code    int16
	message string
}

func newAPIError(e *kerr.Error, format string, args ...any) *apiError {
	return &apiError{code: e.Code, message: fmt.Sprintf(format, args...)}
}

// messagePtr is the message for a nullable ErrorMessage field.
func (e *apiError) messagePtr() *string {
	if e == nil || e.message == "" {
		return nil
	}
	return kmsg.StringPtr(e.message)
}

func (e *apiError) errorCode() int16 {
	if e == nil {
		return 0
	}
	return e.code
}

// validTopicName applies Kafka's topic name rules (Topic.validate); the
// error text is Kafka's, as clients show it to users.
func validTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("Topic name is illegal, it can't be empty")
	case name == "." || name == "..":
		return errors.New(`Topic name cannot be "." or ".."`)
	case len(name) > maxTopicNameLen:
		return fmt.Errorf("Topic name is illegal, it can't be longer than %d characters, topic name: %s", maxTopicNameLen, name)
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("Topic name %q is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'", name)
		}
	}
	return nil
}

// collisionKey is a topic name with '.' and '_' unified: Kafka refuses a
// topic whose name differs from an existing one only in those, because
// both map to the same metric names.
func collisionKey(name string) string { return strings.ReplaceAll(name, ".", "_") }

// collidingTopic returns an existing topic that name collides with.
func (h *Handler) collidingTopic(name string) (string, bool) {
	if !strings.ContainsAny(name, "._") {
		return "", false
	}
	key := collisionKey(name)
	for _, t := range h.store.Topics() {
		if t.Name != name && collisionKey(t.Name) == key {
			return t.Name, true
		}
	}
	return "", false
}

// newTopic is a topic creation that passed every check.
type newTopic struct {
	name              string
	partitions        int32
	replicationFactor int16
	configs           map[string]string // overrides, validated
}

// topicRequest is what CreateTopics (or auto-creation, with everything
// defaulted) asks for.
type topicRequest struct {
	name              string
	numPartitions     int32 // -1: the broker default
	replicationFactor int16 // -1: the broker default
	assignment        []kmsg.CreateTopicsRequestTopicReplicaAssignment
	configs           []kmsg.CreateTopicsRequestTopicConfig
}

// defaultPartitions is num.partitions, 1 if unset.
func (h *Handler) defaultPartitions() int32 {
	if h.cfg.NumPartitions > 0 {
		return h.cfg.NumPartitions
	}
	return 1
}

// defaultReplicationFactor is default.replication.factor, 1 if unset.
func (h *Handler) defaultReplicationFactor() int16 {
	if h.cfg.DefaultReplicationFactor != 0 {
		return h.cfg.DefaultReplicationFactor
	}
	return 1
}

// checkNewTopic runs Kafka's checks of a topic creation, in Kafka's order:
// the name, existence and collisions, the configs, then the partition
// count, replication factor and manual assignment.
func (h *Handler) checkNewTopic(req topicRequest) (newTopic, *apiError) {
	nt := newTopic{name: req.name}
	if err := validTopicName(req.name); err != nil {
		return nt, &apiError{code: kerr.InvalidTopicException.Code, message: err.Error()}
	}
	if _, ok := h.store.Topic(req.name); ok {
		return nt, newAPIError(kerr.TopicAlreadyExists, "Topic '%s' already exists.", req.name)
	}
	if other, ok := h.collidingTopic(req.name); ok {
		return nt, newAPIError(kerr.InvalidTopicException, "Topic '%s' collides with existing topic: %s", req.name, other)
	}
	configs, aerr := h.checkTopicConfigs(req.configs)
	if aerr != nil {
		return nt, aerr
	}
	nt.configs = configs

	if len(req.assignment) > 0 {
		if req.replicationFactor != -1 {
			return nt, newAPIError(kerr.InvalidRequest, "A manual partition assignment was specified, but replication factor was not set to -1.")
		}
		if req.numPartitions != -1 {
			return nt, newAPIError(kerr.InvalidRequest, "A manual partition assignment was specified, but numPartitions was not set to -1.")
		}
		seen := make([]bool, len(req.assignment))
		for _, a := range req.assignment {
			if a.Partition < 0 || int(a.Partition) >= len(req.assignment) || seen[a.Partition] {
				return nt, newAPIError(kerr.InvalidReplicaAssignment, "Partitions should be a consecutive 0-based integer sequence, got partition %d in an assignment of %d partitions.", a.Partition, len(req.assignment))
			}
			seen[a.Partition] = true
			if aerr := h.checkAssignment(a.Replicas); aerr != nil {
				return nt, aerr
			}
		}
		nt.partitions, nt.replicationFactor = int32(len(req.assignment)), 1
		return nt, nil
	}

	nt.partitions = req.numPartitions
	if nt.partitions == -1 {
		nt.partitions = h.defaultPartitions()
	}
	if nt.partitions <= 0 {
		return nt, newAPIError(kerr.InvalidPartitions, "Number of partitions was set to an invalid non-positive value.")
	}
	nt.replicationFactor = req.replicationFactor
	if nt.replicationFactor == -1 {
		nt.replicationFactor = h.defaultReplicationFactor()
	}
	switch {
	case nt.replicationFactor <= 0:
		return nt, newAPIError(kerr.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value.")
	case nt.replicationFactor > 1:
		return nt, newAPIError(kerr.InvalidReplicationFactor, "Replication factor: %d larger than available brokers: 1.", nt.replicationFactor)
	}
	return nt, nil
}

// checkAssignment accepts the one replica list this broker can host: itself.
func (h *Handler) checkAssignment(replicas []int32) *apiError {
	if len(replicas) == 0 {
		return newAPIError(kerr.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list.")
	}
	for i, id := range replicas {
		if id != h.cfg.NodeID {
			return newAPIError(kerr.InvalidReplicaAssignment, "The manual partition assignment includes broker %d, but no such broker is registered.", id)
		}
		if i > 0 {
			return newAPIError(kerr.InvalidReplicaAssignment, "The manual partition assignment includes the broker %d more than once.", id)
		}
	}
	return nil
}

// checkTopicConfigs validates CreateTopics configs into overrides; a null
// value means the default and is dropped.
func (h *Handler) checkTopicConfigs(cfgs []kmsg.CreateTopicsRequestTopicConfig) (map[string]string, *apiError) {
	out := make(map[string]string, len(cfgs))
	for _, c := range cfgs {
		if c.Value == nil {
			delete(out, c.Name)
			continue
		}
		if h.cfg.ValidateTopicConfig != nil {
			if err := h.cfg.ValidateTopicConfig(c.Name, *c.Value); err != nil {
				return nil, &apiError{code: kerr.InvalidConfig.Code, message: err.Error()}
			}
		}
		out[c.Name] = *c.Value
	}
	return out, nil
}

// createTopic creates a checked topic. Another request may have created it
// (or a colliding one) since the checks; the store has the last word on
// existence.
func (h *Handler) createTopic(nt newTopic) (log.Topic, *apiError) {
	t, err := h.store.CreateTopic(nt.name, nt.partitions, nt.configs)
	switch {
	case errors.Is(err, log.ErrTopicExists):
		return t, newAPIError(kerr.TopicAlreadyExists, "Topic '%s' already exists.", nt.name)
	case err != nil:
		return t, &apiError{code: errorCode(err), message: err.Error()}
	}
	return t, nil
}

// autoCreateTopic creates a topic a Metadata request named, with the broker
// defaults, and returns it. Two clients racing to create the same topic
// both succeed.
func (h *Handler) autoCreateTopic(name string) (log.Topic, *apiError) {
	nt, aerr := h.checkNewTopic(topicRequest{name: name, numPartitions: -1, replicationFactor: -1})
	if aerr == nil {
		var t log.Topic
		if t, aerr = h.createTopic(nt); aerr == nil {
			h.logger.Info("auto-created topic", zap.String("topic", name), zap.Int32("partitions", t.Partitions))
			return t, nil
		}
	}
	if aerr.code == kerr.TopicAlreadyExists.Code {
		if t, ok := h.store.Topic(name); ok {
			return t, nil
		}
		// Deleted again in between: report what a later lookup would.
		return log.Topic{}, &apiError{code: kerr.UnknownTopicOrPartition.Code}
	}
	return log.Topic{}, aerr
}

// topicConfig is one topic config as DescribeConfigs and CreateTopics v5+
// report it.
type topicConfig struct {
	name      string
	value     *string // nil when sensitive
	source    kmsg.ConfigSource
	sensitive bool
	typ       kmsg.ConfigType
	synonyms  []configSynonym // the topic override first, then the broker key
}

type configSynonym struct {
	name   string
	value  *string
	source kmsg.ConfigSource
}

// describeTopicConfigs lists every topic config, sorted by name: the
// broker-level defaults overlaid with the topic's own overrides.
func (h *Handler) describeTopicConfigs(overrides map[string]string) []topicConfig {
	names := slices.Collect(maps.Keys(h.cfg.TopicDefaults))
	for name := range overrides {
		if _, ok := h.cfg.TopicDefaults[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	broker := make(map[string]ConfigEntry, len(h.cfg.BrokerConfigs))
	for _, e := range h.cfg.BrokerConfigs {
		broker[e.Name] = e
	}
	out := make([]topicConfig, 0, len(names))
	for _, name := range names {
		def, hasDefault := h.cfg.TopicDefaults[name]
		tc := topicConfig{name: name}
		if hasDefault {
			tc.typ = configType(def.Type)
		}
		tc.sensitive = tc.typ == kmsg.ConfigTypePassword
		hide := func(v string) *string {
			if tc.sensitive {
				return nil
			}
			return kmsg.StringPtr(v)
		}
		if v, ok := overrides[name]; ok {
			tc.synonyms = append(tc.synonyms, configSynonym{name: name, value: hide(v), source: kmsg.ConfigSourceDynamicTopicConfig})
		}
		if hasDefault && def.BrokerKey != "" {
			src := kmsg.ConfigSourceStaticBrokerConfig
			if def.Default {
				src = kmsg.ConfigSourceDefaultConfig
			}
			// The synonym shows the broker key's own value, which may be
			// in other units (log.retention.hours for retention.ms).
			value := hide(def.Value)
			if e, ok := broker[def.BrokerKey]; ok {
				value = nil
				if !e.Sensitive && !tc.sensitive {
					value = kmsg.StringPtr(e.Value)
				}
			}
			tc.synonyms = append(tc.synonyms, configSynonym{name: def.BrokerKey, value: value, source: src})
		}
		tc.source = kmsg.ConfigSourceDefaultConfig
		if len(tc.synonyms) > 0 {
			tc.source = tc.synonyms[0].source // where the value comes from
		}
		tc.value = hide(def.Value)
		if v, ok := overrides[name]; ok {
			tc.value = hide(v)
		}
		out = append(out, tc)
	}
	return out
}

// configType maps Kafka's ConfigType name to its code, UNKNOWN if unnamed.
func configType(name string) kmsg.ConfigType {
	t, err := kmsg.ParseConfigType(name)
	if err != nil {
		return kmsg.ConfigTypeUnknown
	}
	return t
}
