package integration

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// saramaLog collects the log of every sarama client in this process:
// sarama.Logger is a package variable, so the log is shared by parallel
// tests. A failed test shows its tail, where lines naming its broker's
// address are its own.
var (
	saramaLog     = &syncBuffer{}
	saramaLogOnce sync.Once
)

func enableSaramaLog() {
	saramaLogOnce.Do(func() {
		sarama.Logger = log.New(saramaLog, "[sarama] ", log.Ltime|log.Lmicroseconds)
		sarama.DebugLogger = sarama.Logger
	})
}

// saramaVersions are the protocol versions sarama clients are run with:
// its default and a recent one.
var saramaVersions = []struct {
	name    string
	version *sarama.KafkaVersion // nil: sarama's default
}{
	{"default", nil},
	{"V3_6_0_0", &sarama.V3_6_0_0},
}

// saramaConfig is a sarama config for version (nil: sarama's default)
// with timeouts on every network call; the sarama log is dumped if t
// fails.
func saramaConfig(t testing.TB, b *broker, version *sarama.KafkaVersion) *sarama.Config {
	t.Helper()
	enableSaramaLog()
	cfg := sarama.NewConfig()
	if version != nil {
		cfg.Version = *version
	}
	cfg.ClientID = "integration-sarama"
	cfg.Net.DialTimeout = 10 * time.Second
	cfg.Net.ReadTimeout = requestTimeout
	cfg.Net.WriteTimeout = requestTimeout
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Metadata.Timeout = requestTimeout
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sarama log (shared by parallel tests; this test's broker is %s), last lines:\n%s",
				b.addr, strings.Join(lastN(strings.Split(saramaLog.String(), "\n"), 300), "\n"))
		}
	})
	return cfg
}

// saramaProducerConfig is an idempotent, acks=all producer config using codec.
func saramaProducerConfig(t testing.TB, b *broker, version *sarama.KafkaVersion, codec sarama.CompressionCodec) *sarama.Config {
	cfg := saramaConfig(t, b, version)
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Compression = codec
	cfg.Producer.Timeout = requestTimeout
	cfg.Producer.Retry.Backoff = 50 * time.Millisecond
	return cfg
}

// saramaProduce sends msgs in one SendMessages call and returns them as
// kgo records carrying the partitions and offsets sarama was given.
func saramaProduce(t testing.TB, b *broker, cfg *sarama.Config, msgs []*sarama.ProducerMessage) []*kgo.Record {
	t.Helper()
	p, err := sarama.NewSyncProducer([]string{b.addr}, cfg)
	if err != nil {
		t.Fatalf("sarama.NewSyncProducer (version %s, codec %s): %v", cfg.Version, cfg.Producer.Compression, err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			t.Errorf("closing sarama producer: %v", err)
		}
	}()
	// SendMessages has no context: the producer's own timeouts and
	// retries bound it; this guard turns a hang into a failure.
	done := make(chan error, 1)
	go func() { done <- p.SendMessages(msgs) }()
	select {
	case err = <-done:
	case <-time.After(2 * requestTimeout):
		t.Fatalf("sarama SendMessages (%d messages, codec %s) did not return within %v", len(msgs), cfg.Producer.Compression, 2*requestTimeout)
	}
	if err != nil {
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) {
			for i, pe := range perrs {
				if i < 5 {
					t.Errorf("sarama produce to %s/%d: %v", pe.Msg.Topic, pe.Msg.Partition, pe.Err)
				}
			}
		}
		t.Fatalf("sarama SendMessages (version %s, codec %s): %v", cfg.Version, cfg.Producer.Compression, err)
	}
	out := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		out[i] = saramaToRecord(m.Topic, m.Partition, m.Offset, encoded(t, m.Key), encoded(t, m.Value), m.Headers, m.Timestamp)
	}
	return out
}

func encoded(t testing.TB, e sarama.Encoder) []byte {
	t.Helper()
	if e == nil {
		return nil
	}
	b, err := e.Encode()
	if err != nil {
		t.Fatalf("encoding %v: %v", e, err)
	}
	return b
}

func saramaToRecord(topic string, partition int32, offset int64, key, value []byte, headers []sarama.RecordHeader, ts time.Time) *kgo.Record {
	r := &kgo.Record{Topic: topic, Partition: partition, Offset: offset, Key: key, Value: value, Timestamp: ts}
	for _, h := range headers {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: string(h.Key), Value: h.Value})
	}
	return r
}

func consumerMessageToRecord(m *sarama.ConsumerMessage) *kgo.Record {
	hs := make([]sarama.RecordHeader, 0, len(m.Headers))
	for _, h := range m.Headers {
		hs = append(hs, *h)
	}
	return saramaToRecord(m.Topic, m.Partition, m.Offset, m.Key, m.Value, hs, m.Timestamp)
}

