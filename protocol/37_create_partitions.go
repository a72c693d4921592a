package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// CreatePartitions: v0-v3.
//
// Grows a topic to Count partitions, with Kafka's checks and messages: an
// unknown topic gets UNKNOWN_TOPIC_OR_PARTITION, a Count that is not an
// increase INVALID_PARTITIONS, an Assignment (when not null) that does not
// list exactly one replica list per new partition, each naming only this
// broker, INVALID_REPLICA_ASSIGNMENT, a topic named twice INVALID_REQUEST.
// ValidateOnly runs the checks and changes nothing. TimeoutMillis is moot:
// growth is synchronous.
//
// Deviation: a request adding more than 10000 partitions in all is
// refused with POLICY_VIOLATION, the limit Kafka's controller applies to
// CreateTopics, so one request cannot make the broker open an unbounded
// number of ConsumeQueues.

func init() {
	register(api{key: 37, min: 0, max: 3, serve: typed(serveCreatePartitions)})
}

func serveCreatePartitions(h *Handler, _ context.Context, _ *request, req *kmsg.CreatePartitionsRequest) (*kmsg.CreatePartitionsResponse, error) {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	answered := make(map[string]bool, len(req.Topics))
	answer := func(name string, aerr *apiError) {
		answered[name] = true
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = name
		st.ErrorCode, st.ErrorMessage = aerr.errorCode(), aerr.messagePtr()
		resp.Topics = append(resp.Topics, st)
	}

	count := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		count[rt.Topic]++
	}
	var total int64
	for _, rt := range req.Topics {
		if t, ok := h.store.Topic(rt.Topic); ok && count[rt.Topic] == 1 && rt.Count > t.Partitions {
			total += int64(rt.Count - t.Partitions)
		}
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
		aerr := h.checkCreatePartitions(rt)
		if aerr == nil && !req.ValidateOnly {
			if err := h.store.CreatePartitions(rt.Topic, rt.Count); err != nil {
				aerr = &apiError{code: errorCode(err), message: err.Error()}
			} else {
				h.logger.Info("grew topic", zap.String("topic", rt.Topic), zap.Int32("partitions", rt.Count))
			}
		}
		answer(rt.Topic, aerr)
	}
	return resp, nil
}

func (h *Handler) checkCreatePartitions(rt kmsg.CreatePartitionsRequestTopic) *apiError {
	t, ok := h.store.Topic(rt.Topic)
	switch {
	case !ok:
		return &apiError{code: kerr.UnknownTopicOrPartition.Code}
	case rt.Count == t.Partitions:
		return newAPIError(kerr.InvalidPartitions, "Topic already has %d partition(s).", t.Partitions)
	case rt.Count < t.Partitions:
		return newAPIError(kerr.InvalidPartitions, "The topic %s currently has %d partition(s); %d would not be an increase.", rt.Topic, t.Partitions, rt.Count)
	}
	if rt.Assignment == nil {
		return nil
	}
	if added := rt.Count - t.Partitions; int64(len(rt.Assignment)) != int64(added) {
		return newAPIError(kerr.InvalidReplicaAssignment, "Attempted to add %d additional partition(s), but only %d assignment(s) were specified.", added, len(rt.Assignment))
	}
	for _, a := range rt.Assignment {
		if aerr := h.checkAssignment(a.Replicas); aerr != nil {
			return aerr
		}
	}
	return nil
}
