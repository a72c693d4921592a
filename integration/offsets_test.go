package integration

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestListOffsetsByTimestamp produces records with explicit timestamps,
// not all increasing, and checks ListOffsets: by timestamp it returns the
// first offset (in offset order) whose timestamp is at or after the asked
// one, with that record's timestamp; start, end and max-timestamp offsets.
func TestListOffsetsByTimestamp(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir())
	adm := newAdmin(t, b)
	cl := newClient(t, b)
	const topic = "timestamps"
	createTopic(t, adm, topic, 2, nil) // partition 1 stays empty
	// franz-go times a record out from its Timestamp, which is an hour
	// old here: no delivery timeout (the produce context still bounds it).
	prod := newClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordDeliveryTimeout(0))

	base := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
	// Offsets 0-5 a second apart, then 6-9 with the largest first.
	deltas := []int64{0, 1000, 2000, 3000, 4000, 5000, 9000, 6000, 7000, 8000}
	var recs []*kgo.Record
	for i, d := range deltas {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(fmt.Sprintf("record %d", i)), Timestamp: time.UnixMilli(base + d)})
	}
	produceSync(t, prod, recs[:6]...)
	produceSync(t, prod, recs[6:]...)
	for i, r := range recs {
		if r.Offset != int64(i) {
			t.Fatalf("record %d acknowledged at offset %d", i, r.Offset)
		}
	}
	checkConsumed(t, recs, consumeTopic(t, b, topic, len(recs)))

	for _, c := range []struct {
		at         int64 // relative to base
		wantOffset int64
	}{
		{-5000, 0},
		{0, 0},
		{1, 1},
		{2500, 3},
		{5000, 5},
		{5001, 6}, // offset 6 (9000) is the first at or after 5001
		{6500, 6},
		{9000, 6},
	} {
		l, err := adm.ListOffsetsAfterMilli(testCtx(t, requestTimeout), base+c.at, topic)
		if err != nil {
			t.Fatalf("ListOffsetsAfterMilli(base%+d): %v", c.at, err)
		}
		o := l[topic][0]
		wantTS := base + deltas[c.wantOffset]
		if o.Err != nil || o.Offset != c.wantOffset || o.Timestamp != wantTS {
			t.Errorf("ListOffsets(timestamp base%+d) = offset %d timestamp base%+d (err %v), want offset %d timestamp base%+d",
				c.at, o.Offset, o.Timestamp-base, o.Err, c.wantOffset, wantTS-base)
		}
		if e := l[topic][1]; e.Err != nil || e.Offset != 0 {
			// An empty partition has no offset at any time; kadm then
			// lists its end offset, 0.
			t.Errorf("empty partition 1: ListOffsets(timestamp base%+d) = offset %d (err %v), want 0", c.at, e.Offset, e.Err)
		}
	}

	// Past the last timestamp Kafka answers offset -1, timestamp -1.
	raw := rawListOffsets(t, cl, topic, 0, base+9001)
	if raw.ErrorCode != 0 || raw.Offset != -1 || raw.Timestamp != -1 {
		t.Errorf("ListOffsets(timestamp after every record) = offset %d timestamp %d error %s, want offset -1 timestamp -1", raw.Offset, raw.Timestamp, errName(raw.ErrorCode))
	}
	l, err := adm.ListOffsetsAfterMilli(testCtx(t, requestTimeout), base+9001, topic)
	if err != nil || l[topic][0].Offset != 10 {
		t.Errorf("kadm ListOffsetsAfterMilli(after every record) = %+v, %v; want the end offset 10", l[topic][0], err)
	}

	if s, e := startOffsets(t, adm, topic), endOffsets(t, adm, topic); s[0] != 0 || e[0] != 10 || s[1] != 0 || e[1] != 0 {
		t.Errorf("start offsets %v end offsets %v, want partition 0 0..10, partition 1 0..0", s, e)
	}

	t.Run("max-timestamp", func(t *testing.T) {
		l, err := adm.ListMaxTimestampOffsets(testCtx(t, requestTimeout), topic)
		if err != nil {
			t.Fatalf("ListMaxTimestampOffsets: %v", err)
		}
		if o := l[topic][0]; o.Err != nil || o.Offset != 6 || o.Timestamp != base+9000 {
			t.Errorf("max timestamp of partition 0 = offset %d timestamp base%+d (err %v), want offset 6 timestamp base+9000", o.Offset, o.Timestamp-base, o.Err)
		}
		if o := l[topic][1]; o.Err != nil || o.Timestamp != -1 || (o.Offset != -1 && o.Offset != 0) {
			t.Errorf("max timestamp of empty partition 1 = offset %d timestamp %d (err %v), want timestamp -1", o.Offset, o.Timestamp, o.Err)
		}
	})
}

// rawListOffsets lists one partition's offset for timestamp.
func rawListOffsets(t testing.TB, cl *kgo.Client, topic string, partition int32, timestamp int64) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = partition
	rp.Timestamp = timestamp
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t, requestTimeout), cl)
	if err != nil {
		t.Fatalf("ListOffsets: %v", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("ListOffsets response has %d topics, want 1 with 1 partition", len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0]
}

// fetchWrites counts Fetch requests a client has written.
type fetchWrites struct {
	mu      sync.Mutex
	n       int
	changed chan struct{}
}

func (f *fetchWrites) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key != 1 || err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	close(f.changed)
	f.changed = make(chan struct{})
}