// saramaMessages makes n keyed messages for topic, with a header and a
// millisecond timestamp; keys repeat so partitions get several records.
func saramaMessages(topic string, n int) []*sarama.ProducerMessage {
	ts := time.Now().Truncate(time.Millisecond)
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{
			Topic:     topic,
			Key:       sarama.StringEncoder(fmt.Sprintf("key-%d", i%7)),
			Value:     sarama.StringEncoder(fmt.Sprintf("%s value %d %s", topic, i, strings.Repeat("abc", i%50))),
			Headers:   []sarama.RecordHeader{{Key: []byte("i"), Value: fmt.Appendf(nil, "%d", i)}},
			Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return msgs
}

// saramaConsume reads every partition of topic from the oldest offset
// with a sarama Consumer until want records arrived, partition by
// partition in offset order.
func saramaConsume(t testing.TB, b *broker, cfg *sarama.Config, topic string, want int) []*kgo.Record {
	t.Helper()
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 250 * time.Millisecond
	c, err := sarama.NewConsumer([]string{b.addr}, cfg)
	if err != nil {
		t.Fatalf("sarama.NewConsumer (version %s): %v", cfg.Version, err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Errorf("closing sarama consumer: %v", err)
		}
	}()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatalf("sarama Partitions(%s): %v", topic, err)
	}
	msgs := make(chan *sarama.ConsumerMessage, want+1)
	errs := make(chan *sarama.ConsumerError, 16)
	var pcs []sarama.PartitionConsumer
	var wg sync.WaitGroup
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("sarama ConsumePartition(%s, %d, OffsetOldest): %v", topic, p, err)
		}
		pcs = append(pcs, pc)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for m := range pc.Messages() {
				msgs <- m
			}
		}()
		go func() {
			defer wg.Done()
			for e := range pc.Errors() {
				select {
				case errs <- e:
				default:
				}
			}
		}()
	}
	defer func() {
		for _, pc := range pcs {
			pc.AsyncClose()
		}
		wg.Wait()
	}()
	byPart := map[int32][]*kgo.Record{}
	deadline := time.After(requestTimeout)
	for n := 0; n < want; {
		select {
		case m := <-msgs:
			byPart[m.Partition] = append(byPart[m.Partition], consumerMessageToRecord(m))
			n++
		case e := <-errs:
			t.Fatalf("sarama consumer error on %s/%d: %v", e.Topic, e.Partition, e.Err)
		case <-deadline:
			t.Fatalf("sarama consumer read %d of %d records of %s within %v", n, want, topic, requestTimeout)
		}
	}
	var out []*kgo.Record
	for _, p := range parts {
		out = append(out, byPart[p]...)
	}
	return out
}

// TestSaramaProduceConsume produces keyed records with sarama's
// idempotent SyncProducer, with each codec, and reads them back with a
// sarama Consumer, for each protocol version.
func TestSaramaProduceConsume(t *testing.T) {
	t.Parallel()
	codecs := []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionLZ4, sarama.CompressionZSTD}
	for _, v := range saramaVersions {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			b := startBroker(t, t.TempDir())
			adm := newAdmin(t, b)
			for _, codec := range codecs {
				topic := "sarama-" + codec.String()
				createTopic(t, adm, topic, 3, nil)
				produced := saramaProduce(t, b, saramaProducerConfig(t, b, v.version, codec), saramaMessages(topic, 60))
				got := saramaConsume(t, b, saramaConfig(t, b, v.version), topic, len(produced))
				t.Logf("codec %s: %d records", codec, len(got))
				checkConsumed(t, produced, got)
			}
		})
	}
}

// TestSaramaCrossClient checks that what sarama writes with lz4 franz-go
// reads, and the other way round.
func TestSaramaCrossClient(t *testing.T) {
	t.Parallel()
	for _, v := range saramaVersions {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			b := startBroker(t, t.TempDir())
			adm := newAdmin(t, b)

			createTopic(t, adm, "from-sarama", 3, nil)
			produced := saramaProduce(t, b, saramaProducerConfig(t, b, v.version, sarama.CompressionLZ4), saramaMessages("from-sarama", 90))
			checkConsumed(t, produced, consumeTopic(t, b, "from-sarama", len(produced)))

			createTopic(t, adm, "from-franz", 3, nil)
			cl := newClient(t, b, kgo.ProducerBatchCompression(kgo.Lz4Compression()), kgo.DefaultProduceTopic("from-franz"))
			ts := time.Now().Truncate(time.Millisecond)
			var recs []*kgo.Record
			for i := range 90 {
				recs = append(recs, &kgo.Record{
					Key:       fmt.Appendf(nil, "key-%d", i%5),
					Value:     fmt.Appendf(nil, "franz value %d %s", i, strings.Repeat("xyz", i)),
					Headers:   []kgo.RecordHeader{{Key: "h", Value: fmt.Appendf(nil, "%d", i)}},
					Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
				})
			}
			produceSync(t, cl, recs...)
			checkConsumed(t, recs, saramaConsume(t, b, saramaConfig(t, b, v.version), "from-franz", len(recs)))
		})
	}
}

// saramaMember is one member of a sarama consumer group that marks each
// message it processes (the autocommit commits the marks).
type saramaMember struct {
	name   string
	tr     *tracker
	mu     sync.Mutex
	claims map[string][]int32 // partitions of the current session, by topic
	gen    int32
}

