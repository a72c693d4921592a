package group

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// Client identifies where a request came from, for member descriptions.
type Client struct {
	ID   string // the request header's client id
	Host string // the client's address as Kafka shows it: "/" and the IP
}

// joinRequest is a JoinGroup being served.
type joinRequest struct {
	req              *kmsg.JoinGroupRequest
	client           Client
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	ch               chan *kmsg.JoinGroupResponse // answered exactly once
}

func millis(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

// strPtr is a nullable string that is null when empty, as Kafka leaves an
// unset protocol type or name.
func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func joinError(memberID string, err *kerr.Error) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.MemberID, resp.ErrorCode = memberID, err.Code
	return resp
}

func syncError(err *kerr.Error) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.ErrorCode = err.Code
	return resp
}

// JoinGroup serves JoinGroup v0-v9. It returns once the member's join
// completes: at once when there is nothing to wait for, else when the
// rebalance it takes part in moves to CompletingRebalance, or with
// NOT_COORDINATOR when ctx ends first.
func (c *Coordinator) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest, client Client) *kmsg.JoinGroupResponse {
	if req.Group == "" {
		return joinError(req.MemberID, kerr.InvalidGroupID)
	}
	j := &joinRequest{
		req:              req,
		client:           client,
		sessionTimeout:   millis(req.SessionTimeoutMillis),
		rebalanceTimeout: millis(req.RebalanceTimeoutMillis),
		ch:               make(chan *kmsg.JoinGroupResponse, 1),
	}
	if req.Version == 0 {
		j.rebalanceTimeout = j.sessionTimeout // v0 has no rebalance timeout
	}
	if j.sessionTimeout < c.opts.MinSessionTimeout || j.sessionTimeout > c.opts.MaxSessionTimeout {
		return joinError(req.MemberID, kerr.InvalidSessionTimeout)
	}
	g := c.lockGroup(req.Group, req.MemberID == "")
	if g == nil {
		return joinError(req.MemberID, kerr.UnknownMemberID)
	}
	if c.closed.Load() {
		// Checked under the group's mutex, so Close's unload of this
		// group, which takes it after the flag is set, cannot miss a join
		// parked here.
		g.mu.Unlock()
		return joinError(req.MemberID, kerr.NotCoordinator)
	}
	if g.consumer != nil {
		if err := g.becomeClassicGroup(); err != nil {
			g.mu.Unlock()
			return joinError(req.MemberID, err)
		}
	}
	if req.MemberID == "" {
		g.joinNew(j)
	} else {
		g.joinExisting(j)
	}
	g.mu.Unlock()
	select {
	case resp := <-j.ch:
		return resp
	case <-ctx.Done():
		select {
		case resp := <-j.ch:
			return resp
		default:
			return joinError(req.MemberID, kerr.NotCoordinator)
		}
	}
}

// supportsProtocols is Kafka's check that a member may join: an Empty
// group takes any non-empty protocol type and list; otherwise the type
// must be the group's and one of the protocols supported by every member.
func (g *group) supportsProtocols(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if g.state == empty {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.supportCount(p.Name) == len(g.members) {
			return true
		}
	}
	return false
}

// supportCount is how many members list protocol.
func (g *group) supportCount(protocol string) int {
	n := 0
	for _, m := range g.members {
		if m.hasProtocol(protocol) {
			n++
		}
	}
	return n
}

