package protocol

import (
	"context"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rocketkafka/broker/group"
)

// JoinGroup: v0-v9.
//
// Served by the group coordinator, with Kafka's classic protocol: from v4
// a member without an id gets one with MEMBER_ID_REQUIRED and must join
// again with it (KIP-394); a static member (group.instance.id, v5+) that
// rejoins without its id replaces its old id, which is then fenced
// (KIP-345), and from v9 a returning static leader of a Stable group is
// told to skip the assignment (KIP-814). The request waits for the
// rebalance, up to the rebalance timeout (the session timeout in v0), on
// this connection, as in Kafka. The session timeout must be within
// group.min.session.timeout.ms and group.max.session.timeout.ms.
//
// Deviation: Kafka 4 no longer serves the oldest versions (KIP-896).

func init() {
	register(api{key: 11, min: 0, max: 9, groups: true, serve: typed(serveJoinGroup)})
}

func serveJoinGroup(h *Handler, ctx context.Context, r *request, req *kmsg.JoinGroupRequest) (*kmsg.JoinGroupResponse, error) {
	return h.groups.JoinGroup(ctx, req, groupClient(r)), nil
}

// groupClient describes the request's client for member descriptions:
// its client id, and its address as Kafka shows it ("/" and the IP).
func groupClient(r *request) group.Client {
	c := group.Client{ID: r.clientID}
	if r.conn != nil {
		if a, ok := r.conn.RemoteAddr().(*net.TCPAddr); ok {
			c.Host = "/" + a.IP.String()
		}
	}
	return c
}
