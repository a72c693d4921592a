package protocol

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/rocketkafka/broker/group"
	"github.com/rocketkafka/broker/log"
)

// newGroupHandler is newTestHandler with a group coordinator that has no
// initial rebalance delay.
func newGroupHandler(t testing.TB) (*Handler, *log.Log) {
	t.Helper()
	h, store := newTestHandler(t)
	opts := group.DefaultOptions(store)
	opts.InitialRebalanceDelay = 0
	c, err := group.Open(opts)
	if err != nil {
		t.Fatalf("opening the coordinator: %v", err)
	}
	t.Cleanup(c.Close)
	cfg := h.cfg
	cfg.FetchSessionSlots = 4
	return New(cfg, store, zap.NewNop(), WithGroups(c)), store
}

func TestGroupAPIsNeedACoordinator(t *testing.T) {
	h, _ := newTestHandler(t)
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group = "g"
	if _, err := h.Serve(context.Background(), nil, requestFrame(req, 1, "x")); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("heartbeat without a coordinator: %v, want ErrUnsupported", err)
	}
}

// joinOnce joins group as a new member at version v and returns the
// completed join (v4+ takes the MEMBER_ID_REQUIRED round trip).
func joinOnce(t *testing.T, h *Handler, group string, v int16) *kmsg.JoinGroupResponse {
	t.Helper()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = v
	req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis, req.ProtocolType = group, 10000, 10000, "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"t"}
	p.Metadata = meta.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	resp := roundTrip(t, h, req).(*kmsg.JoinGroupResponse)
	if v >= 4 {
		if resp.ErrorCode != kerr.MemberIDRequired.Code {
			t.Fatalf("JoinGroup v%d: %s, want MEMBER_ID_REQUIRED", v, errName(resp.ErrorCode))
		}
		req.MemberID = resp.MemberID
		resp = roundTrip(t, h, req).(*kmsg.JoinGroupResponse)
	}
	if resp.ErrorCode != 0 || resp.LeaderID != resp.MemberID || len(resp.Members) != 1 || resp.Generation < 1 {
		t.Fatalf("JoinGroup v%d: %+v", v, resp)
	}
	if v >= 7 && (resp.ProtocolType == nil || *resp.ProtocolType != "consumer") {
		t.Fatalf("JoinGroup v%d: protocol type %v", v, resp.ProtocolType)
	}
	return resp
}

func errName(c int16) string {
	if c == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(c).Error()
}

