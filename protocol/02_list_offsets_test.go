package protocol

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type listQuery struct {
	topic     string
	partition int32
	timestamp int64
	epoch     int32
}

func listOffsets(t *testing.T, h *Handler, version int16, isolation int8, queries ...listQuery) []kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = version
	req.ReplicaID = -1
	req.IsolationLevel = isolation
	for _, q := range queries {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != q.topic {
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = q.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = q.partition, q.timestamp, q.epoch
		rt := &req.Topics[len(req.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	resp := roundTrip(t, h, req).(*kmsg.ListOffsetsResponse)
	var out []kmsg.ListOffsetsResponseTopicPartition
	for _, st := range resp.Topics {
		out = append(out, st.Partitions...)
	}
	if len(out) != len(queries) {
		t.Fatalf("v%d: %d answers for %d queries", version, len(out), len(queries))
	}
	return out
}

type listAnswer struct {
	err       *kerr.Error
	offset    int64
	timestamp int64
	epoch     int32
}

func checkListAnswer(t *testing.T, what string, version int16, got kmsg.ListOffsetsResponseTopicPartition, want listAnswer) {
	t.Helper()
	wantCode := int16(0)
	if want.err != nil {
		wantCode = want.err.Code
	}
	wantEpoch := want.epoch
	if version < 4 {
		wantEpoch = -1 // not on the wire: the decoder leaves the default
	}
	if got.ErrorCode != wantCode || got.Offset != want.offset || got.Timestamp != want.timestamp || got.LeaderEpoch != wantEpoch {
		t.Errorf("v%d %s: %v offset %d timestamp %d epoch %d, want %v offset %d timestamp %d epoch %d", version, what,
			kerr.ErrorForCode(got.ErrorCode), got.Offset, got.Timestamp, got.LeaderEpoch, want.err, want.offset, want.timestamp, wantEpoch)
	}
}

func TestListOffsetsEmptyTopic(t *testing.T) {
	h, _ := newTestHandler(t)
	createTopic(t, h, "empty", 2, nil)
	for v := int16(1); v <= 11; v++ {
		// Partitions 0 and 1 in one request; a partition named twice in
		// one request would be INVALID_REQUEST.
		got := listOffsets(t, h, v, 0, listQuery{"empty", 0, -2, -1}, listQuery{"empty", 1, -1, -1})
		checkListAnswer(t, "earliest", v, got[0], listAnswer{nil, 0, -1, 0})
		checkListAnswer(t, "latest", v, got[1], listAnswer{nil, 0, -1, 0})
		got = listOffsets(t, h, v, 0, listQuery{"empty", 0, -3, -1}, listQuery{"empty", 1, 1000, -1})
		checkListAnswer(t, "max timestamp", v, got[0], listAnswer{nil, -1, -1, -1})
		checkListAnswer(t, "by timestamp", v, got[1], listAnswer{nil, -1, -1, -1})
	}
}

func TestListOffsetsWithRecords(t *testing.T) {
	h, store := newTestHandler(t)
	createTopic(t, h, "timed", 1, nil)
	appendRecords(t, store, "timed", 0, 1000, 3000, 2000) // offsets 0-2
	appendRecords(t, store, "timed", 0, 5000, 4000)       // offsets 3-4

	cases := []struct {
		what      string
		timestamp int64
		want      listAnswer
	}{
		{"earliest", -2, listAnswer{nil, 0, -1, 0}},
		{"latest", -1, listAnswer{nil, 5, -1, 0}},
		{"max timestamp", -3, listAnswer{nil, 3, 5000, 0}},
		{"earliest local", -4, listAnswer{nil, 0, -1, 0}},
		{"latest tiered", -5, listAnswer{nil, -1, -1, -1}},
		{"earliest pending upload", -6, listAnswer{nil, -1, -1, -1}},
		{"other negative", -7, listAnswer{nil, 0, 1000, 0}},
		{"before all", 0, listAnswer{nil, 0, 1000, 0}},
		{"exact", 2000, listAnswer{nil, 1, 3000, 0}}, // the first record at or after 2000 by offset
		{"between", 2500, listAnswer{nil, 1, 3000, 0}},
		{"second batch", 4500, listAnswer{nil, 3, 5000, 0}},
		{"after all", 6000, listAnswer{nil, -1, -1, -1}},
	}
	for _, v := range []int16{1, 4, 7, 11} {
		for _, c := range cases {
			got := listOffsets(t, h, v, 0, listQuery{"timed", 0, c.timestamp, -1})
			checkListAnswer(t, c.what, v, got[0], c.want)
		}
	}
	// read_committed: the last stable offset is the high watermark.
	got := listOffsets(t, h, 11, 1, listQuery{"timed", 0, -1, -1})
	checkListAnswer(t, "read_committed latest", 11, got[0], listAnswer{nil, 5, -1, 0})
}

func TestListOffsetsErrors(t *testing.T) {
	h, _ := newTestHandler(t)
	createTopic(t, h, "known", 1, nil)
	got := listOffsets(t, h, 11, 0,
		listQuery{"unknown", 0, -1, -1},
		listQuery{"known", 1, -1, -1},
		listQuery{"known", -1, -1, -1},
	)
	for i, what := range []string{"unknown topic", "unknown partition", "negative partition"} {
		checkListAnswer(t, what, 11, got[i], listAnswer{kerr.UnknownTopicOrPartition, -1, -1, -1})
	}

	got = listOffsets(t, h, 11, 0,
		listQuery{"known", 0, -1, 0},
		listQuery{"known", 0, -1, 1},
	)
	for _, p := range got {
		checkListAnswer(t, "duplicate", 11, p, listAnswer{kerr.InvalidRequest, -1, -1, -1})
	}

	for _, c := range []struct {
		epoch int32
		want  listAnswer
	}{
		{0, listAnswer{nil, 0, -1, 0}},
		{-1, listAnswer{nil, 0, -1, 0}},
		{1, listAnswer{kerr.UnknownLeaderEpoch, -1, -1, -1}},
		{-2, listAnswer{kerr.FencedLeaderEpoch, -1, -1, -1}},
	} {
		got := listOffsets(t, h, 4, 0, listQuery{"known", 0, -1, c.epoch})
		checkListAnswer(t, "epoch check", 4, got[0], c.want)
	}
}
