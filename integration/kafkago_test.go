package integration

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaGoLoggers returns a debug and an error logger for kafka-go
// clients, both shown if t fails.
func kafkaGoLoggers(t testing.TB, b *broker) (kafka.Logger, kafka.Logger) {
	t.Helper()
	buf := &syncBuffer{}
	logf := func(level string) kafka.LoggerFunc {
		return func(msg string, args ...any) {
			fmt.Fprintf(buf, "%s %s "+msg+"\n", append([]any{time.Now().Format("15:04:05.000000"), level}, args...)...)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kafka-go log (broker %s), last lines:\n%s", b.addr, strings.Join(lastN(strings.Split(buf.String(), "\n"), 300), "\n"))
		}
	})
	return logf("DEBUG"), logf("ERROR")
}

// kafkaGoMessages makes n keyed messages with a header and a millisecond
// timestamp; keys repeat so each partition gets several.
func kafkaGoMessages(prefix string, n int) []kafka.Message {
	ts := time.Now().Truncate(time.Millisecond)
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{
			Key:     fmt.Appendf(nil, "key-%d", i%7),
			Value:   fmt.Appendf(nil, "%s value %d %s", prefix, i, strings.Repeat("abc", i%50)),
			Headers: []kafka.Header{{Key: "i", Value: []byte(strconv.Itoa(i))}},
			Time:    ts.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return msgs
}

func kafkaGoToRecord(m kafka.Message) *kgo.Record {
	r := &kgo.Record{Topic: m.Topic, Partition: int32(m.Partition), Offset: m.Offset, Key: m.Key, Value: m.Value, Timestamp: m.Time}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return r
}

// kafkaGoWrite writes msgs to topic with a kafka.Writer (acks=all,
// hash partitioner, codec; 0 for none).
func kafkaGoWrite(t testing.TB, b *broker, topic string, codec kafka.Compression, msgs []kafka.Message) {
	t.Helper()
	logger, errLogger := kafkaGoLoggers(t, b)
	// A Transport of its own: kafka.DefaultTransport, shared by every
	// Writer in the process, serves metadata from a cache refreshed every
	// 6s, so a topic created since its last refresh would be unknown to it
	// (a client-side cache, not a broker answer).
	transport := &kafka.Transport{ClientID: "integration-kafka-go", DialTimeout: 10 * time.Second}
	defer transport.CloseIdleConnections()
	w := &kafka.Writer{
		Addr:         kafka.TCP(b.addr),
		Transport:    transport,
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		Compression:  codec,
		BatchSize:    len(msgs),
		BatchTimeout: 10 * time.Millisecond,
		ReadTimeout:  requestTimeout,
		WriteTimeout: requestTimeout,
		Logger:       logger,
		ErrorLogger:  errLogger,
	}
	defer func() {
		if err := w.Close(); err != nil {
			t.Errorf("closing kafka-go writer: %v", err)
		}
	}()
	if err := w.WriteMessages(testCtx(t, requestTimeout), msgs...); err != nil {
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) {
			for i, e := range werrs {
				if e != nil && i < 5 {
					t.Errorf("kafka-go write of message %d: %v", i, e)
				}
			}
		}
		t.Fatalf("kafka-go WriteMessages to %s (codec %v, %d messages): %v", topic, codec, len(msgs), err)
	}
}

// checkKeyed checks records consumed from a topic written without known
// offsets: each partition's offsets run 0, 1, 2, ...; each written record
// arrives exactly once with its key, value, headers and timestamp; records
// of one key share a partition and keep their written order.
func checkKeyed(t testing.TB, written, got []*kgo.Record) {
	t.Helper()
	byValue := map[string]int{}
	for i, r := range written {
		byValue[string(r.Value)] = i
	}
	next := map[int32]int64{}
	seen := map[int]bool{}
	keyPart := map[string]int32{}
	keyLast := map[string]int{}
	for _, r := range got {
		if exp := next[r.Partition]; r.Offset != exp {
			t.Fatalf("partition %d: consumed offset %d, want %d (offsets must run 0, 1, 2, ... with no gap or repeat)", r.Partition, r.Offset, exp)
		}
		next[r.Partition] = r.Offset + 1
		i, ok := byValue[string(r.Value)]
		if !ok {
			t.Fatalf("partition %d offset %d: value %.40q was never written", r.Partition, r.Offset, r.Value)
		}
		if seen[i] {
			t.Fatalf("partition %d offset %d: record %d (%.40q) consumed twice", r.Partition, r.Offset, i, r.Value)
		}
		seen[i] = true
		w := *written[i]
		w.Partition, w.Offset = r.Partition, r.Offset
		if d := recordDiff(&w, r); d != "" {
			t.Errorf("partition %d offset %d: %s", r.Partition, r.Offset, d)
		}
		k := string(r.Key)
		if p, ok := keyPart[k]; ok && p != r.Partition {
			t.Errorf("key %q in partitions %d and %d", k, p, r.Partition)
		}
		if last, ok := keyLast[k]; ok && i < last {
			t.Errorf("key %q: record %d consumed after record %d", k, i, last)
		}
		keyPart[k], keyLast[k] = r.Partition, i
	}
	if len(seen) != len(written) {
		t.Errorf("consumed %d of %d written records", len(seen), len(written))
	}
}

