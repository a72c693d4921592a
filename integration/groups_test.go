package integration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupFlags make group tests fast: no initial rebalance delay, session
// timeouts short enough that a static member that stopped is dropped
// within seconds, and KIP-848 members told to heartbeat often, since each
// step of their reconciliation waits for a heartbeat.
var groupFlags = []string{"--group.initial.rebalance.delay.ms=0", "--group.min.session.timeout.ms=1000",
	"--group.consumer.heartbeat.interval.ms=250", "--group.consumer.session.timeout.ms=3000"}

// restartableGroupFlags are groupFlags with a fixed port, so that clients
// find a broker restarted on the same data.
func restartableGroupFlags(t *testing.T) []string {
	return append(slices.Clone(groupFlags), "--listeners=PLAINTEXT://127.0.0.1:"+freePort(t))
}

// tracker checks what a group of consumers processes: each partition's
// offsets must come in order, each exactly once, whichever member reads
// them.
type tracker struct {
	t     testing.TB
	mu    sync.Mutex
	next  map[int32]int64 // the next offset each partition must deliver
	byWho map[string]int  // records processed by each member
	// rewinds allows a partition to be processed again from an earlier
	// offset (a commit lost when the broker was killed): only a gap is an
	// error then.
	rewinds bool
	again   int // records processed again
}

func newTracker(t testing.TB) *tracker {
	return &tracker{t: t, next: map[int32]int64{}, byWho: map[string]int{}}
}

func (tr *tracker) process(who string, r *kgo.Record) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	want := tr.next[r.Partition]
	switch {
	case tr.rewinds && r.Offset < want:
		tr.again++
		tr.byWho[who]++
		return
	case r.Offset != want:
		tr.t.Errorf("%s processed partition %d offset %d, want %d (a duplicate or a gap)", who, r.Partition, r.Offset, want)
	}
	tr.next[r.Partition] = r.Offset + 1
	tr.byWho[who]++
}

// caughtUp reports whether every partition has been processed up to end.
func (tr *tracker) caughtUp(end map[int32]int64) error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for p, e := range end {
		if tr.next[p] != e {
			return fmt.Errorf("partition %d processed to %d of %d", p, tr.next[p], e)
		}
	}
	return nil
}

// groupMember is a consumer in a group that processes what it polls, then
// commits it, before it lets a rebalance take its partitions
// (BlockRebalanceOnPoll): what it processed is committed before anyone
// else may read the partition, so nothing is processed twice.
type groupMember struct {
	name string
	cl   *kgo.Client
	stop chan struct{}
	done chan struct{}
}

func startMember(t testing.TB, b *broker, tr *tracker, name, group, topic string, opts ...kgo.Opt) *groupMember {
	t.Helper()
	base := []kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.BlockRebalanceOnPoll(),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.ClientID(name),
		// Members learn of a rebalance from a heartbeat: the default 3s
		// would make each of this test's rebalances take seconds.
		kgo.HeartbeatInterval(250 * time.Millisecond),
	}
	m := &groupMember{name: name, cl: newClient(t, b, append(base, opts...)...), stop: make(chan struct{}), done: make(chan struct{})}
	go m.run(t, tr)
	return m
}

func (m *groupMember) run(t testing.TB, tr *tracker) {
	defer close(m.done)
	for {
		select {
		case <-m.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := m.cl.PollRecords(ctx, 200)
		cancel()
		for _, e := range fs.Errors() {
			switch {
			case errors.Is(e.Err, context.DeadlineExceeded), errors.Is(e.Err, context.Canceled), errors.Is(e.Err, kgo.ErrClientClosed):
			case errors.Is(e.Err, syscall.ECONNREFUSED): // the broker is restarting
			default:
				t.Errorf("%s: fetch error on %s/%d: %v", m.name, e.Topic, e.Partition, e.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) { tr.process(m.name, r) })
		if len(fs.Records()) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			if err := m.cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Errorf("%s: committing: %v", m.name, err)
			}
			cancel()
		}
		m.cl.AllowRebalance()
	}
}

// close stops polling (everything polled is committed) and leaves the
// group; a static member does not leave, it only goes away.
func (m *groupMember) close() {
	close(m.stop)
	<-m.done
	m.cl.AllowRebalance()
	m.cl.Close()
}

// producer produces to topic until stopped, and then reports each
// partition's end offset.
type producer struct {
	stop chan struct{}
	done chan map[int32]int64
}

