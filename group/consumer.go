package group

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/rocketkafka/broker/log"
)

// Epochs a ConsumerGroupHeartbeat sends to leave: for good, or (a static
// member) for now, keeping its partitions until its session ends or its
// instance comes back.
const (
	leaveEpoch       int32 = -1
	staticLeaveEpoch int32 = -2
)

// maxIDBytes bounds group, member, instance and rack ids: the records
// that store them give their lengths in 16 bits, as Kafka's do.
const maxIDBytes = math.MaxInt16

// memberState is where a consumer group member is on its way to its
// target assignment, as Kafka names the states.
type memberState int8

const (
	// memberStable: the member has its target assignment, at the
	// target's epoch.
	memberStable memberState = iota
	// memberUnrevokedPartitions: the member must give up partitions, and
	// say so in a heartbeat, before it gets anything new.
	memberUnrevokedPartitions
	// memberUnreleasedPartitions: the member is at the target's epoch but
	// waits for partitions that other members have not given up yet.
	memberUnreleasedPartitions
)

// topicIDPartition names a partition as KIP-848 assignments do.
type topicIDPartition struct {
	topic     log.TopicID
	partition int32
}

// consumerGroup is the KIP-848 state of a consumer group: its members,
// their target assignment and where each member is on the way to it. The
// group's mutex guards it.
type consumerGroup struct {
	epoch           int32 // the group epoch, bumped by every change of members or subscriptions
	assignmentEpoch int32 // the group epoch the target was computed at
	assignor        string

	members map[string]*consumerMember
	static  map[string]string // group.instance.id -> member id
	target  map[string]assignment
	// owners maps every partition a member holds (assigned or still to
	// revoke) to that member, so no partition goes to a second member
	// before the first has given it up.
	owners map[topicIDPartition]string

	// partitions is the partition count of every subscribed topic, as
	// the target was computed from; catalog is the store's catalogue
	// version it was resolved at.
	partitions map[log.TopicID]int32
	catalog    uint64

	// dirty holds the members (and groupRecordID, the group itself)
	// whose stored records a change has made out of date.
	dirty map[string]bool
}

// consumerMember is one member of a consumer group.
type consumerMember struct {
	id         string
	instanceID *string
	rackID     *string
	clientID   string
	clientHost string

	rebalanceTimeout time.Duration
	topicNames       []string // as subscribed, sorted
	regex            string   // "" when none
	re               *regexp.Regexp
	serverAssignor   string // "" when none
	// subscribed is what topicNames and regex resolve to among the topics
	// that exist, sorted.
	subscribed []log.TopicID

	epoch, previousEpoch int32
	state                memberState
	// left is set when a static member left for now (epoch -2).
	left     bool
	assigned assignment
	revoking assignment
	// assignedAt is the member epoch each assigned partition came with,
	// so a commit made with an older epoch is accepted for partitions the
	// member has held since (KIP-1251).
	assignedAt map[topicIDPartition]int32

	session    *time.Timer
	revocation *time.Timer // the rebalance timeout while revoking
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{
		members: map[string]*consumerMember{},
		static:  map[string]string{},
		target:  map[string]assignment{},
		owners:  map[topicIDPartition]string{},
		dirty:   map[string]bool{},
	}
}

// stateName is the group's state as Kafka names a consumer group's.
func (cg *consumerGroup) stateName() string {
	if len(cg.members) == 0 {
		return "Empty"
	}
	if cg.epoch != cg.assignmentEpoch {
		return "Assigning"
	}
	for _, m := range cg.members {
		if m.state != memberStable || m.epoch != cg.assignmentEpoch {
			return "Reconciling"
		}
	}
	return "Stable"
}

func (cg *consumerGroup) sortedMembers() []*consumerMember {
	out := slices.Collect(maps.Values(cg.members))
	slices.SortFunc(out, func(a, b *consumerMember) int { return cmp.Compare(a.id, b.id) })
	return out
}

// heartbeatError is an error for the client, with Kafka's message.
type heartbeatError struct {
	err *kerr.Error
	msg string
}

func invalidRequest(format string, args ...any) *heartbeatError {
	return &heartbeatError{kerr.InvalidRequest, fmt.Sprintf(format, args...)}
}

