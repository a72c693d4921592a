package group

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	session   = 5 * time.Second
	rebalance = 5 * time.Second
)

// stableGroup forms group with two dynamic members and returns their ids
// (leader first) and the generation.
func stableGroup(t *testing.T, e *testEnv, group string) (leader, follower string, generation int32) {
	t.Helper()
	ch1 := e.joinDynamic(group, session, rebalance)
	r1 := wait(t, ch1) // alone in the group: the join completes at once
	if r1.ErrorCode != 0 || r1.LeaderID != r1.MemberID || len(r1.Members) != 1 {
		t.Fatalf("first member's join: %+v", r1)
	}
	s1 := e.sync(group, r1.MemberID, r1.Generation, map[string][]byte{r1.MemberID: []byte("all")})
	if r := wait(t, s1); r.ErrorCode != 0 || string(r.MemberAssignment) != "all" {
		t.Fatalf("first sync: %+v", r)
	}

	ch2 := e.joinDynamic(group, session, rebalance)
	e.eventually("the group rebalances", func() bool { return e.describe(group).State == "PreparingRebalance" })
	notYet(t, ch2, "second member's join")
	if c := e.heartbeat(group, r1.MemberID, r1.Generation, nil); c != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat during the rebalance: %s, want REBALANCE_IN_PROGRESS", code(c))
	}
	r1 = e.join(joinReq(group, r1.MemberID, 9, session, rebalance))
	r2 := wait(t, ch2)
	if r1.ErrorCode != 0 || r2.ErrorCode != 0 || r1.Generation != r2.Generation || r1.Generation != 2 {
		t.Fatalf("rejoin: %+v / %+v", r1, r2)
	}
	if r1.LeaderID != r1.MemberID || len(r1.Members) != 2 || len(r2.Members) != 0 || r2.LeaderID != r1.MemberID {
		t.Fatalf("leader %s: members %d and %d", r1.LeaderID, len(r1.Members), len(r2.Members))
	}
	if *r1.Protocol != "range" || *r1.ProtocolType != "consumer" {
		t.Fatalf("protocol %v/%v", r1.ProtocolType, r1.Protocol)
	}
	s2 := e.sync(group, r2.MemberID, r2.Generation, nil)
	notYet(t, s2, "follower's sync")
	if c := e.heartbeat(group, r2.MemberID, r2.Generation, nil); c != 0 {
		t.Fatalf("heartbeat while CompletingRebalance: %s", code(c))
	}
	s1 = e.sync(group, r1.MemberID, r1.Generation, map[string][]byte{r1.MemberID: []byte("one"), r2.MemberID: []byte("two")})
	if r := wait(t, s1); r.ErrorCode != 0 || string(r.MemberAssignment) != "one" || *r.Protocol != "range" {
		t.Fatalf("leader's sync: %+v", r)
	}
	if r := wait(t, s2); r.ErrorCode != 0 || string(r.MemberAssignment) != "two" {
		t.Fatalf("follower's sync: %+v", r)
	}
	return r1.MemberID, r2.MemberID, r1.Generation
}

