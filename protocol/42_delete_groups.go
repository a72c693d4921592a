package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups: v0-v2.
//
// Served by the group coordinator: a group with no members is deleted
// with its committed offsets; one with members gets NON_EMPTY_GROUP, an
// unknown one GROUP_ID_NOT_FOUND.

func init() {
	register(api{key: 42, min: 0, max: 2, groups: true, serve: typed(serveDeleteGroups)})
}

func serveDeleteGroups(h *Handler, _ context.Context, _ *request, req *kmsg.DeleteGroupsRequest) (*kmsg.DeleteGroupsResponse, error) {
	return h.groups.DeleteGroups(req), nil
}