// TestKafkaGoWriterGroupReader writes with a kafka.Writer with each codec
// kafka-go supports, reads everything back with a group kafka.Reader that
// commits, checks the committed offsets through franz-go, and reads the
// same records with franz-go.
func TestKafkaGoWriterGroupReader(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir(), groupFlags...)
	adm := newAdmin(t, b)
	codecs := []kafka.Compression{0, kafka.Gzip, kafka.Snappy, kafka.Lz4, kafka.Zstd}
	for _, codec := range codecs {
		name := "none"
		if codec != 0 {
			name = codec.String()
		}
		topic, group := "kafkago-"+name, "kafkago-group-"+name
		createTopic(t, adm, topic, 3, nil)
		msgs := kafkaGoMessages(topic, 90)
		kafkaGoWrite(t, b, topic, codec, msgs)
		var written []*kgo.Record
		for _, m := range msgs {
			m.Topic = topic
			written = append(written, kafkaGoToRecord(m))
		}

		logger, errLogger := kafkaGoLoggers(t, b)
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:           []string{b.addr},
			GroupID:           group,
			Topic:             topic,
			StartOffset:       kafka.FirstOffset,
			MinBytes:          1,
			MaxBytes:          1 << 20,
			MaxWait:           250 * time.Millisecond,
			HeartbeatInterval: 250 * time.Millisecond,
			SessionTimeout:    10 * time.Second,
			RebalanceTimeout:  requestTimeout,
			ReadBatchTimeout:  requestTimeout,
			Logger:            logger,
			ErrorLogger:       errLogger,
		})
		ctx := testCtx(t, requestTimeout)
		byPart := map[int32][]*kgo.Record{}
		for n := 0; n < len(msgs); n++ {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("codec %s: kafka-go group reader fetched %d of %d records: %v (stats %+v)", name, n, len(msgs), err, r.Stats())
			}
			if err := r.CommitMessages(ctx, m); err != nil {
				t.Fatalf("codec %s: committing %s/%d@%d: %v", name, m.Topic, m.Partition, m.Offset, err)
			}
			byPart[int32(m.Partition)] = append(byPart[int32(m.Partition)], kafkaGoToRecord(m))
		}
		if err := r.Close(); err != nil {
			t.Errorf("codec %s: closing the group reader: %v", name, err)
		}
		var got []*kgo.Record
		for p := range int32(3) {
			got = append(got, byPart[p]...)
		}
		checkKeyed(t, written, got)

		end := endOffsets(t, adm, topic)
		offs, err := adm.FetchOffsets(testCtx(t, requestTimeout), group)
		if err != nil {
			t.Fatalf("FetchOffsets %s: %v", group, err)
		}
		for p, e := range end {
			o, ok := offs.Lookup(topic, p)
			switch {
			case !ok:
				t.Errorf("codec %s: partition %d: no committed offset (end %d)", name, p, e)
			case o.Err != nil:
				t.Errorf("codec %s: partition %d: committed offset error %v", name, p, o.Err)
			case o.At != e:
				t.Errorf("codec %s: partition %d: committed %d, end %d", name, p, o.At, e)
			}
		}

		// Cross-client: franz-go reads what kafka-go wrote.
		checkKeyed(t, written, consumeTopic(t, b, topic, len(written)))
		t.Logf("codec %s: %d records, end offsets %v", name, len(got), end)
	}
}

// TestKafkaGoPartitionReader reads, with kafka.Readers without a group
// (one per partition, from the first offset), records franz-go produced
// with zstd.
func TestKafkaGoPartitionReader(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir())
	adm := newAdmin(t, b)
	const topic = "from-franz"
	createTopic(t, adm, topic, 3, nil)
	cl := newClient(t, b, kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.DefaultProduceTopic(topic))
	ts := time.Now().Truncate(time.Millisecond)
	var recs []*kgo.Record
	for i := range 120 {
		recs = append(recs, &kgo.Record{
			Key:       fmt.Appendf(nil, "key-%d", i%5),
			Value:     fmt.Appendf(nil, "franz value %d %s", i, strings.Repeat("xyz", i)),
			Headers:   []kgo.RecordHeader{{Key: "h", Value: fmt.Appendf(nil, "%d", i)}},
			Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
		})
	}
	produceSync(t, cl, recs...)
	perPart := countByPartition(recs)

	var got []*kgo.Record
	for p := range int32(3) {
		logger, errLogger := kafkaGoLoggers(t, b)
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:          []string{b.addr},
			Topic:            topic,
			Partition:        int(p),
			StartOffset:      kafka.FirstOffset,
			MinBytes:         1,
			MaxBytes:         1 << 20,
			MaxWait:          250 * time.Millisecond,
			ReadBatchTimeout: requestTimeout,
			Logger:           logger,
			ErrorLogger:      errLogger,
		})
		ctx := testCtx(t, requestTimeout)
		for n := int64(0); n < perPart[p]; n++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("partition %d: kafka-go reader read %d of %d records: %v (stats %+v)", p, n, perPart[p], err, r.Stats())
			}
			got = append(got, kafkaGoToRecord(m))
		}
		if lag := r.Lag(); lag != 0 {
			t.Errorf("partition %d: reader lag %d after reading every record", p, lag)
		}
		if err := r.Close(); err != nil {
			t.Errorf("partition %d: closing the reader: %v", p, err)
		}
	}
	checkConsumed(t, recs, got)
}