func TestJoinSyncHeartbeatLeave(t *testing.T) {
	e := newEnv(t)
	leader, follower, gen := stableGroup(t, e, "g")
	if c := e.heartbeat("g", follower, gen, nil); c != 0 {
		t.Fatalf("heartbeat: %s", code(c))
	}
	if c := e.heartbeat("g", follower, gen-1, nil); c != kerr.IllegalGeneration.Code {
		t.Fatalf("heartbeat of an old generation: %s", code(c))
	}
	if c := e.heartbeat("g", "nobody", gen, nil); c != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat of an unknown member: %s", code(c))
	}
	if c := e.heartbeat("nogroup", follower, gen, nil); c != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat to an unknown group: %s", code(c))
	}
	// A follower joining again with the same metadata gets the current
	// generation without a rebalance.
	if r := e.join(joinReq("g", follower, 9, session, rebalance)); r.ErrorCode != 0 || r.Generation != gen {
		t.Fatalf("follower's rejoin: %+v", r)
	}
	// A stale sync.
	if r := wait(t, e.sync("g", follower, gen+1, nil)); r.ErrorCode != kerr.IllegalGeneration.Code {
		t.Fatalf("sync of a future generation: %s", code(r.ErrorCode))
	}
	wrong := kmsg.NewPtrSyncGroupRequest()
	wrong.Version, wrong.Group, wrong.MemberID, wrong.Generation, wrong.Protocol = 5, "g", follower, gen, kmsg.StringPtr("roundrobin")
	if r := e.c.SyncGroup(context.Background(), wrong); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("sync with another protocol: %s", code(r.ErrorCode))
	}
	if r := wait(t, e.sync("g", follower, gen, nil)); r.ErrorCode != 0 || string(r.MemberAssignment) != "two" {
		t.Fatalf("sync of a Stable group: %+v", r)
	}

	// The follower leaves: the leader rejoins alone.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 5, "g"
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = follower
	unknown := kmsg.NewLeaveGroupRequestMember()
	unknown.MemberID = "nobody"
	leave.Members = []kmsg.LeaveGroupRequestMember{m, unknown}
	resp := e.c.LeaveGroup(leave)
	if resp.ErrorCode != 0 || resp.Members[0].ErrorCode != 0 || resp.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave: %+v", resp)
	}
	if c := e.heartbeat("g", leader, gen, nil); c != kerr.RebalanceInProgress.Code {
		t.Fatalf("leader's heartbeat after the leave: %s", code(c))
	}
	r := e.join(joinReq("g", leader, 9, session, rebalance))
	if r.ErrorCode != 0 || r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("leader's rejoin: %+v", r)
	}
	// The last member leaves: the group is Empty at the next generation.
	m.MemberID = leader
	leave.Members = []kmsg.LeaveGroupRequestMember{m}
	if resp := e.c.LeaveGroup(leave); resp.Members[0].ErrorCode != 0 {
		t.Fatalf("leader's leave: %+v", resp)
	}
	d := e.describe("g")
	if d.State != "Empty" || len(d.Members) != 0 || d.ProtocolType != "consumer" {
		t.Fatalf("after everyone left: %+v", d)
	}
}

func (e *testEnv) describe(group string) kmsg.DescribeGroupsResponseGroup {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 6
	req.Groups = []string{group}
	return e.c.DescribeGroups(req).Groups[0]
}

func TestJoinChecks(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MinSessionTimeout, o.MaxSessionTimeout = time.Second, time.Minute })
	if r := e.join(joinReq("", "", 9, session, rebalance)); r.ErrorCode != kerr.InvalidGroupID.Code {
		t.Errorf("empty group id: %s", code(r.ErrorCode))
	}
	for _, d := range []time.Duration{time.Millisecond, time.Hour} {
		if r := e.join(joinReq("g", "", 9, d, rebalance)); r.ErrorCode != kerr.InvalidSessionTimeout.Code {
			t.Errorf("session timeout %v: %s", d, code(r.ErrorCode))
		}
	}
	if r := e.join(joinReq("nogroup", "m-1", 9, session, rebalance)); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("known member id in an unknown group: %s", code(r.ErrorCode))
	}
	noProtocols := joinReq("g", "", 9, session, rebalance)
	noProtocols.Protocols = nil
	if r := e.join(noProtocols); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("no protocols: %s", code(r.ErrorCode))
	}
	// v3: no MEMBER_ID_REQUIRED round trip.
	r := e.join(joinReq("g", "", 3, session, rebalance))
	if r.ErrorCode != 0 || r.MemberID == "" || r.Generation != 1 {
		t.Fatalf("v3 join: %+v", r)
	}
	other := joinReq("g", "", 9, session, rebalance)
	other.ProtocolType = "connect"
	if r := e.join(other); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("another protocol type: %s", code(r.ErrorCode))
	}
	other = joinReq("g", "", 9, session, rebalance)
	other.Protocols[0].Name = "roundrobin"
	if r := e.join(other); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("no common protocol: %s", code(r.ErrorCode))
	}
}

