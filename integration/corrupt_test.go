package integration

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka error codes the produce tests expect.
const (
	codeNone              int16 = 0
	codeCorruptMessage    int16 = 2
	codeMessageTooLarge   int16 = 10
	codeOutOfOrderSeq     int16 = 45
	codeInvalidRecord     int16 = 87
	codeUnknownTopic      int16 = 3
	codeInvalidTopic      int16 = 17
	codeTopicExists       int16 = 36
	codeInvalidPartitions int16 = 37
	codeInvalidRF         int16 = 38
	codeInvalidConfig     int16 = 40
)

func setLength(b []byte, n int) []byte {
	binary.BigEndian.PutUint32(b[batchLengthAt:], uint32(n))
	return b
}

// TestCorruptBatchesRejected sends hand-made produce requests whose record
// batch is damaged in one way each and checks the partition error is the
// one Kafka returns, that nothing was stored, and that a good batch after
// them lands at offset 0.
func TestCorruptBatchesRejected(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir(), "--message.max.bytes=200000")
	adm := newAdmin(t, b)
	cl := newClient(t, b)
	const topic, small = "corrupt", "corrupt-small-max"
	createTopic(t, adm, topic, 1, nil)
	createTopic(t, adm, small, 1, map[string]*string{"max.message.bytes": ptr("10000")})
	ids := map[string][16]byte{topic: topicID(t, adm, topic), small: topicID(t, adm, small)}

	good := func() []byte { return plainBatch("a", "b", "c").encode() }
	rng := rand.New(rand.NewPCG(3, 4))
	big := func(n int) []byte {
		rb := plainBatch()
		rb.values = [][]byte{randomBytes(rng, n)}
		return rb.encode()
	}
	cases := []struct {
		name    string
		topic   string
		records func() []byte
		want    []int16 // acceptable codes, Kafka's first
	}{
		{"bad-crc-payload", topic, func() []byte { b := good(); b[len(b)-2] ^= 0xff; return b }, []int16{codeCorruptMessage}},
		{"bad-crc-field", topic, func() []byte { b := good(); b[batchCRCAt+3] ^= 0x01; return b }, []int16{codeCorruptMessage}},
		{"bad-crc-attributes", topic, func() []byte { b := good(); b[batchAttributesAt+1] ^= 0x10; return b }, []int16{codeCorruptMessage}},
		// Produce v3+ carries only magic 2 batches: Kafka answers
		// INVALID_RECORD for magic 0 or 1.
		{"magic-1", topic, func() []byte { b := good(); b[batchMagicAt] = 1; return b }, []int16{codeInvalidRecord, codeCorruptMessage}},
		{"magic-0", topic, func() []byte { b := good(); b[batchMagicAt] = 0; return b }, []int16{codeInvalidRecord, codeCorruptMessage}},
		{"magic-3", topic, func() []byte { b := good(); b[batchMagicAt] = 3; return b }, []int16{codeInvalidRecord, codeCorruptMessage}},
		// The batch length says 8 bytes fewer than were sent: the CRC over
		// the declared bytes fails.
		{"length-too-short", topic, func() []byte { b := good(); return setLength(b, len(b)-12-8) }, []int16{codeCorruptMessage}},
		// The length says 8 bytes more than were sent: Kafka finds no
		// complete batch (INVALID_RECORD); CORRUPT_MESSAGE is as good.
		{"length-too-long", topic, func() []byte { b := good(); return setLength(b, len(b)-12+8) }, []int16{codeCorruptMessage, codeInvalidRecord}},
		{"length-below-minimum", topic, func() []byte { b := good(); return setLength(b, 10) }, []int16{codeCorruptMessage}},
		{"length-negative", topic, func() []byte { b := good(); return setLength(b, -1&0xffffffff) }, []int16{codeCorruptMessage}},
		{"truncated", topic, func() []byte { return good()[:40] }, []int16{codeCorruptMessage, codeInvalidRecord}},
		{"no-batch", topic, func() []byte { return []byte{} }, []int16{codeInvalidRecord, codeCorruptMessage}},
		// The record count disagrees with the records (CRC recomputed, so
		// only the count is wrong): INVALID_RECORD.
		{"count-too-high", topic, func() []byte {
			b := good()
			binary.BigEndian.PutUint32(b[batchNumRecordsAt:], 4)
			fixCRC(b)
			return b
		}, []int16{codeInvalidRecord}},
		{"count-too-low", topic, func() []byte {
			b := good()
			binary.BigEndian.PutUint32(b[batchNumRecordsAt:], 2)
			fixCRC(b)
			return b
		}, []int16{codeInvalidRecord}},
		{"record-length-lies", topic, func() []byte {
			b := good()
			b[batchRecordsAt] += 4 // first record's varint length, +2
			fixCRC(b)
			return b
		}, []int16{codeInvalidRecord}},
		{"over-message.max.bytes", topic, func() []byte { return big(250000) }, []int16{codeMessageTooLarge}},
		{"over-topic-max.message.bytes", small, func() []byte { return big(20000) }, []int16{codeMessageTooLarge}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := rawProduce(t, cl, c.topic, ids[c.topic], 0, c.records())
			if !slices.Contains(c.want, resp.ErrorCode) {
				var names []string
				for _, w := range c.want {
					names = append(names, errName(w))
				}
				msg := ""
				if resp.ErrorMessage != nil {
					msg = " (" + *resp.ErrorMessage + ")"
				}
				t.Errorf("produce of a batch with %s: error %s%s, base offset %d; want %v", c.name, errName(resp.ErrorCode), msg, resp.BaseOffset, names)
			} else if resp.ErrorCode != c.want[0] {
				t.Logf("%s: got %s; Kafka answers %s", c.name, errName(resp.ErrorCode), errName(c.want[0]))
			}
			// The connection must still work after a rejected batch.
			if e := endOffsets(t, adm, c.topic); e[0] != 0 {
				t.Errorf("after the rejected %s batch, end offset of %s is %d, want 0: something was stored", c.name, c.topic, e[0])
			}
		})
	}

	for _, tp := range []string{topic, small} {
		if e, s := endOffsets(t, adm, tp), startOffsets(t, adm, tp); e[0] != 0 || s[0] != 0 {
			t.Errorf("%s after the rejected batches: start %d end %d, want 0 and 0", tp, s[0], e[0])
		}
	}
	resp := rawProduce(t, cl, topic, ids[topic], 0, plainBatch("good-0", "good-1").encode())
	if resp.ErrorCode != 0 || resp.BaseOffset != 0 {
		t.Fatalf("good batch after the rejected ones: error %s base offset %d, want NONE at 0", errName(resp.ErrorCode), resp.BaseOffset)
	}
	got := consumeTopic(t, b, topic, 2)
	for i, r := range got {
		if string(r.Value) != fmt.Sprintf("good-%d", i) || r.Offset != int64(i) {
			t.Errorf("record %d: %q at offset %d, want good-%d at %d", i, r.Value, r.Offset, i, i)
		}
	}
}

