package group

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rocketkafka/broker/log"
)

// The tests here drive KIP-848 consumer groups the way a Kafka 4.x
// consumer does: ConsumerGroupHeartbeat v1 with a client-generated member
// id, reporting the partitions it owns.

// cgClient is what a KIP-848 consumer knows of its membership: its id and
// epoch and the partitions it owns, by topic name. reported is what its
// last heartbeat said it owned: until it says otherwise it may still be
// using those partitions.
type cgClient struct {
	e         *testEnv
	group, id string
	epoch     int32
	topics    []string
	regex     *string
	assignor  *string
	instance  *string
	rebalance time.Duration
	owned     map[string][]int32
	reported  map[string][]int32
}

// consumer is a client of group that will join as member id, subscribing
// to topics.
func (e *testEnv) consumer(group, id string, topics ...string) *cgClient {
	return &cgClient{e: e, group: group, id: id, topics: topics, rebalance: 30 * time.Second, owned: map[string][]int32{}}
}

// cgReq is a ConsumerGroupHeartbeat v1. A join (epoch 0) subscribes to
// topics with a rebalance timeout and owns nothing; at another epoch it
// sends only what it is given: topics (nil: unchanged) and owned (nil:
// not sent, else the partitions owned by topic name).
func (e *testEnv) cgReq(group, member string, epoch int32, topics []string, owned map[string][]int32) *kmsg.ConsumerGroupHeartbeatRequest {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group, req.MemberID, req.MemberEpoch = group, member, epoch
	req.SubscribedTopicNames = topics
	if epoch == 0 {
		req.RebalanceTimeoutMillis = 30000
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	}
	if owned != nil {
		req.Topics = e.ownedTopics(owned)
	}
	return req
}

// ownedTopics is owned as a heartbeat gives it, by topic ID.
func (e *testEnv) ownedTopics(owned map[string][]int32) []kmsg.ConsumerGroupHeartbeatRequestTopic {
	e.t.Helper()
	out := []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	for _, name := range slices.Sorted(maps.Keys(owned)) {
		if len(owned[name]) == 0 {
			continue
		}
		t, ok := e.store.Topic(name)
		if !ok {
			e.t.Fatalf("no topic %s", name)
		}
		rt := kmsg.NewConsumerGroupHeartbeatRequestTopic()
		rt.TopicID, rt.Partitions = t.ID, slices.Sorted(slices.Values(owned[name]))
		out = append(out, rt)
	}
	return out
}

func (e *testEnv) cgh(req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	return e.c.ConsumerGroupHeartbeat(req, Client{ID: "kip848-client", Host: "/127.0.0.1"})
}

// byName is a heartbeat response's assignment by topic name; nil when the
// response has none (the assignment did not change).
func (e *testEnv) byName(a *kmsg.ConsumerGroupHeartbeatResponseAssignment) map[string][]int32 {
	e.t.Helper()
	if a == nil {
		return nil
	}
	out := map[string][]int32{}
	for _, t := range a.Topics {
		topic, ok := e.store.TopicByID(log.TopicID(t.TopicID))
		if !ok {
			e.t.Fatalf("assignment of unknown topic %x", t.TopicID)
		}
		if len(t.Partitions) > 0 {
			out[topic.Name] = slices.Sorted(slices.Values(t.Partitions))
		}
	}
	return out
}

func sameAssignment(a, b map[string][]int32) bool {
	clean := func(m map[string][]int32) map[string][]int32 {
		out := map[string][]int32{}
		for k, v := range m {
			if len(v) > 0 {
				out[k] = slices.Sorted(slices.Values(v))
			}
		}
		return out
	}
	return maps.EqualFunc(clean(a), clean(b), slices.Equal[[]int32])
}

func (m *cgClient) joinReq() *kmsg.ConsumerGroupHeartbeatRequest {
	req := m.e.cgReq(m.group, m.id, 0, m.topics, nil)
	req.SubscribedTopicRegex, req.ServerAssignor, req.InstanceID = m.regex, m.assignor, m.instance
	req.RebalanceTimeoutMillis = int32(m.rebalance.Milliseconds())
	return req
}

// join sends the member's join (epoch 0) and takes the answer in.
func (m *cgClient) join() *kmsg.ConsumerGroupHeartbeatResponse {
	m.owned, m.reported = map[string][]int32{}, map[string][]int32{}
	resp := m.e.cgh(m.joinReq())
	m.apply(resp)
	return resp
}

func (m *cgClient) mustJoin() *kmsg.ConsumerGroupHeartbeatResponse {
	m.e.t.Helper()
	return m.must("joining", m.join())
}

// must fails the test if resp, the answer to what, is an error.
func (m *cgClient) must(what string, resp *kmsg.ConsumerGroupHeartbeatResponse) *kmsg.ConsumerGroupHeartbeatResponse {
	m.e.t.Helper()
	if resp.ErrorCode != 0 {
		m.e.t.Fatalf("%s %s in %s: %s %v", m.id, what, m.group, code(resp.ErrorCode), resp.ErrorMessage)
	}
	return resp
}

// heartbeat sends a heartbeat at the member's epoch with the partitions
// it owns, and takes the answer in as a client does: it gives up at once
// what it is no longer assigned and owns what it is.
func (m *cgClient) heartbeat() *kmsg.ConsumerGroupHeartbeatResponse {
	req := m.e.cgReq(m.group, m.id, m.epoch, nil, m.owned)
	req.InstanceID = m.instance
	m.reported = maps.Clone(m.owned)
	resp := m.e.cgh(req)
	m.apply(resp)
	return resp
}

func (m *cgClient) mustBeat() *kmsg.ConsumerGroupHeartbeatResponse {
	m.e.t.Helper()
	what := fmt.Sprintf("heartbeat at epoch %d", m.epoch)
	return m.must(what, m.heartbeat())
}

func (m *cgClient) apply(resp *kmsg.ConsumerGroupHeartbeatResponse) {
	if resp.ErrorCode != 0 {
		return
	}
	if resp.MemberID != nil && *resp.MemberID != m.id {
		m.e.t.Errorf("member %s answered as %s", m.id, *resp.MemberID)
	}
	m.epoch = resp.MemberEpoch
	if a := m.e.byName(resp.Assignment); a != nil {
		m.owned = a
	}
}

// leave sends a leave heartbeat with epoch (-1, or -2 for a static member
// leaving for now).
func (m *cgClient) leave(epoch int32) *kmsg.ConsumerGroupHeartbeatResponse {
	req := m.e.cgReq(m.group, m.id, epoch, nil, nil)
	req.InstanceID = m.instance
	resp := m.e.cgh(req)
	if resp.ErrorCode == 0 {
		m.owned, m.reported = map[string][]int32{}, map[string][]int32{}
	}
	return resp
}

func (e *testEnv) cgDescribe(group string) kmsg.ConsumerGroupDescribeResponseGroup {
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Version = 1
	req.Groups = []string{group}
	resp := e.c.ConsumerGroupDescribe(req)
	if len(resp.Groups) != 1 {
		e.t.Fatalf("describe %s: %d groups", group, len(resp.Groups))
	}
	return resp.Groups[0]
}

