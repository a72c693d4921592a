package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup: v0-v5.
//
// Served by the group coordinator: the leader's request carries the
// assignment, and every member's request waits for it on this connection
// (REBALANCE_IN_PROGRESS if the group rebalances again meanwhile) until it
// is stored in __consumer_offsets with the generation's members. From v5
// the protocol type and name are checked against the group's
// (INCONSISTENT_GROUP_PROTOCOL) and returned.

func init() {
	register(api{key: 14, min: 0, max: 5, groups: true, serve: typed(serveSyncGroup)})
}

func serveSyncGroup(h *Handler, ctx context.Context, _ *request, req *kmsg.SyncGroupRequest) (*kmsg.SyncGroupResponse, error) {
	return h.groups.SyncGroup(ctx, req), nil
}