// validateHeartbeat is Kafka's check of a ConsumerGroupHeartbeat before
// it reaches the group; it compiles the regex the request subscribes
// with, if any.
func validateHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) (*regexp.Regexp, *heartbeatError) {
	switch {
	case req.Group == "":
		return nil, invalidRequest("GroupId can't be empty.")
	case len(req.Group) > maxIDBytes || len(req.MemberID) > maxIDBytes ||
		(req.InstanceID != nil && len(*req.InstanceID) > maxIDBytes) || (req.RackID != nil && len(*req.RackID) > maxIDBytes):
		return nil, invalidRequest("Ids can be at most %d bytes.", maxIDBytes)
	case req.Version >= 1 && req.MemberID == "":
		return nil, invalidRequest("MemberId can't be empty.")
	case req.InstanceID != nil && *req.InstanceID == "":
		return nil, invalidRequest("InstanceId can't be empty.")
	case req.RackID != nil && *req.RackID == "":
		return nil, invalidRequest("RackId can't be empty.")
	}
	switch {
	case req.MemberEpoch == 0:
		if req.RebalanceTimeoutMillis < 0 {
			return nil, invalidRequest("RebalanceTimeoutMs must be provided in first request.")
		}
		if req.Topics == nil || len(req.Topics) > 0 {
			return nil, invalidRequest("TopicPartitions must be empty when (re-)joining.")
		}
		if req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil {
			return nil, invalidRequest("Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.")
		}
	case req.MemberEpoch < staticLeaveEpoch:
		return nil, invalidRequest("MemberEpoch is invalid.")
	}
	if req.ServerAssignor != nil {
		if _, ok := assignors[*req.ServerAssignor]; !ok {
			return nil, &heartbeatError{kerr.UnsupportedAssignor, fmt.Sprintf("ServerAssignor %s is not supported. Supported assignors: range, uniform.", *req.ServerAssignor)}
		}
	}
	if req.SubscribedTopicRegex == nil || *req.SubscribedTopicRegex == "" {
		return nil, nil
	}
	re, err := compileSubscription(*req.SubscribedTopicRegex)
	if err != nil {
		return nil, &heartbeatError{kerr.InvalidRegularExpression, fmt.Sprintf("SubscribedTopicRegex `%s` is not a valid regular expression: %v.", *req.SubscribedTopicRegex, err)}
	}
	return re, nil
}

// compileSubscription compiles a subscription regex, which must match a
// whole topic name, as Kafka's RE2/J matches() does. The expression is
// checked on its own first: wrapped, "a)|(b" would be valid and match
// anywhere.
func compileSubscription(expr string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(expr); err != nil {
		return nil, err
	}
	return regexp.Compile("^(?:" + expr + ")$")
}

// ConsumerGroupHeartbeat serves ConsumerGroupHeartbeat v0-v1 (KIP-848):
// a member joins (epoch 0), heartbeats with its epoch and the partitions
// it owns, or leaves (-1, or -2 for a static member leaving for now). The
// coordinator computes the group's target assignment with the server
// assignor and moves each member towards it, a member giving up its
// partitions before another gets them.
func (c *Coordinator) ConsumerGroupHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest, client Client) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	fail := func(e *heartbeatError) *kmsg.ConsumerGroupHeartbeatResponse {
		resp = req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = e.err.Code
		if e.msg != "" {
			resp.ErrorMessage = kmsg.StringPtr(e.msg)
		}
		return resp
	}
	re, herr := validateHeartbeat(req)
	if herr != nil {
		return fail(herr)
	}
	joining := req.MemberEpoch == 0
	g := c.lockGroup(req.Group, joining)
	if g == nil {
		return fail(&heartbeatError{kerr.GroupIDNotFound, fmt.Sprintf("Consumer group %s not found.", req.Group)})
	}
	defer g.mu.Unlock()
	if c.closed.Load() {
		return fail(&heartbeatError{err: kerr.NotCoordinator})
	}
	if g.consumer == nil {
		if herr := g.becomeConsumerGroup(joining); herr != nil {
			return fail(herr)
		}
	}
	if req.Version == 0 && joining && req.MemberID == "" {
		req.MemberID = newConsumerMemberID() // v0: the coordinator names the member
	}
	var herrOut *heartbeatError
	switch req.MemberEpoch {
	case leaveEpoch, staticLeaveEpoch:
		herrOut = g.consumerLeave(req)
		// Kafka answers a leave with the member id and the epoch it left
		// with.
		resp.MemberID, resp.MemberEpoch = kmsg.StringPtr(req.MemberID), req.MemberEpoch
	default:
		herrOut = g.consumerHeartbeat(req, re, client, resp)
	}
	if herrOut != nil {
		return fail(herrOut)
	}
	return resp
}