// described is a described assignment by topic name.
func described(a kmsg.Assignment) map[string][]int32 {
	out := map[string][]int32{}
	for _, tp := range a.TopicPartitions {
		if len(tp.Partitions) > 0 {
			out[tp.Topic] = slices.Sorted(slices.Values(tp.Partitions))
		}
	}
	return out
}

func describedMember(d kmsg.ConsumerGroupDescribeResponseGroup, id string) *kmsg.ConsumerGroupDescribeResponseGroupMember {
	for i := range d.Members {
		if d.Members[i].MemberID == id {
			return &d.Members[i]
		}
	}
	return nil
}

func memberIDs(d kmsg.ConsumerGroupDescribeResponseGroup) []string {
	var out []string
	for _, m := range d.Members {
		out = append(out, m.MemberID)
	}
	return out
}

// checkExclusive fails if a partition is in the assignments of two
// members as the group describes them, or if a client is assigned a
// partition another client owns or has not said it gave up.
func checkExclusive(t *testing.T, e *testEnv, group string, clients ...*cgClient) {
	t.Helper()
	d := e.cgDescribe(group)
	holder := map[string]string{}
	for _, m := range d.Members {
		for topic, ps := range described(m.Assignment) {
			for _, p := range ps {
				k := tpKey(topic, p)
				if h, dup := holder[k]; dup {
					t.Fatalf("%s is assigned to %s and %s", k, h, m.MemberID)
				}
				holder[k] = m.MemberID
			}
		}
	}
	for _, x := range clients {
		for _, y := range clients {
			if x == y {
				continue
			}
			for topic, ps := range y.owned {
				for _, p := range ps {
					if slices.Contains(x.owned[topic], p) || slices.Contains(x.reported[topic], p) {
						t.Fatalf("%s was given %s while %s still holds it (owned %v, reported %v)", y.id, tpKey(topic, p), x.id, x.owned, x.reported)
					}
				}
			}
		}
	}
}

// settle heartbeats every client in turn, checking that no partition is
// held twice, until the group is Stable with every member at the group
// epoch owning what the group says it is assigned.
func settle(t *testing.T, e *testEnv, group string, clients ...*cgClient) kmsg.ConsumerGroupDescribeResponseGroup {
	t.Helper()
	for range 20 {
		d := e.cgDescribe(group)
		done := d.ErrorCode == 0 && d.State == "Stable" && d.Epoch == d.AssignmentEpoch && len(d.Members) == len(clients)
		for _, c := range clients {
			m := describedMember(d, c.id)
			done = done && m != nil && m.MemberEpoch == d.Epoch && c.epoch == d.Epoch && sameAssignment(c.owned, described(m.Assignment))
		}
		if done {
			return d
		}
		for _, c := range clients {
			c.mustBeat()
			checkExclusive(t, e, group, clients...)
		}
	}
	t.Fatalf("group %s did not settle: %+v", group, e.cgDescribe(group))
	panic("unreachable")
}

// union is the partitions clients own together, failing if two own the
// same one.
func union(t *testing.T, clients ...*cgClient) map[string][]int32 {
	t.Helper()
	out := map[string][]int32{}
	for _, c := range clients {
		for topic, ps := range c.owned {
			for _, p := range ps {
				if slices.Contains(out[topic], p) {
					t.Fatalf("%s is owned twice", tpKey(topic, p))
				}
				out[topic] = append(out[topic], p)
			}
		}
	}
	return out
}

func (e *testEnv) listAll(req *kmsg.ListGroupsRequest) map[string]kmsg.ListGroupsResponseGroup {
	groups := e.c.ListGroups(req).Groups
	out := make(map[string]kmsg.ListGroupsResponseGroup, len(groups))
	for _, g := range groups {
		out[g.Group] = g
	}
	return out
}

func (e *testEnv) deleteGroups(groups ...string) []int16 {
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Version = 2
	req.Groups = groups
	var out []int16
	for _, g := range e.c.DeleteGroups(req).Groups {
		out = append(out, g.ErrorCode)
	}
	return out
}

// fetchAs is an OffsetFetch v9 of all of group's offsets by member at
// epoch (member nil: not a member).
func (e *testEnv) fetchAs(group string, member *string, epoch int32) kmsg.OffsetFetchResponseGroup {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 9
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group, rg.MemberID, rg.MemberEpoch = group, member, epoch
	req.Groups = append(req.Groups, rg)
	return e.c.OffsetFetch(req).Groups[0]
}

var allOfAB = map[string][]int32{"a": {0, 1, 2}, "b": {0}}

func TestConsumerGroupJoinAndRebalance(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.ConsumerHeartbeatInterval = 1234 * time.Millisecond })
	a := e.consumer("g", "member-a", "b", "a")
	r := a.mustJoin()
	if r.MemberID == nil || *r.MemberID != "member-a" || r.MemberEpoch < 1 || r.HeartbeatIntervalMillis != 1234 || r.Assignment == nil {
		t.Fatalf("first join: %+v", r)
	}
	if !sameAssignment(a.owned, allOfAB) {
		t.Fatalf("first member's assignment: %v, want %v", a.owned, allOfAB)
	}
	epoch1 := a.epoch
	d := e.cgDescribe("g")
	if d.ErrorCode != 0 || d.State != "Stable" || d.Epoch != epoch1 || d.AssignmentEpoch != epoch1 || d.AssignorName != "uniform" || len(d.Members) != 1 {
		t.Fatalf("describe after the first join: %+v", d)
	}
	if m := d.Members[0]; m.MemberID != "member-a" || m.MemberEpoch != epoch1 || m.ClientID != "kip848-client" || m.ClientHost != "/127.0.0.1" ||
		!slices.Equal(m.SubscribedTopics, []string{"a", "b"}) || m.SubscribedTopicRegex != nil || m.MemberType != 1 ||
		!sameAssignment(described(m.Assignment), allOfAB) || !sameAssignment(described(m.TargetAssignment), allOfAB) {
		t.Fatalf("described member: %+v", m)
	}
	// A heartbeat with nothing new gets no assignment: it has not changed.
	if r := a.mustBeat(); r.MemberEpoch != epoch1 || r.Assignment != nil {
		t.Fatalf("steady heartbeat: %+v", r)
	}

	// A second member joins: a new group epoch and target, in which the
	// second member's partitions are the first one's until it gives them
	// up.
	b := e.consumer("g", "member-b", "a", "b")
	r = b.mustJoin()
	epoch2 := b.epoch
	if epoch2 <= epoch1 || r.Assignment == nil || len(b.owned) != 0 {
		t.Fatalf("second join: epoch %d (group was at %d), assignment %v", epoch2, epoch1, b.owned)
	}
	checkExclusive(t, e, "g", a, b)
	d = e.cgDescribe("g")
	if d.Epoch != epoch2 || d.AssignmentEpoch != epoch2 || d.State != "Reconciling" {
		t.Fatalf("describe after the second join: %+v", d)
	}
	targetB := described(describedMember(d, "member-b").TargetAssignment)
	targetA := described(describedMember(d, "member-a").TargetAssignment)
	if n := len(union(t, &cgClient{owned: targetA}, &cgClient{owned: targetB})["a"]); n != 3 || len(targetA) == 0 || len(targetB) == 0 {
		t.Fatalf("targets %v and %v", targetA, targetB)
	}
	if m := describedMember(d, "member-a"); m.MemberEpoch != epoch1 {
		t.Fatalf("first member before its heartbeat: %+v", m)
	}
	if r := b.mustBeat(); r.MemberEpoch != epoch2 || len(b.owned) != 0 {
		t.Fatalf("second member before the first revoked: epoch %d, %v", r.MemberEpoch, b.owned)
	}
	checkExclusive(t, e, "g", a, b)

	// The first member's heartbeat asks it to revoke: its assignment
	// shrinks to its target, at its old epoch.
	r = a.mustBeat()
	if r.MemberEpoch != epoch1 || r.Assignment == nil || !sameAssignment(a.owned, targetA) {
		t.Fatalf("revocation: epoch %d, assignment %v, want %v at %d", r.MemberEpoch, a.owned, targetA, epoch1)
	}
	checkExclusive(t, e, "g", a, b)
	// Until it says it gave them up, nobody gets them.
	if b.mustBeat(); len(b.owned) != 0 {
		t.Fatalf("second member got %v before the first acknowledged", b.owned)
	}
	checkExclusive(t, e, "g", a, b)
	// Its next heartbeat, without them, moves it to the new epoch...
	if r := a.mustBeat(); r.MemberEpoch != epoch2 || !sameAssignment(a.owned, targetA) {
		t.Fatalf("acknowledged revocation: epoch %d, %v", r.MemberEpoch, a.owned)
	}
	checkExclusive(t, e, "g", a, b)
	// ...and the second member gets what was released.
	if r := b.mustBeat(); r.MemberEpoch != epoch2 || r.Assignment == nil || !sameAssignment(b.owned, targetB) {
		t.Fatalf("released partitions: epoch %d, %v, want %v", r.MemberEpoch, b.owned, targetB)
	}
	checkExclusive(t, e, "g", a, b)

	d = settle(t, e, "g", a, b)
	if got := union(t, a, b); !sameAssignment(got, allOfAB) {
		t.Fatalf("together: %v, want %v", got, allOfAB)
	}
	if d.State != "Stable" || d.Epoch != epoch2 || d.AssignmentEpoch != epoch2 {
		t.Fatalf("settled group: %+v", d)
	}
	for _, m := range d.Members {
		if m.MemberEpoch != epoch2 || !sameAssignment(described(m.Assignment), described(m.TargetAssignment)) {
			t.Fatalf("settled member: %+v", m)
		}
	}
}

