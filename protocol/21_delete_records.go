package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rocketkafka/broker/group"
)

// DeleteRecords: v0-v2.
//
// Moves each partition's log start offset to the requested offset (-1 is
// the high watermark), durably before answering, and returns the new low
// watermark. An offset above the high watermark gets OFFSET_OUT_OF_RANGE;
// one below the current start changes nothing. The CommitLog files the
// deleted records occupied are freed by the next retention pass, once no
// partition's live data remains in them. The internal __consumer_offsets
// topic is refused (INVALID_TOPIC_EXCEPTION): the group coordinator trims
// it itself.

func init() {
	register(api{key: 21, min: 0, max: 2, serve: typed(serveDeleteRecords)})
}

func serveDeleteRecords(h *Handler, _ context.Context, _ *request, req *kmsg.DeleteRecordsRequest) (*kmsg.DeleteRecordsResponse, error) {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			if rt.Topic == group.OffsetsTopic {
				// Deleting from it would silently drop committed offsets.
				sp.ErrorCode = kerr.InvalidTopicException.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p, err := h.store.Partition(rt.Topic, rp.Partition)
			if err == nil {
				sp.LowWatermark, err = p.DeleteRecords(rp.Offset)
			}
			if sp.ErrorCode = errorCode(err); err != nil {
				sp.LowWatermark = -1
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
