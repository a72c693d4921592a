package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit: v0-v9.
//
// Served by the group coordinator (package group): the commit is checked
// against the group's generation and member as Kafka does (a commit with
// generation -1 and no member id is a simple consumer's, allowed only
// while the group has no members), each partition must exist
// (UNKNOWN_TOPIC_OR_PARTITION), and the answer comes once the commit is
// stored in __consumer_offsets (and fsynced under SYNC_FLUSH). v9 is the
// KIP-848 version but is the same request for classic groups; it answers
// GROUP_ID_NOT_FOUND where older versions answer ILLEGAL_GENERATION for a
// group that does not exist. v10 (topic IDs) is not served.
//
// Deviation: Kafka 4 no longer serves the oldest versions (KIP-896).

func init() {
	register(api{key: 8, min: 0, max: 9, groups: true, serve: typed(serveOffsetCommit)})
}

func serveOffsetCommit(h *Handler, _ context.Context, _ *request, req *kmsg.OffsetCommitRequest) (*kmsg.OffsetCommitResponse, error) {
	return h.groups.OffsetCommit(req), nil
}