func TestConsumerGroupHeartbeatValidation(t *testing.T) {
	e := newEnv(t)
	check := func(what string, req *kmsg.ConsumerGroupHeartbeatRequest, want *kerr.Error) *kmsg.ConsumerGroupHeartbeatResponse {
		t.Helper()
		resp := e.cgh(req)
		if w := codes(want)[0]; resp.ErrorCode != w {
			t.Errorf("%s: %s, want %s", what, code(resp.ErrorCode), code(w))
		}
		return resp
	}
	join := func() *kmsg.ConsumerGroupHeartbeatRequest { return e.cgReq("g", "m1", 0, []string{"a"}, nil) }

	r := join()
	r.Group = ""
	check("empty group id", r, kerr.InvalidRequest)
	r = join()
	r.MemberID = ""
	check("v1 join without a member id", r, kerr.InvalidRequest)
	r = join()
	r.Topics = nil
	check("join without owned partitions", r, kerr.InvalidRequest)
	r = join()
	r.Topics = e.ownedTopics(map[string][]int32{"a": {0}})
	check("join owning partitions", r, kerr.InvalidRequest)
	r = join()
	r.SubscribedTopicNames = nil
	check("join without a subscription", r, kerr.InvalidRequest)
	r = join()
	r.RebalanceTimeoutMillis = -1
	check("join without a rebalance timeout", r, kerr.InvalidRequest)
	r = join()
	r.InstanceID = kmsg.StringPtr("")
	check("empty instance id", r, kerr.InvalidRequest)
	for _, epoch := range []int32{-3, -100} {
		r = join()
		r.MemberEpoch = epoch
		check("epoch below -2", r, kerr.InvalidRequest)
	}
	r = join()
	r.SubscribedTopicNames, r.SubscribedTopicRegex = nil, kmsg.StringPtr("(")
	if resp := check("bad regex", r, kerr.InvalidRegularExpression); resp.ErrorMessage == nil {
		t.Errorf("bad regex: no error message")
	}
	r = join()
	r.ServerAssignor = kmsg.StringPtr("sticky")
	check("unknown assignor", r, kerr.UnsupportedAssignor)
	check("heartbeat to a group that does not exist", e.cgReq("g", "m1", 1, nil, map[string][]int32{}), kerr.GroupIDNotFound)
	check("leave of a group that does not exist", e.cgReq("g", "m1", -1, nil, nil), kerr.GroupIDNotFound)
	// None of these created the group.
	if d := e.cgDescribe("g"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("describe after rejected requests: %+v", d)
	}
	if groups := e.list(); len(groups) != 0 {
		t.Fatalf("groups after rejected requests: %v", groups)
	}

	// v0: the coordinator names the member.
	r = join()
	r.Version, r.MemberID = 0, ""
	if resp := check("v0 join", r, nil); resp.MemberID == nil || *resp.MemberID == "" || resp.MemberEpoch < 1 {
		t.Fatalf("v0 join: %+v", resp)
	}

	g := "epochs"
	m1, m2 := e.consumer(g, "m1", "a"), e.consumer(g, "m2", "a")
	m1.mustJoin()
	check("unknown member", e.cgReq(g, "nobody", m1.epoch, nil, map[string][]int32{}), kerr.UnknownMemberID)
	check("leave of an unknown member", e.cgReq(g, "nobody", -1, nil, nil), kerr.UnknownMemberID)
	check("epoch above the member's", e.cgReq(g, "m1", m1.epoch+1, nil, m1.owned), kerr.FencedMemberEpoch)

	// m1 moves to a new epoch: m2 joins, m1 revokes and acknowledges.
	m2.mustJoin()
	settle(t, e, g, m1, m2)
	d := e.cgDescribe(g)
	previous := d.Epoch - 1
	if m1.epoch != d.Epoch || previous < 1 {
		t.Fatalf("epochs: member %d, group %d", m1.epoch, d.Epoch)
	}
	// The previous epoch, owning only assigned partitions, is a
	// heartbeat whose answer (the new epoch) was lost: accepted.
	resp := check("previous epoch owning a subset", e.cgReq(g, "m1", previous, nil, m1.owned), nil)
	if resp.MemberEpoch != d.Epoch {
		t.Fatalf("previous epoch: answered epoch %d, want %d", resp.MemberEpoch, d.Epoch)
	}
	check("previous epoch owning nothing", e.cgReq(g, "m1", previous, nil, map[string][]int32{}), nil)
	check("previous epoch without owned partitions", e.cgReq(g, "m1", previous, nil, nil), kerr.FencedMemberEpoch)
	check("previous epoch owning more", e.cgReq(g, "m1", previous, nil, map[string][]int32{"a": {0, 1, 2}}), kerr.FencedMemberEpoch)
	// m2's previous epoch is 0 (it joined at this one): anything below
	// the current one but above 0 is fenced.
	if m2.epoch > 1 {
		check("an epoch neither current nor previous", e.cgReq(g, "m2", m2.epoch-1, nil, m2.owned), kerr.FencedMemberEpoch)
	}
	// None of this changed the group.
	if d2 := e.cgDescribe(g); d2.Epoch != d.Epoch || d2.State != "Stable" {
		t.Fatalf("after the rejected heartbeats: %+v", d2)
	}
}

