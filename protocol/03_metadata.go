package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rocketkafka/broker/group"
	"github.com/rocketkafka/broker/log"
)

// Metadata: v0-v13.
//
// One broker (this one, no rack), which is also the controller and leads
// every partition with leader epoch 0, replicas and ISR [NodeID].
//
// Topics: all of them for a null list (v1+) or an empty one (v0); else
// those named, or (v10+) those given by topic ID, each once. An unknown
// name is auto-created with the broker defaults when auto.create.topics.enable
// is on and the client allows it (AllowAutoTopicCreation, v4+; always
// allowed before v4); invalid names get INVALID_TOPIC_EXCEPTION, other
// unknown names UNKNOWN_TOPIC_OR_PARTITION, unknown IDs UNKNOWN_TOPIC_ID.
// Authorized operations are reported when asked for (no authorizer: all).
// The group coordinator's __consumer_offsets is marked internal; like any
// topic it is listed when asked for by name or when all are.
//
// Deviations: Kafka creates auto-created topics asynchronously and answers
// LEADER_NOT_AVAILABLE until they exist; we create them synchronously and
// answer with the new topic right away. Kafka accepts topic IDs only from
// v12 and answers INVALID_REQUEST for them in v10-v11; we resolve them
// from v10, where the field exists.

func init() {
	register(api{key: 3, min: 0, max: 13, serve: typed(serveMetadata)})
}

func serveMetadata(h *Handler, _ context.Context, _ *request, req *kmsg.MetadataRequest) (*kmsg.MetadataResponse, error) {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = h.cfg.NodeID, h.cfg.AdvertisedHost, h.cfg.AdvertisedPort
	resp.Brokers = append(resp.Brokers, b)
	resp.ClusterID = kmsg.StringPtr(h.store.ClusterID())
	resp.ControllerID = h.cfg.NodeID
	if req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = clusterOperations
	}

	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		for _, t := range h.store.Topics() {
			resp.Topics = append(resp.Topics, h.topicMetadata(req, t))
		}
		return resp, nil
	}

	autoCreate := h.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	seenNames := make(map[string]bool, len(req.Topics))
	seenIDs := make(map[log.TopicID]bool)
	for _, rt := range req.Topics {
		if req.Version >= 10 && rt.TopicID != ([16]byte{}) {
			id := log.TopicID(rt.TopicID)
			if seenIDs[id] {
				continue
			}
			seenIDs[id] = true
			t, ok := h.store.TopicByID(id)
			if !ok || seenNames[t.Name] {
				if !ok {
					mt := kmsg.NewMetadataResponseTopic()
					mt.TopicID = rt.TopicID
					mt.ErrorCode = kerr.UnknownTopicID.Code
					resp.Topics = append(resp.Topics, mt)
				}
				continue
			}
			seenNames[t.Name] = true
			resp.Topics = append(resp.Topics, h.topicMetadata(req, t))
			continue
		}
		if rt.Topic == nil {
			continue // neither a name nor an ID
		}
		name := *rt.Topic
		if seenNames[name] {
			continue
		}
		seenNames[name] = true
		t, ok := h.store.Topic(name)
		if !ok {
			var aerr *apiError
			switch {
			case validTopicName(name) != nil:
				aerr = &apiError{code: kerr.InvalidTopicException.Code}
			case autoCreate:
				t, aerr = h.autoCreateTopic(name)
			default:
				aerr = &apiError{code: kerr.UnknownTopicOrPartition.Code}
			}
			if aerr != nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = kmsg.StringPtr(name)
				mt.ErrorCode = aerr.code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		}
		seenIDs[t.ID] = true
		resp.Topics = append(resp.Topics, h.topicMetadata(req, t))
	}
	return resp, nil
}

// topicMetadata describes an existing topic.
func (h *Handler) topicMetadata(req *kmsg.MetadataRequest, t log.Topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = kmsg.StringPtr(t.Name)
	mt.TopicID = t.ID
	mt.IsInternal = t.Name == group.OffsetsTopic
	if req.IncludeTopicAuthorizedOperations {
		mt.AuthorizedOperations = topicOperations
	}
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, t.Partitions)
	for i := range t.Partitions {
		p := kmsg.NewMetadataResponseTopicPartition()
		p.Partition = i
		p.Leader = h.cfg.NodeID
		p.LeaderEpoch = 0
		p.Replicas = []int32{h.cfg.NodeID}
		p.ISR = []int32{h.cfg.NodeID}
		p.OfflineReplicas = []int32{}
		mt.Partitions = append(mt.Partitions, p)
	}
	return mt
}
