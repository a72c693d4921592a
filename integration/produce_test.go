package integration

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// compressibleValue is a value that every codec shrinks, so franz-go (which
// sends a batch uncompressed when compressing does not help) really sends
// compressed batches.
func compressibleValue(i int) []byte {
	return []byte(fmt.Sprintf("value %06d: %s", i, strings.Repeat("the quick brown fox jumps over the lazy dog ", 3+i%5)))
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// TestProduceConsumeCompression produces keyed records with headers with
// each codec and reads them back from the start: same keys, values,
// headers, timestamps, offsets 0..n-1 per partition. It also fetches the
// stored batches raw to check the broker kept the producer's codec, as
// Kafka does with compression.type=producer.
func TestProduceConsumeCompression(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir())
	adm := newAdmin(t, b)
	raw := newClient(t, b)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
		attr  int16
	}{
		{"none", kgo.NoCompression(), 0},
		{"gzip", kgo.GzipCompression(), 1},
		{"snappy", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3},
		{"zstd", kgo.ZstdCompression(), 4},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "compression-" + c.name
			const partitions, n = 3, 600
			createTopic(t, adm, topic, partitions, nil)
			prod := newClient(t, b,
				kgo.ProducerBatchCompression(c.codec),
				kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.ProducerLinger(5*time.Millisecond))
			var recs []*kgo.Record
			for i := range n {
				r := &kgo.Record{
					Topic:     topic,
					Partition: int32(i % partitions),
					Key:       []byte(fmt.Sprintf("key-%04d", i)),
					Value:     compressibleValue(i),
					Headers: []kgo.RecordHeader{
						{Key: "index", Value: []byte(strconv.Itoa(i))},
						{Key: "codec", Value: []byte(c.name)},
						{Key: "empty", Value: []byte{}},
					},
				}
				switch i {
				case 7:
					r.Key = nil // a null key stays null
				case 8:
					r.Value = nil // a null value (tombstone) stays null
				case 9:
					r.Key, r.Value = []byte{}, []byte{} // empty, not null
				}
				recs = append(recs, r)
			}
			// Two produce calls so each partition gets several batches.
			produceSync(t, prod, recs[:n/2]...)
			produceSync(t, prod, recs[n/2:]...)
			got := consumeTopic(t, b, topic, n)
			checkConsumed(t, recs, got)

			ends := endOffsets(t, adm, topic)
			for p := range int32(partitions) {
				if ends[p] != n/partitions {
					t.Errorf("partition %d end offset %d, want %d", p, ends[p], n/partitions)
				}
			}

			id := topicID(t, adm, topic)
			fp := rawFetch(t, raw, topic, id, 0, 0, 0)
			if fp.ErrorCode != 0 {
				t.Fatalf("raw fetch of partition 0: %s", errName(fp.ErrorCode))
			}
			batches := batchesOf(t, fp.RecordBatches)
			if len(batches) == 0 {
				t.Fatalf("raw fetch of partition 0 returned no complete batch (%d bytes)", len(fp.RecordBatches))
			}
			for _, batch := range batches {
				if codec := batch.Attributes & 7; codec != c.attr {
					t.Errorf("batch at offset %d stored with codec %d, produced with %d (%s)", batch.FirstOffset, codec, c.attr, c.name)
					break
				}
			}
		})
	}
}

// TestPartitions spreads records over 1 and 100 partitions with the
// default (murmur2 key hash) partitioner and a manual one, and reads every
// record back exactly once, in order within each partition.
func TestPartitions(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir())
	adm := newAdmin(t, b)
	cases := []struct {
		name       string
		partitions int32
		manual     bool
		n          int
	}{
		{"1-hash", 1, false, 1000},
		{"100-hash", 100, false, 3000},
		{"100-manual", 100, true, 2000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			topic := "partitions-" + c.name
			createTopic(t, adm, topic, c.partitions, nil)

			tds, err := adm.ListTopics(testCtx(t, requestTimeout), topic)
			if err != nil {
				t.Fatalf("ListTopics: %v", err)
			}
			td := tds[topic]
			if td.Err != nil || len(td.Partitions) != int(c.partitions) {
				t.Fatalf("metadata for %s: err %v, %d partitions, want %d", topic, td.Err, len(td.Partitions), c.partitions)
			}
			for _, p := range td.Partitions {
				if p.Err != nil || p.Leader < 0 || len(p.Replicas) != 1 || len(p.ISR) != 1 {
					t.Fatalf("metadata for %s partition %d: err %v leader %d replicas %v isr %v", topic, p.Partition, p.Err, p.Leader, p.Replicas, p.ISR)
				}
			}

			opts := []kgo.Opt{kgo.ProducerLinger(2 * time.Millisecond)}
			if c.manual {
				opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			}
			prod := newClient(t, b, opts...)
			var recs []*kgo.Record
			for i := range c.n {
				recs = append(recs, &kgo.Record{
					Topic:     topic,
					Partition: int32(i) % c.partitions,
					Key:       []byte(fmt.Sprintf("user-%d", i)),
					Value:     []byte(fmt.Sprintf("event %d", i)),
				})
			}
			produceSync(t, prod, recs...)
			counts := countByPartition(recs)
			if c.partitions == 100 && len(counts) < 90 {
				t.Fatalf("records went to only %d of 100 partitions", len(counts))
			}

			got := consumeTopic(t, b, topic, c.n)
			checkConsumed(t, recs, got)

			ends, starts := endOffsets(t, adm, topic), startOffsets(t, adm, topic)
			if len(ends) != int(c.partitions) {
				t.Errorf("ListEndOffsets returned %d partitions, want %d", len(ends), c.partitions)
			}
			for p := range c.partitions {
				if ends[p] != counts[p] || starts[p] != 0 {
					t.Errorf("partition %d: start %d end %d, want start 0 end %d", p, starts[p], ends[p], counts[p])
				}
			}
		})
	}
}