func (m *member) hasProtocol(name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

// becomeClassicGroup makes g, a consumer group, a classic group again,
// which Kafka allows while it has no members; its offsets stay.
func (g *group) becomeClassicGroup() *kerr.Error {
	if len(g.consumer.members) > 0 {
		return kerr.InconsistentGroupProtocol
	}
	if err := g.c.writeBatches(g.consumerTombstones()); err != nil {
		return writeError(err)
	}
	g.storedConsumer = nil
	g.consumer = nil
	g.protocolType = ""
	g.c.logger.Info("group is now a classic group", zap.String("group", g.id))
	return nil
}

// full reports whether the group has group.max.size members, counting
// those handed a member id that have not joined with it yet.
func (g *group) full() bool {
	return len(g.members)+len(g.pending) >= g.c.opts.MaxSize
}

// joinNew serves a JoinGroup without a member id.
func (g *group) joinNew(j *joinRequest) {
	if !g.supportsProtocols(j.req.ProtocolType, j.req.Protocols) {
		j.ch <- joinError(j.req.MemberID, kerr.InconsistentGroupProtocol)
		return
	}
	if inst := j.req.InstanceID; inst != nil {
		id := newMemberID(*inst)
		if old, ok := g.static[*inst]; ok {
			g.replaceStatic(j, old, id)
			return
		}
		if g.full() {
			j.ch <- joinError("", kerr.GroupMaxSizeReached)
			return
		}
		g.addMember(j, id)
		return
	}
	if g.full() {
		j.ch <- joinError("", kerr.GroupMaxSizeReached)
		return
	}
	id := newMemberID(j.client.ID)
	if j.req.Version >= 4 {
		// KIP-394: hand out the id and wait for the member to come back
		// with it, so a client that never learns its id (a timed-out
		// request) leaves no member behind.
		g.addPending(id, j.sessionTimeout)
		resp := joinError(id, kerr.MemberIDRequired)
		j.ch <- resp
		return
	}
	g.addMember(j, id)
}

// joinExisting serves a JoinGroup that names its member id.
func (g *group) joinExisting(j *joinRequest) {
	id := j.req.MemberID
	if !g.supportsProtocols(j.req.ProtocolType, j.req.Protocols) {
		j.ch <- joinError(id, kerr.InconsistentGroupProtocol)
		return
	}
	if _, ok := g.pending[id]; ok && j.req.InstanceID == nil {
		// The member counts already, as pending.
		g.addMember(j, id)
		return
	}
	if err := g.validateMember(id, j.req.InstanceID); err != nil {
		j.ch <- joinError(id, err)
		return
	}
	m := g.members[id]
	switch g.state {
	case preparingRebalance:
		g.updateMember(m, j)
		g.maybeCompleteJoin()
	case completingRebalance:
		if m.matches(j.req.Protocols) {
			// The same join again, likely after a lost response: answer
			// with the generation in progress.
			j.ch <- g.joinResponse(m, m.id == g.leader)
			return
		}
		g.updateMember(m, j)
		g.prepareRebalance("member " + id + " rejoined with new metadata")
	case stable:
		if m.id != g.leader && m.matches(j.req.Protocols) {
			// A follower with nothing new goes on to SyncGroup.
			j.ch <- g.joinResponse(m, false)
			return
		}
		// The leader's rejoin is how a consumer asks for a rebalance (its
		// topics changed), so it always gets one.
		g.updateMember(m, j)
		g.prepareRebalance("member " + id + " rejoined")
	default:
		j.ch <- joinError(id, kerr.UnknownMemberID)
	}
}

// addPending records a member id handed out with MEMBER_ID_REQUIRED; it
// is forgotten if the member does not join with it within its session
// timeout.
func (g *group) addPending(id string, session time.Duration) {
	var t *time.Timer
	t = g.c.timers.after(session, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.pending[id] != t || g.state == dead {
			return
		}
		delete(g.pending, id)
		g.c.logger.Debug("pending member expired", zap.String("group", g.id), zap.String("member", id))
		if g.state == preparingRebalance {
			g.maybeCompleteJoin()
		}
	})
	g.pending[id] = t
}

