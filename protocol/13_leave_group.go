package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup: v0-v5.
//
// Served by the group coordinator in the batched form of v3+; a v0-v2
// request is one member, and its member's error becomes the top-level
// one, as in Kafka. From v3 a member may be named by group instance id
// alone, which removes a static member administratively.

func init() {
	register(api{key: 13, min: 0, max: 5, groups: true, serve: typed(serveLeaveGroup)})
}

func serveLeaveGroup(h *Handler, _ context.Context, _ *request, req *kmsg.LeaveGroupRequest) (*kmsg.LeaveGroupResponse, error) {
	if req.Version >= 3 {
		return h.groups.LeaveGroup(req), nil
	}
	batched := kmsg.NewPtrLeaveGroupRequest()
	batched.Version, batched.Group = 3, req.Group
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = req.MemberID
	batched.Members = append(batched.Members, m)
	out := h.groups.LeaveGroup(batched)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	resp.ErrorCode = out.ErrorCode
	if resp.ErrorCode == 0 && len(out.Members) == 1 {
		resp.ErrorCode = out.Members[0].ErrorCode
	}
	return resp, nil
}
