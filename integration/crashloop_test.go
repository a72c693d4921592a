package integration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Crash-loop settings. The environment can lengthen a local run:
//
//	CRASHLOOP_CYCLES=N  kill -9 cycles per flush mode (8 by default)
//	CRASHLOOP_SEED=S    seed of the random kill delays (logged by every run)
//
// Past the first 8 cycles, the check after a restart reads only what was
// added since the previous check, and the whole topic every 8th cycle, so
// that a long run's time grows with its cycles rather than their square
// (30 cycles take about a minute and a half).
const (
	crashLoopCycles     = 8
	crashLoopPartitions = 3
	crashLoopValueSize  = 400                    // bytes per record value
	crashLoopMaxDelay   = 400 * time.Millisecond // kill at most this long after a cycle's first ack
	crashLoopFinal      = 3000                   // new records of the last, uninterrupted phase
	crashLoopSegment    = 1 << 20                // commitlog.segment.bytes: files roll every few cycles
)

// TestKillNineLoop runs the broker through repeated kill -9 cycles while an
// idempotent acks=all producer writes numbered records to a 3-partition
// topic, under SYNC_FLUSH and ASYNC_FLUSH. A kill -9 loses nothing in
// either mode (the written pages stay in the kernel's page cache; only a
// power failure could lose the unsynced ones under ASYNC_FLUSH), so the
// assertions are the same:
//
//   - every acknowledged record is stored exactly once, at the partition and
//     offset its acknowledgement gave;
//   - acknowledged records of a partition are stored in the order they were
//     acknowledged;
//   - each partition's offsets run 0..end-1 with no gap or repeat;
//   - whatever was once served at a partition and offset stays there across
//     later crashes and restarts;
//   - records that were sent but never acknowledged may be stored (even
//     twice, once per attempt, as each cycle has a new producer ID), or not.
//
// Each cycle starts the broker on the same data directory (on a new free
// port: the cycle's producer is a new client seeded with it), checks all of
// the above against what is stored, re-sends the records not acknowledged
// before the last kill, then new ones, and kills the broker with SIGKILL a
// random moment after its first acknowledgement. A final phase produces
// with every record acknowledged, checks, stops the broker with SIGTERM,
// restarts it and checks that the same records are served.
func TestKillNineLoop(t *testing.T) {
	t.Parallel()
	cycles := crashLoopCycles
	if s := os.Getenv("CRASHLOOP_CYCLES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("CRASHLOOP_CYCLES=%q: want a positive integer", s)
		}
		cycles = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CRASHLOOP_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CRASHLOOP_SEED=%q: want an unsigned integer", s)
		}
		seed = n
	}
	t.Logf("%d cycles, seed %d (CRASHLOOP_SEED=%d repeats the kill delays; the kill moments also depend on scheduling)", cycles, seed, seed)
	for i, mode := range []string{"SYNC_FLUSH", "ASYNC_FLUSH"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			runCrashLoop(t, mode, cycles, rand.New(rand.NewPCG(seed, uint64(i))))
		})
	}
}

// sendID names one attempt to store record n: the cycle whose producer
// sent it. Each cycle has its own producer, so (n, cycle) is unique among
// acknowledgements, and a record that is not acknowledged is sent again by
// the next cycle's producer.
type sendID struct {
	n     int64
	cycle int
}

func (s sendID) String() string { return fmt.Sprintf("record %d (sent in cycle %d)", s.n, s.cycle) }

// ackInfo is what an acknowledgement said.
type ackInfo struct {
	cycle     int
	partition int32
	offset    int64
	seq       int64 // acknowledgement order over the whole test
	pid       int64
	epoch     int16
}

// partOff is a position in the topic.
type partOff struct {
	p int32
	o int64
}

// crashLoop is the state one flush mode's loop tracks across cycles.
type crashLoop struct {
	t     *testing.T
	topic string

	mu         sync.Mutex
	next       int64                 // next new record number
	pending    []int64               // sent, never acknowledged: to send again, ascending
	sent       map[sendID]bool       // every attempt
	acked      map[int64]ackInfo     // record number → its one acknowledged attempt
	ackSeq     int64                 // acknowledgements so far
	served     map[partOff]sendID    // what the last check found stored at each position
	stored     map[sendID][]partOff  // the same, by send
	checkedEnd map[int32]int64       // the end offsets the last check read up to
	pids       map[[2]int64]int      // (producer ID, epoch) → cycle that used it
	errs       []string              // failures seen in client callbacks
	cycleOK    map[int]chan struct{} // closed on a cycle's first acknowledgement
}

