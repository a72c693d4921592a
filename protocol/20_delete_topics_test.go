package protocol

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func deleteByName(t *testing.T, h *Handler, version int16, names ...string) *kmsg.DeleteTopicsResponse {
	t.Helper()
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = version
	if version < 6 {
		req.TopicNames = names
	} else {
		for _, name := range names {
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = kmsg.StringPtr(name)
			req.Topics = append(req.Topics, rt)
		}
	}
	return roundTrip(t, h, req).(*kmsg.DeleteTopicsResponse)
}

func TestDeleteTopicsByName(t *testing.T) {
	h, store := newTestHandler(t)
	for v := int16(1); v <= 6; v++ {
		name := fmt.Sprintf("doomed-%d", v)
		id := createTopic(t, h, name, 2, nil)
		resp := deleteByName(t, h, v, name, "never-was")
		if len(resp.Topics) != 2 {
			t.Fatalf("v%d: %+v", v, resp.Topics)
		}
		if st := resp.Topics[0]; st.ErrorCode != 0 || *st.Topic != name || (v >= 6 && st.TopicID != id) {
			t.Errorf("v%d: deleted %+v", v, st)
		}
		if st := resp.Topics[1]; st.ErrorCode != kerr.UnknownTopicOrPartition.Code || *st.Topic != "never-was" {
			t.Errorf("v%d: unknown %+v", v, st)
		}
		if _, ok := store.Topic(name); ok {
			t.Errorf("v%d: %s still exists", v, name)
		}
	}
}

func TestDeleteTopicsByID(t *testing.T) {
	h, store := newTestHandler(t)
	id := createTopic(t, h, "by-id", 1, nil)
	other := createTopic(t, h, "other", 1, nil)
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 6
	byID := kmsg.NewDeleteTopicsRequestTopic()
	byID.TopicID = id
	unknown := kmsg.NewDeleteTopicsRequestTopic()
	unknown.TopicID = [16]byte{9}
	both := kmsg.NewDeleteTopicsRequestTopic()
	both.Topic, both.TopicID = kmsg.StringPtr("other"), other
	neither := kmsg.NewDeleteTopicsRequestTopic()
	req.Topics = []kmsg.DeleteTopicsRequestTopic{byID, unknown, both, neither}
	resp := roundTrip(t, h, req).(*kmsg.DeleteTopicsResponse)
	if len(resp.Topics) != 4 {
		t.Fatalf("answers %+v", resp.Topics)
	}
	found := map[[16]byte]kmsg.DeleteTopicsResponseTopic{}
	var invalid int
	for _, st := range resp.Topics {
		if st.ErrorCode == kerr.InvalidRequest.Code {
			invalid++
			continue
		}
		found[st.TopicID] = st
	}
	if st := found[id]; st.ErrorCode != 0 || st.Topic == nil || *st.Topic != "by-id" {
		t.Errorf("by ID: %+v", st)
	}
	if st := found[[16]byte{9}]; st.ErrorCode != kerr.UnknownTopicID.Code {
		t.Errorf("unknown ID: %v", kerr.ErrorForCode(st.ErrorCode))
	}
	if invalid != 2 {
		t.Errorf("%d INVALID_REQUEST answers, want 2 (name and ID; neither)", invalid)
	}
	if _, ok := store.Topic("by-id"); ok {
		t.Error("by-id still exists")
	}
	if _, ok := store.Topic("other"); !ok {
		t.Error("other deleted by an invalid entry")
	}
}

func TestDeleteTopicsDuplicates(t *testing.T) {
	h, store := newTestHandler(t)
	createTopic(t, h, "dup", 1, nil)
	resp := deleteByName(t, h, 5, "dup", "dup")
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("answers %+v", resp.Topics)
	}
	if _, ok := store.Topic("dup"); !ok {
		t.Error("deleted although named twice")
	}
}

// A re-created topic is a new topic: new ID, and the old ID is unknown.
func TestDeleteThenRecreateGivesNewID(t *testing.T) {
	h, _ := newTestHandler(t)
	old := createTopic(t, h, "phoenix", 1, nil)
	if resp := deleteByName(t, h, 6, "phoenix"); resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("delete: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	renewed := createTopic(t, h, "phoenix", 1, nil)
	if renewed == old {
		t.Fatalf("re-created topic kept ID %x", old)
	}
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	for _, id := range [][16]byte{old, renewed} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.TopicID = id
		req.Topics = append(req.Topics, rt)
	}
	resp := roundTrip(t, h, req).(*kmsg.MetadataResponse)
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicID.Code {
		t.Errorf("old ID: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	if resp.Topics[1].ErrorCode != 0 || *resp.Topics[1].Topic != "phoenix" {
		t.Errorf("new ID: %+v", resp.Topics[1])
	}
}