// addMember adds a member that is joining and rebalances.
func (g *group) addMember(j *joinRequest, id string) {
	m := &member{
		id:               id,
		instanceID:       j.req.InstanceID,
		clientID:         j.client.ID,
		clientHost:       j.client.Host,
		sessionTimeout:   j.sessionTimeout,
		rebalanceTimeout: j.rebalanceTimeout,
		protocolType:     j.req.ProtocolType,
		protocols:        j.req.Protocols,
		isNew:            true,
	}
	if g.state == preparingRebalance && g.prevState == empty {
		g.newMemberAdded = true
	}
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	g.members[id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = id
	}
	if g.leader == "" {
		g.leader = id
	}
	if t := g.pending[id]; t != nil {
		t.Stop()
		delete(g.pending, id)
	}
	m.joinCh = j.ch
	g.scheduleHeartbeat(m, newMemberJoinTimeout)
	g.c.logger.Debug("member joined", zap.String("group", g.id), zap.String("member", id), zap.String("client", j.client.ID))
	g.maybePrepareRebalanceOrCompleteJoin("new member " + id + " joined")
}

// updateMember takes a known member's new join: its protocols, timeouts
// and the request to answer. A join it replaces is answered with
// REBALANCE_IN_PROGRESS, so no request stays parked for ever.
func (g *group) updateMember(m *member, j *joinRequest) {
	g.completeJoin(m, joinError(m.id, kerr.RebalanceInProgress))
	m.protocols = j.req.Protocols
	m.sessionTimeout, m.rebalanceTimeout = j.sessionTimeout, j.rebalanceTimeout
	m.joinCh = j.ch
}

// replaceStatic gives a static member that rejoined without its member id
// (a restarted instance) the new id newID, fencing oldID (KIP-345). A
// Stable group whose selected protocol stays the same does not rebalance:
// the member gets its old assignment back.
func (g *group) replaceStatic(j *joinRequest, oldID, newID string) {
	old := g.members[oldID]
	currentLeader := g.leader
	g.completeJoin(old, joinError(oldID, kerr.FencedInstanceID))
	g.completeSync(old, syncError(kerr.FencedInstanceID))
	cancel(&old.heartbeat)
	delete(g.members, oldID)
	delete(g.pendingSync, oldID)
	m := &member{
		id:           newID,
		instanceID:   old.instanceID,
		clientID:     j.client.ID,
		clientHost:   j.client.Host,
		protocolType: old.protocolType,
		assignment:   old.assignment,
	}
	g.members[newID] = m
	g.static[*m.instanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	g.updateMember(m, j)
	g.scheduleHeartbeat(m, m.sessionTimeout)
	g.c.logger.Info("static member rejoined with a new member id",
		zap.String("group", g.id), zap.String("instance", *m.instanceID), zap.String("old_member", oldID), zap.String("member", newID))
	switch g.state {
	case stable:
		if g.selectProtocol() != g.protocol {
			g.prepareRebalance("static member " + newID + " changed the group's protocol")
			return
		}
		if err := g.storeMetadata(); err != nil {
			// The member goes on; a restart before the next store would
			// bring back the old member id, which its rejoin replaces.
			g.c.logger.Warn("storing a replaced static member failed", zap.String("group", g.id), zap.Error(err))
		}
		isLeader := g.leader == newID
		// From v9 a returning leader learns it leads but skips the
		// assignment (KIP-814); before, it is told the old leader id, so
		// it does not assign what a Stable group would not take.
		skip := isLeader && j.req.Version >= 9
		resp := g.joinResponse(m, skip)
		resp.SkipAssignment = skip
		if !skip {
			resp.LeaderID = currentLeader
		}
		g.completeJoin(m, resp)
	case completingRebalance:
		// The leader may be assigning to the old member id, which the new
		// one would not find in the assignment: start over.
		g.prepareRebalance("static member " + newID + " rejoined during CompletingRebalance")
	case preparingRebalance:
		g.maybeCompleteJoin()
	}
}

// joinResponse is the answer to a member's join in the current
// generation; withMembers adds the member list the leader assigns from.
func (g *group) joinResponse(m *member, withMembers bool) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Generation = g.generation
	resp.ProtocolType = strPtr(g.protocolType)
	resp.Protocol = strPtr(g.protocol)
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	if withMembers {
		for _, other := range g.sortedMembers() {
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID, jm.InstanceID, jm.ProtocolMetadata = other.id, other.instanceID, other.metadata(g.protocol)
			resp.Members = append(resp.Members, jm)
		}
	}
	return resp
}