// initProducerID gets an idempotent producer ID and epoch.
func initProducerID(t testing.TB, cl *kgo.Client) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	resp, err := req.RequestWith(testCtx(t, requestTimeout), cl)
	if err != nil {
		t.Fatalf("InitProducerID: %v", err)
	}
	if resp.ErrorCode != 0 || resp.ProducerID < 0 || resp.ProducerEpoch < 0 {
		t.Fatalf("InitProducerID: error %s, producer ID %d epoch %d", errName(resp.ErrorCode), resp.ProducerID, resp.ProducerEpoch)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

// TestIdempotentProducer sends idempotent batches by hand: a batch sent
// twice (as a producer retry does) is stored once and both sends get the
// same base offset, also after a restart or a crash; a sequence gap gets
// OUT_OF_ORDER_SEQUENCE_NUMBER.
func TestIdempotentProducer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := startBroker(t, dir)
	adm := newAdmin(t, b)
	cl := newClient(t, b)
	const topic = "idempotent"
	createTopic(t, adm, topic, 1, nil)
	id := topicID(t, adm, topic)
	pid, epoch := initProducerID(t, cl)
	pid2, _ := initProducerID(t, cl)
	if pid2 == pid {
		t.Errorf("two InitProducerID calls returned the same producer ID %d", pid)
	}

	batches := map[string][]byte{}
	batch := func(name string, seq int32, values ...string) []byte {
		if b, ok := batches[name]; ok {
			return b
		}
		rb := plainBatch(values...)
		rb.producerID, rb.epoch, rb.sequence = pid, epoch, seq
		batches[name] = rb.encode()
		return batches[name]
	}
	expect := func(cl *kgo.Client, what string, records []byte, code int16, base int64) {
		t.Helper()
		resp := rawProduce(t, cl, topic, id, 0, records)
		if resp.ErrorCode != code || (code == 0 && resp.BaseOffset != base) {
			t.Errorf("%s: error %s base offset %d, want %s at %d", what, errName(resp.ErrorCode), resp.BaseOffset, errName(code), base)
		}
	}
	expect(cl, "batch A (sequence 0)", batch("A", 0, "a0", "a1", "a2"), codeNone, 0)
	expect(cl, "batch A sent again", batch("A", 0), codeNone, 0)
	if e := endOffsets(t, adm, topic); e[0] != 3 {
		t.Errorf("after batch A and its duplicate, end offset %d, want 3", e[0])
	}
	expect(cl, "batch B (sequence 3)", batch("B", 3, "b0", "b1"), codeNone, 3)
	expect(cl, "batch A sent again after B", batch("A", 0), codeNone, 0)
	expect(cl, "batch C (sequence 10, expected 5)", batch("C", 10, "c0"), codeOutOfOrderSeq, -1)
	if e := endOffsets(t, adm, topic); e[0] != 5 {
		t.Errorf("after batches A, B and rejected C, end offset %d, want 5", e[0])
	}
	expect(cl, "batch D (sequence 5)", batch("D", 5, "d0"), codeNone, 5)

	// Producer state survives a clean restart...
	b.stop(t)
	b = startBroker(t, dir)
	cl = newClient(t, b)
	expect(cl, "batch D sent again after a restart", batch("D", 5), codeNone, 5)
	expect(cl, "batch E (sequence 6) after a restart", batch("E", 6, "e0"), codeNone, 6)
	expect(cl, "batch G (sequence 9, expected 7) after a restart", batch("G", 9, "g0"), codeOutOfOrderSeq, -1)

	// ...and a crash.
	b.kill()
	b = startBroker(t, dir)
	cl = newClient(t, b)
	adm = newAdmin(t, b)
	expect(cl, "batch E sent again after kill -9", batch("E", 6), codeNone, 6)
	expect(cl, "batch F (sequence 7) after kill -9", batch("F", 7, "f0"), codeNone, 7)
	if e := endOffsets(t, adm, topic); e[0] != 8 {
		t.Errorf("end offset %d, want 8", e[0])
	}

	want := []string{"a0", "a1", "a2", "b0", "b1", "d0", "e0", "f0"}
	got := consumeTopic(t, b, topic, len(want))
	for i, r := range got {
		if string(r.Value) != want[i] || r.Offset != int64(i) {
			t.Errorf("offset %d: %q, want %q at %d", r.Offset, r.Value, want[i], i)
		}
	}

	// The ordinary idempotent producer path works after all this.
	prod := newClient(t, b)
	recs := []*kgo.Record{{Topic: topic, Value: []byte("kgo-0")}, {Topic: topic, Value: []byte("kgo-1")}}
	produceSync(t, prod, recs...)
	if recs[0].Offset != 8 || recs[1].Offset != 9 {
		t.Errorf("kgo idempotent produce got offsets %d and %d, want 8 and 9", recs[0].Offset, recs[1].Offset)
	}
}