func TestConsumerGroupRejoinWithEpochZero(t *testing.T) {
	e := newEnv(t)
	a, b := e.consumer("g", "a", "a", "b"), e.consumer("g", "b", "a", "b")
	a.mustJoin()
	b.mustJoin()
	d := settle(t, e, "g", a, b)
	owned := maps.Clone(a.owned)

	// A member that lost its state (a fenced consumer) joins again with
	// the same member id and epoch 0: it gets its whole assignment back,
	// at its epoch, and the group does not rebalance.
	r := a.mustJoin()
	if r.MemberEpoch != d.Epoch || r.Assignment == nil || !sameAssignment(a.owned, owned) {
		t.Fatalf("rejoin: epoch %d, %v, want %d, %v", r.MemberEpoch, a.owned, d.Epoch, owned)
	}
	if d2 := e.cgDescribe("g"); d2.Epoch != d.Epoch || d2.State != "Stable" || len(d2.Members) != 2 {
		t.Fatalf("after the rejoin: %+v", d2)
	}

	// While it must revoke, a rejoin says it owns nothing: the revocation
	// is done, and another member may have its partitions at once.
	c := e.consumer("g", "c", "a", "b")
	c.mustJoin()
	d = e.cgDescribe("g")
	var x *cgClient // the one of a and b that must give partitions up
	for _, m := range []*cgClient{a, b} {
		if dm := describedMember(d, m.id); dm.MemberEpoch == d.Epoch {
			t.Fatalf("%s at the new epoch before its heartbeat: %+v", m.id, dm)
		} else if !sameAssignment(described(dm.TargetAssignment), m.owned) {
			x = m
		}
	}
	target := described(describedMember(d, x.id).TargetAssignment)
	if r := x.mustBeat(); r.MemberEpoch == d.Epoch || !sameAssignment(x.owned, target) {
		t.Fatalf("%s asked to revoke: epoch %d, %v", x.id, r.MemberEpoch, x.owned)
	}
	r = x.mustJoin()
	if r.MemberEpoch != d.Epoch || !sameAssignment(x.owned, target) {
		t.Fatalf("rejoin while revoking: epoch %d, %v, want %d, %v", r.MemberEpoch, x.owned, d.Epoch, target)
	}
	d = settle(t, e, "g", a, b, c)
	if got := union(t, a, b, c); !sameAssignment(got, allOfAB) {
		t.Fatalf("together: %v", got)
	}
}

func TestConsumerGroupLeave(t *testing.T) {
	e := newEnv(t)
	a, b := e.consumer("g", "a", "a"), e.consumer("g", "b", "a")
	a.mustJoin()
	b.mustJoin()
	d := settle(t, e, "g", a, b)

	r := b.leave(-1)
	if r.ErrorCode != 0 || r.MemberID == nil || *r.MemberID != "b" || r.MemberEpoch != -1 {
		t.Fatalf("leave: %+v", r)
	}
	d2 := e.cgDescribe("g")
	if d2.Epoch <= d.Epoch || !slices.Equal(memberIDs(d2), []string{"a"}) {
		t.Fatalf("after the leave: %+v", d2)
	}
	if r := e.cgh(e.cgReq("g", "b", b.epoch, nil, map[string][]int32{})); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat of the member that left: %s", code(r.ErrorCode))
	}
	// The one left gets everything.
	settle(t, e, "g", a)
	if !sameAssignment(a.owned, map[string][]int32{"a": {0, 1, 2}}) {
		t.Fatalf("remaining member: %v", a.owned)
	}

	if r := a.leave(-1); r.ErrorCode != 0 {
		t.Fatalf("last leave: %s", code(r.ErrorCode))
	}
	d3 := e.cgDescribe("g")
	if d3.ErrorCode != 0 || d3.State != "Empty" || len(d3.Members) != 0 || d3.Epoch <= d2.Epoch {
		t.Fatalf("empty group: %+v", d3)
	}
	req := kmsg.NewPtrListGroupsRequest()
	req.Version = 5
	lg, ok := e.listAll(req)["g"]
	if !ok || lg.GroupType != "consumer" || lg.GroupState != "Empty" || lg.ProtocolType != "consumer" {
		t.Fatalf("listed: %+v", lg)
	}
	req.TypesFilter, req.StatesFilter = []string{"Consumer"}, []string{"empty"}
	if _, ok := e.listAll(req)["g"]; !ok {
		t.Fatalf("not listed as an Empty consumer group")
	}
	req.TypesFilter = []string{"classic"}
	if _, ok := e.listAll(req)["g"]; ok {
		t.Fatalf("listed as a classic group")
	}
}

func TestConsumerGroupStaticMembers(t *testing.T) {
	e := newEnv(t)
	s := e.consumer("g", "s1", "a", "b")
	s.instance = kmsg.StringPtr("instance-1")
	dyn := e.consumer("g", "dyn", "a", "b")
	s.mustJoin()
	dyn.mustJoin()
	before := settle(t, e, "g", s, dyn)
	if m := describedMember(before, "s1"); m.InstanceID == nil || *m.InstanceID != "instance-1" {
		t.Fatalf("static member: %+v", m)
	}

	// Another member id with the same instance id, while the first is
	// there.
	s2 := e.consumer("g", "s2", "a", "b")
	s2.instance = s.instance
	if r := s2.join(); r.ErrorCode != kerr.UnreleasedInstanceID.Code {
		t.Fatalf("join with an instance id in use: %s", code(r.ErrorCode))
	}
	// A heartbeat naming another member's instance id is fenced.
	req := e.cgReq("g", "dyn", dyn.epoch, nil, dyn.owned)
	req.InstanceID = s.instance
	if r := e.cgh(req); r.ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("heartbeat with another member's instance id: %s", code(r.ErrorCode))
	}

	// The static member leaves for now: it keeps its partitions, the
	// group does not rebalance.
	owned := maps.Clone(s.owned)
	if r := s.leave(-2); r.ErrorCode != 0 || r.MemberEpoch != -2 {
		t.Fatalf("static leave: %+v", r)
	}
	after := e.cgDescribe("g")
	if m := describedMember(after, "s1"); after.Epoch != before.Epoch || m == nil || m.MemberEpoch != -2 ||
		!sameAssignment(described(m.Assignment), owned) {
		t.Fatalf("after the static leave: %+v", after)
	}
	// A heartbeat of the member that left, still in flight, is fenced.
	req = e.cgReq("g", "s1", s.epoch, nil, owned)
	req.InstanceID = s.instance
	if r := e.cgh(req); r.ErrorCode != kerr.FencedMemberEpoch.Code {
		t.Fatalf("heartbeat after the static leave: %s", code(r.ErrorCode))
	}
	// The group comes back as it was after a restart, too.
	e.restart()
	if r := dyn.mustBeat(); r.MemberEpoch != before.Epoch {
		t.Fatalf("dynamic member after the restart: %+v", r)
	}

	// Its instance comes back with a new member id: same partitions, same
	// epoch, no rebalance.
	r := s2.mustJoin()
	if r.MemberEpoch != before.Epoch || !sameAssignment(s2.owned, owned) {
		t.Fatalf("static rejoin: epoch %d, %v, want %d, %v", r.MemberEpoch, s2.owned, before.Epoch, owned)
	}
	final := settle(t, e, "g", s2, dyn)
	if final.Epoch != before.Epoch || !slices.Equal(memberIDs(final), []string{"dyn", "s2"}) {
		t.Fatalf("after the static rejoin: %+v", final)
	}
	// The old member id is gone; its instance id is the new one's.
	req = e.cgReq("g", "s1", s.epoch, nil, owned)
	req.InstanceID = s.instance
	if r := e.cgh(req); r.ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("heartbeat of the replaced static member: %s", code(r.ErrorCode))
	}
	// Leaving for good (-1) rebalances.
	if r := s2.leave(-1); r.ErrorCode != 0 {
		t.Fatalf("static member leaving for good: %s", code(r.ErrorCode))
	}
	if d := e.cgDescribe("g"); d.Epoch <= before.Epoch || !slices.Equal(memberIDs(d), []string{"dyn"}) {
		t.Fatalf("after the static member left for good: %+v", d)
	}
}