// completeJoin answers m's parked JoinGroup, if any.
func (g *group) completeJoin(m *member, resp *kmsg.JoinGroupResponse) {
	if m.joinCh != nil {
		m.joinCh <- resp
		m.joinCh = nil
	}
}

// completeSync answers m's parked SyncGroup, if any, and reports whether
// there was one.
func (g *group) completeSync(m *member, resp *kmsg.SyncGroupResponse) bool {
	if m.syncCh == nil {
		return false
	}
	m.syncCh <- resp
	m.syncCh = nil
	return true
}

// rebalanceTimeout is the longest rebalance timeout of the members.
func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// hasAllMembersJoined: every member has a join parked and no member id
// handed out is still to come back.
func (g *group) hasAllMembersJoined() bool {
	for _, m := range g.members {
		if !m.awaitingJoin() {
			return false
		}
	}
	return len(g.pending) == 0
}

func (g *group) maybePrepareRebalanceOrCompleteJoin(reason string) {
	switch g.state {
	case stable, completingRebalance, empty:
		g.prepareRebalance(reason)
	default:
		g.maybeCompleteJoin()
	}
}

// prepareRebalance starts a rebalance: members must rejoin within the
// rebalance timeout. The first rebalance of an Empty group waits
// group.initial.rebalance.delay.ms for more members, longer while they
// keep coming, up to the rebalance timeout.
func (g *group) prepareRebalance(reason string) {
	if g.state == completingRebalance {
		g.resetAndPropagate(kerr.RebalanceInProgress)
	}
	cancel(&g.syncTimer)
	clear(g.pendingSync)
	initial := g.state == empty
	g.transition(preparingRebalance)
	g.c.logger.Info("preparing to rebalance group", zap.String("group", g.id), zap.Int32("generation", g.generation), zap.String("reason", reason))
	if initial {
		delay := g.c.opts.InitialRebalanceDelay
		remaining := max(g.rebalanceTimeout()-delay, 0)
		g.newMemberAdded = false
		g.schedule(&g.joinTimer, delay, func() { g.initialDelayExpired(delay, remaining) })
		return
	}
	if g.hasAllMembersJoined() {
		g.completeJoinPhase()
		return
	}
	if g.joinTimer == nil {
		g.schedule(&g.joinTimer, g.rebalanceTimeout(), g.completeJoinPhase)
	}
}

// initialDelayExpired ends the initial delay, or extends it if members
// joined during it and the rebalance timeout allows.
func (g *group) initialDelayExpired(delay, remaining time.Duration) {
	if g.newMemberAdded && remaining > 0 {
		g.newMemberAdded = false
		next := min(g.c.opts.InitialRebalanceDelay, remaining)
		left := max(remaining-delay, 0)
		g.schedule(&g.joinTimer, next, func() { g.initialDelayExpired(next, left) })
		return
	}
	g.completeJoinPhase()
}

// maybeCompleteJoin completes the join phase once every member has
// rejoined, except during an initial delay, which runs its course.
func (g *group) maybeCompleteJoin() {
	if g.state == preparingRebalance && g.prevState != empty && g.hasAllMembersJoined() {
		g.completeJoinPhase()
	}
}