func (m *saramaMember) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claims, m.gen = s.Claims(), s.GenerationID()
	return nil
}

func (m *saramaMember) Cleanup(sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claims = nil
	return nil
}

func (m *saramaMember) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-c.Messages():
			if !ok {
				return nil
			}
			m.tr.process(m.name, consumerMessageToRecord(msg))
			s.MarkMessage(msg, "")
		case <-s.Context().Done():
			return nil
		}
	}
}

func (m *saramaMember) session() (int32, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, ps := range m.claims {
		n += len(ps)
	}
	return m.gen, n
}

// runSaramaMember consumes topic in group until ctx ends; the returned
// channel closes when the group is closed.
func runSaramaMember(t testing.TB, ctx context.Context, b *broker, cfg *sarama.Config, group, topic string, m *saramaMember) <-chan struct{} {
	t.Helper()
	g, err := sarama.NewConsumerGroup([]string{b.addr}, group, cfg)
	if err != nil {
		t.Fatalf("sarama.NewConsumerGroup %s: %v", m.name, err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for e := range g.Errors() {
			t.Errorf("%s: sarama consumer group error: %v", m.name, e)
		}
	}()
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, m); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) && ctx.Err() == nil {
				t.Errorf("%s: Consume: %v", m.name, err)
				break
			}
		}
		if err := g.Close(); err != nil {
			t.Errorf("%s: closing the consumer group: %v", m.name, err)
		}
		wg.Wait()
	}()
	return done
}

// TestSaramaConsumerGroup runs two sarama consumer group members on a
// 4-partition topic: every record is processed exactly once across the
// rebalance the second member causes, and the offsets the autocommit
// commits are what franz-go's admin client fetches.
func TestSaramaConsumerGroup(t *testing.T) {
	t.Parallel()
	for _, v := range saramaVersions {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			b := startBroker(t, t.TempDir(), groupFlags...)
			adm := newAdmin(t, b)
			const topic, group = "sarama-group-topic", "sarama-group"
			createTopic(t, adm, topic, 4, nil)
			pcfg := saramaProducerConfig(t, b, v.version, sarama.CompressionSnappy)
			saramaProduce(t, b, pcfg, saramaMessages(topic, 200))

			newCfg := func() *sarama.Config {
				cfg := saramaConfig(t, b, v.version)
				cfg.Consumer.Return.Errors = true
				cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
				cfg.Consumer.Offsets.AutoCommit.Enable = true
				cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
				cfg.Consumer.Group.Heartbeat.Interval = 250 * time.Millisecond
				cfg.Consumer.Group.Session.Timeout = 10 * time.Second
				cfg.Consumer.Group.Rebalance.Timeout = requestTimeout
				cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
				return cfg
			}
			tr := newTracker(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			m1 := &saramaMember{name: "sarama-1", tr: tr}
			done1 := runSaramaMember(t, ctx, b, newCfg(), group, topic, m1)
			eventually(t, requestTimeout, "the first member processes records", func() error {
				tr.mu.Lock()
				defer tr.mu.Unlock()
				if tr.byWho[m1.name] == 0 {
					return errors.New("nothing processed yet")
				}
				return nil
			})
			m2 := &saramaMember{name: "sarama-2", tr: tr}
			done2 := runSaramaMember(t, ctx, b, newCfg(), group, topic, m2)
			eventually(t, requestTimeout, "both members share the 4 partitions in one generation", func() error {
				g1, n1 := m1.session()
				g2, n2 := m2.session()
				if g1 != g2 || n1 == 0 || n2 == 0 || n1+n2 != 4 {
					return fmt.Errorf("member 1: generation %d, %d partitions; member 2: generation %d, %d partitions", g1, n1, g2, n2)
				}
				return nil
			})
			saramaProduce(t, b, pcfg, saramaMessages(topic, 200))
			end := endOffsets(t, adm, topic)
			eventually(t, requestTimeout, "every record processed", func() error { return tr.caughtUp(end) })
			tr.mu.Lock()
			if tr.byWho[m2.name] == 0 {
				t.Errorf("the second member processed nothing: %v", tr.byWho)
			}
			t.Logf("records processed by member: %v", tr.byWho)
			tr.mu.Unlock()

			eventually(t, requestTimeout, "the autocommitted offsets reach the end offsets", func() error {
				ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
				defer cancel()
				offs, err := adm.FetchOffsets(ctx, group)
				if err != nil {
					return err
				}
				for p, e := range end {
					o, ok := offs.Lookup(topic, p)
					if !ok {
						return fmt.Errorf("partition %d: no committed offset (end %d)", p, e)
					}
					if o.Err != nil {
						return fmt.Errorf("partition %d: %v", p, o.Err)
					}
					if o.At != e {
						return fmt.Errorf("partition %d: committed %d, end %d", p, o.At, e)
					}
				}
				return nil
			})
			cancel()
			for _, d := range []<-chan struct{}{done1, done2} {
				select {
				case <-d:
				case <-time.After(requestTimeout):
					t.Fatalf("a sarama group member did not close within %v", requestTimeout)
				}
			}
		})
	}
}