func TestSessionTimeoutRemovesMember(t *testing.T) {
	e := newEnv(t)
	const short = 300 * time.Millisecond
	ch := e.joinDynamic("g", short, rebalance)
	r := wait(t, ch)
	if r.ErrorCode != 0 {
		t.Fatalf("join: %+v", r)
	}
	wait(t, e.sync("g", r.MemberID, r.Generation, nil))
	// Heartbeats keep it alive past its session timeout...
	for range 4 {
		time.Sleep(short / 3)
		if c := e.heartbeat("g", r.MemberID, r.Generation, nil); c != 0 {
			t.Fatalf("heartbeat: %s", code(c))
		}
	}
	// ...and without them it is removed.
	e.eventually("the member is removed", func() bool { return e.describe("g").State == "Empty" })
	if c := e.heartbeat("g", r.MemberID, r.Generation, nil); c != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat of the expired member: %s", code(c))
	}
}

func TestRebalanceTimeoutRemovesMembersThatDoNotRejoin(t *testing.T) {
	e := newEnv(t)
	const short = 300 * time.Millisecond
	r1 := wait(t, e.joinDynamic("g", session, short))
	wait(t, e.sync("g", r1.MemberID, r1.Generation, nil))
	// A second member joins; the first never rejoins (nor heartbeats
	// often enough to matter): after the rebalance timeout the group
	// goes on without it.
	r2 := wait(t, e.joinDynamic("g", session, short))
	if r2.ErrorCode != 0 || r2.LeaderID != r2.MemberID || len(r2.Members) != 1 || r2.Generation != 2 {
		t.Fatalf("join after the rebalance timeout: %+v", r2)
	}
	if c := e.heartbeat("g", r1.MemberID, r1.Generation, nil); c != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat of the removed member: %s", code(c))
	}
}

func TestMembersThatDoNotSyncAreRemoved(t *testing.T) {
	e := newEnv(t)
	const short = 300 * time.Millisecond
	r1 := wait(t, e.joinDynamic("g", session, short))
	wait(t, e.sync("g", r1.MemberID, r1.Generation, nil))
	ch2 := e.joinDynamic("g", session, short)
	r1 = e.join(joinReq("g", r1.MemberID, 9, session, short))
	r2 := wait(t, ch2)
	// Only the leader syncs; the follower never does and is removed once
	// the rebalance timeout passes, which starts another rebalance.
	s1 := e.sync("g", r1.MemberID, r1.Generation, map[string][]byte{r1.MemberID: []byte("x")})
	wait(t, s1)
	e.eventually("a rebalance after the follower failed to sync", func() bool {
		return e.heartbeat("g", r1.MemberID, r1.Generation, nil) == kerr.RebalanceInProgress.Code
	})
	if c := e.heartbeat("g", r2.MemberID, r2.Generation, nil); c != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat of the member that did not sync: %s", code(c))
	}
}

func TestInitialRebalanceDelay(t *testing.T) {
	const delay = 400 * time.Millisecond
	e := newEnv(t, func(o *Options) { o.InitialRebalanceDelay = delay })
	start := time.Now()
	ch1 := e.joinDynamic("g", session, rebalance)
	ch2 := e.joinDynamic("g", session, rebalance)
	r1, r2 := wait(t, ch1), wait(t, ch2)
	if took := time.Since(start); took < delay {
		t.Errorf("first rebalance completed after %v, before the %v delay", took, delay)
	}
	if r1.Generation != 1 || r2.Generation != 1 || r1.LeaderID != r2.LeaderID {
		t.Fatalf("both members should be in generation 1: %+v / %+v", r1, r2)
	}
}

