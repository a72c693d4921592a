package protocol

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/rocketkafka/broker/config"
	"github.com/rocketkafka/broker/log"
)

// Test helpers shared by the handler tests: a Handler over a real store,
// request framing, and a Serve round trip decoded with kmsg.

const (
	testNodeID        = 1
	testClientID      = "protocol-test"
	testCorrelationID = 0x7e57c0de
)

// testConfig is a broker config as cmd/broker builds it, with a few topic
// defaults: one whose broker key was set (STATIC_BROKER_CONFIG), the others
// left at their defaults.
func testConfig() Config {
	return Config{
		NodeID:                   testNodeID,
		AdvertisedHost:           "broker.test",
		AdvertisedPort:           9092,
		AutoCreateTopics:         true,
		NumPartitions:            3,
		DefaultReplicationFactor: 1,
		BrokerConfigs: []ConfigEntry{
			{Name: "log.retention.hours", Value: "168", Default: true, Type: "INT", Doc: "The number of hours to keep a log file before deleting it."},
			{Name: "message.max.bytes", Value: "2097152", Type: "INT", Doc: "The largest record batch size allowed by Kafka."},
			{Name: "broker.id", Value: "1", ReadOnly: true, Type: "INT"},
			{Name: "sasl.jaas.config", Value: "secret", Sensitive: true, Type: "PASSWORD"},
		},
		TopicDefaults: map[string]TopicConfigDefault{
			"retention.ms":           {Value: "604800000", BrokerKey: "log.retention.hours", Default: true, Type: "LONG"},
			"max.message.bytes":      {Value: "2097152", BrokerKey: "message.max.bytes", Type: "INT"},
			"cleanup.policy":         {Value: "delete", BrokerKey: "log.cleanup.policy", Default: true, Type: "LIST"},
			"message.timestamp.type": {Value: "CreateTime", BrokerKey: "log.message.timestamp.type", Default: true, Type: "STRING"},
			"key.index.enable":       {Value: "false", Default: true, Type: "BOOLEAN"},
		},
		ValidateTopicConfig: config.ValidateTopicConfig,
	}
}

// newTestHandler returns a Handler over a new store in a temporary
// directory; edit, if given, adjusts the config first.
func newTestHandler(t testing.TB, edit ...func(*Config)) (*Handler, *log.Log) {
	t.Helper()
	store, err := log.Open(log.Options{Dir: t.TempDir(), SegmentBytes: 1 << 20, ConsumeQueueEntries: 1024, KeyIndexSlots: 1024, KeyIndexEntries: 4096})
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Errorf("closing the store: %v", err)
		}
	})
	cfg := testConfig()
	for _, e := range edit {
		e(&cfg)
	}
	return New(cfg, store, zap.NewNop()), store
}

// requestFrame encodes req at its version as a request frame without the
// size prefix, as netpoll hands it to Serve: header v1, or v2 (with an
// empty tagged-field section) when the version is flexible.
func requestFrame(req kmsg.Request, correlationID int32, clientID string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(correlationID))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

// serveFrame serves one frame and returns the response after the
// correlation ID: the response-header tags (when flexible) and the body.
func serveFrame(t testing.TB, h *Handler, frame []byte) []byte {
	t.Helper()
	resp, err := h.Serve(context.Background(), nil, frame)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if resp == nil {
		t.Fatal("Serve returned no response")
	}
	defer func() {
		if resp.Release != nil {
			resp.Release()
		}
	}()
	var b []byte
	for _, p := range resp.Pieces {
		if p.Bytes == nil && p.Len > 0 {
			t.Fatal("response has file pieces; serveFrame reads byte pieces only")
		}
		b = append(b, p.Bytes...)
	}
	// No size prefix: netpoll writes it, computed from the pieces.
	if len(b) < 4 {
		t.Fatalf("response of %d bytes has no correlation ID", len(b))
	}
	if id := binary.BigEndian.Uint32(b); id != testCorrelationID {
		t.Fatalf("correlation ID %#x, want %#x", id, testCorrelationID)
	}
	return b[4:]
}

// roundTrip serves req at its version and decodes the response with kmsg;
// it fails the test if Serve errs or the response does not decode to
// exactly the bytes sent.
func roundTrip(t testing.TB, h *Handler, req kmsg.Request) kmsg.Response {
	t.Helper()
	body := serveFrame(t, h, requestFrame(req, testCorrelationID, testClientID))
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != 18 { // ApiVersions responses keep header v0
		if len(body) == 0 || body[0] != 0 {
			t.Fatalf("%s v%d: response header tagged fields %x, want none", kmsg.NameForKey(req.Key()), req.GetVersion(), body[:min(len(body), 1)])
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("%s v%d: decoding the response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	if again := resp.AppendTo(nil); !bytes.Equal(again, body) {
		t.Fatalf("%s v%d: response of %d bytes decodes to %d bytes", kmsg.NameForKey(req.Key()), req.GetVersion(), len(body), len(again))
	}
	return resp
}

// recordBatch builds a valid uncompressed v2 RecordBatch, not idempotent,
// with one record per timestamp (values "0", "1", ...).
func recordBatch(timestamps ...int64) []byte {
	first, maxTs := timestamps[0], timestamps[0]
	var records []byte
	for i, ts := range timestamps {
		maxTs = max(maxTs, ts)
		r := kmsg.Record{TimestampDelta64: ts - first, OffsetDelta: int32(i), Value: []byte(strconv.Itoa(i))}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // a zero Length is one varint byte
		records = r.AppendTo(records)
	}
	batch := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(timestamps) - 1),
		FirstTimestamp:       first,
		MaxTimestamp:         maxTs,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(timestamps)),
		Records:              records,
	}
	b := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// appendRecords appends one batch with the given timestamps to a partition.
func appendRecords(t testing.TB, store *log.Log, topic string, partition int32, timestamps ...int64) log.AppendResult {
	t.Helper()
	p, err := store.Partition(topic, partition)
	if err != nil {
		t.Fatalf("partition %s-%d: %v", topic, partition, err)
	}
	res, err := p.Append(recordBatch(timestamps...))
	if err != nil {
		t.Fatalf("appending to %s-%d: %v", topic, partition, err)
	}
	return res
}

// createTopic creates a topic through CreateTopics and returns its ID.
func createTopic(t testing.TB, h *Handler, name string, partitions int32, configs map[string]string) [16]byte {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, -1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp := roundTrip(t, h, req).(*kmsg.CreateTopicsResponse)
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("creating %s: %+v", name, resp.Topics)
	}
	return resp.Topics[0].TopicID
}
