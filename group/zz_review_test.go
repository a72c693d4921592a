package group

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// R1: a static member leaving (-2) while it must revoke keeps its
// revoking partitions and its revocation timer.
func TestZZStaticLeaveWhileRevoking(t *testing.T) {
	e := newEnv(t)
	s := e.consumer("g", "s", "a")
	s.instance = kmsg.StringPtr("i")
	s.rebalance = 300 * time.Millisecond
	s.mustJoin()
	b := e.consumer("g", "b", "a")
	b.mustJoin()
	// s told to revoke, but a keepalive heartbeat (Topics nil) => UNREVOKED
	req := e.cgReq("g", "s", s.epoch, nil, nil)
	r := e.cgh(req)
	t.Logf("s keepalive: err=%d epoch=%d assignment=%v", r.ErrorCode, r.MemberEpoch, e.byName(r.Assignment))
	if r := s.leave(-2); r.ErrorCode != 0 {
		t.Fatal(code(r.ErrorCode))
	}
	b.mustBeat()
	d := e.cgDescribe("g")
	for _, m := range d.Members {
		t.Logf("after static leave: %s epoch=%d assigned=%v target=%v", m.MemberID, m.MemberEpoch, described(m.Assignment), described(m.TargetAssignment))
	}
	time.Sleep(500 * time.Millisecond)
	b.mustBeat()
	d = e.cgDescribe("g")
	t.Logf("after rebalance timeout: members=%v epoch=%d", memberIDs(d), d.Epoch)
	for _, m := range d.Members {
		t.Logf("  %s epoch=%d assigned=%v", m.MemberID, m.MemberEpoch, described(m.Assignment))
	}
}

// R2: offsets of an empty consumer group: retention clock restarts at
// every restart.
func TestZZEmptyConsumerGroupRetentionAcrossRestart(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	e := newEnv(t, func(o *Options) {
		o.Now = func() time.Time { return time.UnixMilli(now.Load()) }
		o.OffsetsRetention = time.Hour
	})
	a := e.consumer("g", "m", "a")
	a.mustJoin()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 9
	req.Group, req.MemberID, req.Generation = "g", "m", a.epoch
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "a"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 42
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if c := e.c.OffsetCommit(req).Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Fatal(code(c))
	}
	a.leave(-1)
	now.Add((50 * time.Minute).Milliseconds())
	e.restart()
	now.Add((20 * time.Minute).Milliseconds()) // 70 min after the commit and after the group emptied
	e.c.expireOffsets()
	t.Logf("after 70m (retention 60m), restart at 50m: offsets %v", e.fetch("g", "a", 0))
}

// R3: a static rejoin naming an existing member id overwrites it; then a
// stale static entry panics.
func TestZZStaticReplaceCollision(t *testing.T) {
	e := newEnv(t)
	x := e.consumer("g", "X", "a")
	x.instance = kmsg.StringPtr("i")
	y := e.consumer("g", "Y", "a")
	y.instance = kmsg.StringPtr("j")
	x.mustJoin()
	y.mustJoin()
	settle(t, e, "g", x, y)
	x.leave(-2)
	z := e.consumer("g", "Y", "a") // member id Y, instance i
	z.instance = kmsg.StringPtr("i")
	r := z.join()
	t.Logf("collision join: %s", code(r.ErrorCode))
	e.c.mu.Lock()
	g := e.c.groups["g"]
	e.c.mu.Unlock()
	g.mu.Lock()
	t.Logf("static=%v owners=%v", g.consumer.static, len(g.consumer.owners))
	for tp, o := range g.consumer.owners {
		t.Logf("  owner %d -> %s", tp.partition, o)
	}
	g.mu.Unlock()
	// Y leaves for good, without an instance id.
	lr := e.cgReq("g", "Y", -1, nil, nil)
	t.Logf("leave: %s", code(e.cgh(lr).ErrorCode))
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("PANIC: %v", p)
		}
	}()
	w := e.consumer("g", "W", "a")
	w.instance = kmsg.StringPtr("j")
	t.Logf("join with instance j: %s", code(w.join().ErrorCode))
}

// R4: a member id longer than 65535 bytes.
func TestZZLongMemberID(t *testing.T) {
	e := newEnv(t)
	id := strings.Repeat("x", 70000)
	a := e.consumer("g", id, "a")
	a.mustJoin()
	e.restart()
	d := e.cgDescribe("g")
	t.Logf("after restart: members %d, state %s", len(d.Members), d.State)
}

// R5: static member leaves then rejoins with the same member id: left
// flag not stored.
func TestZZStaticRejoinSameIDNotStored(t *testing.T) {
	e := newEnv(t)
	s := e.consumer("g", "s", "a")
	s.instance = kmsg.StringPtr("i")
	s.mustJoin()
	s.leave(-2)
	s.mustJoin()
	e.restart()
	r := s.heartbeat()
	t.Logf("heartbeat after restart: %s", code(r.ErrorCode))
}
