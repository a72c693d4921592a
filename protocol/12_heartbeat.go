package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat: v0-v4.
//
// Served by the group coordinator: it keeps the member's session alive,
// and answers REBALANCE_IN_PROGRESS during a rebalance so the member
// rejoins.

func init() {
	register(api{key: 12, min: 0, max: 4, groups: true, serve: typed(serveHeartbeat)})
}

func serveHeartbeat(h *Handler, _ context.Context, _ *request, req *kmsg.HeartbeatRequest) (*kmsg.HeartbeatResponse, error) {
	return h.groups.Heartbeat(req), nil
}
