package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator: v0-v6 (v4+ batches keys).
//
// This broker is the only one, so it is the coordinator of every group.
// Transactions are not served yet, so a transaction coordinator lookup
// gets COORDINATOR_NOT_AVAILABLE, which is also what Kafka answers while
// its transaction state is unavailable. Besides groups, librdkafka before
// 2.10 only enables LZ4 when a broker lists this API.

func init() {
	register(api{key: 10, min: 0, max: 6, serve: typed(serveFindCoordinator)})
}

const coordinatorKeyGroup = 0

func serveFindCoordinator(h *Handler, _ context.Context, _ *request, req *kmsg.FindCoordinatorRequest) (*kmsg.FindCoordinatorResponse, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Host, c.Port = key, -1, "", -1
		switch {
		case req.CoordinatorType != coordinatorKeyGroup:
			c.ErrorCode = kerr.CoordinatorNotAvailable.Code
			c.ErrorMessage = kmsg.StringPtr("transactions are not supported by this broker yet")
		case key == "":
			c.ErrorCode = kerr.InvalidRequest.Code
			c.ErrorMessage = kmsg.StringPtr("a group id must not be empty")
		default:
			c.NodeID, c.Host, c.Port = h.cfg.NodeID, h.cfg.AdvertisedHost, h.cfg.AdvertisedPort
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.ErrorMessage, c.NodeID, c.Host, c.Port
	}
	return resp, nil
}
