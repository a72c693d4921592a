package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Client settings shared by every run; see docs/bench.md.
const (
	batchMaxBytes          = 1 << 20   // kgo.ProducerBatchMaxBytes
	maxBufferedBytes       = 128 << 20 // bounds the producer's memory
	maxBufferedRecords     = 1 << 17
	fetchMaxBytes          = 50 << 20
	fetchMaxPartitionBytes = 10 << 20
	valuePoolBytes         = 16 << 20 // at most this much distinct random data
)

// valuePool holds pre-generated random record values. The number of values
// is prime so that round-robin partitioning over any partition count still
// hands every partition all of them in turn, and no batch is a run of
// identical values.
type valuePool struct {
	buf  []byte
	size int
	n    int64
}

func newValuePool(size int) *valuePool {
	n := valuePoolBytes / size
	n = max(2, min(n, 4099))
	for !isPrime(n) {
		n--
	}
	buf := make([]byte, n*size)
	var seed [32]byte
	copy(seed[:], "rocketkafka end-to-end benchmark")
	rand.NewChaCha8(seed).Read(buf)
	return &valuePool{buf: buf, size: size, n: int64(n)}
}

func (p *valuePool) value(i int64) []byte {
	off := int(i%p.n) * p.size
	return p.buf[off : off+p.size : off+p.size]
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// sample is a reading of the clocks a phase is measured with.
type sample struct {
	wall   time.Time
	target time.Duration // the target process's CPU time so far
	client time.Duration // this process's CPU time so far
}

// phase is what one produce or consume pass cost.
type phase struct {
	Wall      time.Duration
	TargetCPU time.Duration
	ClientCPU time.Duration
}

// meter samples the target's and our own CPU time.
type meter struct{ t *target }

func (m meter) sample() (sample, error) {
	s := sample{wall: time.Now()}
	var err1, err2 error
	s.target, err1 = m.t.cpu()
	s.client, err2 = selfCPU()
	if err := errors.Join(err1, err2); err != nil {
		return s, fmt.Errorf("reading CPU time: %w", err)
	}
	return s, nil
}

func (m meter) since(start sample) (phase, error) {
	end, err := m.sample()
	return phase{
		Wall:      end.wall.Sub(start.wall),
		TargetCPU: end.target - start.target,
		ClientCPU: end.client - start.client,
	}, err
}

// clientOpts are the options every client starts from.
func clientOpts(cfg *config, role, addr string) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID("bench-" + role)}
	if cfg.ClientLog != kgo.LogLevelNone {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(cfg.Log, cfg.ClientLog, func() string {
			return time.Now().Format("15:04:05.000 ") + role + " "
		})))
	}
	return opts
}

// createTopic creates topic with the given partition count and replication
// factor 1, then waits until metadata shows every partition with a leader.
func createTopic(ctx context.Context, cfg *config, addr, topic string, partitions int) error {
	cl, err := kgo.NewClient(clientOpts(cfg, "admin", addr)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("creating topic %s with %d partitions: %w", topic, partitions, err)
	}
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			td := md.Topics[topic]
			err = td.Err
			if err == nil && len(td.Partitions) != partitions {
				err = fmt.Errorf("metadata shows %d of %d partitions", len(td.Partitions), partitions)
			}
			for _, p := range td.Partitions {
				if err != nil {
					break
				}
				if p.Err != nil {
					err = fmt.Errorf("partition %d: %w", p.Partition, p.Err)
				} else if p.Leader < 0 {
					err = fmt.Errorf("partition %d has no leader", p.Partition)
				}
			}
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for topic %s: %w (last: %v)", topic, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// produce writes records values of pool to topic at acks=all, round-robin
// over its partitions, and waits for every ack. The phase is measured from
// the first Produce call to the last ack; connecting comes before it.
func produce(ctx context.Context, cfg *config, addr, topic string, pool *valuePool, records int64, m meter) (phase, error) {
	codec, err := compressionCodec(cfg.Compression)
	if err != nil {
		return phase{}, err
	}
	cl, err := kgo.NewClient(append(clientOpts(cfg, "producer", addr),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // the default, as is idempotence
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerLinger(cfg.Linger),
		kgo.ProducerBatchMaxBytes(batchMaxBytes),
		kgo.ProducerBatchCompression(codec),
		kgo.MaxBufferedRecords(maxBufferedRecords),
		kgo.MaxBufferedBytes(maxBufferedBytes),
	)...)
	if err != nil {
		return phase{}, err
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		return phase{}, fmt.Errorf("connecting the producer: %w", err)
	}

	var (
		acked    atomic.Int64
		errOnce  sync.Once
		firstErr error
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			errOnce.Do(func() {
				firstErr = err
				cancel()
			})
			return
		}
		acked.Add(1)
	}
	start, err := m.sample()
	if err != nil {
		return phase{}, err
	}
	for i := int64(0); i < records && ctx.Err() == nil; i++ {
		cl.Produce(ctx, &kgo.Record{Value: pool.value(i)}, promise)
	}
	flushErr := cl.Flush(ctx)
	ph, err := m.since(start)
	errOnce.Do(func() {}) // firstErr is settled from here on
	if firstErr != nil {
		return ph, fmt.Errorf("producing: %w", firstErr)
	}
	if flushErr != nil {
		return ph, fmt.Errorf("producing: %w", flushErr)
	}
	if n := acked.Load(); n != records {
		return ph, fmt.Errorf("producing: %d of %d records acked", n, records)
	}
	return ph, err
}

// consume reads topic from the start with a fresh client until it has seen
// records values totalling wantBytes. The phase is measured from the
// client's creation, so it includes the metadata and offset lookups.
func consume(ctx context.Context, cfg *config, addr, topic string, records, wantBytes int64, m meter) (phase, error) {
	start, err := m.sample()
	if err != nil {
		return phase{}, err
	}
	cl, err := kgo.NewClient(append(clientOpts(cfg, "consumer", addr),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(fetchMaxPartitionBytes),
	)...)
	if err != nil {
		return phase{}, err
	}
	defer cl.Close()
	var gotBytes, gotRecords int64
	for gotBytes < wantBytes {
		fetches := cl.PollFetches(ctx)
		if errs := fetches.Errors(); len(errs) > 0 {
			e := errs[0]
			return phase{}, fmt.Errorf("consuming %s[%d] after %d of %d records: %w", e.Topic, e.Partition, gotRecords, records, e.Err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			gotBytes += int64(len(r.Value))
			gotRecords++
		})
	}
	ph, err := m.since(start)
	if err == nil && (gotBytes != wantBytes || gotRecords != records) {
		err = fmt.Errorf("consumed %d records with %d value bytes, produced %d with %d", gotRecords, gotBytes, records, wantBytes)
	}
	return ph, err
}
