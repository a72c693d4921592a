package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupHeartbeat: v0-v1.
//
// Served by the group coordinator: KIP-848 consumer groups, whose members
// join (epoch 0), heartbeat with their epoch and owned partitions, and
// leave (-1, or -2 for a static member leaving for now). The coordinator
// computes the target assignment with the server assignor the members
// ask for ("uniform", the default, or "range"), resolves
// SubscribedTopicRegex against every topic (matching whole names, as
// Kafka's RE2/J does) and has each member give up partitions before
// another gets them. In v1 the client names the member; in v0 the
// coordinator does.

func init() {
	register(api{key: 68, min: 0, max: 1, groups: true, serve: typed(serveConsumerGroupHeartbeat)})
}

func serveConsumerGroupHeartbeat(h *Handler, _ context.Context, r *request, req *kmsg.ConsumerGroupHeartbeatRequest) (*kmsg.ConsumerGroupHeartbeatResponse, error) {
	return h.groups.ConsumerGroupHeartbeat(req, groupClient(r)), nil
}