func TestStaticMemberRestart(t *testing.T) {
	// The delay lets both first joins land in generation 1.
	e := newEnv(t, func(o *Options) { o.InitialRebalanceDelay = 200 * time.Millisecond })
	static := func(instance, member string, v int16) *kmsg.JoinGroupRequest {
		req := joinReq("g", member, v, session, rebalance)
		req.InstanceID = kmsg.StringPtr(instance)
		return req
	}
	// Static members need no MEMBER_ID_REQUIRED round trip.
	ch1 := e.joinAsync(static("i1", "", 9))
	ch2 := e.joinAsync(static("i2", "", 9))
	r1, r2 := wait(t, ch1), wait(t, ch2)
	if r1.ErrorCode != 0 || r2.ErrorCode != 0 || r1.Generation != 1 || r2.Generation != 1 {
		t.Fatalf("static joins: %+v / %+v", r1, r2)
	}
	leader, follower := r1, r2
	if r2.LeaderID == r2.MemberID {
		leader, follower = r2, r1
	}
	gen := leader.Generation
	ls := e.sync("g", leader.MemberID, gen, map[string][]byte{leader.MemberID: []byte("L"), follower.MemberID: []byte("F")})
	fs := e.sync("g", follower.MemberID, gen, nil)
	wait(t, ls)
	wait(t, fs)
	followerInstance := "i2"
	if follower.MemberID == r1.MemberID {
		followerInstance = "i1"
	}

	// The follower restarts: same instance id, no member id. It gets a
	// new id in the same generation, without a rebalance, and its old
	// assignment; the old id is fenced.
	r := e.join(static(followerInstance, "", 9))
	if r.ErrorCode != 0 || r.Generation != gen || r.MemberID == follower.MemberID || r.SkipAssignment || len(r.Members) != 0 {
		t.Fatalf("static follower's rejoin: %+v", r)
	}
	if s := wait(t, e.sync("g", r.MemberID, gen, nil)); s.ErrorCode != 0 || string(s.MemberAssignment) != "F" {
		t.Fatalf("static follower's sync: %+v", s)
	}
	if c := e.heartbeat("g", follower.MemberID, gen, kmsg.StringPtr(followerInstance)); c != kerr.FencedInstanceID.Code {
		t.Fatalf("heartbeat of the replaced member id: %s", code(c))
	}
	if c := e.heartbeat("g", leader.MemberID, gen, nil); c != 0 {
		t.Fatalf("leader's heartbeat: %s (the restart must not rebalance)", code(c))
	}

	// The leader restarts: from v9 it learns it leads and must skip the
	// assignment; before v9 it is told the old leader id.
	leaderInstance := "i1"
	if leaderInstance == followerInstance {
		leaderInstance = "i2"
	}
	r = e.join(static(leaderInstance, "", 8))
	if r.ErrorCode != 0 || r.LeaderID != leader.MemberID || r.LeaderID == r.MemberID || r.SkipAssignment {
		t.Fatalf("v8 static leader's rejoin: %+v", r)
	}
	r = e.join(static(leaderInstance, "", 9))
	if r.ErrorCode != 0 || r.LeaderID != r.MemberID || !r.SkipAssignment || len(r.Members) != 2 || r.Generation != gen {
		t.Fatalf("v9 static leader's rejoin: %+v", r)
	}

	// Removing a static member by instance id alone.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 5, "g"
	m := kmsg.NewLeaveGroupRequestMember()
	m.InstanceID = kmsg.StringPtr(followerInstance)
	leave.Members = append(leave.Members, m)
	if resp := e.c.LeaveGroup(leave); resp.Members[0].ErrorCode != 0 {
		t.Fatalf("leave by instance id: %+v", resp)
	}
	if c := e.heartbeat("g", r.MemberID, gen, kmsg.StringPtr(leaderInstance)); c != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat after the static member left: %s", code(c))
	}

	// The replacement was stored: after a restart the generation goes on
	// with the new member id (the leave is not, as in Kafka, until the
	// next generation).
	e.restart()
	if c := e.heartbeat("g", r.MemberID, gen, kmsg.StringPtr(leaderInstance)); c != 0 {
		t.Fatalf("heartbeat of the replacing static member after a restart: %s", code(c))
	}
}

func TestLeaveGroupChecks(t *testing.T) {
	e := newEnv(t)
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 5, "nogroup"
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = "x"
	leave.Members = append(leave.Members, m)
	if resp := e.c.LeaveGroup(leave); resp.ErrorCode != 0 || resp.Members[0].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave of an unknown group: %+v", resp)
	}
	// A member id handed out with MEMBER_ID_REQUIRED may leave before
	// joining with it.
	first := e.join(joinReq("g", "", 9, session, rebalance))
	leave.Group, leave.Members[0].MemberID = "g", first.MemberID
	if resp := e.c.LeaveGroup(leave); resp.Members[0].ErrorCode != 0 {
		t.Fatalf("leave of a pending member: %+v", resp)
	}
	leave.Members[0].InstanceID = kmsg.StringPtr("ghost")
	if resp := e.c.LeaveGroup(leave); resp.Members[0].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave of an unknown static member: %+v", resp)
	}
}