// newConsumerMemberID is a random id in the form KIP-848 recommends for
// clients: 16 random bytes in URL-safe base64.
func newConsumerMemberID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(u[:])
}

// becomeConsumerGroup makes g, a classic group, a consumer group, which
// Kafka allows while it has no members; its offsets stay. g.mu is held.
func (g *group) becomeConsumerGroup(joining bool) *heartbeatError {
	if !joining || g.state != empty || len(g.pending) > 0 {
		return &heartbeatError{kerr.GroupIDNotFound, fmt.Sprintf("Group %s is not a consumer group.", g.id)}
	}
	if g.storedMeta != nil {
		if err := g.c.write(groupTombstone(g.id)); err != nil {
			return &heartbeatError{err: writeError(err)}
		}
		g.storedMeta = nil
	}
	g.consumer = newConsumerGroup()
	g.protocolType, g.protocol = consumerProtocolType, ""
	g.c.logger.Info("group is now a consumer group (KIP-848)", zap.String("group", g.id))
	return nil
}

// consumerLeave removes a member that leaves with epoch -1, or keeps the
// partitions of a static member that leaves with -2 for its instance to
// take back. The leave of a static member need not repeat its instance
// id: franz-go leaves with -2 and the member id alone, meaning to leave
// for now, and a member id names one member anyway.
func (g *group) consumerLeave(req *kmsg.ConsumerGroupHeartbeatRequest) *heartbeatError {
	cg := g.consumer
	m := cg.members[req.MemberID]
	if req.InstanceID != nil {
		id, ok := cg.static[*req.InstanceID]
		switch {
		case !ok:
			return &heartbeatError{kerr.UnknownMemberID, fmt.Sprintf("Instance id %s is unknown.", *req.InstanceID)}
		case id != req.MemberID:
			return &heartbeatError{kerr.FencedInstanceID, fmt.Sprintf("Instance id %s is in use by member %s.", *req.InstanceID, id)}
		}
	}
	if m == nil {
		return &heartbeatError{kerr.UnknownMemberID, fmt.Sprintf("Member %s is not a member of group %s.", req.MemberID, g.id)}
	}
	if req.MemberEpoch == staticLeaveEpoch && m.instanceID != nil {
		// What it was giving up goes to the others now, as in Kafka; what
		// it kept waits for its instance.
		m.left = true
		cg.release(m, m.revoking)
		m.revoking = nil
		if m.state == memberUnrevokedPartitions {
			m.state = memberStable
		}
		cancel(&m.revocation)
		cg.touch(m.id)
		g.c.logger.Info("static member left the consumer group for now", zap.String("group", g.id), zap.String("member", m.id), zap.String("instance", *m.instanceID))
	} else {
		g.removeConsumerMember(m, "left the group")
	}
	return g.storeConsumerError()
}