func TestConsumerGroupSessionTimeout(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.ConsumerSessionTimeout, o.ConsumerHeartbeatInterval = 300*time.Millisecond, 50*time.Millisecond
	})
	a, b := e.consumer("g", "a", "a"), e.consumer("g", "b", "a")
	a.mustJoin()
	epoch := a.epoch
	b.mustJoin()
	// b heartbeats; a does not and is removed when its session ends, its
	// partitions going to b.
	e.eventually("the silent member is removed", func() bool {
		b.mustBeat()
		d := e.cgDescribe("g")
		return slices.Equal(memberIDs(d), []string{"b"}) && d.Epoch > epoch && sameAssignment(b.owned, map[string][]int32{"a": {0, 1, 2}})
	})
	if r := a.heartbeat(); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat after the session expired: %s", code(r.ErrorCode))
	}
	// b goes silent too: the group is left Empty.
	e.eventually("the group empties", func() bool { return e.cgDescribe("g").State == "Empty" })
}

func TestConsumerGroupRevocationTimeout(t *testing.T) {
	e := newEnv(t)
	a, b := e.consumer("g", "a", "a"), e.consumer("g", "b", "a")
	a.rebalance = 100 * time.Millisecond
	a.mustJoin()
	b.mustJoin()
	// a is asked to revoke and never says it did, though its session
	// stays alive: its rebalance timeout removes it.
	if a.mustBeat(); len(a.owned["a"]) == 3 {
		t.Fatalf("a was not asked to revoke: %v", a.owned)
	}
	e.eventually("the member that does not revoke is removed", func() bool {
		b.mustBeat()
		return slices.Equal(memberIDs(e.cgDescribe("g")), []string{"b"}) && sameAssignment(b.owned, map[string][]int32{"a": {0, 1, 2}})
	})
	if r := e.cgh(e.cgReq("g", "a", a.epoch, nil, map[string][]int32{"a": {0, 1, 2}})); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat of the removed member: %s", code(r.ErrorCode))
	}
}

func TestConsumerGroupRegexSubscription(t *testing.T) {
	e := newEnv(t)
	ab := e.consumer("g1", "m")
	ab.regex = kmsg.StringPtr("a|b")
	ab.mustJoin()
	if !sameAssignment(ab.owned, allOfAB) {
		t.Fatalf("a|b: %v", ab.owned)
	}
	d := e.cgDescribe("g1")
	if m := d.Members[0]; m.SubscribedTopicRegex == nil || *m.SubscribedTopicRegex != "a|b" || len(m.SubscribedTopics) != 0 {
		t.Fatalf("described regex member: %+v", m)
	}
	// The regex must match the whole name.
	if _, err := e.store.CreateTopic("ab", 2, nil); err != nil {
		t.Fatal(err)
	}
	if r := ab.mustBeat(); r.MemberEpoch != d.Epoch || r.Assignment != nil {
		t.Fatalf("a topic the regex does not match rebalanced: %+v", r)
	}

	all := e.consumer("g2", "m")
	all.regex = kmsg.StringPtr(".*")
	all.mustJoin()
	want := map[string][]int32{"a": {0, 1, 2}, "b": {0}, "ab": {0, 1}, OffsetsTopic: {0}}
	if !sameAssignment(all.owned, want) {
		t.Fatalf(".*: %v, want %v", all.owned, want)
	}
	epoch := all.epoch
	if _, err := e.store.CreateTopic("new", 2, nil); err != nil {
		t.Fatal(err)
	}
	r := all.mustBeat()
	want["new"] = []int32{0, 1}
	if r.MemberEpoch <= epoch || !sameAssignment(all.owned, want) {
		t.Fatalf("after a matching topic was created: epoch %d (was %d), %v", r.MemberEpoch, epoch, all.owned)
	}
	if d := e.cgDescribe("g2"); d.Epoch != r.MemberEpoch || d.State != "Stable" {
		t.Fatalf("after a matching topic was created: %+v", d)
	}

	// A member changes its subscription from a regex to names.
	req := e.cgReq("g2", "m", all.epoch, []string{"b"}, all.owned)
	req.SubscribedTopicRegex = kmsg.StringPtr("")
	all.reported = maps.Clone(all.owned)
	r = e.cgh(req)
	all.apply(r)
	settle(t, e, "g2", all)
	if !sameAssignment(all.owned, map[string][]int32{"b": {0}}) {
		t.Fatalf("after subscribing to b: %v", all.owned)
	}
}

func TestConsumerGroupTopicCreatedBeforeRestart(t *testing.T) {
	// A topic the group subscribes to that appears between the last
	// heartbeat and a restart is assigned on the first heartbeat after.
	e := newEnv(t)
	m := e.consumer("g", "m")
	m.regex = kmsg.StringPtr("a|x.*")
	m.mustJoin()
	epoch := m.epoch
	if _, err := e.store.CreateTopic("x1", 2, nil); err != nil {
		t.Fatal(err)
	}
	e.restart()
	settle(t, e, "g", m)
	if want := map[string][]int32{"a": {0, 1, 2}, "x1": {0, 1}}; m.epoch <= epoch || !sameAssignment(m.owned, want) {
		t.Fatalf("after the restart: epoch %d (was %d), %v, want %v", m.epoch, epoch, m.owned, want)
	}
}

