package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets: v1-v11.
//
// Per partition, by the requested timestamp:
//   - -2 earliest and -4 earliest-local (v8+): the log start offset;
//   - -1 latest: the high watermark, which is also the last stable offset
//     for read_committed since there are no transactions;
//   - -3 max timestamp (v7+): the first record with the largest timestamp,
//     -1/-1 when the partition is empty;
//   - -5 latest-tiered (v9+) and -6 earliest-pending-upload (v11+): -1/-1
//     as Kafka answers without tiered storage;
//   - anything else, other negative values included as in Kafka: the first
//     record whose timestamp is at or after it, or -1/-1 (no error) when
//     there is none.
//
// Earliest and latest answers carry timestamp -1. The leader epoch (v4+)
// is 0 for every answer that found an offset, else -1. CurrentLeaderEpoch
// (v4+) -1 skips the check; an older one gets FENCED_LEADER_EPOCH, a newer
// one UNKNOWN_LEADER_EPOCH. A partition named twice in one request gets
// INVALID_REQUEST for each occurrence, an unknown one
// UNKNOWN_TOPIC_OR_PARTITION. TimeoutMillis (v10+) is moot: every answer
// is immediate.

func init() {
	register(api{key: 2, min: 1, max: 11, serve: typed(serveListOffsets)})
}

// ListOffsets special timestamps.
const (
	listLatest                = -1
	listEarliest              = -2
	listMaxTimestamp          = -3
	listEarliestLocal         = -4
	listLatestTiered          = -5
	listEarliestPendingUpload = -6
)

// leaderEpoch is the only leader epoch there is: one broker, never
// re-elected.
const leaderEpoch = 0

func serveListOffsets(h *Handler, _ context.Context, _ *request, req *kmsg.ListOffsetsRequest) (*kmsg.ListOffsetsResponse, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)

	type tp struct {
		topic     string
		partition int32
	}
	count := make(map[tp]int)
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			count[tp{rt.Topic, rp.Partition}]++
		}
	}

	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			if count[tp{rt.Topic, rp.Partition}] > 1 {
				sp.ErrorCode = kerr.InvalidRequest.Code
			} else {
				h.listOffset(&sp, rt.Topic, rp)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// listOffset fills sp, which starts as offset -1, timestamp -1, epoch -1.
func (h *Handler) listOffset(sp *kmsg.ListOffsetsResponseTopicPartition, topic string, rp kmsg.ListOffsetsRequestTopicPartition) {
	p, err := h.store.Partition(topic, rp.Partition)
	if err != nil {
		sp.ErrorCode = errorCode(err)
		return
	}
	switch e := rp.CurrentLeaderEpoch; {
	case e == -1:
	case e < leaderEpoch:
		sp.ErrorCode = kerr.FencedLeaderEpoch.Code
		return
	case e > leaderEpoch:
		sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
		return
	}

	found := func(offset, timestamp int64) {
		sp.Offset, sp.Timestamp, sp.LeaderEpoch = offset, timestamp, leaderEpoch
	}
	switch rp.Timestamp {
	case listEarliest, listEarliestLocal:
		found(p.LogStartOffset(), -1)
	case listLatest:
		// read_uncommitted and read_committed alike: the last stable
		// offset is the high watermark without transactions.
		found(p.HighWatermark(), -1)
	case listLatestTiered, listEarliestPendingUpload:
		// No tiered storage: nothing is, or will be, uploaded.
	case listMaxTimestamp:
		offset, timestamp, err := p.MaxTimestamp()
		if err != nil {
			sp.ErrorCode = errorCode(err)
			return
		}
		if offset >= 0 {
			found(offset, timestamp)
		}
	default:
		offset, timestamp, ok, err := p.OffsetForTimestamp(rp.Timestamp)
		if err != nil {
			sp.ErrorCode = errorCode(err)
			return
		}
		if ok && offset < p.HighWatermark() {
			found(offset, timestamp)
		}
	}
}
