package group

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rocketkafka/broker/record"
)

func codes(cs ...*kerr.Error) []int16 {
	out := make([]int16, len(cs))
	for i, c := range cs {
		if c != nil {
			out[i] = c.Code
		}
	}
	return out
}

func TestOffsetCommitFencing(t *testing.T) {
	e := newEnv(t)
	// A simple consumer (no generation, no member) may commit to a group
	// with no members, creating it.
	if got := e.commit(8, "simple", "", -1, "a", 10, 0, 1); !slices.Equal(got, codes(nil, nil)) {
		t.Fatalf("simple commit: %v", got)
	}
	// Unknown partitions are refused whatever else holds.
	if got := e.commit(8, "simple", "", -1, "a", 10, 0, 3); !slices.Equal(got, codes(nil, kerr.UnknownTopicOrPartition)) {
		t.Fatalf("commit to partition 3 of 3: %v", got)
	}
	if got := e.commit(8, "simple", "", -1, "nosuch", 10, 0); !slices.Equal(got, codes(kerr.UnknownTopicOrPartition)) {
		t.Fatalf("commit to an unknown topic: %v", got)
	}
	// A generation for a group that does not exist.
	if got := e.commit(8, "nogroup", "m", 3, "a", 1, 0); !slices.Equal(got, codes(kerr.IllegalGeneration)) {
		t.Fatalf("v8 commit with a generation to an unknown group: %v", got)
	}
	if got := e.commit(9, "nogroup", "m", 3, "a", 1, 0); !slices.Equal(got, codes(kerr.GroupIDNotFound)) {
		t.Fatalf("v9 commit with a generation to an unknown group: %v", got)
	}
	if got := e.commit(8, "", "", -1, "a", 1, 0); !slices.Equal(got, codes(kerr.InvalidGroupID)) {
		t.Fatalf("commit without a group id: %v", got)
	}

	leader, follower, gen := stableGroup(t, e, "g")
	if got := e.commit(8, "g", follower, gen, "a", 5, 0, 1, 2); !slices.Equal(got, codes(nil, nil, nil)) {
		t.Fatalf("member commit: %v", got)
	}
	if got := e.commit(8, "g", "", -1, "a", 5, 0); !slices.Equal(got, codes(kerr.UnknownMemberID)) {
		t.Fatalf("simple commit to a group with members: %v", got)
	}
	if got := e.commit(8, "g", follower, gen-1, "a", 5, 0); !slices.Equal(got, codes(kerr.IllegalGeneration)) {
		t.Fatalf("commit of an old generation: %v", got)
	}
	if got := e.commit(8, "g", "nobody", gen, "a", 5, 0); !slices.Equal(got, codes(kerr.UnknownMemberID)) {
		t.Fatalf("commit of an unknown member: %v", got)
	}

	// During a rebalance members still commit with their generation (an
	// eager consumer commits before it rejoins)...
	ch := e.joinDynamic("g", session, rebalance)
	e.eventually("the group rebalances", func() bool { return e.describe("g").State == "PreparingRebalance" })
	if got := e.commit(8, "g", follower, gen, "a", 6, 0); !slices.Equal(got, codes(nil)) {
		t.Fatalf("commit while PreparingRebalance: %v", got)
	}
	// ...but not while the leader assigns.
	rl := e.joinAsync(joinReq("g", leader, 9, session, rebalance))
	rf := e.join(joinReq("g", follower, 9, session, rebalance))
	wait(t, rl)
	wait(t, ch)
	if got := e.commit(8, "g", follower, rf.Generation, "a", 7, 0); !slices.Equal(got, codes(kerr.RebalanceInProgress)) {
		t.Fatalf("commit while CompletingRebalance: %v", got)
	}
	if got := e.fetch("g", "a", 0, 1, 2); got["a/0"] != 6 || got["a/1"] != 5 || got["a/2"] != 5 {
		t.Fatalf("committed offsets: %v", got)
	}

	// Metadata over offset.metadata.max.bytes.
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation = 8, "simple", -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "b"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset, rp.Metadata = 1, kmsg.StringPtr(strings.Repeat("x", maxMetadataBytes+1))
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if c := e.c.OffsetCommit(req).Topics[0].Partitions[0].ErrorCode; c != kerr.OffsetMetadataTooLarge.Code {
		t.Fatalf("large metadata: %s", code(c))
	}
}