// TestGroupLifecycleEveryVersion takes a one-member group through join,
// sync, heartbeat, describe, list, leave and delete at every version.
func TestGroupLifecycleEveryVersion(t *testing.T) {
	h, _ := newGroupHandler(t)
	for v := int16(0); v <= 9; v++ {
		g := fmt.Sprintf("g%d", v)
		j := joinOnce(t, h, g, v)

		sync := kmsg.NewPtrSyncGroupRequest()
		sync.Version = min(v, 5)
		sync.Group, sync.MemberID, sync.Generation = g, j.MemberID, j.Generation
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = j.MemberID, []byte("assigned")
		sync.GroupAssignment = append(sync.GroupAssignment, a)
		if s := roundTrip(t, h, sync).(*kmsg.SyncGroupResponse); s.ErrorCode != 0 || string(s.MemberAssignment) != "assigned" {
			t.Fatalf("SyncGroup v%d: %+v", sync.Version, s)
		} else if sync.Version >= 5 && (s.Protocol == nil || *s.Protocol != "range") {
			t.Fatalf("SyncGroup v5: protocol %v", s.Protocol)
		}

		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Version = min(v, 4)
		hb.Group, hb.MemberID, hb.Generation = g, j.MemberID, j.Generation
		if r := roundTrip(t, h, hb).(*kmsg.HeartbeatResponse); r.ErrorCode != 0 {
			t.Fatalf("Heartbeat v%d: %s", hb.Version, errName(r.ErrorCode))
		}
		hb.Generation++
		if r := roundTrip(t, h, hb).(*kmsg.HeartbeatResponse); r.ErrorCode != kerr.IllegalGeneration.Code {
			t.Fatalf("Heartbeat v%d of a future generation: %s", hb.Version, errName(r.ErrorCode))
		}

		describe := kmsg.NewPtrDescribeGroupsRequest()
		describe.Version = min(v, 6)
		describe.Groups = []string{g, "nosuch"}
		describe.IncludeAuthorizedOperations = true
		d := roundTrip(t, h, describe).(*kmsg.DescribeGroupsResponse)
		if dg := d.Groups[0]; dg.State != "Stable" || len(dg.Members) != 1 || string(dg.Members[0].MemberAssignment) != "assigned" {
			t.Fatalf("DescribeGroups v%d: %+v", describe.Version, dg)
		}
		if describe.Version >= 3 && d.Groups[0].AuthorizedOperations != groupOperations {
			t.Fatalf("DescribeGroups v%d: authorized operations %b", describe.Version, d.Groups[0].AuthorizedOperations)
		}
		if dg := d.Groups[1]; dg.State != "Dead" || (describe.Version >= 6) != (dg.ErrorCode == kerr.GroupIDNotFound.Code) {
			t.Fatalf("DescribeGroups v%d of an unknown group: %+v", describe.Version, dg)
		}

		list := kmsg.NewPtrListGroupsRequest()
		list.Version = min(v, 5)
		found := false
		for _, lg := range roundTrip(t, h, list).(*kmsg.ListGroupsResponse).Groups {
			if lg.Group == g {
				found = lg.ProtocolType == "consumer" && (list.Version < 4 || lg.GroupState == "Stable") && (list.Version < 5 || lg.GroupType == "classic")
			}
		}
		if !found {
			t.Fatalf("ListGroups v%d: %s missing or wrong", list.Version, g)
		}

		leave := kmsg.NewPtrLeaveGroupRequest()
		leave.Version = min(v, 5)
		leave.Group = g
		if leave.Version < 3 {
			leave.MemberID = "nobody"
			if r := roundTrip(t, h, leave).(*kmsg.LeaveGroupResponse); r.ErrorCode != kerr.UnknownMemberID.Code {
				t.Fatalf("LeaveGroup v%d of an unknown member: %s", leave.Version, errName(r.ErrorCode))
			}
			leave.MemberID = j.MemberID
		} else {
			m := kmsg.NewLeaveGroupRequestMember()
			m.MemberID = j.MemberID
			leave.Members = append(leave.Members, m)
		}
		if r := roundTrip(t, h, leave).(*kmsg.LeaveGroupResponse); r.ErrorCode != 0 || (leave.Version >= 3 && r.Members[0].ErrorCode != 0) {
			t.Fatalf("LeaveGroup v%d: %+v", leave.Version, r)
		}

		del := kmsg.NewPtrDeleteGroupsRequest()
		del.Version = min(v, 2)
		del.Groups = []string{g, g}
		r := roundTrip(t, h, del).(*kmsg.DeleteGroupsResponse)
		if r.Groups[0].ErrorCode != 0 || r.Groups[1].ErrorCode != kerr.GroupIDNotFound.Code {
			t.Fatalf("DeleteGroups v%d: %+v", del.Version, r.Groups)
		}
	}
}