func TestConsumerGroupRangeAssignor(t *testing.T) {
	e := newEnv(t)
	m1, m2 := e.consumer("g", "m1", "a"), e.consumer("g", "m2", "a")
	m1.assignor, m2.assignor = kmsg.StringPtr("range"), kmsg.StringPtr("range")
	// The later id joins first: it must give up the first range.
	m2.mustJoin()
	m1.mustJoin()
	d := settle(t, e, "g", m1, m2)
	if d.AssignorName != "range" {
		t.Fatalf("assignor %q", d.AssignorName)
	}
	if !sameAssignment(m1.owned, map[string][]int32{"a": {0, 1}}) || !sameAssignment(m2.owned, map[string][]int32{"a": {2}}) {
		t.Fatalf("range: m1 %v, m2 %v", m1.owned, m2.owned)
	}
}

func TestConsumerGroupMaxSize(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.ConsumerMaxSize, o.MaxSize = 1, 1 })
	m1, m2 := e.consumer("g", "m1", "a"), e.consumer("g", "m2", "a")
	m1.mustJoin()
	if r := m2.join(); r.ErrorCode != kerr.GroupMaxSizeReached.Code {
		t.Fatalf("second member: %s", code(r.ErrorCode))
	}
	// The member that is in may still join again.
	if r := m1.join(); r.ErrorCode != 0 {
		t.Fatalf("rejoin of the member: %s", code(r.ErrorCode))
	}
	if d := e.cgDescribe("g"); !slices.Equal(memberIDs(d), []string{"m1"}) {
		t.Fatalf("members: %v", memberIDs(d))
	}

	// group.max.size for classic groups.
	first := wait(t, e.joinDynamic("classic", session, rebalance))
	if first.ErrorCode != 0 {
		t.Fatalf("first classic member: %s", code(first.ErrorCode))
	}
	if r := e.join(joinReq("classic", "", 9, session, rebalance)); r.ErrorCode != kerr.GroupMaxSizeReached.Code {
		t.Fatalf("second classic member: %s", code(r.ErrorCode))
	}
}

func TestConsumerGroupOffsetCommit(t *testing.T) {
	e := newEnv(t)
	a, b := e.consumer("g", "a", "a"), e.consumer("g", "b", "a")
	a.mustJoin() // all of "a" at its first epoch
	first := a.epoch
	b.mustJoin()
	settle(t, e, "g", a, b)
	kept := a.owned["a"] // held since the first epoch
	if r := b.leave(-1); r.ErrorCode != 0 {
		t.Fatalf("leave: %s", code(r.ErrorCode))
	}
	settle(t, e, "g", a) // a gets b's partitions back, at a later epoch
	var regained []int32
	for _, p := range a.owned["a"] {
		if !slices.Contains(kept, p) {
			regained = append(regained, p)
		}
	}
	if len(kept) == 0 || len(regained) == 0 || a.epoch <= first+1 {
		t.Fatalf("kept %v, regained %v, epoch %d", kept, regained, a.epoch)
	}
	older := a.epoch - 1

	if got := e.commit(9, "g", "a", a.epoch, "a", 10, 0, 1, 2); !slices.Equal(got, codes(nil, nil, nil)) {
		t.Fatalf("commit at the member epoch: %v", got)
	}
	if got := e.commit(9, "g", "a", a.epoch+1, "a", 11, 0); !slices.Equal(got, codes(kerr.StaleMemberEpoch)) {
		t.Fatalf("commit above the member epoch: %v", got)
	}
	if got := e.commit(9, "g", "nobody", a.epoch, "a", 11, 0); !slices.Equal(got, codes(kerr.UnknownMemberID)) {
		t.Fatalf("commit of an unknown member: %v", got)
	}
	if got := e.commit(9, "g", "", -1, "a", 11, 0); !slices.Equal(got, codes(kerr.UnknownMemberID)) {
		t.Fatalf("commit without a member to a group with members: %v", got)
	}
	// An older epoch: fine for partitions held since, not for those
	// gained after it.
	if got := e.commit(9, "g", "a", older, "a", 12, kept...); slices.ContainsFunc(got, func(c int16) bool { return c != 0 }) {
		t.Fatalf("commit at an older epoch of partitions held since: %v", got)
	}
	if got := e.commit(9, "g", "a", older, "a", 13, regained[0]); !slices.Equal(got, codes(kerr.StaleMemberEpoch)) {
		t.Fatalf("commit at an older epoch of a partition gained since: %v", got)
	}
	// A consumer-protocol member commits with v9 or above.
	if got := e.commit(8, "g", "a", a.epoch, "a", 14, 0); !slices.Equal(got, codes(kerr.UnsupportedVersion)) {
		t.Fatalf("v8 commit of a member: %v", got)
	}
	want := map[string]int64{"a/0": 10, "a/1": 10, "a/2": 10}
	for _, p := range kept {
		want[tpKey("a", p)] = 12
	}
	if got := e.fetch("g", ""); !maps.Equal(got, want) {
		t.Fatalf("offsets: %v, want %v", got, want)
	}

	// OffsetFetch naming the member checks its epoch.
	if g := e.fetchAs("g", kmsg.StringPtr("a"), older); g.ErrorCode != kerr.StaleMemberEpoch.Code {
		t.Fatalf("fetch at an old epoch: %s", code(g.ErrorCode))
	}
	if g := e.fetchAs("g", kmsg.StringPtr("nobody"), a.epoch); g.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("fetch of an unknown member: %s", code(g.ErrorCode))
	}
	if g := e.fetchAs("g", kmsg.StringPtr("a"), a.epoch); g.ErrorCode != 0 || len(g.Topics) != 1 || len(g.Topics[0].Partitions) != 3 {
		t.Fatalf("fetch of the member: %+v", g)
	}

	// Once the group is empty, a commit from outside the group protocol
	// is accepted.
	if r := a.leave(-1); r.ErrorCode != 0 {
		t.Fatalf("leave: %s", code(r.ErrorCode))
	}
	if got := e.commit(9, "g", "", -1, "a", 20, 0); !slices.Equal(got, codes(nil)) {
		t.Fatalf("commit to the empty group: %v", got)
	}
	if got := e.fetch("g", "a", 0); got["a/0"] != 20 {
		t.Fatalf("offsets after the admin commit: %v", got)
	}
}

