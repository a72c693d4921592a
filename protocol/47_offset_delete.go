package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete: v0.
//
// Served by the group coordinator: the committed offsets of a group with
// no members, or of topics no member of a consumer group subscribes to
// (GROUP_SUBSCRIBED_TO_TOPIC for the others; NON_EMPTY_GROUP for a
// non-consumer group with members).

func init() {
	register(api{key: 47, min: 0, max: 0, groups: true, serve: typed(serveOffsetDelete)})
}

func serveOffsetDelete(h *Handler, _ context.Context, _ *request, req *kmsg.OffsetDeleteRequest) (*kmsg.OffsetDeleteResponse, error) {
	return h.groups.OffsetDelete(req), nil
}