// consumerHeartbeat serves a join or a heartbeat of a member.
func (g *group) consumerHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest, re *regexp.Regexp, client Client, resp *kmsg.ConsumerGroupHeartbeatResponse) *heartbeatError {
	cg := g.consumer
	m, joined, herr := g.consumerMemberFor(req)
	if herr != nil {
		return herr
	}
	dirty, subscriptionChanged := joined, joined
	if req.RebalanceTimeoutMillis >= 0 {
		dirty = dirty || m.rebalanceTimeout != millis(req.RebalanceTimeoutMillis)
		m.rebalanceTimeout = millis(req.RebalanceTimeoutMillis)
	}
	if req.RackID != nil && (m.rackID == nil || *m.rackID != *req.RackID) {
		m.rackID, dirty = req.RackID, true
	}
	if m.clientID != client.ID || m.clientHost != client.Host {
		m.clientID, m.clientHost, dirty = client.ID, client.Host, true
	}
	if req.SubscribedTopicNames != nil {
		names := slices.Compact(slices.Sorted(slices.Values(req.SubscribedTopicNames)))
		if !slices.Equal(names, m.topicNames) {
			m.topicNames, subscriptionChanged = names, true
		}
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.regex {
		m.regex, m.re, subscriptionChanged = *req.SubscribedTopicRegex, re, true
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.serverAssignor {
		m.serverAssignor, subscriptionChanged = *req.ServerAssignor, true
	}
	dirty = dirty || subscriptionChanged
	if g.refreshSubscriptions(subscriptionChanged) || joined {
		g.bumpEpoch("subscriptions changed")
		dirty = true
	}

	before := m.assigned
	if g.reconcile(m, req.Topics) {
		dirty = true
	}
	g.scheduleConsumerSession(m)

	resp.MemberID = kmsg.StringPtr(m.id)
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(g.c.opts.ConsumerHeartbeatInterval.Milliseconds())
	full := req.MemberEpoch == 0 || (req.RebalanceTimeoutMillis != -1 &&
		(req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Topics != nil)
	if full || !assignmentsEqual(before, m.assigned) {
		resp.Assignment = heartbeatAssignment(m.assigned)
	}
	if dirty {
		cg.touch(m.id)
	}
	if herr := g.storeConsumerError(); herr != nil {
		return herr
	}
	if cg.members[m.id] != m {
		return &heartbeatError{kerr.UnknownServerError, fmt.Sprintf("Member %s's assignment or subscription is too large to store.", m.id)}
	}
	return nil
}

// consumerMemberFor finds the member a heartbeat is from, or adds it when
// it joins; joined reports a new member, which starts a new group epoch
// (a static member's new instance takes the old one's place and does not).
func (g *group) consumerMemberFor(req *kmsg.ConsumerGroupHeartbeatRequest) (m *consumerMember, joined bool, herr *heartbeatError) {
	cg := g.consumer
	if req.MemberEpoch != 0 {
		// As Kafka, a static member is found by its instance id first, so
		// the old instance of one that rejoined with a new member id is
		// told it is fenced.
		if req.InstanceID != nil {
			id, ok := cg.static[*req.InstanceID]
			switch {
			case !ok:
				return nil, false, &heartbeatError{kerr.UnknownMemberID, fmt.Sprintf("Instance id %s is unknown.", *req.InstanceID)}
			case id != req.MemberID:
				return nil, false, &heartbeatError{kerr.FencedInstanceID, fmt.Sprintf("Instance id %s is in use by member %s.", *req.InstanceID, id)}
			}
		}
		m = cg.members[req.MemberID]
		if m == nil {
			return nil, false, &heartbeatError{kerr.UnknownMemberID, fmt.Sprintf("Member %s is not a member of group %s.", req.MemberID, g.id)}
		}
		// A static member that left is at epoch -2 until its instance
		// rejoins with epoch 0: a heartbeat still in flight is fenced.
		if m.left || req.MemberEpoch > m.epoch || (req.MemberEpoch < m.epoch &&
			(req.MemberEpoch != m.previousEpoch || !ownsOnly(req.Topics, m.assigned))) {
			return nil, false, &heartbeatError{kerr.FencedMemberEpoch, fmt.Sprintf("The consumer group member has an invalid epoch %d; the current epoch is %d.", req.MemberEpoch, m.epoch)}
		}
		return m, false, nil
	}
	if m = cg.members[req.MemberID]; m != nil && !sameInstance(m.instanceID, req.InstanceID) {
		return nil, false, invalidRequest("MemberId %s is in use by another member of the group.", req.MemberID)
	}
	if inst := req.InstanceID; inst != nil && m == nil {
		if prev := cg.members[cg.static[*inst]]; prev != nil {
			if !prev.left {
				return nil, false, &heartbeatError{kerr.UnreleasedInstanceID, fmt.Sprintf("Static member %s with instance id %s is still in the group.", prev.id, *inst)}
			}
			return g.replaceStaticMember(prev, req.MemberID), false, nil
		}
	}
	if m != nil {
		// A rejoin with epoch 0 and the same id, after a lost response:
		// the member carries on and gets its whole assignment again.
		if m.left {
			m.left = false
			cg.touch(m.id)
		}
		return m, false, nil
	}
	if len(cg.members) >= g.c.opts.ConsumerMaxSize {
		return nil, false, &heartbeatError{kerr.GroupMaxSizeReached, fmt.Sprintf("The consumer group has reached its maximum capacity of %d members.", g.c.opts.ConsumerMaxSize)}
	}
	m = &consumerMember{
		id:         req.MemberID,
		instanceID: req.InstanceID,
		assigned:   assignment{},
		assignedAt: map[topicIDPartition]int32{},
	}
	cg.members[m.id] = m
	if m.instanceID != nil {
		cg.static[*m.instanceID] = m.id
	}
	cg.touch(m.id)
	if len(cg.members) == 1 {
		g.transition(stable)
	}
	g.c.logger.Info("member joined the consumer group", zap.String("group", g.id), zap.String("member", m.id))
	return m, true, nil
}

// replaceStaticMember hands a static member's place, partitions and epoch
// to the new member id its restarted instance joined with (KIP-345), so
// the group does not rebalance.
func (g *group) replaceStaticMember(prev *consumerMember, id string) *consumerMember {
	cg := g.consumer
	m := *prev
	m.id, m.left, m.session, m.revocation = id, false, nil, nil
	cancel(&prev.session)
	cancel(&prev.revocation)
	delete(cg.members, prev.id)
	cg.members[id] = &m
	cg.static[*m.instanceID] = id
	cg.touch(prev.id)
	cg.touch(id)
	cg.target[id] = cg.target[prev.id]
	delete(cg.target, prev.id)
	for tp, owner := range cg.owners {
		if owner == prev.id {
			cg.owners[tp] = id
		}
	}
	if m.state == memberUnrevokedPartitions {
		g.scheduleRevocation(&m)
	}
	g.c.logger.Info("static member rejoined with a new member id",
		zap.String("group", g.id), zap.String("instance", *m.instanceID), zap.String("old_member", prev.id), zap.String("member", id))
	return &m
}

// sameInstance reports whether two group instance ids are the same, or
// both absent.
func sameInstance(a, b *string) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// ownsOnly reports whether owned, as a heartbeat gives it, lists only
// partitions of assigned; a heartbeat that does not give it cannot show
// that.
func ownsOnly(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, assigned assignment) bool {
	if owned == nil {
		return false
	}
	for _, t := range owned {
		for _, p := range t.Partitions {
			if !assigned.has(t.TopicID, p) {
				return false
			}
		}
	}
	return true
}

// ownsAny reports whether owned lists a partition of ps; a heartbeat
// that does not give owned may own them all.
func ownsAny(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, ps assignment) bool {
	if owned == nil {
		return true
	}
	for _, t := range owned {
		for _, p := range t.Partitions {
			if ps.has(t.TopicID, p) {
				return true
			}
		}
	}
	return false
}

// refreshSubscriptions resolves every member's subscription against the
// topics that exist, when a subscription or the catalogue changed since
// the last time, and reports whether the group's subscribed topics (a
// member's set, or a topic's partition count) changed.
func (g *group) refreshSubscriptions(force bool) bool {
	cg := g.consumer
	version := g.c.store.CatalogVersion()
	if !force && version == cg.catalog {
		return false
	}
	cg.catalog = version
	topics := g.c.store.Topics()
	byName := make(map[string]log.Topic, len(topics))
	for _, t := range topics {
		byName[t.Name] = t
	}
	matches := map[string][]log.TopicID{} // regex -> topics, shared by members
	partitions := map[log.TopicID]int32{}
	changed := false
	for _, m := range cg.members {
		set := map[log.TopicID]bool{}
		for _, name := range m.topicNames {
			if t, ok := byName[name]; ok {
				set[t.ID] = true
			}
		}
		if m.re != nil {
			ids, ok := matches[m.regex]
			if !ok {
				for _, t := range topics {
					if m.re.MatchString(t.Name) {
						ids = append(ids, t.ID)
					}
				}
				matches[m.regex] = ids
			}
			for _, id := range ids {
				set[id] = true
			}
		}
		subscribed := slices.SortedFunc(maps.Keys(set), compareTopicID)
		if !slices.Equal(subscribed, m.subscribed) {
			m.subscribed, changed = subscribed, true
		}
		for _, id := range subscribed {
			if t, ok := g.c.store.TopicByID(id); ok {
				partitions[id] = t.Partitions
			}
		}
	}
	if !maps.Equal(partitions, cg.partitions) {
		cg.partitions, changed = partitions, true
	}
	return changed
}

// bumpEpoch starts a new group epoch and computes its target assignment.
func (g *group) bumpEpoch(reason string) {
	cg := g.consumer
	cg.epoch++
	spec := assignSpec{partitions: cg.partitions}
	for _, m := range cg.sortedMembers() {
		spec.members = append(spec.members, assignMember{
			id: m.id, topics: m.subscribed, current: cg.target[m.id],
		})
	}
	cg.assignor = cg.selectAssignor()
	target := assignors[cg.assignor].assign(spec)
	for id, a := range target {
		if !assignmentsEqual(a, cg.target[id]) {
			cg.touch(id)
		}
	}
	cg.target = target
	cg.assignmentEpoch = cg.epoch
	cg.touch(groupRecordID)
	g.c.logger.Info("computed the consumer group's target assignment", zap.String("group", g.id), zap.Int32("epoch", cg.epoch),
		zap.String("assignor", cg.assignor), zap.Int("members", len(cg.members)), zap.String("reason", reason))
}

// selectAssignor is the assignor the most members ask for, ties going to
// the name first in order, else the default (uniform), as Kafka picks.
func (cg *consumerGroup) selectAssignor() string {
	votes := map[string]int{}
	for _, m := range cg.members {
		if m.serverAssignor != "" {
			votes[m.serverAssignor]++
		}
	}
	best := defaultAssignor
	for _, name := range slices.Sorted(maps.Keys(votes)) {
		if votes[name] > votes[best] {
			best = name
		}
	}
	return best
}

// reconcile moves m towards its target assignment, given the partitions
// its heartbeat says it owns (nil when not given); it reports whether m
// changed. Kafka's rules: partitions to give up are revoked first, at the
// member's epoch; once the member no longer owns them it moves to the
// target's epoch and gets the target's partitions that no other member
// holds, the rest as they are released.
func (g *group) reconcile(m *consumerMember, owned []kmsg.ConsumerGroupHeartbeatRequestTopic) bool {
	cg := g.consumer
	switch m.state {
	case memberStable:
		if m.epoch == cg.assignmentEpoch {
			return false
		}
	case memberUnrevokedPartitions:
		if ownsAny(owned, m.revoking) {
			return false
		}
		cg.release(m, m.revoking)
		m.revoking = nil
		cancel(&m.revocation)
	}
	return g.advance(m, owned)
}

// advance computes m's next assignment towards its target.
func (g *group) advance(m *consumerMember, owned []kmsg.ConsumerGroupHeartbeatRequestTopic) bool {
	cg := g.consumer
	target := cg.target[m.id]
	keep, revoke, gain := assignment{}, assignment{}, []topicIDPartition{}
	unreleased := false
	for id, ps := range m.assigned {
		for _, p := range ps {
			if target.has(id, p) {
				keep.add(id, p)
			} else {
				revoke.add(id, p)
			}
		}
	}
	for id, ps := range target {
		for _, p := range ps {
			if m.assigned.has(id, p) {
				continue
			}
			tp := topicIDPartition{id, p}
			if owner, held := cg.owners[tp]; held && owner != m.id {
				unreleased = true
			} else {
				gain = append(gain, tp)
			}
		}
	}
	oldState, oldEpoch := m.state, m.epoch
	if len(revoke) > 0 && ownsAny(owned, revoke) {
		m.assigned, m.revoking, m.state = keep, revoke, memberUnrevokedPartitions
		g.scheduleRevocation(m)
		return true
	}
	cg.release(m, revoke) // already given up
	for _, tp := range gain {
		keep.add(tp.topic, tp.partition)
		cg.owners[tp] = m.id
		m.assignedAt[tp] = cg.assignmentEpoch
	}
	for tp := range m.assignedAt {
		if !keep.has(tp.topic, tp.partition) {
			delete(m.assignedAt, tp)
		}
	}
	changed := len(revoke) > 0 || len(gain) > 0
	m.assigned = keep
	if m.epoch != cg.assignmentEpoch {
		m.previousEpoch, m.epoch = m.epoch, cg.assignmentEpoch
	}
	m.state = memberStable
	if unreleased {
		m.state = memberUnreleasedPartitions
	}
	return changed || m.state != oldState || m.epoch != oldEpoch
}

// release gives up m's hold on ps.
func (cg *consumerGroup) release(m *consumerMember, ps assignment) {
	for id, parts := range ps {
		for _, p := range parts {
			tp := topicIDPartition{id, p}
			if cg.owners[tp] == m.id {
				delete(cg.owners, tp)
			}
			delete(m.assignedAt, tp)
		}
	}
}

// scheduleConsumerSession (re)starts m's session: without a heartbeat
// within group.consumer.session.timeout.ms it is removed.
func (g *group) scheduleConsumerSession(m *consumerMember) {
	g.schedule(&m.session, g.c.opts.ConsumerSessionTimeout, func() {
		if g.consumer == nil || g.consumer.members[m.id] != m {
			return
		}
		g.c.logger.Info("consumer group member session expired", zap.String("group", g.id), zap.String("member", m.id))
		g.removeConsumerMember(m, "session expired")
		g.storeConsumerLogged()
	})
}

// scheduleRevocation gives m its rebalance timeout to revoke; a member
// that has not revoked by then is removed, as in Kafka.
func (g *group) scheduleRevocation(m *consumerMember) {
	g.schedule(&m.revocation, m.rebalanceTimeout, func() {
		if g.consumer == nil || g.consumer.members[m.id] != m || m.state != memberUnrevokedPartitions {
			return
		}
		g.c.logger.Info("consumer group member did not revoke its partitions in time", zap.String("group", g.id), zap.String("member", m.id))
		g.removeConsumerMember(m, "revocation timed out")
		g.storeConsumerLogged()
	})
}

// removeConsumerMember removes m, frees its partitions and starts a new
// group epoch without it.
func (g *group) removeConsumerMember(m *consumerMember, reason string) {
	cg := g.consumer
	cancel(&m.session)
	cancel(&m.revocation)
	cg.release(m, m.assigned)
	cg.release(m, m.revoking)
	delete(cg.members, m.id)
	delete(cg.target, m.id)
	cg.touch(m.id)
	if m.instanceID != nil && cg.static[*m.instanceID] == m.id {
		delete(cg.static, *m.instanceID)
	}
	g.c.logger.Info("member removed from the consumer group", zap.String("group", g.id), zap.String("member", m.id), zap.String("reason", reason))
	g.refreshSubscriptions(true)
	g.bumpEpoch("member " + m.id + " " + reason)
	if len(cg.members) == 0 {
		g.transition(empty)
	}
}

// heartbeatAssignment is an assignment as a heartbeat response gives it.
func heartbeatAssignment(a assignment) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	out := &kmsg.ConsumerGroupHeartbeatResponseAssignment{}
	out.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	for _, id := range slices.SortedFunc(maps.Keys(a), compareTopicID) {
		t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		t.TopicID, t.Partitions = id, slices.Clone(a[id])
		out.Topics = append(out.Topics, t)
	}
	return out
}

// add puts partition p of topic id into a, keeping its list sorted.
func (a assignment) add(id log.TopicID, p int32) {
	ps := a[id]
	i, found := slices.BinarySearch(ps, p)
	if !found {
		a[id] = slices.Insert(ps, i, p)
	}
}

// has reports whether a holds partition p of topic id.
func (a assignment) has(id log.TopicID, p int32) bool {
	_, found := slices.BinarySearch(a[id], p)
	return found
}

func assignmentsEqual(a, b assignment) bool {
	return maps.EqualFunc(a, b, func(x, y []int32) bool { return slices.Equal(x, y) })
}

// ConsumerGroupDescribe serves ConsumerGroupDescribe v0-v1: the consumer
// groups' epochs, assignor and members with their assignments and
// targets. A classic group, or none, is GROUP_ID_NOT_FOUND.
func (c *Coordinator) ConsumerGroupDescribe(req *kmsg.ConsumerGroupDescribeRequest) *kmsg.ConsumerGroupDescribeResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, id := range req.Groups {
		dg := kmsg.NewConsumerGroupDescribeResponseGroup()
		dg.Group = id
		switch g := c.lockGroup(id, false); {
		case id == "":
			if g != nil {
				g.mu.Unlock()
			}
			dg.ErrorCode = kerr.InvalidGroupID.Code
		case g == nil:
			dg.ErrorCode, dg.ErrorMessage = kerr.GroupIDNotFound.Code, kmsg.StringPtr(fmt.Sprintf("Group %s not found.", id))
		case g.consumer == nil:
			g.mu.Unlock()
			dg.ErrorCode, dg.ErrorMessage = kerr.GroupIDNotFound.Code, kmsg.StringPtr(fmt.Sprintf("Group %s is not a consumer group.", id))
		default:
			g.describeConsumer(&dg)
			g.mu.Unlock()
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (g *group) describeConsumer(dg *kmsg.ConsumerGroupDescribeResponseGroup) {
	cg := g.consumer
	dg.State, dg.Epoch, dg.AssignmentEpoch, dg.AssignorName = cg.stateName(), cg.epoch, cg.assignmentEpoch, cmp.Or(cg.assignor, defaultAssignor)
	for _, m := range cg.sortedMembers() {
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.RackID, dm.MemberEpoch = m.id, m.instanceID, m.rackID, m.epoch
		if m.left {
			dm.MemberEpoch = staticLeaveEpoch
		}
		dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
		dm.SubscribedTopics = slices.Clone(m.topicNames)
		if dm.SubscribedTopics == nil {
			dm.SubscribedTopics = []string{}
		}
		if m.regex != "" {
			dm.SubscribedTopicRegex = kmsg.StringPtr(m.regex)
		}
		dm.Assignment = g.describeAssignment(m.assigned)
		dm.TargetAssignment = g.describeAssignment(cg.target[m.id])
		dm.MemberType = 1 // a consumer-protocol member
		dg.Members = append(dg.Members, dm)
	}
}

func (g *group) describeAssignment(a assignment) kmsg.Assignment {
	out := kmsg.Assignment{TopicPartitions: []kmsg.AssignmentTopicPartition{}}
	for _, id := range slices.SortedFunc(maps.Keys(a), compareTopicID) {
		tp := kmsg.AssignmentTopicPartition{TopicID: id, Partitions: slices.Clone(a[id])}
		if t, ok := g.c.store.TopicByID(id); ok {
			tp.Topic = t.Name
		}
		out.TopicPartitions = append(out.TopicPartitions, tp)
	}
	return out
}

// consumerSubscribedTopics is the union of the topics the members
// subscribe to that exist, by name.
func (cg *consumerGroup) subscribedTopicNames(store *log.Log) map[string]bool {
	out := map[string]bool{}
	for _, m := range cg.members {
		for _, id := range m.subscribed {
			if t, ok := store.TopicByID(id); ok {
				out[t.Name] = true
			}
		}
	}
	return out
}

// validateConsumerCommit is Kafka's check of an offset commit to a
// consumer group. A commit without a member epoch is allowed only while
// the group has no members. A member commits with its epoch, or with an
// older one for partitions it has held since that epoch (KIP-1251), so a
// commit that crosses an epoch bump is not refused.
func (g *group) validateConsumerCommit(memberID string, epoch int32, version int16, tps []topicPartition) *kerr.Error {
	cg := g.consumer
	if epoch < 0 && len(cg.members) == 0 {
		return nil
	}
	m := cg.members[memberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID
	case version < 9:
		return kerr.UnsupportedVersion
	case epoch == m.epoch:
		return nil
	case epoch > m.epoch:
		return kerr.StaleMemberEpoch
	}
	for _, tp := range tps {
		t, ok := g.c.store.Topic(tp.topic)
		if !ok {
			continue // answered UNKNOWN_TOPIC_OR_PARTITION anyway
		}
		if at, held := m.assignedAt[topicIDPartition{t.ID, tp.partition}]; !held || at > epoch {
			return kerr.StaleMemberEpoch
		}
	}
	return nil
}

// validateConsumerFetch is Kafka's check of an OffsetFetch that names a
// member of a consumer group: it must be a member, at its epoch.
func (g *group) validateConsumerFetch(memberID *string, epoch int32) *kerr.Error {
	if memberID == nil && epoch < 0 {
		return nil
	}
	var id string
	if memberID != nil {
		id = *memberID
	}
	m := g.consumer.members[id]
	switch {
	case m == nil:
		return kerr.UnknownMemberID
	case epoch != m.epoch:
		return kerr.StaleMemberEpoch
	}
	return nil
}