// TestRestart produces, stops the broker (SIGTERM, or kill -9), starts a
// new one on the same data directory and checks every acknowledged record
// is there at its offset, that topics and their configs survived, and that
// new records continue the offsets.
func TestRestart(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		kill  bool
		extra []string
	}{
		{"sigterm", false, nil},
		// SYNC_FLUSH acknowledges only what is on disk.
		{"kill9-sync-flush", true, []string{"--flush.disk.type=SYNC_FLUSH"}},
		// A killed process loses nothing it wrote to the page cache;
		// Kafka keeps every acknowledged record after kill -9 too.
		{"kill9-async-flush", true, []string{"--flush.disk.type=ASYNC_FLUSH"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			const topic, partitions = "restart", 4
			b1 := startBroker(t, dir, c.extra...)
			adm1 := newAdmin(t, b1)
			createTopic(t, adm1, topic, partitions, map[string]*string{"retention.ms": ptr("987654321")})
			id := topicID(t, adm1, topic)
			prod := newClient(t, b1, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			var acked []*kgo.Record
			for i := range 400 {
				acked = append(acked, &kgo.Record{Topic: topic, Partition: int32(i % partitions), Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprintf("before %d", i))})
			}
			produceSync(t, prod, acked...)

			// When killing, keep producing while the broker dies: every
			// record acknowledged before the kill must survive; records
			// in flight may or may not.
			var inflight sync.Map // value → true for records sent but not acknowledged
			if c.kill {
				var mu sync.Mutex
				var ackedDuring []*kgo.Record
				enough := make(chan struct{})
				stopProducing := make(chan struct{})
				ctx := testCtx(t, 2*requestTimeout)
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stopProducing:
							return
						default:
						}
						r := &kgo.Record{Topic: topic, Partition: int32(i % partitions), Value: []byte(fmt.Sprintf("during %d", i))}
						inflight.Store(string(r.Value), true)
						prod.Produce(ctx, r, func(r *kgo.Record, err error) {
							if err != nil {
								return
							}
							mu.Lock()
							defer mu.Unlock()
							if ackedDuring = append(ackedDuring, r); len(ackedDuring) == 200 {
								close(enough)
							}
						})
						if i%50 == 49 {
							// Keep the buffer small so the kill lands
							// while requests are in flight.
							_ = prod.Flush(ctx)
						}
					}
				}()
				select {
				case <-enough:
				case <-time.After(requestTimeout):
					t.Fatal("records produced while the broker runs were not acknowledged")
				}
				b1.kill()
				close(stopProducing)
				prod.Close() // fails what is still buffered
				wg.Wait()
				mu.Lock()
				acked = append(acked, ackedDuring...)
				mu.Unlock()
			} else {
				b1.stop(t)
			}

			b2 := startBroker(t, dir, c.extra...)
			if c.kill {
				// Recovery rewrites what the crash may have torn, not
				// the whole preallocated (1 GiB by default) segment:
				// a few MiB here hold everything produced.
				if n := b2.bytesWritten(t); n > 64<<20 {
					t.Errorf("recovering %d records (well under 1 MiB) after kill -9 made the broker write %d MiB before it listened; restarts after a crash get slow and I/O-heavy", len(acked), n>>20)
				}
			}
			adm2 := newAdmin(t, b2)
			tds, err := adm2.ListTopics(testCtx(t, requestTimeout), topic)
			if err != nil || tds[topic].Err != nil || len(tds[topic].Partitions) != partitions {
				t.Fatalf("after restart, metadata for %s: %v / %v / %d partitions, want %d", topic, err, tds[topic].Err, len(tds[topic].Partitions), partitions)
			}
			if tds[topic].ID != id {
				t.Errorf("after restart topic ID is %v, was %v", tds[topic].ID, id)
			}
			checkTopicConfig(t, adm2, topic, "retention.ms", "987654321")

			ends := endOffsets(t, adm2, topic)
			total := 0
			for _, e := range ends {
				total += int(e)
			}
			if total < len(acked) {
				t.Fatalf("after restart the end offsets %v hold %d records, but %d were acknowledged", ends, total, len(acked))
			}
			got := consumeTopic(t, b2, topic, total)
			if !c.kill {
				checkConsumed(t, acked, got)
			} else {
				checkSurvivors(t, acked, got, &inflight)
			}

			// New records continue each partition's offsets.
			prod2 := newClient(t, b2, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			var after []*kgo.Record
			for i := range 100 {
				after = append(after, &kgo.Record{Topic: topic, Partition: int32(i % partitions), Value: []byte(fmt.Sprintf("after %d", i))})
			}
			produceSync(t, prod2, after...)
			next := map[int32]int64{}
			for _, r := range after {
				want, ok := next[r.Partition]
				if !ok {
					want = ends[r.Partition]
				}
				if r.Offset != want {
					t.Fatalf("after restart partition %d: produced at offset %d, want %d (end offset before was %d)", r.Partition, r.Offset, want, ends[r.Partition])
				}
				next[r.Partition] = want + 1
			}
			all := append(got, after...)
			checkConsumed(t, all, consumeTopic(t, b2, topic, len(all)))
		})
	}
}

