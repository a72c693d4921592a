package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupDescribe: v0-v1.
//
// Served by the group coordinator: a KIP-848 consumer group's state,
// group and assignment epochs, assignor and members, each with its
// subscription, epoch, assignment and target assignment (member type
// "consumer" from v1). A classic group, or none, is GROUP_ID_NOT_FOUND.
// Authorized operations are every GROUP operation when asked for, there
// being no authorizer.

func init() {
	register(api{key: 69, min: 0, max: 1, groups: true, serve: typed(serveConsumerGroupDescribe)})
}

func serveConsumerGroupDescribe(h *Handler, _ context.Context, _ *request, req *kmsg.ConsumerGroupDescribeRequest) (*kmsg.ConsumerGroupDescribeResponse, error) {
	resp := h.groups.ConsumerGroupDescribe(req)
	for i := range resp.Groups {
		resp.Groups[i].AuthorizedOperations = operationsNotRequested
		if req.IncludeAuthorizedOperations {
			resp.Groups[i].AuthorizedOperations = groupOperations
		}
	}
	return resp, nil
}