func startProducer(t testing.TB, b *broker, topic string) *producer {
	cl := newClient(t, b, kgo.DefaultProduceTopic(topic))
	p := &producer{stop: make(chan struct{}), done: make(chan map[int32]int64, 1)}
	go func() {
		end := map[int32]int64{}
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				p.done <- end
				return
			default:
			}
			recs := make([]*kgo.Record, 20)
			for j := range recs {
				recs[j] = &kgo.Record{Key: fmt.Appendf(nil, "k%d", i*20+j), Value: fmt.Appendf(nil, "v%d", i*20+j)}
			}
			for _, r := range cl.ProduceSync(context.Background(), recs...) {
				if r.Err != nil {
					t.Errorf("producing: %v", r.Err)
					continue
				}
				end[r.Record.Partition] = max(end[r.Record.Partition], r.Record.Offset+1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return p
}

func (p *producer) finish() map[int32]int64 {
	close(p.stop)
	return <-p.done
}

// TestConsumerGroupsExactlyOnce has consumers join and leave a group
// while records keep coming; together they must process every record
// exactly once, in partition order, and commit up to the end. It runs
// with the classic protocol (eager, cooperative, static members) and with
// KIP-848 (server-side uniform and range assignors, static members).
func TestConsumerGroupsExactlyOnce(t *testing.T) {
	b := startBroker(t, t.TempDir(), groupFlags...)
	adm := newAdmin(t, b)
	for _, tc := range []struct {
		name   string
		opts   func(i int) []kgo.Opt
		static bool
	}{
		{name: "eager", opts: func(int) []kgo.Opt { return []kgo.Opt{kgo.Balancers(kgo.RangeBalancer())} }},
		{name: "cooperative", opts: func(int) []kgo.Opt { return nil }},
		{name: "static", static: true, opts: func(i int) []kgo.Opt {
			return []kgo.Opt{kgo.InstanceID(fmt.Sprintf("instance-%d", i)), kgo.SessionTimeout(2 * time.Second)}
		}},
		{name: "848-uniform", opts: func(int) []kgo.Opt {
			return []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer())}
		}},
		{name: "848-range", opts: func(int) []kgo.Opt {
			return []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer())}
		}},
		{name: "848-static", static: true, opts: func(i int) []kgo.Opt {
			return []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.InstanceID(fmt.Sprintf("instance-%d", i))}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic, group := "eos-"+tc.name, "group-"+tc.name
			createTopic(t, adm, topic, 6, nil)
			tr := newTracker(t)
			prod := startProducer(t, b, topic)
			member := func(i int) *groupMember {
				return startMember(t, b, tr, fmt.Sprintf("%s-%d", tc.name, i), group, topic, tc.opts(i)...)
			}
			pause := func() { time.Sleep(700 * time.Millisecond) }
			m0, m1 := member(0), member(1)
			pause()
			m2 := member(2)
			pause()
			m0.close()
			pause()
			if tc.static {
				// A static member restarted under its instance id takes
				// its place back, without a rebalance.
				m1.close()
				m1 = member(1)
				pause()
			}
			m3 := member(3)
			pause()
			m2.close()
			pause()
			end := prod.finish()
			eventually(t, 30*time.Second, "the group processes every record", func() error { return tr.caughtUp(end) })
			m1.close()
			m3.close()

			offsets, err := adm.FetchOffsets(testCtx(t, requestTimeout), group)
			if err != nil {
				t.Fatalf("FetchOffsets: %v", err)
			}
			for p, e := range end {
				if o, ok := offsets.Lookup(topic, p); !ok || o.At != e {
					t.Errorf("partition %d: committed %+v, want %d", p, o, e)
				}
			}
			var total int64
			for _, e := range end {
				total += e
			}
			for _, name := range []string{m0.name, m1.name, m2.name, m3.name} {
				if tr.byWho[name] == 0 {
					t.Errorf("%s processed nothing (by member: %v)", name, tr.byWho)
				}
			}
			if fields, _ := b.log.find("static member rejoined with a new member id"); tc.static && fields == nil {
				t.Error("the restarted static member was not taken as the same instance")
			}
			t.Logf("%d records in %d partitions processed exactly once (by member: %v)", total, len(end), tr.byWho)
		})
	}
}

// TestCommittedOffsetsSurviveKill commits, kills the broker with SIGKILL
// and checks that a consumer of the restarted broker resumes from the
// last commit the broker acknowledged, in a classic and in a KIP-848
// group.
func TestCommittedOffsetsSurviveKill(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []kgo.Opt
	}{
		{name: "classic"},
		{name: "848", opts: []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer())}},
	} {
		t.Run(tc.name, func(t *testing.T) { testCommittedOffsetsSurviveKill(t, tc.opts) })
	}
}