func commitReq(v int16, group, topic string, offset int64, partitions ...int32) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group = v, group
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for _, p := range partitions {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.Metadata = p, offset, kmsg.StringPtr(fmt.Sprintf("v%d", v))
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

func TestOffsetCommitFetchEveryVersion(t *testing.T) {
	h, _ := newGroupHandler(t)
	createTopic(t, h, "t", 2, nil)
	for v := int16(0); v <= 9; v++ {
		g := fmt.Sprintf("g%d", v)
		resp := roundTrip(t, h, commitReq(v, g, "t", int64(100+v), 0, 1, 2)).(*kmsg.OffsetCommitResponse)
		ps := resp.Topics[0].Partitions
		if ps[0].ErrorCode != 0 || ps[1].ErrorCode != 0 || ps[2].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("OffsetCommit v%d: %+v", v, ps)
		}

		fetch := kmsg.NewPtrOffsetFetchRequest()
		fetch.Version = v
		if v >= 8 {
			rg := kmsg.NewOffsetFetchRequestGroup()
			rg.Group = g
			rt := kmsg.NewOffsetFetchRequestGroupTopic()
			rt.Topic, rt.Partitions = "t", []int32{0, 1, 5}
			rg.Topics = append(rg.Topics, rt)
			fetch.Groups = append(fetch.Groups, rg)
			fetch.RequireStable = true
			fg := roundTrip(t, h, fetch).(*kmsg.OffsetFetchResponse).Groups[0]
			if ps := fg.Topics[0].Partitions; fg.ErrorCode != 0 || ps[0].Offset != int64(100+v) || ps[1].Offset != int64(100+v) || ps[2].Offset != -1 || *ps[0].Metadata != fmt.Sprintf("v%d", v) {
				t.Fatalf("OffsetFetch v%d: %+v", v, fg)
			}
			continue
		}
		fetch.Group = g
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = "t", []int32{0, 1, 5}
		fetch.Topics = append(fetch.Topics, rt)
		r := roundTrip(t, h, fetch).(*kmsg.OffsetFetchResponse)
		if ps := r.Topics[0].Partitions; r.ErrorCode != 0 || ps[0].Offset != int64(100+v) || ps[1].Offset != int64(100+v) || ps[2].Offset != -1 {
			t.Fatalf("OffsetFetch v%d: %+v", v, r)
		}
		if v >= 2 {
			fetch.Topics = nil // every committed partition
			r := roundTrip(t, h, fetch).(*kmsg.OffsetFetchResponse)
			if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 2 {
				t.Fatalf("OffsetFetch v%d of all topics: %+v", v, r.Topics)
			}
		}
	}

	// v0-v1 have no top-level error: a group error is on each partition.
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version = 1
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = "t", []int32{0}
	fetch.Topics = append(fetch.Topics, rt)
	if r := roundTrip(t, h, fetch).(*kmsg.OffsetFetchResponse); r.Topics[0].Partitions[0].ErrorCode != kerr.InvalidGroupID.Code {
		t.Fatalf("OffsetFetch v1 without a group id: %+v", r.Topics)
	}

	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = "g9"
	dt := kmsg.NewOffsetDeleteRequestTopic()
	dt.Topic = "t"
	dt.Partitions = append(dt.Partitions, kmsg.NewOffsetDeleteRequestTopicPartition())
	del.Topics = append(del.Topics, dt)
	if r := roundTrip(t, h, del).(*kmsg.OffsetDeleteResponse); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("OffsetDelete: %+v", r)
	}
}

func TestOffsetsTopicIsInternal(t *testing.T) {
	h, store := newGroupHandler(t)
	createTopic(t, h, "t", 1, nil)
	roundTrip(t, h, commitReq(8, "g", "t", 5, 0))

	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	internal := 0
	for _, mt := range roundTrip(t, h, md).(*kmsg.MetadataResponse).Topics {
		if (*mt.Topic == group.OffsetsTopic) != mt.IsInternal {
			t.Errorf("topic %s: internal %v", *mt.Topic, mt.IsInternal)
		}
		if mt.IsInternal {
			internal++
		}
	}
	if internal != 1 {
		t.Errorf("%d internal topics listed, want 1", internal)
	}

	produce := produceReq(9, group.OffsetsTopic, log.TopicID{}, 0, -1, recordBatch(time.Now().UnixMilli()))
	if r := roundTrip(t, h, produce).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("produce to %s: %s", group.OffsetsTopic, errName(r.Topics[0].Partitions[0].ErrorCode))
	}

	if r := deleteByName(t, h, 6, group.OffsetsTopic); r.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("deleting %s: %+v", group.OffsetsTopic, r.Topics[0])
	}
	id := topicIDOf(t, store, group.OffsetsTopic)
	byID := kmsg.NewPtrDeleteTopicsRequest()
	byID.Version = 6
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.TopicID = id
	byID.Topics = append(byID.Topics, dt)
	if r := roundTrip(t, h, byID).(*kmsg.DeleteTopicsResponse); r.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("deleting %s by ID: %+v", group.OffsetsTopic, r.Topics[0])
	}

	// Deleting a topic drops the offsets committed for it: re-created,
	// it starts without them.
	deleteByName(t, h, 6, "t")
	createTopic(t, h, "t", 1, nil)
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version, fetch.Group = 7, "g"
	if r := roundTrip(t, h, fetch).(*kmsg.OffsetFetchResponse); len(r.Topics) != 0 {
		t.Fatalf("offsets of a deleted topic: %+v", r.Topics)
	}
}

func topicIDOf(t *testing.T, store *log.Log, name string) [16]byte {
	t.Helper()
	topic, ok := store.Topic(name)
	if !ok {
		t.Fatalf("no topic %s", name)
	}
	return topic.ID
}
