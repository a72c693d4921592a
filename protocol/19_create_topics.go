package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// CreateTopics: v2-v7.
//
// Checks, per topic, in Kafka's order (answering with Kafka's codes and
// messages): the name (non-empty, at most 249 characters of [a-zA-Z0-9._-],
// not "." or "..": INVALID_TOPIC_EXCEPTION), existence
// (TOPIC_ALREADY_EXISTS), a collision with an existing topic differing only
// in '.' versus '_' (INVALID_TOPIC_EXCEPTION), the configs (INVALID_CONFIG;
// a null value means the default and is dropped), then the counts:
// NumPartitions -1 is num.partitions, 0 or below -1 INVALID_PARTITIONS;
// ReplicationFactor -1 is default.replication.factor, anything but 1
// INVALID_REPLICATION_FACTOR as there is one broker. A manual
// ReplicaAssignment needs both counts at -1 (else INVALID_REQUEST),
// partitions 0..n-1 and each partition on exactly this broker (else
// INVALID_REPLICA_ASSIGNMENT). A name given twice gets one INVALID_REQUEST
// answer and is not created. A request adding more than 10000 partitions
// in all is refused whole with POLICY_VIOLATION, as Kafka's controller
// does. ValidateOnly runs every check and creates nothing.
//
// v5+ answers carry the partition count, replication factor and every
// config of the topic with its source; v7+ the topic ID (zero when
// validating only). TimeoutMillis is moot: creation is synchronous.

func init() {
	register(api{key: 19, min: 2, max: 7, serve: typed(serveCreateTopics)})
}

func serveCreateTopics(h *Handler, _ context.Context, _ *request, req *kmsg.CreateTopicsRequest) (*kmsg.CreateTopicsResponse, error) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)

	count := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		count[rt.Topic]++
	}
	var total int64
	for _, rt := range req.Topics {
		switch {
		case count[rt.Topic] > 1:
		case len(rt.ReplicaAssignment) > 0:
			total += int64(len(rt.ReplicaAssignment))
		case rt.NumPartitions == -1:
			total += int64(h.defaultPartitions())
		case rt.NumPartitions > 0:
			total += int64(rt.NumPartitions)
		}
	}

	answered := make(map[string]bool, len(req.Topics))
	answer := func(name string, aerr *apiError) *kmsg.CreateTopicsResponseTopic {
		answered[name] = true
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = name
		st.ErrorCode, st.ErrorMessage = aerr.errorCode(), aerr.messagePtr()
		resp.Topics = append(resp.Topics, st)
		return &resp.Topics[len(resp.Topics)-1]
	}

	for _, rt := range req.Topics {
		if answered[rt.Topic] {
			continue
		}
		switch {
		case count[rt.Topic] > 1:
			answer(rt.Topic, newAPIError(kerr.InvalidRequest, "Duplicate topic name."))
			continue
		case total > maxPartitionsPerRequest:
			answer(rt.Topic, newAPIError(kerr.PolicyViolation, "Excessively large number of partitions per request."))
			continue
		}
		nt, aerr := h.checkNewTopic(topicRequest{
			name:              rt.Topic,
			numPartitions:     rt.NumPartitions,
			replicationFactor: rt.ReplicationFactor,
			assignment:        rt.ReplicaAssignment,
			configs:           rt.Configs,
		})
		var id [16]byte
		if aerr == nil && !req.ValidateOnly {
			t, cerr := h.createTopic(nt)
			if aerr = cerr; aerr == nil {
				id = t.ID
				h.logger.Info("created topic", zap.String("topic", t.Name), zap.Stringer("id", t.ID), zap.Int32("partitions", t.Partitions))
			}
		}
		st := answer(rt.Topic, aerr)
		if aerr != nil {
			continue
		}
		st.TopicID = id
		st.NumPartitions = nt.partitions
		st.ReplicationFactor = nt.replicationFactor
		for _, c := range h.describeTopicConfigs(nt.configs) {
			rc := kmsg.NewCreateTopicsResponseTopicConfig()
			rc.Name, rc.Value, rc.Source, rc.IsSensitive = c.name, c.value, int8(c.source), c.sensitive
			st.Configs = append(st.Configs, rc)
		}
	}
	return resp, nil
}
