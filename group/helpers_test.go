package group

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"

	"github.com/rocketkafka/broker/log"
)

// waitTimeout bounds every wait for a parked request; the timeouts the
// tests configure are far shorter.
const waitTimeout = 10 * time.Second

// testEnv is a coordinator over a store in a temporary directory.
type testEnv struct {
	t     *testing.T
	dir   string
	store *log.Log
	c     *Coordinator
	opts  func(*Options)
}

// newEnv opens a store and a coordinator with short timeouts and no
// initial rebalance delay unless edit says otherwise; topics "a" (3
// partitions) and "b" (1) exist.
func newEnv(t *testing.T, edit ...func(*Options)) *testEnv {
	t.Helper()
	e := &testEnv{t: t, dir: t.TempDir()}
	e.opts = func(o *Options) {
		o.MinSessionTimeout = time.Millisecond
		o.InitialRebalanceDelay = 0
		for _, f := range edit {
			f(o)
		}
	}
	e.open()
	for name, n := range map[string]int32{"a": 3, "b": 1} {
		if _, err := e.store.CreateTopic(name, n, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(e.close)
	return e
}

func (e *testEnv) open() {
	e.t.Helper()
	store, err := log.Open(log.Options{Dir: e.dir, SegmentBytes: 1 << 20, ConsumeQueueEntries: 1024})
	if err != nil {
		e.t.Fatalf("opening the store: %v", err)
	}
	opts := DefaultOptions(store)
	opts.Logger = zaptest.NewLogger(e.t)
	e.opts(&opts)
	c, err := Open(opts)
	if err != nil {
		store.Close()
		e.t.Fatalf("opening the coordinator: %v", err)
	}
	e.store, e.c = store, c
}

func (e *testEnv) close() {
	if e.c == nil {
		return
	}
	e.c.Close()
	if err := e.store.Close(); err != nil {
		e.t.Errorf("closing the store: %v", err)
	}
	e.c, e.store = nil, nil
}

// restart closes the coordinator and the store cleanly and opens both
// again on the same directory.
func (e *testEnv) restart() {
	e.t.Helper()
	e.close()
	e.open()
}

// consumerMeta is a consumer protocol subscription to topics.
func consumerMeta(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

// joinReq is a consumer's JoinGroup at version v with session and
// rebalance timeouts, subscribing to "a".
func joinReq(group, member string, v int16, session, rebalance time.Duration) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = v
	req.Group, req.MemberID = group, member
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = int32(session/time.Millisecond), int32(rebalance/time.Millisecond)
	req.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", consumerMeta("a")
	req.Protocols = append(req.Protocols, p)
	return req
}

// joinAsync sends a JoinGroup in the background.
func (e *testEnv) joinAsync(req *kmsg.JoinGroupRequest) <-chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	c := e.c // the goroutine may outlive the test's environment
	go func() { ch <- c.JoinGroup(context.Background(), req, Client{ID: "test", Host: "/127.0.0.1"}) }()
	return ch
}

func (e *testEnv) join(req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	e.t.Helper()
	return wait(e.t, e.joinAsync(req))
}

func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("no answer within %v", waitTimeout)
		panic("unreachable")
	}
}

// notYet checks that ch has no answer for a moment.
func notYet[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s answered early: %+v", what, v)
	case <-time.After(50 * time.Millisecond):
	}
}

// joinDynamic joins a new dynamic member the KIP-394 way (two requests)
// and returns the channel of its second join.
func (e *testEnv) joinDynamic(group string, session, rebalance time.Duration) <-chan *kmsg.JoinGroupResponse {
	e.t.Helper()
	first := e.join(joinReq(group, "", 9, session, rebalance))
	if first.ErrorCode != kerr.MemberIDRequired.Code || first.MemberID == "" {
		e.t.Fatalf("first join: %+v, want MEMBER_ID_REQUIRED with an id", first)
	}
	return e.joinAsync(joinReq(group, first.MemberID, 9, session, rebalance))
}

func (e *testEnv) sync(group, member string, generation int32, assignments map[string][]byte) <-chan *kmsg.SyncGroupResponse {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = group, member, generation
	req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	for id, a := range assignments {
		ra := kmsg.NewSyncGroupRequestGroupAssignment()
		ra.MemberID, ra.MemberAssignment = id, a
		req.GroupAssignment = append(req.GroupAssignment, ra)
	}
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	c := e.c // the goroutine may outlive the test's environment
	go func() { ch <- c.SyncGroup(context.Background(), req) }()
	return ch
}

func (e *testEnv) heartbeat(group, member string, generation int32, instance *string) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation, req.InstanceID = group, member, generation, instance
	return e.c.Heartbeat(req).ErrorCode
}

// commit commits offset for each of the partitions of topic, returning
// the error code of each.
func (e *testEnv) commit(v int16, group, member string, generation int32, topic string, offset int64, partitions ...int32) []int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = v
	req.Group, req.MemberID, req.Generation = group, member, generation
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for _, p := range partitions {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.Metadata = p, offset, kmsg.StringPtr("m")
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := e.c.OffsetCommit(req)
	var codes []int16
	for _, p := range resp.Topics[0].Partitions {
		codes = append(codes, p.ErrorCode)
	}
	return codes
}

// fetch returns the committed offsets of group's partitions of topic
// (-1 for none); topic "" fetches all and keys them as topic/partition.
func (e *testEnv) fetch(group string, topic string, partitions ...int32) map[string]int64 {
	e.t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 9
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	if topic != "" {
		rt := kmsg.NewOffsetFetchRequestGroupTopic()
		rt.Topic, rt.Partitions = topic, partitions
		rg.Topics = append(rg.Topics, rt)
	}
	req.Groups = append(req.Groups, rg)
	resp := e.c.OffsetFetch(req)
	if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
		e.t.Fatalf("fetch %s: %+v", group, resp.Groups)
	}
	out := map[string]int64{}
	for _, t := range resp.Groups[0].Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				e.t.Fatalf("fetch %s %s[%d]: %s", group, t.Topic, p.Partition, kerr.ErrorForCode(p.ErrorCode))
			}
			out[tpKey(t.Topic, p.Partition)] = p.Offset
		}
	}
	return out
}

func tpKey(topic string, partition int32) string {
	return fmt.Sprintf("%s/%d", topic, partition)
}

func code(c int16) string {
	if c == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(c).Error()
}

// eventually polls cond until it holds, failing after waitTimeout.
func (e *testEnv) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within %v", what, waitTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