func TestCloseAnswersParkedJoins(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.InitialRebalanceDelay = time.Minute })
	ch := e.joinDynamic("g", session, rebalance)
	notYet(t, ch, "join during the initial delay")
	e.close()
	if r := wait(t, ch); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("parked join after Close: %s", code(r.ErrorCode))
	}
}

func TestJoinContextEnds(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.InitialRebalanceDelay = time.Minute })
	first := e.join(joinReq("g", "", 9, session, rebalance))
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	c := e.c
	go func() { ch <- c.JoinGroup(ctx, joinReq("g", first.MemberID, 9, session, rebalance), Client{}) }()
	notYet(t, ch, "join during the initial delay")
	cancel()
	if r := wait(t, ch); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("join whose context ended: %s", code(r.ErrorCode))
	}
}

func TestMembershipSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	leader, follower, gen := stableGroup(t, e, "g")
	e.commit(8, "g", leader, gen, "a", 3, 0)
	e.c.compact() // the rewrite keeps the membership too
	e.restart()

	// The generation goes on: heartbeats, commits and syncs of its
	// members are accepted, with their assignments.
	if c := e.heartbeat("g", follower, gen, nil); c != 0 {
		t.Fatalf("heartbeat after the restart: %s", code(c))
	}
	if got := e.commit(8, "g", follower, gen, "a", 4, 0); got[0] != 0 {
		t.Fatalf("commit after the restart: %s", code(got[0]))
	}
	if r := wait(t, e.sync("g", follower, gen, nil)); r.ErrorCode != 0 || string(r.MemberAssignment) != "two" {
		t.Fatalf("sync after the restart: %+v", r)
	}
	d := e.describe("g")
	if d.State != "Stable" || d.Protocol != "range" || len(d.Members) != 2 || d.Members[0].ClientHost != "/127.0.0.1" {
		t.Fatalf("described after the restart: %+v", d)
	}
	// The leader's rejoin rebalances as usual.
	ch := e.joinAsync(joinReq("g", leader, 9, session, rebalance))
	e.eventually("the group rebalances", func() bool { return e.describe("g").State == "PreparingRebalance" })
	rf := e.join(joinReq("g", follower, 9, session, rebalance))
	if rl := wait(t, ch); rl.ErrorCode != 0 || rl.Generation != gen+1 || rf.Generation != gen+1 || rl.LeaderID != leader {
		t.Fatalf("rebalance after the restart: %+v / %+v", rl, rf)
	}

	// Both leave: the Empty group is stored too, with its protocol type.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 5, "g"
	for _, id := range []string{leader, follower} {
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = id
		leave.Members = append(leave.Members, m)
	}
	e.c.LeaveGroup(leave)
	e.restart()
	if d := e.describe("g"); d.State != "Empty" || d.ProtocolType != "consumer" || len(d.Members) != 0 {
		t.Fatalf("empty group after a restart: %+v", d)
	}
}

func TestRestoredMembersExpire(t *testing.T) {
	e := newEnv(t)
	const short = 300 * time.Millisecond
	r := wait(t, e.joinDynamic("g", short, rebalance))
	wait(t, e.sync("g", r.MemberID, r.Generation, map[string][]byte{r.MemberID: []byte("x")}))
	e.restart()
	// Its client is gone: the session that started with the restart ends.
	e.eventually("the restored member expires", func() bool { return e.describe("g").State == "Empty" })
}

func TestJoinAfterClose(t *testing.T) {
	e := newEnv(t)
	c := e.c
	c.Close()
	if r := c.JoinGroup(context.Background(), joinReq("g", "", 9, session, rebalance), Client{}); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("join after Close: %s", code(r.ErrorCode))
	}
	e.store.Close()
	e.c = nil
}
