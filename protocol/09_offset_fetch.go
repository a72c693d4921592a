package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch: v0-v9.
//
// Served by the group coordinator in the batched form of v8+; a v0-v7
// request is one group, and its answer is taken back from that group's.
// Topics null (v2+) asks for every committed partition; a partition
// without a commit gets offset -1. Offsets of deleted topics are never
// returned. RequireStable (v7+) changes nothing: without transactions no
// offset is ever pending. v0-v1 have no top-level error code, so a group
// error is given on each partition, as Kafka does. v10 (topic IDs) is not
// served.
//
// Deviation: Kafka 4 no longer serves the oldest versions (KIP-896).

func init() {
	register(api{key: 9, min: 0, max: 9, groups: true, serve: typed(serveOffsetFetch)})
}

func serveOffsetFetch(h *Handler, _ context.Context, _ *request, req *kmsg.OffsetFetchRequest) (*kmsg.OffsetFetchResponse, error) {
	if req.Version >= 8 {
		return h.groups.OffsetFetch(req), nil
	}
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = req.Group
	if req.Topics != nil || req.Version < 2 { // null means all topics only from v2
		rg.Topics = make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(req.Topics))
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetFetchRequestGroupTopic()
		rt.Topic, rt.Partitions = t.Topic, t.Partitions
		rg.Topics = append(rg.Topics, rt)
	}
	batched := kmsg.NewPtrOffsetFetchRequest()
	batched.Version, batched.Groups, batched.RequireStable = 8, []kmsg.OffsetFetchRequestGroup{rg}, req.RequireStable
	g := h.groups.OffsetFetch(batched).Groups[0]

	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	resp.ErrorCode = g.ErrorCode
	if g.ErrorCode != 0 && req.Version < 2 {
		for _, t := range req.Topics {
			st := kmsg.NewOffsetFetchResponseTopic()
			st.Topic = t.Topic
			for _, p := range t.Partitions {
				sp := kmsg.NewOffsetFetchResponseTopicPartition()
				sp.Partition, sp.Offset, sp.Metadata, sp.ErrorCode = p, -1, kmsg.StringPtr(""), g.ErrorCode
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil
	}
	for _, t := range g.Topics {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = t.Topic
		for _, p := range t.Partitions {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata, sp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