func runCrashLoop(t *testing.T, mode string, cycles int, rng *rand.Rand) {
	dir := t.TempDir()
	args := []string{
		"--flush.disk.type=" + mode,
		"--commitlog.segment.bytes=" + strconv.Itoa(crashLoopSegment),
		"--message.max.bytes=262144", // must stay below the segment size less 4 KiB
		"--consumequeue.segment.entries=1024",
	}
	c := &crashLoop{
		t:       t,
		topic:   "crashloop",
		sent:    map[sendID]bool{},
		acked:   map[int64]ackInfo{},
		served:  map[partOff]sendID{},
		pids:    map[[2]int64]int{},
		cycleOK: map[int]chan struct{}{},
	}
	start := time.Now()
	b := startBroker(t, dir, args...)
	withAdmin(t, b, func(adm *kadm.Client) { createTopic(t, adm, c.topic, crashLoopPartitions, nil) })

	for cycle := 1; cycle <= cycles; cycle++ {
		if cycle > 1 {
			b = startBroker(t, dir, args...)
			c.check(b, fmt.Sprintf("restart after kill %d", cycle-1), cycle <= crashLoopCycles || cycle%crashLoopCycles == 0)
		}
		p := c.startProducer(b, cycle, false)
		select {
		case <-c.firstAck(cycle):
		case <-time.After(requestTimeout):
			p.stop()
			t.Fatalf("cycle %d: no record acknowledged within %v of the producer's start", cycle, requestTimeout)
		}
		delay := time.Duration(rng.Int64N(int64(crashLoopMaxDelay)))
		time.Sleep(delay) // the random kill moment is the point of the test, not a synchronisation
		b.kill()
		acked, failed := p.stop()
		t.Logf("cycle %d: killed %v after the first ack; %d records acknowledged, %d failed, %d to send again; %d acknowledged in all",
			cycle, delay.Round(time.Millisecond), acked, failed, c.pendingCount(), c.ackedCount())
		c.failOnCallbackErrors()
	}

	// Last phase: no kill; every record, those left unacknowledged by the
	// last kill and crashLoopFinal new ones, must be acknowledged.
	b = startBroker(t, dir, args...)
	c.check(b, fmt.Sprintf("restart after kill %d", cycles), false)
	p := c.startProducer(b, cycles+1, true)
	if acked, failed := p.wait(); failed > 0 {
		c.failOnCallbackErrors()
		t.Fatalf("final phase: %d records acknowledged, %d failed without a kill", acked, failed)
	}
	c.failOnCallbackErrors()
	if c.pendingCount() != 0 {
		t.Fatalf("final phase: %d records still unacknowledged", c.pendingCount())
	}
	before := c.check(b, "final phase", true)

	files, err := os.ReadDir(filepath.Join(dir, "commitlog"))
	if err != nil {
		t.Fatalf("listing the CommitLog: %v", err)
	}
	if len(files) < 3 {
		t.Errorf("the CommitLog has %d files of %d bytes; the test means to roll it several times", len(files), crashLoopSegment)
	}

	// A clean stop and start serve exactly the same records.
	b.stop(t)
	b = startBroker(t, dir, args...)
	after := c.check(b, "restart after SIGTERM", true)
	if len(after) != len(before) {
		t.Fatalf("after SIGTERM and restart %d records are served, before it %d", len(after), len(before))
	}
	for i := range before {
		x, y := before[i], after[i]
		if x.Partition != y.Partition || x.Offset != y.Offset || string(x.Key) != string(y.Key) || string(x.Value) != string(y.Value) || recordDiff(x, y) != "" {
			t.Fatalf("after SIGTERM and restart, record %d is partition %d offset %d key %q; before it was partition %d offset %d key %q (%s)",
				i, y.Partition, y.Offset, y.Key, x.Partition, x.Offset, x.Key, recordDiff(x, y))
		}
	}
	t.Logf("%s: %d cycles, %d records acknowledged, %d stored (with unacknowledged sends kept), %d CommitLog files, %v",
		mode, cycles, c.ackedCount(), len(after), len(files), time.Since(start).Round(time.Millisecond))
}

// crashKey and crashValue are record n's key and value. The key is the
// record number, so the default (key hash) partitioner sends every attempt
// of a record to the same partition; the value is the number padded with
// bytes derived from it, so a damaged or misplaced value is noticed.
func crashKey(n int64) []byte { return strconv.AppendInt(nil, n, 10) }