func testCommittedOffsetsSurviveKill(t *testing.T, groupOpts []kgo.Opt) {
	dir := t.TempDir()
	b := startBroker(t, dir, groupFlags...)
	adm := newAdmin(t, b)
	createTopic(t, adm, "durable", 2, nil)
	prod := newClient(t, b, kgo.DefaultProduceTopic("durable"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := range int32(2) {
		recs := make([]*kgo.Record, 50)
		for i := range recs {
			recs[i] = &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, i)}
		}
		produceSync(t, prod, recs...)
	}

	// The killed broker keeps this member in the group it restores, so
	// the next consumer gets its partitions once its short session ends.
	opts := append([]kgo.Opt{kgo.ConsumerGroup("survivor"), kgo.ConsumeTopics("durable"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.SessionTimeout(2 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond)}, groupOpts...)
	cl := newClient(t, b, opts...)
	recs := pollN(t, cl, 100, requestTimeout)
	// Commit through offset 29 of each partition (the next is 30), then
	// through 41 of partition 0 only: the last acknowledged commit wins.
	var first, second []*kgo.Record
	for _, r := range recs {
		if r.Offset == 29 {
			first = append(first, r)
		}
		if r.Partition == 0 && r.Offset == 41 {
			second = append(second, r)
		}
	}
	for _, batch := range [][]*kgo.Record{first, second} {
		if err := cl.CommitRecords(testCtx(t, requestTimeout), batch...); err != nil {
			t.Fatalf("CommitRecords: %v", err)
		}
	}
	b.kill()
	cl.Close()

	b = startBroker(t, dir, groupFlags...)
	adm = newAdmin(t, b)
	offsets, err := adm.FetchOffsets(testCtx(t, requestTimeout), "survivor")
	if err != nil {
		t.Fatalf("FetchOffsets after the restart: %v", err)
	}
	for p, want := range map[int32]int64{0: 42, 1: 30} {
		if o, ok := offsets.Lookup("durable", p); !ok || o.At != want {
			t.Errorf("partition %d after the restart: committed %+v, want %d", p, o, want)
		}
	}
	opts = append([]kgo.Opt{kgo.ConsumerGroup("survivor"), kgo.ConsumeTopics("durable"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond)}, groupOpts...)
	cl = newClient(t, b, opts...)
	resumed := pollN(t, cl, (50-42)+(50-30), requestTimeout)
	firstSeen := map[int32]int64{}
	for _, r := range resumed {
		if _, ok := firstSeen[r.Partition]; !ok {
			firstSeen[r.Partition] = r.Offset
		}
	}
	if firstSeen[0] != 42 || firstSeen[1] != 30 {
		t.Errorf("resumed at %v, want partition 0 at 42 and 1 at 30", firstSeen)
	}
}

// TestGroupKillNineLoop kills the broker with SIGKILL again and again
// under a KIP-848 group of three franz-go consumers and a producer, and
// restarts it on the same port and data. The members carry on with the
// restored group: no partition is ever skipped, what a commit lost to a
// kill is processed again from the last acknowledged commit, and in the
// end every record is processed and committed.
func TestGroupKillNineLoop(t *testing.T) {
	dir, flags := t.TempDir(), restartableGroupFlags(t)
	b := startBroker(t, dir, flags...)
	createTopic(t, newAdmin(t, b), "crash-group", 6, nil)
	tr := newTracker(t)
	tr.rewinds = true
	opts := []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer())}
	var members []*groupMember
	for i := range 3 {
		members = append(members, startMember(t, b, tr, fmt.Sprintf("crash-%d", i), "crash-group", "crash-group", opts...))
	}
	end := map[int32]int64{}
	for cycle := range 4 {
		prod := startProducer(t, b, "crash-group")
		time.Sleep(300 * time.Millisecond)
		for p, e := range prod.finish() {
			end[p] = max(end[p], e)
		}
		b.kill()
		b = startBroker(t, dir, flags...)
		t.Logf("cycle %d: broker restarted", cycle)
	}
	eventually(t, 60*time.Second, "the group processes every record", func() error { return tr.caughtUp(end) })
	if fields, _ := b.log.find("member joined the consumer group"); fields != nil {
		t.Errorf("a member joined the restored group anew instead of carrying on: %v", fields)
	}
	for _, m := range members {
		m.close()
	}
	offsets, err := newAdmin(t, b).FetchOffsets(testCtx(t, requestTimeout), "crash-group")
	if err != nil {
		t.Fatalf("FetchOffsets: %v", err)
	}
	for p, e := range end {
		if o, ok := offsets.Lookup("crash-group", p); !ok || o.At != e {
			t.Errorf("partition %d: committed %+v, want %d", p, o, e)
		}
	}
	t.Logf("%d partitions processed to the end over 4 kills, %d records processed again (by member: %v)", len(end), tr.again, tr.byWho)
}

