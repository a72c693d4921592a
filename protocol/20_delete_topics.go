package protocol

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/rocketkafka/broker/group"
	"github.com/rocketkafka/broker/log"
)

// DeleteTopics: v1-v6.
//
// By name (TopicNames up to v5, Topics from v6) or, from v6, by topic ID.
// As in Kafka's controller: an unknown name gets UNKNOWN_TOPIC_OR_PARTITION
// and an unknown ID UNKNOWN_TOPIC_ID; an entry with both a name and an ID,
// or neither, a name or ID given twice, or a name for a topic also given by
// its ID gets INVALID_REQUEST. Answers carry the name and (v6) the ID of
// what was deleted. TimeoutMillis is moot: deletion is synchronous. The
// group coordinator's __consumer_offsets cannot be deleted
// (INVALID_TOPIC_EXCEPTION); deleting a topic deletes the offsets groups
// committed for it.
//
// Deviation: Kafka has delete.topic.enable; deletion is always enabled.

func init() {
	register(api{key: 20, min: 1, max: 6, serve: typed(serveDeleteTopics)})
}

// deleteEntry is one topic to delete: by name, or by ID when name is nil.
type deleteEntry struct {
	name *string
	id   log.TopicID
}

func serveDeleteTopics(h *Handler, _ context.Context, _ *request, req *kmsg.DeleteTopicsRequest) (*kmsg.DeleteTopicsResponse, error) {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	answer := func(name *string, id log.TopicID, aerr *apiError) {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = name, id
		st.ErrorCode, st.ErrorMessage = aerr.errorCode(), aerr.messagePtr()
		resp.Topics = append(resp.Topics, st)
	}

	var entries []deleteEntry
	if req.Version < 6 {
		for _, name := range req.TopicNames {
			entries = append(entries, deleteEntry{name: kmsg.StringPtr(name)})
		}
	} else {
		for _, rt := range req.Topics {
			switch {
			case rt.Topic != nil && rt.TopicID != ([16]byte{}):
				answer(rt.Topic, rt.TopicID, newAPIError(kerr.InvalidRequest, "You may not specify both topic name and topic id."))
			case rt.Topic == nil && rt.TopicID == ([16]byte{}):
				answer(nil, rt.TopicID, newAPIError(kerr.InvalidRequest, "Neither topic name nor id were specified."))
			default:
				entries = append(entries, deleteEntry{name: rt.Topic, id: rt.TopicID})
			}
		}
	}

	names := make(map[string]int)
	ids := make(map[log.TopicID]int)
	for _, e := range entries {
		if e.name != nil {
			names[*e.name]++
		} else {
			ids[e.id]++
		}
	}
	for _, e := range entries {
		if e.name == nil {
			h.deleteTopicByID(e.id, ids[e.id], answer)
			continue
		}
		name := *e.name
		switch n := names[name]; {
		case n == 0:
			continue // answered already
		case n > 1:
			names[name] = 0
			answer(e.name, log.TopicID{}, newAPIError(kerr.InvalidRequest, "Duplicate topic name."))
			continue
		}
		t, ok := h.store.Topic(name)
		if ok && ids[t.ID] > 0 {
			answer(e.name, t.ID, newAPIError(kerr.InvalidRequest, "The provided topic name maps to an ID that was already supplied."))
			continue
		}
		if name == group.OffsetsTopic {
			answer(e.name, t.ID, internalTopicError())
			continue
		}
		t, err := h.store.DeleteTopic(name)
		if err != nil {
			answer(e.name, log.TopicID{}, deleteError(err))
			continue
		}
		h.deleted(t)
		answer(e.name, t.ID, nil)
	}
	return resp, nil
}

// deleteTopicByID deletes the topic with ID id, which the request named n
// times.
func (h *Handler) deleteTopicByID(id log.TopicID, n int, answer func(*string, log.TopicID, *apiError)) {
	if n > 1 {
		answer(nil, id, newAPIError(kerr.InvalidRequest, "Duplicate topic id."))
		return
	}
	t, ok := h.store.TopicByID(id)
	if !ok {
		answer(nil, id, &apiError{code: kerr.UnknownTopicID.Code})
		return
	}
	if t.Name == group.OffsetsTopic {
		answer(kmsg.StringPtr(t.Name), id, internalTopicError())
		return
	}
	deleted, err := h.store.DeleteTopic(t.Name)
	switch {
	case errors.Is(err, log.ErrUnknownTopic):
		answer(nil, id, &apiError{code: kerr.UnknownTopicID.Code})
		return
	case err != nil:
		answer(kmsg.StringPtr(t.Name), id, deleteError(err))
		return
	}
	if deleted.ID != id {
		// The topic was deleted and re-created under the same name between
		// the lookup and the delete; the store cannot delete by ID, so the
		// new topic is gone too. Say so rather than hide it.
		h.logger.Warn("delete by topic ID removed a topic re-created under the same name",
			zap.String("topic", t.Name), zap.Stringer("requested_id", id), zap.Stringer("deleted_id", deleted.ID))
	}
	h.deleted(deleted)
	answer(kmsg.StringPtr(deleted.Name), id, nil)
}

// deleted logs a deleted topic and drops the offsets committed for it.
func (h *Handler) deleted(t log.Topic) {
	h.logger.Info("deleted topic", zap.String("topic", t.Name), zap.Stringer("id", t.ID))
	if h.groups != nil {
		h.groups.TopicDeleted(t.Name)
	}
}

func internalTopicError() *apiError {
	return newAPIError(kerr.InvalidTopicException, "Topic %s is an internal topic and cannot be deleted.", group.OffsetsTopic)
}

func deleteError(err error) *apiError {
	if errors.Is(err, log.ErrUnknownTopic) {
		return &apiError{code: kerr.UnknownTopicOrPartition.Code}
	}
	return &apiError{code: errorCode(err), message: err.Error()}
}