func crashValue(n int64) []byte {
	v := make([]byte, 0, crashLoopValueSize)
	v = strconv.AppendInt(v, n, 10)
	v = append(v, ':')
	for i := len(v); i < crashLoopValueSize; i++ {
		v = append(v, byte('a'+(n+int64(i))%26))
	}
	return v
}

func (c *crashLoop) firstAck(cycle int) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cycleOK[cycle]
}

func (c *crashLoop) ackedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.acked)
}

func (c *crashLoop) pendingCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

func (c *crashLoop) failOnCallbackErrors() {
	c.t.Helper()
	c.mu.Lock()
	errs := c.errs
	c.mu.Unlock()
	if len(errs) > 0 {
		c.t.Fatalf("%d failures seen by the producer:\n%s", len(errs), strings.Join(lastN(errs, 10), "\n"))
	}
}

// cycleProducer is one cycle's producer: a new client (so a new producer
// ID) and the goroutine feeding it.
type cycleProducer struct {
	c      *crashLoop
	cycle  int
	cl     *kgo.Client
	close  func()
	cancel context.CancelFunc
	quit   chan struct{}
	fed    chan struct{}  // closed when the feeding goroutine returns
	wg     sync.WaitGroup // records whose promise has not run yet
	mu     sync.Mutex
	unsent []int64 // pending records the goroutine did not get to
	failed []int64 // records whose promise reported an error
	nAcked int
}

// startProducer starts cycle's producer on b. It sends the records left
// unacknowledged so far, in ascending order, then new ones: until stop is
// called or, if final, crashLoopFinal new ones.
func (c *crashLoop) startProducer(b *broker, cycle int, final bool) *cycleProducer {
	t := c.t
	t.Helper()
	logs := &syncBuffer{}
	// Odd cycles compress (snappy, kgo's default), even ones do not: the
	// broker stores compressed batches as they come but checks every
	// record's framing in uncompressed ones.
	codec := kgo.SnappyCompression()
	if cycle%2 == 0 {
		codec = kgo.NoCompression()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.addr),
		kgo.ClientID(fmt.Sprintf("crashloop-%d", cycle)),
		kgo.DefaultProduceTopic(c.topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is kgo's default
		kgo.ProducerBatchMaxBytes(64<<10),
		kgo.ProducerBatchCompression(codec),
		kgo.MaxBufferedRecords(1000),
		kgo.RecordDeliveryTimeout(requestTimeout),
		kgo.ProducerOnDataLossDetected(func(topic string, p int32) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.errs = append(c.errs, fmt.Sprintf("cycle %d: franz-go detected data loss on %s/%d", cycle, topic, p))
		}),
		kgo.WithLogger(kgo.BasicLogger(logs, clientLogLevel(), nil)),
	)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &cycleProducer{c: c, cycle: cycle, cl: cl, close: sync.OnceFunc(cl.Close), cancel: cancel,
		quit: make(chan struct{}), fed: make(chan struct{})}
	t.Cleanup(func() {
		cancel()
		p.close()
		if t.Failed() {
			if s := logs.String(); s != "" {
				t.Logf("franz-go log of the cycle %d producer (broker %s):\n%s", cycle, b.addr, lastLines(s, 200))
			}
		}
	})

	c.mu.Lock()
	resend := c.pending
	c.pending = nil
	c.cycleOK[cycle] = make(chan struct{})
	c.mu.Unlock()

	go func() {
		defer close(p.fed)
		for i, n := range resend {
			if !p.send(ctx, n) {
				p.mu.Lock()
				p.unsent = append(p.unsent, resend[i:]...)
				p.mu.Unlock()
				return
			}
		}
		for i := 0; !final || i < crashLoopFinal; i++ {
			c.mu.Lock()
			n := c.next
			c.next++
			c.mu.Unlock()
			if !p.send(ctx, n) {
				p.mu.Lock()
				p.unsent = append(p.unsent, n)
				p.mu.Unlock()
				return
			}
		}
	}()
	return p
}