// waitAbove waits until more than n fetches were written.
func (f *fetchWrites) waitAbove(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		f.mu.Lock()
		cur, ch := f.n, f.changed
		f.mu.Unlock()
		if cur > n {
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("the consumer wrote no fetch request within %v", timeout)
		}
	}
}

func (f *fetchWrites) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// TestLongPollFetch checks a fetch with nothing to return waits for
// max.wait.ms (Kafka's long poll), and that a produce wakes a waiting
// fetch: a consumer with a 10s max wait gets a new record within 5s.
func TestLongPollFetch(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir())
	adm := newAdmin(t, b)
	const topic = "longpoll"
	createTopic(t, adm, topic, 1, nil)

	t.Run("waits", func(t *testing.T) {
		cl := newClient(t, b)
		id := topicID(t, adm, topic)
		start := time.Now()
		fp := rawFetch(t, cl, topic, id, 0, 0, 1500*time.Millisecond)
		elapsed := time.Since(start)
		if fp.ErrorCode != 0 || len(fp.RecordBatches) != 0 {
			t.Fatalf("fetch of an empty partition: error %s, %d bytes of records", errName(fp.ErrorCode), len(fp.RecordBatches))
		}
		if elapsed < time.Second {
			t.Errorf("fetch with MaxWaitMillis=1500 and MinBytes=1 on an empty partition returned after %v; Kafka waits up to max wait for data", elapsed)
		}
	})

	t.Run("sigterm-during-long-poll", func(t *testing.T) {
		// A fetch waiting in a 10s long poll must not hold up a shutdown,
		// whether its client is still connected or has gone away.
		for _, closeFirst := range []bool{false, true} {
			name := map[bool]string{false: "connection-open", true: "connection-closed"}[closeFirst]
			t.Run(name, func(t *testing.T) {
				b := startBroker(t, t.TempDir())
				withAdmin(t, b, func(adm *kadm.Client) {
					createTopic(t, adm, "idle", 1, nil)
				})
				before := metric(t, b.metrics(t), "broker_requests_total")
				conn := dialRaw(t, b.addr)
				req := kmsg.NewPtrFetchRequest()
				req.SetVersion(11)
				req.ReplicaID = -1
				req.MaxWaitMillis = 10000
				req.MinBytes = 1
				req.MaxBytes = 1 << 20
				req.SessionEpoch = -1
				rt := kmsg.NewFetchRequestTopic()
				rt.Topic = "idle"
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.FetchOffset = 0
				rp.PartitionMaxBytes = 1 << 20
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				if _, err := conn.Write(frame(append(requestHeader(1, 11, 1, "raw", false), req.AppendTo(nil)...))); err != nil {
					t.Fatalf("writing the fetch: %v", err)
				}
				eventually(t, 10*time.Second, "the broker takes the fetch", func() error {
					if n := metric(t, b.metrics(t), "broker_requests_total"); n <= before {
						return fmt.Errorf("broker_requests_total %v", n)
					}
					return nil
				})
				if closeFirst {
					conn.Close()
				}
				start := time.Now()
				b.stop(t)
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("SIGTERM with a fetch waiting in a 10s long poll (%s) took %v to shut the broker down, want < 5s", name, d.Round(time.Millisecond))
				}
			})
		}
	})

	t.Run("woken-by-produce", func(t *testing.T) {
		hook := &fetchWrites{changed: make(chan struct{})}
		cons := newClient(t, b,
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxWait(10*time.Second),
			kgo.WithHooks(hook))
		prod := newClient(t, b)
		// Warm the producer up (connection, producer ID) on another topic
		// so producing below costs one round trip.
		createTopic(t, adm, "longpoll-warmup", 1, nil)
		produceSync(t, prod, &kgo.Record{Topic: "longpoll-warmup", Value: []byte("warm")})

		type polled struct {
			recs []*kgo.Record
			at   time.Time
		}
		results := make(chan polled, 1)
		ctx := testCtx(t, 3*requestTimeout)
		go func() {
			defer close(results)
			for ctx.Err() == nil {
				fs := cons.PollFetches(ctx)
				if recs := fs.Records(); len(recs) > 0 {
					results <- polled{recs, time.Now()}
				}
			}
		}()

		seen := 0
		for round := range 3 {
			// Produce only once a fetch is waiting at the broker.
			hook.waitAbove(t, seen, 15*time.Second)
			seen = hook.count()
			start := time.Now()
			produceSync(t, prod, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("wake %d", round))})
			select {
			case p := <-results:
				if len(p.recs) != 1 || string(p.recs[0].Value) != fmt.Sprintf("wake %d", round) || p.recs[0].Offset != int64(round) {
					t.Fatalf("round %d: polled %d records, first %q at offset %d", round, len(p.recs), p.recs[0].Value, p.recs[0].Offset)
				}
				if d := p.at.Sub(start); d > 5*time.Second {
					t.Errorf("round %d: record reached the long-polling consumer %v after it was produced; the produce should wake the waiting fetch (want < 5s, max wait is 10s)", round, d)
				} else {
					t.Logf("round %d: record consumed %v after the produce started", round, d.Round(time.Millisecond))
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("round %d: the record produced was not consumed within 15s", round)
			}
		}
	})
}