// checkSurvivors checks records read after a crash: every acknowledged
// record is at its offset; anything else was really sent.
func checkSurvivors(t testing.TB, acked, got []*kgo.Record, inflight *sync.Map) {
	t.Helper()
	type po struct {
		p int32
		o int64
	}
	at := map[po]*kgo.Record{}
	next := map[int32]int64{}
	for _, r := range got {
		if r.Offset != next[r.Partition] {
			t.Fatalf("partition %d: consumed offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
		}
		next[r.Partition]++
		at[po{r.Partition, r.Offset}] = r
	}
	lost := 0
	for _, a := range acked {
		r, ok := at[po{a.Partition, a.Offset}]
		switch {
		case !ok:
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged record %q (partition %d offset %d) is missing after the restart", a.Value, a.Partition, a.Offset)
			}
		case !bytes.Equal(r.Value, a.Value):
			t.Errorf("partition %d offset %d holds %q after the restart, acknowledged %q", a.Partition, a.Offset, r.Value, a.Value)
		}
		delete(at, po{a.Partition, a.Offset})
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged records lost", lost, len(acked))
	}
	for k, r := range at {
		if _, ok := inflight.Load(string(r.Value)); !ok {
			t.Errorf("partition %d offset %d holds %q, which was never produced", k.p, k.o, r.Value)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestCommitLogRolling writes ~24 MiB through 4 MiB commit log segments
// (and small consume queue files) and reads everything back, before and
// after a restart.
func TestCommitLogRolling(t *testing.T) {
	t.Parallel()
	const segmentBytes = 4 << 20
	dir := t.TempDir()
	extra := []string{"--commitlog.segment.bytes=" + strconv.Itoa(segmentBytes), "--consumequeue.segment.entries=64"}
	b := startBroker(t, dir, extra...)
	adm := newAdmin(t, b)
	const topic = "rolling"
	createTopic(t, adm, topic, 3, nil)
	prod := newClient(t, b,
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(5*time.Millisecond))

	rng := rand.New(rand.NewPCG(1, 2))
	var recs []*kgo.Record
	total := 0
	// Big records on partitions 0 and 1, sizes varied so batches end at
	// many different places relative to segment boundaries.
	for i := 0; total < 24<<20; i++ {
		v := randomBytes(rng, 50<<10+rng.IntN(200<<10))
		total += len(v)
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % 2), Key: []byte(strconv.Itoa(i)), Value: v})
	}
	// Many small records on partition 2 roll its consume queue files.
	for i := range 2000 {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 2, Value: []byte(fmt.Sprintf("small %d", i))})
	}
	for i := 0; i < len(recs); i += 40 {
		produceSync(t, prod, recs[i:min(i+40, len(recs))]...)
	}
	checkConsumed(t, recs, consumeTopic(t, b, topic, len(recs)))

	files := commitLogFiles(t, dir)
	if want := total / segmentBytes; len(files) < want {
		t.Errorf("%d commit log files (%v) after writing %d bytes with commitlog.segment.bytes=%d, want at least %d", len(files), files, total, segmentBytes, want)
	}

	b.stop(t)
	b2 := startBroker(t, dir, extra...)
	checkConsumed(t, recs, consumeTopic(t, b2, topic, len(recs)))
}

// commitLogFiles lists dir/commitlog's segment files (20-digit names), as
// the store documents its layout.
func commitLogFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "commitlog"))
	if err != nil {
		t.Fatalf("listing the commit log: %v", err)
	}
	var out []string
	for _, e := range entries {
		if _, err := strconv.ParseUint(e.Name(), 10, 64); err == nil && len(e.Name()) == 20 {
			out = append(out, e.Name())
		}
	}
	return out
}
