package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups: v0-v6.
//
// Served by the group coordinator: state, protocol type, and members,
// whose metadata and assignment (and the group's protocol) are shown only
// while the group is Stable, as in Kafka. A group that does not exist is
// Dead, with GROUP_ID_NOT_FOUND from v6 (KIP-1043). Authorized operations
// (v3+) are every GROUP operation when asked for, there being no
// authorizer.

func init() {
	register(api{key: 15, min: 0, max: 6, groups: true, serve: typed(serveDescribeGroups)})
}

func serveDescribeGroups(h *Handler, _ context.Context, _ *request, req *kmsg.DescribeGroupsRequest) (*kmsg.DescribeGroupsResponse, error) {
	resp := h.groups.DescribeGroups(req)
	if req.IncludeAuthorizedOperations {
		for i := range resp.Groups {
			resp.Groups[i].AuthorizedOperations = groupOperations
		}
	}
	return resp, nil
}