func TestOffsetsSurviveRestart(t *testing.T) {
	e := newEnv(t)
	e.commit(8, "g1", "", -1, "a", 100, 0, 1, 2)
	e.commit(8, "g1", "", -1, "a", 150, 1)
	e.commit(8, "g1", "", -1, "b", 7, 0)
	e.commit(8, "g2", "", -1, "b", 8, 0)
	e.commit(8, "gone", "", -1, "b", 9, 0)
	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = "g1"
	dt := kmsg.NewOffsetDeleteRequestTopic()
	dt.Topic = "a"
	dp := kmsg.NewOffsetDeleteRequestTopicPartition()
	dp.Partition = 2
	dt.Partitions = append(dt.Partitions, dp)
	del.Topics = append(del.Topics, dt)
	if resp := e.c.OffsetDelete(del); resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete: %+v", resp)
	}
	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Groups = []string{"gone"}
	if resp := e.c.DeleteGroups(dg); resp.Groups[0].ErrorCode != 0 {
		t.Fatalf("delete group: %+v", resp)
	}
	want := map[string]int64{"a/0": 100, "a/1": 150, "b/0": 7}
	if got := e.fetch("g1", ""); !maps.Equal(got, want) {
		t.Fatalf("before the restart: %v, want %v", got, want)
	}

	e.restart()
	if got := e.fetch("g1", ""); !maps.Equal(got, want) {
		t.Fatalf("after the restart: %v, want %v", got, want)
	}
	if got := e.fetch("g2", "b", 0); got["b/0"] != 8 {
		t.Fatalf("g2 after the restart: %v", got)
	}
	if got := e.fetch("gone", ""); len(got) != 0 {
		t.Fatalf("deleted group after the restart: %v", got)
	}
	if groups := e.list(); !slices.Equal(groups, []string{"g1", "g2"}) {
		t.Fatalf("groups after the restart: %v", groups)
	}
}

func (e *testEnv) list(states ...string) []string {
	req := kmsg.NewPtrListGroupsRequest()
	req.Version = 5
	req.StatesFilter = states
	var out []string
	for _, g := range e.c.ListGroups(req).Groups {
		out = append(out, g.Group)
	}
	return out
}