// send hands record n to the client; false means the producer is stopping
// and n was not sent.
func (p *cycleProducer) send(ctx context.Context, n int64) bool {
	select {
	case <-p.quit:
		return false
	default:
	}
	c := p.c
	id := sendID{n, p.cycle}
	c.mu.Lock()
	c.sent[id] = true
	c.mu.Unlock()
	rec := &kgo.Record{
		Key:     crashKey(n),
		Value:   crashValue(n),
		Headers: []kgo.RecordHeader{{Key: "cycle", Value: strconv.AppendInt(nil, int64(p.cycle), 10)}},
	}
	p.wg.Add(1)
	p.cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
		defer p.wg.Done()
		if err != nil {
			p.mu.Lock()
			p.failed = append(p.failed, n)
			p.mu.Unlock()
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if prev, dup := c.acked[n]; dup {
			c.errs = append(c.errs, fmt.Sprintf("%v acknowledged at partition %d offset %d, but it was already acknowledged in cycle %d at partition %d offset %d",
				id, r.Partition, r.Offset, prev.cycle, prev.partition, prev.offset))
			return
		}
		c.ackSeq++
		c.acked[n] = ackInfo{cycle: p.cycle, partition: r.Partition, offset: r.Offset, seq: c.ackSeq, pid: r.ProducerID, epoch: r.ProducerEpoch}
		pe := [2]int64{r.ProducerID, int64(r.ProducerEpoch)}
		if other, ok := c.pids[pe]; !ok {
			c.pids[pe] = p.cycle
		} else if other != p.cycle {
			c.errs = append(c.errs, fmt.Sprintf("the producers of cycles %d and %d were both given producer ID %d epoch %d", other, p.cycle, r.ProducerID, r.ProducerEpoch))
		}
		p.mu.Lock()
		p.nAcked++
		first := p.nAcked == 1
		p.mu.Unlock()
		if first {
			close(c.cycleOK[p.cycle])
		}
	})
	return true
}

// stop ends the cycle after its broker was killed: no more records are
// sent, the client is closed (failing what it still holds) and every
// record not acknowledged goes back to the pending list.
func (p *cycleProducer) stop() (acked, failed int) {
	close(p.quit)
	p.cancel() // unblocks a Produce waiting for buffer space
	return p.finish()
}

// wait lets the producer send everything it was given and waits for every
// acknowledgement.
func (p *cycleProducer) wait() (acked, failed int) {
	t := p.c.t
	select {
	case <-p.fed:
	case <-time.After(2 * requestTimeout):
		t.Fatalf("cycle %d: the producer did not hand over its records within %v", p.cycle, 2*requestTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*requestTimeout)
	defer cancel()
	if err := p.cl.Flush(ctx); err != nil {
		t.Fatalf("cycle %d: flushing the producer: %v", p.cycle, err)
	}
	close(p.quit)
	return p.finish()
}

func (p *cycleProducer) finish() (acked, failed int) {
	t := p.c.t
	t.Helper()
	select {
	case <-p.fed:
	case <-time.After(requestTimeout):
		t.Fatalf("cycle %d: the producer goroutine did not stop within %v", p.cycle, requestTimeout)
	}
	p.close()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(requestTimeout):
		t.Fatalf("cycle %d: record promises still outstanding %v after closing the client", p.cycle, requestTimeout)
	}
	p.mu.Lock()
	back := append(slices.Clone(p.unsent), p.failed...)
	acked, failed = p.nAcked, len(p.failed)
	p.mu.Unlock()
	slices.Sort(back)
	c := p.c
	c.mu.Lock()
	c.pending = slices.Compact(back)
	c.mu.Unlock()
	return acked, failed
}