func TestConsumerAndClassicGroups(t *testing.T) {
	e := newEnv(t)
	m := e.consumer("cg", "m", "a")
	m.mustJoin()
	if d := e.describe("cg"); d.ErrorCode != kerr.GroupIDNotFound.Code || d.State != "Dead" {
		t.Fatalf("DescribeGroups of a consumer group: %+v", d)
	}
	if r := e.join(joinReq("cg", "", 9, session, rebalance)); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("classic join to a consumer group with members: %s", code(r.ErrorCode))
	}
	if got := e.deleteGroups("cg"); !slices.Equal(got, codes(kerr.NonEmptyGroup)) {
		t.Fatalf("delete a consumer group with members: %v", got)
	}

	stableGroup(t, e, "classic")
	if d := e.cgDescribe("classic"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("ConsumerGroupDescribe of a classic group: %+v", d)
	}
	c := e.consumer("classic", "m", "a")
	if r := c.join(); r.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("consumer join to a classic group with members: %s", code(r.ErrorCode))
	}
	if r := e.cgh(e.cgReq("classic", "m", 1, nil, map[string][]int32{})); r.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("consumer heartbeat to a classic group: %s", code(r.ErrorCode))
	}

	// An empty consumer group becomes a classic group on a classic join,
	// keeping its offsets.
	if got := e.commit(9, "cg", "m", m.epoch, "a", 5, 0); !slices.Equal(got, codes(nil)) {
		t.Fatalf("commit: %v", got)
	}
	if r := m.leave(-1); r.ErrorCode != 0 {
		t.Fatalf("leave: %s", code(r.ErrorCode))
	}
	if r := wait(t, e.joinDynamic("cg", session, rebalance)); r.ErrorCode != 0 {
		t.Fatalf("classic join to an empty consumer group: %s", code(r.ErrorCode))
	}
	if d := e.cgDescribe("cg"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("ConsumerGroupDescribe of the converted group: %+v", d)
	}
	if d := e.describe("cg"); d.ErrorCode != 0 || len(d.Members) != 1 {
		t.Fatalf("DescribeGroups of the converted group: %+v", d)
	}
	if got := e.fetch("cg", "a", 0); got["a/0"] != 5 {
		t.Fatalf("offsets of the converted group: %v", got)
	}

	// An empty classic group (a simple consumer's) becomes a consumer
	// group on a consumer join, keeping its offsets.
	e.commit(8, "simple", "", -1, "a", 7, 1)
	s := e.consumer("simple", "m", "a")
	s.mustJoin()
	if got := e.fetch("simple", "a", 1); got["a/1"] != 7 {
		t.Fatalf("offsets of the converted simple group: %v", got)
	}
	req := kmsg.NewPtrListGroupsRequest()
	req.Version = 5
	groups := e.listAll(req)
	if groups["simple"].GroupType != "consumer" || groups["cg"].GroupType != "classic" || groups["classic"].GroupType != "classic" {
		t.Fatalf("listed: %+v", groups)
	}

	// Deleting an empty consumer group.
	empty := e.consumer("doomed", "m", "a")
	empty.mustJoin()
	e.commit(9, "doomed", "m", empty.epoch, "a", 1, 0)
	empty.leave(-1)
	if got := e.deleteGroups("doomed"); !slices.Equal(got, codes(nil)) {
		t.Fatalf("delete an empty consumer group: %v", got)
	}
	if d := e.cgDescribe("doomed"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("deleted group: %+v", d)
	}

	// All of it holds after a restart.
	e.restart()
	groups = e.listAll(req)
	if _, ok := groups["doomed"]; ok || groups["simple"].GroupType != "consumer" || groups["cg"].GroupType != "classic" {
		t.Fatalf("listed after a restart: %+v", groups)
	}
	if d := e.cgDescribe("cg"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("converted group after a restart: %+v", d)
	}
	if d := e.cgDescribe("simple"); d.ErrorCode != 0 || !slices.Equal(memberIDs(d), []string{"m"}) {
		t.Fatalf("consumer group after a restart: %+v", d)
	}
	if got := e.fetch("doomed", ""); len(got) != 0 {
		t.Fatalf("offsets of the deleted group after a restart: %v", got)
	}
}

func TestConsumerGroupSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	a, b := e.consumer("g", "a", "a", "b"), e.consumer("g", "b", "a", "b")
	a.mustJoin()
	b.mustJoin()
	before := settle(t, e, "g", a, b)
	for topic, ps := range a.owned {
		if got := e.commit(9, "g", "a", a.epoch, topic, 42, ps...); slices.ContainsFunc(got, func(c int16) bool { return c != 0 }) {
			t.Fatalf("commit: %v", got)
		}
	}
	offsets := e.fetch("g", "")

	same := func(what string) {
		t.Helper()
		d := e.cgDescribe("g")
		if d.ErrorCode != 0 || d.State != before.State || d.Epoch != before.Epoch || d.AssignmentEpoch != before.AssignmentEpoch ||
			d.AssignorName != before.AssignorName || !slices.Equal(memberIDs(d), memberIDs(before)) {
			t.Fatalf("%s: %+v, want %+v", what, d, before)
		}
		for i, m := range d.Members {
			w := before.Members[i]
			if m.MemberEpoch != w.MemberEpoch || m.ClientID != w.ClientID || m.ClientHost != w.ClientHost ||
				!slices.Equal(m.SubscribedTopics, w.SubscribedTopics) ||
				!sameAssignment(described(m.Assignment), described(w.Assignment)) ||
				!sameAssignment(described(m.TargetAssignment), described(w.TargetAssignment)) {
				t.Fatalf("%s: member %+v, want %+v", what, m, w)
			}
		}
		if got := e.fetch("g", ""); !maps.Equal(got, offsets) {
			t.Fatalf("%s: offsets %v, want %v", what, got, offsets)
		}
	}
	beat := func(what string) {
		t.Helper()
		for _, c := range []*cgClient{a, b} {
			if r := c.mustBeat(); r.MemberEpoch != before.Epoch || r.Assignment != nil {
				t.Fatalf("%s: heartbeat of %s: %+v", what, c.id, r)
			}
		}
		same(what)
	}

	e.restart()
	same("after a restart")
	beat("heartbeats after a restart")

	// Compaction keeps the group's snapshot.
	p, err := e.store.Partition(OffsetsTopic, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := p.LogStartOffset()
	e.c.compact()
	if p.LogStartOffset() <= start {
		t.Fatalf("nothing compacted: log start %d", p.LogStartOffset())
	}
	e.restart()
	same("after compaction and a restart")
	beat("heartbeats after compaction and a restart")

	// The members carry on: one leaves, the other takes everything.
	if r := b.leave(-1); r.ErrorCode != 0 {
		t.Fatalf("leave: %s", code(r.ErrorCode))
	}
	settle(t, e, "g", a)
	if !sameAssignment(a.owned, allOfAB) {
		t.Fatalf("after the leave: %v", a.owned)
	}
}

// TestConsumerGroupStoresOnlyWhatChanged checks that the group's records
// follow what changed: a heartbeat that changes nothing writes nothing,
// one member's change writes that member's record alone, and a new member
// writes the group, itself and the member whose target moved.
func TestConsumerGroupStoresOnlyWhatChanged(t *testing.T) {
	e := newEnv(t)
	a, b := e.consumer("g", "a", "a", "b"), e.consumer("g", "b", "a", "b")
	a.mustJoin()
	b.mustJoin()
	settle(t, e, "g", a, b)
	p, err := e.store.Partition(OffsetsTopic, 0)
	if err != nil {
		t.Fatal(err)
	}
	written := func(send func()) int64 {
		before := p.HighWatermark()
		send()
		return p.HighWatermark() - before
	}
	if n := written(func() { a.mustBeat() }); n != 0 {
		t.Errorf("a heartbeat that changed nothing wrote %d records", n)
	}
	if n := written(func() {
		req := e.cgReq("g", "a", a.epoch, nil, nil)
		req.RackID = kmsg.StringPtr("rack-1")
		if resp := e.cgh(req); resp.ErrorCode != 0 {
			t.Fatalf("heartbeat with a rack: %s", code(resp.ErrorCode))
		}
	}); n != 1 {
		t.Errorf("one member's new rack wrote %d records, want 1", n)
	}
	// Four partitions, two each: the third member takes one from one of
	// them, so the other's target does not move.
	c := e.consumer("g", "c", "a", "b")
	if n := written(func() { c.mustJoin() }); n != 3 {
		t.Errorf("a join wrote %d records, want 3 (the group, the new member and the one whose target moved)", n)
	}
}

