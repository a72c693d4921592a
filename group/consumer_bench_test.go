package group

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rocketkafka/broker/log"
)

// benchMember is a KIP-848 member as a client keeps it: its epoch and
// the partitions its last assignment gave it.
type benchMember struct {
	id    string
	epoch int32
	owned []kmsg.ConsumerGroupHeartbeatRequestTopic
}

func (m *benchMember) heartbeat(b *testing.B, c *Coordinator, full bool) {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version, req.Group, req.MemberID, req.MemberEpoch = 1, "bench", m.id, m.epoch
	req.RebalanceTimeoutMillis = -1
	if m.epoch == 0 || full {
		req.RebalanceTimeoutMillis = 60000
		req.SubscribedTopicNames = []string{"t"}
		req.Topics = m.owned
	}
	resp := c.ConsumerGroupHeartbeat(req, Client{ID: m.id})
	if resp.ErrorCode != 0 {
		b.Fatalf("%s: error %d", m.id, resp.ErrorCode)
	}
	m.epoch = resp.MemberEpoch
	if a := resp.Assignment; a != nil {
		m.owned = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		for _, t := range a.Topics {
			m.owned = append(m.owned, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: t.TopicID, Partitions: t.Partitions})
		}
	}
}

// settleBench heartbeats every member until the group is Stable.
func settleBench(b *testing.B, c *Coordinator, members []*benchMember) {
	for range 100 {
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.Groups = []string{"bench"}
		if d := c.ConsumerGroupDescribe(req).Groups[0]; d.State == "Stable" {
			return
		}
		for _, m := range members {
			m.heartbeat(b, c, true)
		}
	}
	b.Fatal("the group did not settle")
}

// BenchmarkConsumerGroupHeartbeat measures the coordinator's side of
// KIP-848 heartbeats in a group of 100 members over 1000 partitions: the
// steady keepalive every member sends each heartbeat interval, and a
// member joining and the group settling again (every member moving to the
// new target, with revocations; each change stored in __consumer_offsets).
func BenchmarkConsumerGroupHeartbeat(b *testing.B) {
	store, err := log.Open(log.Options{Dir: b.TempDir(), SegmentBytes: 64 << 20, ConsumeQueueEntries: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := store.CreateTopic("t", 1000, nil); err != nil {
		b.Fatal(err)
	}
	c, err := Open(DefaultOptions(store))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.Close()
		store.Close()
	})
	members := make([]*benchMember, 100)
	for i := range members {
		members[i] = &benchMember{id: fmt.Sprintf("member-%03d", i), owned: []kmsg.ConsumerGroupHeartbeatRequestTopic{}}
		members[i].heartbeat(b, c, true)
	}
	settleBench(b, c, members)

	b.Run("keepalive", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			members[i%len(members)].heartbeat(b, c, false)
			i++
		}
	})
	b.Run("join-and-settle", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			m := &benchMember{id: fmt.Sprintf("joiner-%d", i), owned: []kmsg.ConsumerGroupHeartbeatRequestTopic{}}
			m.heartbeat(b, c, true)
			settleBench(b, c, append(members, m))
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.Version, req.Group, req.MemberID, req.MemberEpoch = 1, "bench", m.id, leaveEpoch
			c.ConsumerGroupHeartbeat(req, Client{})
			settleBench(b, c, members)
		}
	})
}
