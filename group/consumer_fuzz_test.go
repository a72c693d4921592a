package group

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzConsumerGroupHeartbeats drives a KIP-848 group with a sequence of
// heartbeats the input chooses: joins with different subscriptions,
// heartbeats whose responses are taken in or lost, keepalives, leaves,
// static members leaving for now and coming back, heartbeats with made-up
// epochs and partitions, and restarts. After every step the coordinator's
// state must hold together: no partition held by two members, the owners
// map exactly what the members hold, instance ids pointing at their
// members; and a restart must bring back the group as it was.
func FuzzConsumerGroupHeartbeats(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 2, 1, 0, 1, 1, 1, 2, 2, 0, 3, 1, 7, 0})
	f.Add([]byte{0, 3, 0, 0, 1, 1, 4, 3, 1, 0, 0, 3, 1, 0, 6, 0, 1, 3})
	f.Add([]byte{0, 0, 2, 0, 1, 3, 5, 1, 9, 1, 0, 7, 1, 1, 6, 0, 3, 0})
	f.Fuzz(runHeartbeatOps)
}

// TestConsumerGroupRandomHeartbeats runs FuzzConsumerGroupHeartbeats'
// steps in random orders, so every test run covers more than the seeds.
func TestConsumerGroupRandomHeartbeats(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 40 {
		ops := make([]byte, 120)
		for j := range ops {
			ops[j] = byte(rng.IntN(256))
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { runHeartbeatOps(t, ops) })
	}
}

// runHeartbeatOps runs the steps ops chooses, two bytes a step, and
// checks the group after each.
func runHeartbeatOps(t *testing.T, ops []byte) {
	if len(ops) > 120 {
		ops = ops[:120]
	}
	e := newEnv(t, func(o *Options) { o.ConsumerSessionTimeout = time.Hour })
	type client struct {
		id       string
		instance *string
		epoch    int32
		owned    map[string][]int32
	}
	clients := make([]*client, 4)
	for i := range clients {
		clients[i] = &client{id: fmt.Sprintf("m%d", i), owned: map[string][]int32{}}
	}
	clients[3].instance = kmsg.StringPtr("static")
	subscriptions := [][]string{{"a"}, {"b"}, {"a", "b"}}
	take := func(c *client, resp *kmsg.ConsumerGroupHeartbeatResponse) {
		if resp.ErrorCode != 0 {
			c.epoch, c.owned = 0, map[string][]int32{} // as a client: abandon and rejoin
			return
		}
		c.epoch = resp.MemberEpoch
		if a := e.byName(resp.Assignment); a != nil {
			c.owned = a
		}
	}
	for len(ops) >= 2 {
		op, arg := ops[0]%8, ops[1]
		ops = ops[2:]
		c := clients[int(arg)%len(clients)]
		switch op {
		case 0: // join
			req := e.cgReq("g", c.id, 0, subscriptions[int(arg/4)%len(subscriptions)], nil)
			if arg&0x40 != 0 {
				req.SubscribedTopicNames, req.SubscribedTopicRegex = nil, kmsg.StringPtr("a|b")
			}
			req.InstanceID = c.instance
			c.owned = map[string][]int32{}
			take(c, e.cgh(req))
		case 1, 7: // a full heartbeat; 7 loses its response
			req := e.cgReq("g", c.id, c.epoch, nil, c.owned)
			req.RebalanceTimeoutMillis = 60000
			req.SubscribedTopicNames = []string{"a", "b"}
			if resp := e.cgh(req); op == 1 {
				take(c, resp)
			}
		case 2: // keepalive
			take(c, e.cgh(e.cgReq("g", c.id, c.epoch, nil, nil)))
		case 3: // leave
			e.cgh(e.cgReq("g", c.id, leaveEpoch, nil, nil))
			c.epoch, c.owned = 0, map[string][]int32{}
		case 4: // a static member leaves for now
			req := e.cgReq("g", c.id, staticLeaveEpoch, nil, nil)
			req.InstanceID = c.instance
			e.cgh(req)
			c.epoch, c.owned = 0, map[string][]int32{}
		case 5: // made-up epoch and partitions
			req := e.cgReq("g", c.id, int32(arg%5)-1, nil, map[string][]int32{"a": {int32(arg % 4)}, "b": {0}})
			req.InstanceID = c.instance
			e.cgh(req)
		case 6: // restart
			before := e.cgDescribe("g")
			e.restart()
			if after := e.cgDescribe("g"); !reflect.DeepEqual(before, after) {
				t.Fatalf("group after a restart:\n%+v\nwant\n%+v", after, before)
			}
		}
		checkConsumerGroup(t, e)
	}
}

// checkConsumerGroup checks that the consumer group "g", if there is one,
// holds together.
func checkConsumerGroup(t *testing.T, e *testEnv) {
	t.Helper()
	g := e.c.lockGroup("g", false)
	if g == nil {
		return
	}
	defer g.mu.Unlock()
	cg := g.consumer
	if cg == nil {
		return
	}
	held := map[topicIDPartition]string{}
	for id, m := range cg.members {
		if m.id != id {
			t.Fatalf("member %s filed under %s", m.id, id)
		}
		for _, a := range []assignment{m.assigned, m.revoking} {
			for tid, ps := range a {
				for _, p := range ps {
					tp := topicIDPartition{tid, p}
					if other, dup := held[tp]; dup {
						t.Fatalf("partition %v held by %s and %s", tp, other, id)
					}
					held[tp] = id
					if cg.owners[tp] != id {
						t.Fatalf("partition %v held by %s, owner %q", tp, id, cg.owners[tp])
					}
				}
			}
		}
		if m.instanceID != nil && cg.static[*m.instanceID] != id {
			t.Fatalf("member %s's instance id %s maps to %q", id, *m.instanceID, cg.static[*m.instanceID])
		}
	}
	if len(held) != len(cg.owners) {
		t.Fatalf("owners has %d partitions, members hold %d", len(cg.owners), len(held))
	}
	for inst, id := range cg.static {
		if m := cg.members[id]; m == nil || m.instanceID == nil || *m.instanceID != inst {
			t.Fatalf("instance id %s maps to %s, which is not its member", inst, id)
		}
	}
}