// TestConsumerGroupStaticJoinWithAnotherMembersID: a static join whose
// member id is another member's is refused, leaving the group as it was
// (it once replaced that member and left an instance id pointing at no
// member, whose next join panicked).
func TestConsumerGroupStaticJoinWithAnotherMembersID(t *testing.T) {
	e := newEnv(t)
	x, y := e.consumer("g", "X", "a"), e.consumer("g", "Y", "a")
	x.instance, y.instance = kmsg.StringPtr("i"), kmsg.StringPtr("j")
	x.mustJoin()
	y.mustJoin()
	before := settle(t, e, "g", x, y)
	if r := x.leave(-2); r.ErrorCode != 0 {
		t.Fatalf("static leave: %s", code(r.ErrorCode))
	}
	thief := e.consumer("g", "Y", "a")
	thief.instance = kmsg.StringPtr("i")
	if r := thief.join(); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("static join with another member's id: %s", code(r.ErrorCode))
	}
	w := e.consumer("g", "W", "a")
	w.instance = kmsg.StringPtr("j")
	if r := w.join(); r.ErrorCode != kerr.UnreleasedInstanceID.Code {
		t.Fatalf("join with the instance id of a member still there: %s", code(r.ErrorCode))
	}
	if d := e.cgDescribe("g"); d.Epoch != before.Epoch || !slices.Equal(memberIDs(d), []string{"X", "Y"}) {
		t.Fatalf("group after the refused joins: %+v", d)
	}
}

// TestConsumerGroupStaticLeaveWhileRevoking: a static member that leaves
// for now while it is giving up partitions gives them up at once, and no
// rebalance timeout is left to remove it.
func TestConsumerGroupStaticLeaveWhileRevoking(t *testing.T) {
	e := newEnv(t)
	s := e.consumer("g", "s", "a")
	s.instance, s.rebalance = kmsg.StringPtr("i"), 50*time.Millisecond
	s.mustJoin()
	settle(t, e, "g", s)
	b := e.consumer("g", "b", "a")
	b.mustJoin()
	s.mustBeat() // told to revoke
	if d := describedMember(e.cgDescribe("g"), "s"); len(described(d.Assignment)["a"]) == 3 {
		t.Fatalf("s was not asked to revoke: %+v", d)
	}
	if r := s.leave(-2); r.ErrorCode != 0 {
		t.Fatalf("static leave: %s", code(r.ErrorCode))
	}
	b.mustBeat()
	if len(b.owned["a"]) == 0 {
		t.Fatalf("b did not get what s was giving up: %v", b.owned)
	}
	// Nothing is left to revoke, so no rebalance timeout can remove s:
	// it stays for its instance.
	g := e.c.lockGroup("g", false)
	m := g.consumer.members["s"]
	pending, timer := len(m.revoking), m.revocation != nil
	g.mu.Unlock()
	if pending != 0 || timer {
		t.Fatalf("s left with %d partitions to revoke, revocation timer set: %v", pending, timer)
	}
}

// TestConsumerGroupOffsetsExpireByCommitTime: a consumer group's offsets
// expire by commit time, so a restart does not give them a new lease.
func TestConsumerGroupOffsetsExpireByCommitTime(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	e := newEnv(t, func(o *Options) { o.Now = func() time.Time { return now }; o.OffsetsRetention = time.Hour })
	m := e.consumer("g", "m", "a")
	m.mustJoin()
	if got := e.commit(9, "g", "m", m.epoch, "a", 42, 0); got[0] != 0 {
		t.Fatalf("commit: %s", code(got[0]))
	}
	if r := m.leave(-1); r.ErrorCode != 0 {
		t.Fatalf("leave: %s", code(r.ErrorCode))
	}
	now = now.Add(50 * time.Minute)
	e.restart()
	e.c.expireOffsets()
	if got := e.fetch("g", "a", 0); got[tpKey("a", 0)] != 42 {
		t.Fatalf("offsets 50 minutes after the commit: %v", got)
	}
	now = now.Add(20 * time.Minute)
	e.c.expireOffsets()
	if got := e.fetch("g", "a", 0); got[tpKey("a", 0)] != -1 {
		t.Fatalf("offsets 70 minutes after the commit: %v", got)
	}
}

// TestConsumerGroupHostileHeartbeats: input that could not be stored or
// would defeat the whole-name match is refused, and a member whose record
// would be too large to store is removed without blocking the others.
func TestConsumerGroupHostileHeartbeats(t *testing.T) {
	e := newEnv(t)
	req := e.cgReq("g", "m", 0, nil, nil)
	req.SubscribedTopicRegex = kmsg.StringPtr("a)|(b")
	if r := e.cgh(req); r.ErrorCode != kerr.InvalidRegularExpression.Code {
		t.Fatalf("regex escaping its wrapper: %s", code(r.ErrorCode))
	}
	if r := e.cgh(e.cgReq("g", strings.Repeat("m", 1<<16), 0, []string{"a"}, nil)); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("a 64 KiB member id: %s", code(r.ErrorCode))
	}

	names := make([]string, 40000)
	for i := range names {
		names[i] = fmt.Sprintf("no-such-topic-%08d", i)
	}
	if r := e.cgh(e.cgReq("g", "huge", 0, names, nil)); r.ErrorCode != kerr.UnknownServerError.Code {
		t.Fatalf("a subscription too large to store: %s", code(r.ErrorCode))
	}
	other := e.consumer("g", "other", "a")
	other.mustJoin()
	d := settle(t, e, "g", other)
	e.restart()
	if after := e.cgDescribe("g"); !slices.Equal(memberIDs(after), []string{"other"}) || after.Epoch != d.Epoch {
		t.Fatalf("group after a restart: %+v, want only other at epoch %d", after, d.Epoch)
	}
}

// TestConsumerGroupRestoreOverlap: records that, after a crash between
// two batches, give a partition to two members are restored with the
// partition held by one.
func TestConsumerGroupRestoreOverlap(t *testing.T) {
	e := newEnv(t)
	a, b := e.consumer("g", "a", "a", "b"), e.consumer("g", "b", "a", "b")
	a.mustJoin()
	b.mustJoin()
	settle(t, e, "g", a, b)
	g := e.c.lockGroup("g", false)
	ma, mb := g.consumer.members["a"], g.consumer.members["b"]
	for id, ps := range ma.assigned {
		for _, p := range ps {
			mb.assigned.add(id, p)
		}
	}
	g.consumer.touch("b")
	if err := g.storeConsumer(); err != nil {
		t.Fatal(err)
	}
	g.mu.Unlock()
	e.restart()
	checkExclusive(t, e, "g")
	settle(t, e, "g", a, b)
}
