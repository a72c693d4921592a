package protocol

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func createPartitions(t *testing.T, h *Handler, version int16, validateOnly bool, topics ...kmsg.CreatePartitionsRequestTopic) *kmsg.CreatePartitionsResponse {
	t.Helper()
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.Version = version
	req.ValidateOnly = validateOnly
	req.Topics = topics
	return roundTrip(t, h, req).(*kmsg.CreatePartitionsResponse)
}

func growTo(name string, count int32, assignment ...[]int32) kmsg.CreatePartitionsRequestTopic {
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = name, count
	for _, r := range assignment {
		rt.Assignment = append(rt.Assignment, kmsg.CreatePartitionsRequestTopicAssignment{Replicas: r})
	}
	return rt
}

func partitionsOf(t *testing.T, h *Handler, name string) int32 {
	t.Helper()
	topic, ok := h.store.Topic(name)
	if !ok {
		t.Fatalf("no topic %s", name)
	}
	return topic.Partitions
}

func TestCreatePartitionsGrows(t *testing.T) {
	h, _ := newTestHandler(t)
	createTopic(t, h, "grow", 1, nil)
	for v := int16(0); v <= 3; v++ {
		want := int32(2 + v)
		resp := createPartitions(t, h, v, false, growTo("grow", want))
		if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("v%d: %+v", v, resp.Topics)
		}
		if got := partitionsOf(t, h, "grow"); got != want {
			t.Fatalf("v%d: %d partitions, want %d", v, got, want)
		}
	}
	// New partitions are served: Metadata lists them.
	if resp := metadata(t, h, 12, false, "grow"); len(resp.Topics[0].Partitions) != 5 {
		t.Errorf("metadata lists %d partitions", len(resp.Topics[0].Partitions))
	}
}

func TestCreatePartitionsChecks(t *testing.T) {
	h, _ := newTestHandler(t)
	createTopic(t, h, "three", 3, nil)
	cases := []struct {
		what  string
		topic kmsg.CreatePartitionsRequestTopic
		want  *kerr.Error
		msg   string
	}{
		{"same count", growTo("three", 3), kerr.InvalidPartitions, "Topic already has 3 partition(s)."},
		{"fewer", growTo("three", 2), kerr.InvalidPartitions, "The topic three currently has 3 partition(s); 2 would not be an increase."},
		{"unknown topic", growTo("nope", 5), kerr.UnknownTopicOrPartition, ""},
		{"too few assignments", growTo("three", 5, []int32{testNodeID}), kerr.InvalidReplicaAssignment, "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."},
		{"other broker", growTo("three", 4, []int32{7}), kerr.InvalidReplicaAssignment, "broker 7"},
		{"two replicas", growTo("three", 4, []int32{testNodeID, testNodeID}), kerr.InvalidReplicaAssignment, ""},
		{"empty assignment list", func() kmsg.CreatePartitionsRequestTopic {
			rt := growTo("three", 4)
			rt.Assignment = []kmsg.CreatePartitionsRequestTopicAssignment{}
			return rt
		}(), kerr.InvalidReplicaAssignment, "but only 0 assignment(s)"},
		{"too many", growTo("three", 20000), kerr.PolicyViolation, "Excessively large"},
	}
	for _, c := range cases {
		st := createPartitions(t, h, 3, false, c.topic).Topics[0]
		checkCode(t, c.what, st.ErrorCode, st.ErrorMessage, c.want, c.msg)
		if got := partitionsOf(t, h, "three"); got != 3 {
			t.Fatalf("%s: now %d partitions", c.what, got)
		}
	}

	// An assignment onto this broker is fine.
	if st := createPartitions(t, h, 3, false, growTo("three", 5, []int32{testNodeID}, []int32{testNodeID})).Topics[0]; st.ErrorCode != 0 {
		t.Errorf("assigned: %v", kerr.ErrorForCode(st.ErrorCode))
	}
	if got := partitionsOf(t, h, "three"); got != 5 {
		t.Errorf("%d partitions, want 5", got)
	}
}

func TestCreatePartitionsValidateOnlyAndDuplicates(t *testing.T) {
	h, _ := newTestHandler(t)
	createTopic(t, h, "steady", 1, nil)
	if st := createPartitions(t, h, 2, true, growTo("steady", 4)).Topics[0]; st.ErrorCode != 0 {
		t.Fatalf("validate: %v", kerr.ErrorForCode(st.ErrorCode))
	}
	if got := partitionsOf(t, h, "steady"); got != 1 {
		t.Fatalf("validate-only grew the topic to %d", got)
	}
	resp := createPartitions(t, h, 2, false, growTo("steady", 4), growTo("steady", 5))
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("duplicates: %+v", resp.Topics)
	}
	if got := partitionsOf(t, h, "steady"); got != 1 {
		t.Fatalf("duplicate request grew the topic to %d", got)
	}
}