// TestGroupSurvivesRestart restarts the broker under a live group: the
// group comes back with its generation and members, which carry on,
// processing nothing twice.
func TestGroupSurvivesRestart(t *testing.T) {
	dir, flags := t.TempDir(), restartableGroupFlags(t)
	b := startBroker(t, dir, flags...)
	createTopic(t, newAdmin(t, b), "restart", 4, nil)
	tr := newTracker(t)
	m0 := startMember(t, b, tr, "restart-0", "restart-group", "restart")
	m1 := startMember(t, b, tr, "restart-1", "restart-group", "restart")
	prod := startProducer(t, b, "restart")
	time.Sleep(time.Second)
	end := prod.finish()
	// Idle members commit nothing, so no commit is cut off by the stop.
	eventually(t, 30*time.Second, "the group processes every record", func() error { return tr.caughtUp(end) })

	members := func(adm *kadm.Client) []string {
		d, err := adm.DescribeGroups(testCtx(t, requestTimeout), "restart-group")
		if err != nil {
			t.Fatalf("DescribeGroups: %v", err)
		}
		var ids []string
		for _, m := range d["restart-group"].Members {
			ids = append(ids, m.MemberID)
		}
		slices.Sort(ids)
		return ids
	}
	before := members(newAdmin(t, b))

	b.stop(t)
	b = startBroker(t, dir, flags...)
	if after := members(newAdmin(t, b)); !slices.Equal(after, before) || len(after) != 2 {
		t.Errorf("members after the restart %v, want %v", after, before)
	}
	prod = startProducer(t, b, "restart")
	time.Sleep(time.Second)
	end = prod.finish()
	eventually(t, 30*time.Second, "the group processes every record after the restart", func() error { return tr.caughtUp(end) })
	m0.close()
	m1.close()
}

// TestKcatGroupConsumer consumes a topic with librdkafka's balanced
// consumer (kcat -G), which joins, syncs, heartbeats and commits.
func TestKcatGroupConsumer(t *testing.T) {
	kcat := requireKcat(t)
	b := startBroker(t, t.TempDir(), groupFlags...)
	adm := newAdmin(t, b)
	createTopic(t, adm, "kcat-group", 3, nil)
	prod := newClient(t, b, kgo.DefaultProduceTopic("kcat-group"))
	var want []string
	var recs []*kgo.Record
	for i := range 300 {
		v := fmt.Sprintf("value-%03d", i)
		want = append(want, v)
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: []byte(v)})
	}
	produceSync(t, prod, recs...)

	out := runKcat(t, kcat, "", "-b", b.addr, "-G", "kcat-consumers", "-o", "beginning", "-e", "-q", "-f", "%s\n",
		"-X", "auto.offset.reset=earliest", "-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100", "kcat-group")
	got := strings.Fields(out)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("kcat -G read %d records, want the %d produced", len(got), len(want))
	}

	// It committed (it left the group on exit, committing first), so
	// the group is Empty with offsets at the end.
	eventually(t, requestTimeout, "kcat's commits", func() error {
		offsets, err := adm.FetchOffsets(testCtx(t, requestTimeout), "kcat-consumers")
		if err != nil {
			return err
		}
		var total int64
		offsets.Each(func(o kadm.OffsetResponse) { total += o.At })
		if total != 300 {
			return fmt.Errorf("committed offsets add up to %d, want 300", total)
		}
		return nil
	})
	described, err := adm.DescribeGroups(testCtx(t, requestTimeout), "kcat-consumers")
	if err != nil {
		t.Fatalf("DescribeGroups: %v", err)
	}
	if g := described["kcat-consumers"]; g.State != "Empty" || g.ProtocolType != "consumer" {
		t.Errorf("kcat's group after it left: state %q, protocol type %q", g.State, g.ProtocolType)
	}
}

