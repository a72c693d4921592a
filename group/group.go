package group

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// state is a classic group's state, as Kafka names them.
type state int8

const (
	empty state = iota
	preparingRebalance
	completingRebalance
	stable
	dead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s state) String() string { return stateNames[s] }

// consumerProtocolType is the protocol type of Kafka consumers, whose
// subscriptions the coordinator reads (OffsetDelete, offset expiry).
const consumerProtocolType = "consumer"

// group is one classic group and its committed offsets. Every field is
// guarded by mu.
type group struct {
	c  *Coordinator
	id string

	mu         sync.Mutex
	state      state
	prevState  state
	stateSince time.Time // when the group entered its state; zero for groups rebuilt from the log

	protocolType string // "" until the first member joins; kept when the group empties, as Kafka does
	protocol     string // the selected protocol of the generation, "" when Empty
	generation   int32
	leader       string // "" when there are no members

	members     map[string]*member
	static      map[string]string      // group.instance.id -> member id
	pending     map[string]*time.Timer // KIP-394: member ids handed out with MEMBER_ID_REQUIRED, until they join or time out
	pendingSync map[string]bool        // members of the generation that have not sent SyncGroup yet

	// newMemberAdded extends the initial rebalance delay while members
	// keep arriving.
	newMemberAdded bool
	joinTimer      *time.Timer // the rebalance (or initial delay) timeout while PreparingRebalance
	syncTimer      *time.Timer // the pending-sync timeout while CompletingRebalance or Stable

	offsets map[topicPartition]offset
	// storedMeta is the group's GroupMetadataValue last written to the
	// log (nil if none is live there), which compaction rewrites as is.
	storedMeta []byte

	// consumer is set for a consumer group (KIP-848), whose members are
	// there; members and the rest of the classic state stay empty.
	// storedConsumer holds its records live in the log, the group's
	// (groupRecordID) and each member's, which compaction rewrites.
	consumer       *consumerGroup
	storedConsumer map[string][]byte
}

// member is one member of a classic group.
type member struct {
	id         string
	instanceID *string // static membership (KIP-345)
	clientID   string
	clientHost string

	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol
	assignment       []byte

	// joinCh is set while a JoinGroup is parked, syncCh while a SyncGroup
	// is; each is buffered, so answering never blocks on a caller that has
	// gone away.
	joinCh chan *kmsg.JoinGroupResponse
	syncCh chan *kmsg.SyncGroupResponse

	// isNew is set until the member's first join completes: until then its
	// session is the new-member join timeout.
	isNew     bool
	heartbeat *time.Timer
}

func (m *member) awaitingJoin() bool { return m.joinCh != nil }
func (m *member) awaitingSync() bool { return m.syncCh != nil }

// metadata is the member's metadata for protocol.
func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// matches reports whether protocols are the member's, in the same order
// with the same metadata.
func (m *member) matches(protocols []kmsg.JoinGroupRequestProtocol) bool {
	return slices.EqualFunc(m.protocols, protocols, func(a, b kmsg.JoinGroupRequestProtocol) bool {
		return a.Name == b.Name && bytes.Equal(a.Metadata, b.Metadata)
	})
}

func newGroup(c *Coordinator, id string) *group {
	return &group{
		c:           c,
		id:          id,
		stateSince:  c.now(),
		members:     map[string]*member{},
		static:      map[string]string{},
		pending:     map[string]*time.Timer{},
		pendingSync: map[string]bool{},
		offsets:     map[topicPartition]offset{},
	}
}

func (g *group) transition(s state) {
	g.prevState, g.state = g.state, s
	g.stateSince = g.c.now()
}

// schedule replaces the timer in slot with one that runs fn after d with
// g.mu held, unless the slot has been given another timer (or none) by
// then. g.mu must be held.
func (g *group) schedule(slot **time.Timer, d time.Duration, fn func()) {
	if *slot != nil {
		(*slot).Stop()
	}
	var t *time.Timer
	t = g.c.timers.after(d, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if *slot != t || g.state == dead {
			return
		}
		*slot = nil
		fn()
	})
	*slot = t
}

// cancel stops the timer in slot. g.mu must be held.
func cancel(slot **time.Timer) {
	if *slot != nil {
		(*slot).Stop()
		*slot = nil
	}
}

// sortedMembers lists the members by id, so responses do not depend on
// map order.
func (g *group) sortedMembers() []*member {
	out := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *member) int { return cmp.Compare(a.id, b.id) })
	return out
}

// validateMember is Kafka's check of a member id and group instance id
// against the group: UNKNOWN_MEMBER_ID for a member it does not know,
// FENCED_INSTANCE_ID for an instance id now held by another member id.
func (g *group) validateMember(memberID string, instanceID *string) *kerr.Error {
	if instanceID != nil {
		current, ok := g.static[*instanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID
		case current != memberID:
			return kerr.FencedInstanceID
		}
		return nil
	}
	if _, ok := g.members[memberID]; !ok {
		return kerr.UnknownMemberID
	}
	return nil
}

// subscribedTopics is the union of the topics the members subscribe to:
// those a consumer group's members resolved, or, in a classic group,
// those under the selected protocol, read from the consumer protocol's
// subscription (its version 0 prefix, which every version keeps); ok is
// false when a classic group is not a consumer group or a subscription
// does not parse.
func (g *group) subscribedTopics() (topics map[string]bool, ok bool) {
	if g.consumer != nil {
		return g.consumer.subscribedTopicNames(g.c.store), true
	}
	if g.protocolType != consumerProtocolType {
		return nil, false
	}
	topics = map[string]bool{}
	for _, m := range g.members {
		if !subscriptionTopics(m.metadata(g.protocol), topics) {
			return nil, false
		}
	}
	return topics, true
}

// subscriptionTopics adds the topics of a ConsumerProtocolSubscription to
// topics: int16 version, then an array of strings.
func subscriptionTopics(b []byte, topics map[string]bool) bool {
	if len(b) < 6 {
		return false
	}
	n := int32(binary.BigEndian.Uint32(b[2:]))
	b = b[6:]
	if n < 0 {
		return false
	}
	for range n {
		if len(b) < 2 {
			return false
		}
		l := int(int16(binary.BigEndian.Uint16(b)))
		if l < 0 || len(b) < 2+l {
			return false
		}
		topics[string(b[2:2+l])] = true
		b = b[2+l:]
	}
	return true
}

// unload answers every parked request with NOT_COORDINATOR and stops the
// timers, for Close.
func (g *group) unload() {
	for _, m := range g.members {
		g.completeJoin(m, joinError(m.id, kerr.NotCoordinator))
		g.completeSync(m, syncError(kerr.NotCoordinator))
		cancel(&m.heartbeat)
	}
	for id, t := range g.pending {
		t.Stop()
		delete(g.pending, id)
	}
	cancel(&g.joinTimer)
	cancel(&g.syncTimer)
	if g.consumer != nil {
		for _, m := range g.consumer.members {
			cancel(&m.session)
			cancel(&m.revocation)
		}
	}
}
