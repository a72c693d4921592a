package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups: v0-v5.
//
// Served by the group coordinator: every group, with its protocol type,
// state (v4+) and type (v5+, always "classic"), filtered by state (v4+)
// and type (v5+) case-insensitively.

func init() {
	register(api{key: 16, min: 0, max: 5, groups: true, serve: typed(serveListGroups)})
}

func serveListGroups(h *Handler, _ context.Context, _ *request, req *kmsg.ListGroupsRequest) (*kmsg.ListGroupsResponse, error) {
	return h.groups.ListGroups(req), nil
}