// TestGroupAdmin runs kadm's group calls against a live group and an
// empty one.
func TestGroupAdmin(t *testing.T) {
	b := startBroker(t, t.TempDir(), groupFlags...)
	adm := newAdmin(t, b)
	createTopic(t, adm, "admin-t", 2, nil)
	ctx := testCtx(t, requestTimeout)

	// Offsets committed by an admin client for a group with no members.
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: "admin-t", Partition: 0, At: 5, LeaderEpoch: -1, Metadata: "set by admin"})
	commit.Add(kadm.Offset{Topic: "admin-t", Partition: 1, At: 7, LeaderEpoch: -1})
	committed, err := adm.CommitOffsets(ctx, "offline", commit)
	if err != nil || committed.Error() != nil {
		t.Fatalf("CommitOffsets: %v / %v", err, committed.Error())
	}
	fetched, err := adm.FetchOffsets(ctx, "offline")
	if err != nil || fetched.Error() != nil {
		t.Fatalf("FetchOffsets: %v / %v", err, fetched.Error())
	}
	if o, _ := fetched.Lookup("admin-t", 0); o.At != 5 || o.Metadata != "set by admin" {
		t.Errorf("fetched %+v", o)
	}
	unknown := kadm.Offsets{}
	unknown.Add(kadm.Offset{Topic: "no-such-topic", Partition: 0, At: 1, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(ctx, "offline", unknown); err != nil || !errors.Is(resp.Error(), kerr.UnknownTopicOrPartition) {
		t.Errorf("committing for an unknown topic: %v / %v, want UNKNOWN_TOPIC_OR_PARTITION", err, resp.Error())
	}

	// A live group.
	tr := newTracker(t)
	m := startMember(t, b, tr, "admin-member", "live", "admin-t")
	eventually(t, requestTimeout, "the group is Stable", func() error {
		d, err := adm.DescribeGroups(ctx, "live")
		if err != nil {
			return err
		}
		if g := d["live"]; g.State != "Stable" || len(g.Members) != 1 {
			return fmt.Errorf("group %q with %d members", g.State, len(g.Members))
		}
		return nil
	})
	d, err := adm.DescribeGroups(ctx, "live")
	if err != nil {
		t.Fatalf("DescribeGroups: %v", err)
	}
	g := d["live"]
	if g.Protocol != "cooperative-sticky" || g.ProtocolType != "consumer" || g.Members[0].ClientID != "admin-member" || !strings.HasPrefix(g.Members[0].ClientHost, "/127.0.0.1") {
		t.Errorf("described %+v", g)
	}
	if a, ok := g.Members[0].Assigned.AsConsumer(); !ok || len(a.Topics) != 1 || len(a.Topics[0].Partitions) != 2 {
		t.Errorf("member's assignment %+v", g.Members[0].Assigned)
	}

	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	if l := listed.Sorted(); len(l) != 2 || l[0].Group != "live" || l[0].State != "Stable" || l[1].Group != "offline" || l[1].State != "Empty" {
		t.Errorf("listed %+v", l)
	}
	if stable, err := adm.ListGroups(ctx, "Stable"); err != nil || len(stable) != 1 {
		t.Errorf("ListGroups Stable: %v, %v", stable, err)
	}

	deleted, err := adm.DeleteGroups(ctx, "live", "offline", "never-was")
	if err != nil {
		t.Fatalf("DeleteGroups: %v", err)
	}
	for group, want := range map[string]error{"live": kerr.NonEmptyGroup, "offline": nil, "never-was": kerr.GroupIDNotFound} {
		if got := deleted[group].Err; !errors.Is(got, want) && got != want {
			t.Errorf("deleting %s: %v, want %v", group, got, want)
		}
	}
	m.close()
	eventually(t, requestTimeout, "the member's leave empties the group", func() error {
		deleted, err := adm.DeleteGroups(ctx, "live")
		if err != nil {
			return err
		}
		return deleted["live"].Err
	})
	if listed, err := adm.ListGroups(ctx); err != nil || len(listed) != 0 {
		t.Errorf("groups left after deleting both: %v, %v", listed, err)
	}
}

// TestConsumerGroupAdmin describes, lists and deletes a KIP-848 group
// with kadm while two range-assigned franz-go members consume from it.
func TestConsumerGroupAdmin(t *testing.T) {
	b := startBroker(t, t.TempDir(), groupFlags...)
	adm := newAdmin(t, b)
	createTopic(t, adm, "admin-848", 4, nil)
	ctx := testCtx(t, requestTimeout)
	tr := newTracker(t)
	opts := []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer())}
	m0 := startMember(t, b, tr, "admin-848-0", "next-gen", "admin-848", opts...)
	m1 := startMember(t, b, tr, "admin-848-1", "next-gen", "admin-848", opts...)
	var g kadm.DescribedConsumerGroup
	eventually(t, requestTimeout, "the group is Stable with both members", func() error {
		d, err := adm.DescribeConsumerGroups(ctx, "next-gen")
		if err != nil {
			return err
		}
		if g = d["next-gen"]; g.Err != nil || g.State != "Stable" || len(g.Members) != 2 {
			return fmt.Errorf("group %q with %d members (%v)", g.State, len(g.Members), g.Err)
		}
		return nil
	})
	if g.AssignorName != "range" || g.Epoch != g.AssignmentEpoch {
		t.Errorf("described %+v", g)
	}
	var assigned []int32
	for _, m := range g.Members {
		if m.MemberEpoch != g.Epoch || m.MemberType != 1 || len(m.SubscribedTopics) != 1 || !strings.HasPrefix(m.ClientHost, "/127.0.0.1") {
			t.Errorf("member %+v", m)
		}
		ps := slices.Sorted(maps.Keys(m.Assignment["admin-848"]))
		target := slices.Sorted(maps.Keys(m.TargetAssignment["admin-848"]))
		if len(m.Assignment) != 1 || len(ps) != 2 || ps[1] != ps[0]+1 || !slices.Equal(ps, target) { // range: contiguous
			t.Errorf("member %s: assignment %v, target %v", m.MemberID, m.Assignment, m.TargetAssignment)
		}
		assigned = append(assigned, ps...)
	}
	if slices.Sort(assigned); !slices.Equal(assigned, []int32{0, 1, 2, 3}) {
		t.Errorf("partitions assigned: %v", assigned)
	}

	listed, err := adm.ListGroupsByType(ctx, []string{"consumer"})
	if err != nil {
		t.Fatalf("ListGroupsByType: %v", err)
	}
	if l := listed.Sorted(); len(l) != 1 || l[0].Group != "next-gen" || l[0].State != "Stable" || l[0].ProtocolType != "consumer" {
		t.Errorf("consumer groups listed: %+v", l)
	}
	if classic, err := adm.DescribeGroups(ctx, "next-gen"); err != nil || !errors.Is(classic["next-gen"].Err, kerr.GroupIDNotFound) {
		t.Errorf("DescribeGroups of a KIP-848 group: %+v, %v; want GROUP_ID_NOT_FOUND as Kafka answers", classic["next-gen"], err)
	}
	if deleted, err := adm.DeleteGroups(ctx, "next-gen"); err != nil || !errors.Is(deleted["next-gen"].Err, kerr.NonEmptyGroup) {
		t.Errorf("deleting a group with members: %+v, %v", deleted, err)
	}
	m0.close()
	m1.close()
	eventually(t, requestTimeout, "the members' leaves empty the group", func() error {
		deleted, err := adm.DeleteGroups(ctx, "next-gen")
		if err != nil {
			return err
		}
		return deleted["next-gen"].Err
	})
}