// completeJoinPhase ends the join phase: dynamic members that did not
// rejoin are removed, a new generation starts and every member's join is
// answered (the leader's with the member list). Members then have the
// rebalance timeout to send SyncGroup.
func (g *group) completeJoinPhase() {
	cancel(&g.joinTimer)
	if g.state != preparingRebalance {
		return
	}
	for _, m := range g.members {
		if !m.awaitingJoin() && m.instanceID == nil {
			g.c.logger.Info("removing member that did not rejoin in time", zap.String("group", g.id), zap.String("member", m.id))
			g.remove(m)
		}
	}
	if !g.electJoinedLeader() && len(g.members) > 0 {
		// Only static members that have not rejoined are left: wait for
		// them, or for their sessions to end.
		g.c.logger.Warn("group could not complete its rebalance: no member rejoined", zap.String("group", g.id))
		g.schedule(&g.joinTimer, g.rebalanceTimeout(), g.completeJoinPhase)
		return
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol = ""
		g.transition(empty)
		g.c.logger.Info("group is now empty", zap.String("group", g.id), zap.Int32("generation", g.generation))
		if err := g.storeMetadata(); err != nil {
			g.c.logger.Warn("storing the metadata of an empty group failed", zap.String("group", g.id), zap.Error(err))
		}
		return
	}
	g.protocol = g.selectProtocol()
	g.transition(completingRebalance)
	g.c.logger.Info("stabilized group", zap.String("group", g.id), zap.Int32("generation", g.generation),
		zap.String("protocol", g.protocol), zap.Int("members", len(g.members)), zap.String("leader", g.leader))
	for _, m := range g.members {
		g.completeJoin(m, g.joinResponse(m, m.id == g.leader))
		g.scheduleHeartbeat(m, m.sessionTimeout)
		m.isNew = false
		g.pendingSync[m.id] = true
	}
	generation := g.generation
	g.schedule(&g.syncTimer, g.rebalanceTimeout(), func() { g.expirePendingSync(generation) })
}