// check reads the topic from b and checks it against everything
// acknowledged and everything earlier checks found. A full check reads
// every partition from offset 0 and returns the records in partition and
// offset order; otherwise only what was added since the last check is
// read, and the records before it are taken as that check found them (a
// full check, every crashLoopCycles cycles, verifies that assumption).
func (c *crashLoop) check(b *broker, when string, full bool) []*kgo.Record {
	t := c.t
	t.Helper()
	began := time.Now()
	var ends, starts map[int32]int64
	withAdmin(t, b, func(adm *kadm.Client) {
		ends = endOffsets(t, adm, c.topic)
		starts = startOffsets(t, adm, c.topic)
	})
	from := map[int32]int64{}
	for p := range int32(crashLoopPartitions) {
		if starts[p] != 0 {
			t.Errorf("%s: partition %d starts at offset %d, want 0 (nothing is ever deleted)", when, p, starts[p])
		}
		if ends[p] < c.checkedEnd[p] {
			t.Fatalf("%s: partition %d ends at offset %d, but an earlier check read it up to %d: records were lost", when, p, ends[p], c.checkedEnd[p])
		}
		if !full {
			from[p] = c.checkedEnd[p]
		}
	}
	got := c.consume(b, from, ends, when)
	slices.SortStableFunc(got, func(x, y *kgo.Record) int { return int(x.Partition - y.Partition) })

	c.mu.Lock()
	defer c.mu.Unlock()
	var problems []string
	fail := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	// stored and at describe the whole topic: what was read now, and
	// below from what earlier checks read.
	stored := map[sendID][]partOff{}
	at := map[partOff]sendID{}
	if !full {
		at = maps.Clone(c.served)
		for id, pos := range c.stored {
			stored[id] = slices.Clone(pos)
		}
	}
	next := maps.Clone(from)
	for _, r := range got {
		// Offsets run 0, 1, 2, ... in each partition, in the order a
		// consumer reads them.
		if want := next[r.Partition]; r.Offset != want {
			t.Fatalf("%s: partition %d has offset %d where %d should be (offsets must run 0..end-1 with no gap or repeat)", when, r.Partition, r.Offset, want)
		}
		next[r.Partition]++
		pos := partOff{r.Partition, r.Offset}
		n, err := strconv.ParseInt(string(r.Key), 10, 64)
		cycle := -1
		if len(r.Headers) == 1 && r.Headers[0].Key == "cycle" {
			cycle, _ = strconv.Atoi(string(r.Headers[0].Value))
		}
		id := sendID{n, cycle}
		switch {
		case err != nil || cycle < 0:
			fail("partition %d offset %d holds a record this test did not send: key %.40q, headers %v", pos.p, pos.o, r.Key, r.Headers)
			continue
		case !c.sent[id]:
			fail("partition %d offset %d holds %v, which was never sent", pos.p, pos.o, id)
		case string(r.Value) != string(crashValue(n)):
			fail("partition %d offset %d holds %v with value %.60q, want %.60q", pos.p, pos.o, id, r.Value, crashValue(n))
		}
		stored[id] = append(stored[id], pos)
		at[pos] = id
		if a, ok := c.acked[n]; ok && a.cycle == cycle && (r.ProducerID != a.pid || r.ProducerEpoch != a.epoch) {
			fail("partition %d offset %d holds %v with producer ID %d epoch %d; it was acknowledged to producer ID %d epoch %d",
				pos.p, pos.o, id, r.ProducerID, r.ProducerEpoch, a.pid, a.epoch)
		}
	}
	for p := range int32(crashLoopPartitions) {
		if next[p] != ends[p] {
			fail("partition %d: read up to offset %d, but its end offset is %d", p, next[p], ends[p])
		}
	}

	// Every acknowledged record is stored exactly once, where its
	// acknowledgement said.
	type ackedAt struct {
		n int64
		a ackInfo
	}
	byPartition := map[int32][]ackedAt{}
	for n, a := range c.acked {
		byPartition[a.partition] = append(byPartition[a.partition], ackedAt{n, a})
		id := sendID{n, a.cycle}
		want := partOff{a.partition, a.offset}
		switch pos := stored[id]; {
		case len(pos) == 0:
			fail("LOST: %v was acknowledged at partition %d offset %d (end offset %d); that offset holds %s", id, a.partition, a.offset, ends[a.partition], describeAt(at, want))
		case len(pos) > 1:
			fail("DUPLICATED: %v was acknowledged once, at partition %d offset %d, and is stored at %v", id, a.partition, a.offset, pos)
		case pos[0] != want:
			fail("MOVED: %v was acknowledged at partition %d offset %d and is stored at partition %d offset %d; the acknowledged offset holds %s",
				id, a.partition, a.offset, pos[0].p, pos[0].o, describeAt(at, want))
		}
	}
	// ...in acknowledgement order.
	for p, list := range byPartition {
		slices.SortFunc(list, func(x, y ackedAt) int { return int(x.a.seq - y.a.seq) })
		for i := 1; i < len(list); i++ {
			if x, y := list[i-1], list[i]; y.a.offset <= x.a.offset {
				fail("REORDERED: partition %d: record %d was acknowledged at offset %d after record %d was acknowledged at offset %d", p, y.n, y.a.offset, x.n, x.a.offset)
			}
		}
	}
	// A send that was not acknowledged may be stored or not, but not
	// twice: its retries within a cycle are by the same idempotent
	// producer with the same sequence numbers.
	unacked := 0
	for id, pos := range stored {
		if a, ok := c.acked[id.n]; ok && a.cycle == id.cycle {
			continue
		}
		unacked++
		if len(pos) > 1 {
			fail("DUPLICATED: %v was never acknowledged, but its producer's retries stored it %d times, at %v", id, len(pos), pos)
		}
	}
	// What an earlier check found is still there: a kill -9 loses nothing
	// that reached the page cache.
	if full {
		for pos, was := range c.served {
			if now, ok := at[pos]; !ok || now != was {
				fail("CHANGED: partition %d offset %d held %v at an earlier check and now holds %s", pos.p, pos.o, was, describeAt(at, pos))
			}
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		t.Fatalf("%s: %d problems among the %d stored records (%d acknowledged, end offsets %v; first 30 sorted):\n%s",
			when, len(problems), len(at), len(c.acked), ends, strings.Join(problems[:min(30, len(problems))], "\n"))
	}
	kind := "read in full"
	if !full {
		kind = fmt.Sprintf("read from offsets %v", from)
	}
	t.Logf("%s: %d records stored (end offsets %v, %s), every one of the %d acknowledged in place; %d stored sends were never acknowledged (checked in %v)",
		when, len(at), ends, kind, len(c.acked), unacked, time.Since(began).Round(time.Millisecond))
	c.served, c.stored, c.checkedEnd = at, stored, ends
	return got
}

// consume reads each partition p from offset from[p] to ends[p] with a
// new client. If a partition stops short of its end, it reports what a
// raw Fetch at the offset it is stuck at returns.
func (c *crashLoop) consume(b *broker, from, ends map[int32]int64, when string) []*kgo.Record {
	t := c.t
	t.Helper()
	total := int64(0)
	offsets := map[int32]kgo.Offset{}
	next := map[int32]int64{}
	for p := range int32(crashLoopPartitions) {
		total += ends[p] - from[p]
		offsets[p] = kgo.NewOffset().At(from[p])
		next[p] = from[p]
	}
	if total == 0 {
		return nil
	}
	cl := newClient(t, b,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.topic: offsets}),
		kgo.FetchMaxWait(time.Second),
	)
	defer cl.Close()
	// Reading a few hundred thousand records takes a second or two; the
	// limit leaves room for a loaded machine.
	limit := 2 * requestTimeout
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var out []*kgo.Record
	var retriable []string
	for int64(len(out)) < total {
		fs := cl.PollFetches(ctx)
		for _, e := range fs.Errors() {
			switch {
			case errors.Is(e.Err, context.DeadlineExceeded), errors.Is(e.Err, context.Canceled):
			case kerr.IsRetriable(e.Err):
				retriable = append(retriable, fmt.Sprintf("%s/%d: %v", e.Topic, e.Partition, e.Err))
			default:
				t.Fatalf("%s: fetch error on %s/%d at offset %d after %d of %d records: %v", when, e.Topic, e.Partition, next[e.Partition], len(out), total, e.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			next[r.Partition] = r.Offset + 1
		})
		if ctx.Err() != nil && int64(len(out)) < total {
			var stuck []string
			adm := kadm.NewClient(cl)
			id := topicID(t, adm, c.topic)
			for p := range int32(crashLoopPartitions) {
				if next[p] >= ends[p] {
					continue
				}
				r := rawFetch(t, cl, c.topic, id, p, next[p], 0)
				var bases []string
				for _, bt := range batchesOf(t, r.RecordBatches) {
					bases = append(bases, fmt.Sprintf("%d+%d", bt.FirstOffset, bt.NumRecords))
				}
				stuck = append(stuck, fmt.Sprintf("partition %d stopped at offset %d of %d; a Fetch there answers %s, high watermark %d, log start %d, %d bytes, batches %v",
					p, next[p], ends[p], errName(r.ErrorCode), r.HighWatermark, r.LogStartOffset, len(r.RecordBatches), bases))
			}
			t.Fatalf("%s: consumed %d of %d records within %v (retriable errors: %q):\n%s",
				when, len(out), total, limit, lastN(retriable, 5), strings.Join(stuck, "\n"))
		}
	}
	if int64(len(out)) > total {
		t.Fatalf("%s: consumed %d records from offsets %v, but the end offsets are %v", when, len(out), from, ends)
	}
	return out
}

func describeAt(at map[partOff]sendID, pos partOff) string {
	if id, ok := at[pos]; ok {
		return id.String()
	}
	return "nothing"
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d earlier lines]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