// TestOffsetsTopicIsProtected checks what clients see of
// __consumer_offsets: listed as internal, not writable, not deletable.
func TestOffsetsTopicIsProtected(t *testing.T) {
	b := startBroker(t, t.TempDir())
	adm := newAdmin(t, b)
	ctx := testCtx(t, requestTimeout)
	tds, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatalf("ListTopicsWithInternal: %v", err)
	}
	if td, ok := tds["__consumer_offsets"]; !ok || !td.IsInternal {
		t.Fatalf("__consumer_offsets: %+v (listed %v)", td, ok)
	}
	if tds, err := adm.ListTopics(ctx); err != nil || len(tds) != 0 {
		t.Errorf("ListTopics without internal topics: %v, %v", tds.Names(), err)
	}
	cl := newClient(t, b, kgo.RecordRetries(1))
	r := cl.ProduceSync(ctx, &kgo.Record{Topic: "__consumer_offsets", Value: []byte("x")})
	if err := r.FirstErr(); !errors.Is(err, kerr.InvalidTopicException) {
		t.Errorf("producing to __consumer_offsets: %v, want INVALID_TOPIC_EXCEPTION", err)
	}
	resp, err := adm.DeleteTopics(ctx, "__consumer_offsets")
	if err != nil || !errors.Is(resp["__consumer_offsets"].Err, kerr.InvalidTopicException) {
		t.Errorf("deleting __consumer_offsets: %v / %+v", err, resp["__consumer_offsets"])
	}
}