func TestOffsetFetch(t *testing.T) {
	e := newEnv(t)
	e.commit(8, "g", "", -1, "a", 3, 1)
	got := e.fetch("g", "a", 0, 1)
	if got["a/0"] != -1 || got["a/1"] != 3 {
		t.Fatalf("fetch: %v", got)
	}
	if got := e.fetch("nogroup", "a", 0); got["a/0"] != -1 {
		t.Fatalf("fetch from an unknown group: %v", got)
	}
	if got := e.fetch("nogroup", ""); len(got) != 0 {
		t.Fatalf("fetch of everything from an unknown group: %v", got)
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	rg := kmsg.NewOffsetFetchRequestGroup()
	req.Groups = append(req.Groups, rg)
	if resp := e.c.OffsetFetch(req); resp.Groups[0].ErrorCode != kerr.InvalidGroupID.Code {
		t.Fatalf("fetch without a group id: %+v", resp)
	}
}

func TestTopicDeletedDropsOffsets(t *testing.T) {
	e := newEnv(t)
	e.commit(8, "g", "", -1, "a", 3, 0)
	e.commit(8, "g", "", -1, "b", 4, 0)
	if _, err := e.store.DeleteTopic("a"); err != nil {
		t.Fatal(err)
	}
	// Offsets of a topic that is gone are not shown even before the
	// tombstones are written...
	if got := e.fetch("g", ""); !maps.Equal(got, map[string]int64{"b/0": 4}) {
		t.Fatalf("after the delete: %v", got)
	}
	e.c.TopicDeleted("a")
	// ...and after them a topic created under the same name starts clean.
	if _, err := e.store.CreateTopic("a", 1, nil); err != nil {
		t.Fatal(err)
	}
	e.restart()
	if got := e.fetch("g", ""); !maps.Equal(got, map[string]int64{"b/0": 4}) {
		t.Fatalf("re-created topic after a restart: %v", got)
	}
}

func TestOffsetDelete(t *testing.T) {
	e := newEnv(t)
	leader, _, gen := stableGroup(t, e, "g") // subscribed to "a"
	e.commit(8, "g", leader, gen, "a", 1, 0)
	e.commit(8, "g", leader, gen, "b", 1, 0)
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = "g"
	for _, topic := range []string{"a", "b", "nosuch"} {
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetDeleteRequestTopicPartition()
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp := e.c.OffsetDelete(req)
	var got []int16
	for _, t := range resp.Topics {
		got = append(got, t.Partitions[0].ErrorCode)
	}
	if want := codes(kerr.GroupSubscribedToTopic, nil, kerr.UnknownTopicOrPartition); resp.ErrorCode != 0 || !slices.Equal(got, want) {
		t.Fatalf("offset delete: %d %v, want %v", resp.ErrorCode, got, want)
	}
	if got := e.fetch("g", ""); !maps.Equal(got, map[string]int64{"a/0": 1}) {
		t.Fatalf("after the delete: %v", got)
	}
	req.Group = "nogroup"
	if resp := e.c.OffsetDelete(req); resp.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("offset delete of an unknown group: %s", code(resp.ErrorCode))
	}
}

func TestDeleteGroups(t *testing.T) {
	e := newEnv(t)
	stableGroup(t, e, "busy")
	e.commit(8, "idle", "", -1, "a", 1, 0)
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Groups = []string{"busy", "idle", "nogroup", ""}
	var got []int16
	for _, g := range e.c.DeleteGroups(req).Groups {
		got = append(got, g.ErrorCode)
	}
	if want := codes(kerr.NonEmptyGroup, nil, kerr.GroupIDNotFound, kerr.InvalidGroupID); !slices.Equal(got, want) {
		t.Fatalf("delete groups: %v, want %v", got, want)
	}
	if groups := e.list(); !slices.Equal(groups, []string{"busy"}) {
		t.Fatalf("groups left: %v", groups)
	}
}

func TestListAndDescribe(t *testing.T) {
	e := newEnv(t)
	stableGroup(t, e, "g")
	e.commit(8, "simple", "", -1, "a", 1, 0)
	if got := e.list(); !slices.Equal(got, []string{"g", "simple"}) {
		t.Fatalf("all groups: %v", got)
	}
	if got := e.list("stable"); !slices.Equal(got, []string{"g"}) {
		t.Fatalf("stable groups: %v", got)
	}
	req := kmsg.NewPtrListGroupsRequest()
	req.Version, req.TypesFilter = 5, []string{"consumer"}
	if resp := e.c.ListGroups(req); len(resp.Groups) != 0 {
		t.Fatalf("KIP-848 groups: %+v", resp.Groups)
	}
	req.TypesFilter = []string{"Classic"}
	if resp := e.c.ListGroups(req); len(resp.Groups) != 2 || resp.Groups[0].GroupType != "classic" || resp.Groups[0].ProtocolType != "consumer" || resp.Groups[1].ProtocolType != "" {
		t.Fatalf("classic groups: %+v", resp.Groups)
	}

	d := e.describe("g")
	if d.ErrorCode != 0 || d.State != "Stable" || d.Protocol != "range" || d.ProtocolType != "consumer" || len(d.Members) != 2 {
		t.Fatalf("describe: %+v", d)
	}
	for _, m := range d.Members {
		if m.ClientID != "test" || m.ClientHost != "/127.0.0.1" || len(m.ProtocolMetadata) == 0 || len(m.MemberAssignment) == 0 {
			t.Errorf("member: %+v", m)
		}
	}
	if d := e.describe("nogroup"); d.ErrorCode != kerr.GroupIDNotFound.Code || d.State != "Dead" {
		t.Fatalf("describe an unknown group: %+v", d)
	}
	// During a rebalance no metadata or assignment is shown.
	e.joinDynamic("g", session, rebalance)
	e.eventually("the group rebalances", func() bool { return e.describe("g").State == "PreparingRebalance" })
	d = e.describe("g")
	if d.Protocol != "" || len(d.Members[0].MemberAssignment) != 0 || len(d.Members[0].ProtocolMetadata) != 0 {
		t.Fatalf("describe during a rebalance: %+v", d)
	}
}

func TestOffsetExpiry(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	e := newEnv(t, func(o *Options) { o.Now = clock; o.OffsetsRetention = time.Hour })
	e.commit(8, "simple", "", -1, "a", 1, 0)
	leader, _, gen := stableGroup(t, e, "g") // subscribed to "a"
	e.commit(8, "g", leader, gen, "a", 1, 0)
	e.commit(8, "g", leader, gen, "b", 1, 0)
	// v2-v4 commits may carry their own retention.
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation, req.RetentionTimeMillis = 2, "short", -1, 60000
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "b"
	rt.Partitions = append(rt.Partitions, kmsg.NewOffsetCommitRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	e.c.OffsetCommit(req)

	now = now.Add(30 * time.Minute)
	e.c.expireOffsets()
	// The commit with a one-minute retention expired, and its group
	// with it.
	if got := e.list(); !slices.Equal(got, []string{"g", "simple"}) {
		t.Fatalf("groups after 30 minutes: %v", got)
	}
	now = now.Add(time.Hour)
	e.c.expireOffsets()
	// The simple group's offsets expired and it is gone; the Stable
	// group keeps its subscribed topic's offsets and loses the others.
	if got := e.list(); !slices.Equal(got, []string{"g"}) {
		t.Fatalf("groups after 90 minutes: %v", got)
	}
	if got := e.fetch("g", ""); !maps.Equal(got, map[string]int64{"a/0": 1}) {
		t.Fatalf("stable group's offsets after 90 minutes: %v", got)
	}
	e.restart()
	if got := e.fetch("g", ""); !maps.Equal(got, map[string]int64{"a/0": 1}) {
		t.Fatalf("stable group's offsets after a restart: %v", got)
	}
	if got := e.list(); !slices.Equal(got, []string{"g"}) {
		t.Fatalf("groups after a restart: %v", got)
	}
}

func TestCompaction(t *testing.T) {
	e := newEnv(t)
	for i := range 50 {
		e.commit(8, "g", "", -1, "a", int64(i), 0, 1, 2)
		e.commit(8, "h", "", -1, "b", int64(i), 0)
	}
	e.commit(8, "doomed", "", -1, "b", 1, 0)
	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Groups = []string{"doomed"}
	e.c.DeleteGroups(dg)
	p, err := e.store.Partition(OffsetsTopic, 0)
	if err != nil {
		t.Fatal(err)
	}
	before := p.HighWatermark()
	e.c.compact()
	if start, end := p.LogStartOffset(), p.HighWatermark(); start != before || end-start != 4 {
		t.Fatalf("after compaction: records %d to %d, want the 4 live ones from %d", start, end, before)
	}
	// Nothing superseded: nothing to do.
	e.c.compact()
	if end := p.HighWatermark(); end != before+4 {
		t.Fatalf("a second compaction wrote %d records", end-before-4)
	}
	e.restart()
	want := map[string]int64{"a/0": 49, "a/1": 49, "a/2": 49}
	if got := e.fetch("g", ""); !maps.Equal(got, want) {
		t.Fatalf("after compaction and a restart: %v, want %v", got, want)
	}
	if got := e.list(); !slices.Equal(got, []string{"g", "h"}) {
		t.Fatalf("groups after compaction and a restart: %v", got)
	}
}

// TestCompactionUnpinsOldFiles: a group that committed once and never
// again must not keep the CommitLog files written since from being
// deleted, so its live record is rewritten once it lies more than a file
// behind.
func TestCompactionUnpinsOldFiles(t *testing.T) {
	e := newEnv(t)
	e.commit(8, "idle", "", -1, "a", 7, 0)
	p, err := e.store.Partition(OffsetsTopic, 0)
	if err != nil {
		t.Fatal(err)
	}
	e.c.compact()
	if start := p.LogStartOffset(); start != 0 {
		t.Fatalf("a fresh commit was rewritten: log start %d", start)
	}
	other, err := e.store.Partition("b", 0)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := record.Build(nil, record.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, []record.Record{{Value: make([]byte, 64<<10)}}, record.None)
	if err != nil {
		t.Fatal(err)
	}
	for pinned := int64(0); pinned <= e.store.SegmentBytes(); {
		if _, err := other.Append(batch); err != nil {
			t.Fatal(err)
		}
		if pinned, err = p.PinnedBytes(); err != nil {
			t.Fatal(err)
		}
	}
	e.c.compact()
	if pinned, err := p.PinnedBytes(); err != nil || pinned > e.store.SegmentBytes() || p.LogStartOffset() == 0 {
		t.Fatalf("after compaction: %d bytes pinned, log start %d (%v)", pinned, p.LogStartOffset(), err)
	}
	e.restart()
	if got := e.fetch("idle", "a", 0); got["a/0"] != 7 {
		t.Fatalf("the rewritten commit after a restart: %v", got)
	}
}

func TestRecordsAreKafkas(t *testing.T) {
	// The records are Kafka's __consumer_offsets format, readable by
	// tools that decode that topic.
	e := newEnv(t)
	e.commit(8, "g", "", -1, "a", 42, 1)
	p, err := e.store.Partition(OffsetsTopic, 0)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := p.Read(0, 1<<20, true, nil)
	if err != nil || len(chunks) != 1 {
		t.Fatalf("read: %d chunks, %v", len(chunks), err)
	}
	buf := make([]byte, chunks[0].Len)
	if err := chunks[0].Segment.ReadAt(buf, chunks[0].Off); err != nil {
		t.Fatal(err)
	}
	chunks[0].Release()
	var n int
	err = record.Records(buf, 1<<20, func(r record.Record) bool {
		n++
		var k kmsg.OffsetCommitKey
		var v kmsg.OffsetCommitValue
		if err := k.ReadFrom(r.Key); err != nil || k.Version != 1 || k.Group != "g" || k.Topic != "a" || k.Partition != 1 {
			t.Errorf("key %+v: %v", k, err)
		}
		if err := v.ReadFrom(r.Value); err != nil || v.Version != 3 || v.Offset != 42 || v.Metadata != "m" || v.LeaderEpoch != -1 {
			t.Errorf("value %+v: %v", v, err)
		}
		return true
	})
	if err != nil || n != 1 {
		t.Fatalf("%d records: %v", n, err)
	}
}