// TestKafkaGoMetadata checks what kafka.Conn and kafka.Client learn of
// the broker and a topic.
func TestKafkaGoMetadata(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir())
	adm := newAdmin(t, b)
	const topic = "kafkago-meta"
	createTopic(t, adm, topic, 4, nil)
	_, port, err := net.SplitHostPort(b.addr)
	if err != nil {
		t.Fatal(err)
	}

	ctx := testCtx(t, requestTimeout)
	conn, err := kafka.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		t.Fatalf("kafka.DialContext %s: %v", b.addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(requestTimeout)); err != nil {
		t.Fatal(err)
	}
	versions, err := conn.ApiVersions()
	if err != nil {
		t.Fatalf("Conn.ApiVersions: %v", err)
	}
	if len(versions) == 0 {
		t.Errorf("Conn.ApiVersions: no API")
	}
	brokers, err := conn.Brokers()
	if err != nil {
		t.Fatalf("Conn.Brokers: %v", err)
	}
	if len(brokers) != 1 || strconv.Itoa(brokers[0].Port) != port {
		t.Errorf("Conn.Brokers = %+v, want one broker on port %s", brokers, port)
	}
	ctrl, err := conn.Controller()
	if err != nil {
		t.Fatalf("Conn.Controller: %v", err)
	}
	if len(brokers) == 1 && ctrl.ID != brokers[0].ID {
		t.Errorf("Conn.Controller = %+v, want broker %d", ctrl, brokers[0].ID)
	}
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatalf("Conn.ReadPartitions(%s): %v", topic, err)
	}
	if len(parts) != 4 {
		t.Errorf("Conn.ReadPartitions(%s): %d partitions %+v, want 4", topic, len(parts), parts)
	}
	for _, p := range parts {
		if p.Topic != topic || p.Error != nil || len(brokers) == 1 && p.Leader.ID != brokers[0].ID || len(p.Replicas) != 1 || len(p.Isr) != 1 {
			t.Errorf("Conn.ReadPartitions(%s): partition %+v", topic, p)
		}
	}

	transport := &kafka.Transport{ClientID: "integration-kafka-go", DialTimeout: 10 * time.Second}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(b.addr), Timeout: requestTimeout, Transport: transport}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatalf("Client.Metadata: %v", err)
	}
	if len(md.Brokers) != 1 || strconv.Itoa(md.Brokers[0].Port) != port {
		t.Errorf("Client.Metadata brokers = %+v, want one on port %s", md.Brokers, port)
	}
	if len(md.Topics) != 1 || md.Topics[0].Name != topic || md.Topics[0].Error != nil || len(md.Topics[0].Partitions) != 4 {
		t.Fatalf("Client.Metadata topics = %+v, want %s with 4 partitions", md.Topics, topic)
	}
	seen := map[int]bool{}
	for _, p := range md.Topics[0].Partitions {
		if p.Error != nil || p.Leader.ID != md.Brokers[0].ID {
			t.Errorf("Client.Metadata partition %+v", p)
		}
		seen[p.ID] = true
	}
	if len(seen) != 4 {
		t.Errorf("Client.Metadata partition IDs %v, want 0-3", seen)
	}

	// Round trip through Client: a produce with lz4 and a fetch of it.
	pr, err := client.Produce(ctx, &kafka.ProduceRequest{
		Topic: topic, Partition: 2, RequiredAcks: kafka.RequireAll, Compression: compress.Lz4,
		Records: kafka.NewRecordReader(kafka.Record{Key: kafka.NewBytes([]byte("k")), Value: kafka.NewBytes([]byte("v1"))}, kafka.Record{Key: kafka.NewBytes([]byte("k")), Value: kafka.NewBytes([]byte("v2"))}),
	})
	if err != nil || pr.Error != nil {
		t.Fatalf("Client.Produce: %v / %v", err, pr)
	}
	fr, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: 2, Offset: 0, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond})
	if err != nil || fr.Error != nil {
		t.Fatalf("Client.Fetch: %v / %v", err, fr)
	}
	var values []string
	for {
		rec, err := fr.Records.ReadRecord()
		if err != nil {
			break
		}
		v := new(bytes.Buffer)
		if rec.Value != nil {
			_, _ = v.ReadFrom(rec.Value)
		}
		values = append(values, fmt.Sprintf("%d:%s", rec.Offset, v))
	}
	if got := strings.Join(values, ","); got != "0:v1,1:v2" || fr.HighWatermark != 2 {
		t.Errorf("Client.Fetch: records %q, high watermark %d; want \"0:v1,1:v2\", 2", got, fr.HighWatermark)
	}
}