// electJoinedLeader keeps the leader if it rejoined, else makes a member
// that rejoined the leader; false if none did.
func (g *group) electJoinedLeader() bool {
	if l := g.members[g.leader]; l != nil && l.awaitingJoin() {
		return true
	}
	for _, m := range g.sortedMembers() {
		if m.awaitingJoin() {
			g.leader = m.id
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol of the generation: each member votes
// for the first protocol it lists that every member supports, and the
// most votes win, ties going to the leader's preference.
func (g *group) selectProtocol() string {
	l := g.members[g.leader]
	if l == nil {
		return ""
	}
	var candidates []string
	for _, p := range l.protocols {
		if g.supportCount(p.Name) == len(g.members) {
			candidates = append(candidates, p.Name)
		}
	}
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, name := range candidates {
		if best == "" || votes[name] > votes[best] {
			best = name
		}
	}
	return best
}

// expirePendingSync removes the members of generation that did not send
// SyncGroup within the rebalance timeout, and rebalances without them.
func (g *group) expirePendingSync(generation int32) {
	if generation != g.generation || (g.state != completingRebalance && g.state != stable) || len(g.pendingSync) == 0 {
		return
	}
	for id := range g.pendingSync {
		if m := g.members[id]; m != nil {
			g.c.logger.Info("removing member that did not sync in time", zap.String("group", g.id), zap.String("member", id))
			g.remove(m)
		}
	}
	clear(g.pendingSync)
	g.maybePrepareRebalanceOrCompleteJoin("members failed to sync")
}

// scheduleHeartbeat (re)starts m's session: when it ends without a
// heartbeat, m is removed, unless a request of m's is parked in the
// rebalance, which counts as being alive (after the first join; a new
// member's first join is bounded by the new-member join timeout).
func (g *group) scheduleHeartbeat(m *member, d time.Duration) {
	g.schedule(&m.heartbeat, d, func() {
		if g.members[m.id] != m {
			return
		}
		if !m.isNew && (m.awaitingJoin() || m.awaitingSync()) {
			g.scheduleHeartbeat(m, m.sessionTimeout)
			return
		}
		g.c.logger.Info("member session expired", zap.String("group", g.id), zap.String("member", m.id), zap.Duration("session_timeout", d))
		g.removeAndRebalance(m, "member "+m.id+" session expired")
	})
}

// remove drops m from the group, answering any request it has parked with
// UNKNOWN_MEMBER_ID; if it led, another member leads.
func (g *group) remove(m *member) {
	g.completeJoin(m, joinError("", kerr.UnknownMemberID))
	g.completeSync(m, syncError(kerr.UnknownMemberID))
	cancel(&m.heartbeat)
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	delete(g.pendingSync, m.id)
	if g.leader == m.id {
		g.leader = ""
		if ms := g.sortedMembers(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

// removeAndRebalance removes m and moves the rebalance on without it.
func (g *group) removeAndRebalance(m *member, reason string) {
	g.remove(m)
	switch g.state {
	case stable, completingRebalance:
		g.prepareRebalance(reason)
	case preparingRebalance:
		g.maybeCompleteJoin()
	}
}

// SyncGroup serves SyncGroup v0-v5. The leader's request carries the
// assignment; every member's request waits for it.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	if req.Group == "" {
		return syncError(kerr.InvalidGroupID)
	}
	g := c.lockGroup(req.Group, false)
	if g == nil {
		return syncError(kerr.UnknownMemberID)
	}
	if c.closed.Load() { // as in JoinGroup
		g.mu.Unlock()
		return syncError(kerr.NotCoordinator)
	}
	ch, resp := g.sync(req)
	g.mu.Unlock()
	if resp != nil {
		return resp
	}
	select {
	case resp := <-ch:
		return resp
	case <-ctx.Done():
		select {
		case resp := <-ch:
			return resp
		default:
			return syncError(kerr.NotCoordinator)
		}
	}
}

// sync serves a SyncGroup: either the answer, or a channel it will come on.
func (g *group) sync(req *kmsg.SyncGroupRequest) (chan *kmsg.SyncGroupResponse, *kmsg.SyncGroupResponse) {
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		return nil, syncError(err)
	}
	if req.Generation != g.generation {
		return nil, syncError(kerr.IllegalGeneration)
	}
	if inconsistent(req.ProtocolType, g.protocolType) || inconsistent(req.Protocol, g.protocol) {
		return nil, syncError(kerr.InconsistentGroupProtocol)
	}
	m := g.members[req.MemberID]
	switch g.state {
	case preparingRebalance:
		return nil, syncError(kerr.RebalanceInProgress)
	case completingRebalance:
		g.completeSync(m, syncError(kerr.RebalanceInProgress)) // superseded
		ch := make(chan *kmsg.SyncGroupResponse, 1)
		m.syncCh = ch
		g.removePendingSync(m.id)
		if m.id == g.leader {
			g.c.logger.Debug("assignment received from the leader", zap.String("group", g.id), zap.Int32("generation", g.generation), zap.String("leader", m.id))
			for _, other := range g.members {
				other.assignment = []byte{}
			}
			for _, a := range req.GroupAssignment {
				if other := g.members[a.MemberID]; other != nil {
					other.assignment = a.MemberAssignment
				}
			}
			if err := g.storeMetadata(); err != nil {
				// As Kafka: the generation cannot go on without its
				// assignment in the log; the members rejoin.
				g.c.logger.Warn("storing the group's assignment failed", zap.String("group", g.id), zap.Error(err))
				g.resetAndPropagate(syncWriteError(err))
				g.prepareRebalance("storing the assignment failed")
				return ch, nil
			}
			g.propagate(nil)
			g.transition(stable)
		}
		return ch, nil
	case stable:
		g.removePendingSync(m.id)
		resp := kmsg.NewPtrSyncGroupResponse()
		resp.ProtocolType, resp.Protocol, resp.MemberAssignment = strPtr(g.protocolType), strPtr(g.protocol), m.assignment
		return nil, resp
	}
	return nil, syncError(kerr.UnknownMemberID)
}

// inconsistent: a protocol type or name the request gives that differs
// from the group's.
func inconsistent(given *string, group string) bool {
	return given != nil && group != "" && *given != group
}

func (g *group) removePendingSync(id string) {
	delete(g.pendingSync, id)
	if len(g.pendingSync) == 0 {
		cancel(&g.syncTimer)
	}
}

// propagate answers every parked SyncGroup: with the member's assignment,
// or with err. A member answered starts a new session, as a heartbeat
// expiry during the wait was ignored.
func (g *group) propagate(err *kerr.Error) {
	for _, m := range g.members {
		resp := kmsg.NewPtrSyncGroupResponse()
		if err != nil {
			resp.ErrorCode = err.Code
		} else {
			resp.ProtocolType, resp.Protocol, resp.MemberAssignment = strPtr(g.protocolType), strPtr(g.protocol), m.assignment
		}
		if g.completeSync(m, resp) {
			g.scheduleHeartbeat(m, m.sessionTimeout)
		}
	}
}

// resetAndPropagate drops the assignments and fails the parked SyncGroups
// with err.
func (g *group) resetAndPropagate(err *kerr.Error) {
	for _, m := range g.members {
		m.assignment = nil
	}
	g.propagate(err)
}

// Heartbeat serves Heartbeat v0-v4: REBALANCE_IN_PROGRESS during a
// rebalance tells the member to rejoin.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g := c.lockGroup(req.Group, false)
	if g == nil {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp
	}
	defer g.mu.Unlock()
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		resp.ErrorCode = err.Code
		return resp
	}
	if req.Generation != g.generation {
		resp.ErrorCode = kerr.IllegalGeneration.Code
		return resp
	}
	m := g.members[req.MemberID]
	switch g.state {
	case empty:
		resp.ErrorCode = kerr.UnknownMemberID.Code
	case preparingRebalance:
		g.scheduleHeartbeat(m, m.sessionTimeout)
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	default:
		g.scheduleHeartbeat(m, m.sessionTimeout)
	}
	return resp
}

// LeaveGroup serves LeaveGroup in its v3+ form (the protocol layer turns
// a v0-v2 request into one member): each member is removed by member id,
// or by group instance id alone (an administrative removal).
func (c *Coordinator) LeaveGroup(req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g := c.lockGroup(req.Group, false)
	if g != nil {
		defer g.mu.Unlock()
	}
	left := false
	for _, rm := range req.Members {
		lm := kmsg.NewLeaveGroupResponseMember()
		lm.MemberID, lm.InstanceID = rm.MemberID, rm.InstanceID
		if err := g.leave(rm); err != nil {
			lm.ErrorCode = err.Code
		} else {
			left = true
		}
		resp.Members = append(resp.Members, lm)
	}
	if left {
		reason := "members left the group"
		if len(req.Members) == 1 && req.Members[0].Reason != nil {
			reason = *req.Members[0].Reason
		}
		switch g.state {
		case stable, completingRebalance:
			g.prepareRebalance(reason)
		case preparingRebalance:
			g.maybeCompleteJoin()
		}
	}
	return resp
}

// leave removes one leaving member; g may be nil (no such group).
func (g *group) leave(rm kmsg.LeaveGroupRequestMember) *kerr.Error {
	if g == nil {
		return kerr.UnknownMemberID
	}
	id := rm.MemberID
	switch {
	case id == "":
		if rm.InstanceID == nil {
			return kerr.UnknownMemberID
		}
		current, ok := g.static[*rm.InstanceID]
		if !ok {
			return kerr.UnknownMemberID
		}
		id = current
	case g.pending[id] != nil:
		g.pending[id].Stop()
		delete(g.pending, id)
		return nil
	default:
		if err := g.validateMember(id, rm.InstanceID); err != nil {
			return err
		}
	}
	g.c.logger.Info("member left the group", zap.String("group", g.id), zap.String("member", id))
	g.remove(g.members[id])
	return nil
}
