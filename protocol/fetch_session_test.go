package protocol

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rocketkafka/broker/log"
	"github.com/rocketkafka/broker/record"
)

// sessionFetch is a Fetch of partitions of topic (at offsets[p]) in
// session id at epoch, with no wait.
func sessionFetch(version int16, topic string, id [16]byte, sessionID, epoch int32, offsets map[int32]int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(version)
	req.ReplicaID, req.MaxBytes, req.SessionID, req.SessionEpoch = -1, 50<<20, sessionID, epoch
	if len(offsets) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		for _, p := range slices.Sorted(func(yield func(int32) bool) {
			for p := range offsets {
				if !yield(p) {
					return
				}
			}
		}) {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, offsets[p], 1<<20, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// answered lists the partitions of a fetch response with their number of
// record bytes, as "p:bytes".
func answered(resp *kmsg.FetchResponse) []string {
	var out []string
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, fmt.Sprintf("%d:%d", p.Partition, len(p.RecordBatches)))
		}
	}
	slices.Sort(out)
	return out
}

func TestFetchSessions(t *testing.T) {
	for _, version := range []int16{7, 12, 13, 18} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			h, store := newTestHandler(t, func(c *Config) { c.FetchSessionSlots = 2 })
			id := createTopic(t, h, "s", 3, nil)
			batch := testBatch(t, 2, 10, record.None)
			produce(t, h, store, 9, "s", batch) // partition 0

			// A full fetch opens a session and answers every partition.
			resp := fetch(t, h, sessionFetch(version, "s", id, 0, 0, map[int32]int64{0: 0, 1: 0, 2: 0}))
			if resp.ErrorCode != 0 || resp.SessionID == 0 {
				t.Fatalf("full fetch: error %d, session %d", resp.ErrorCode, resp.SessionID)
			}
			session := resp.SessionID
			if got := answered(resp); !slices.Equal(got, []string{"0:" + fmt.Sprint(len(batch)), "1:0", "2:0"}) {
				t.Fatalf("full fetch answered %v", got)
			}

			// The client moves partition 0 past the batch; nothing else
			// changed, so the next fetch answers nothing.
			resp = fetch(t, h, sessionFetch(version, "s", id, session, 1, map[int32]int64{0: 2}))
			if resp.ErrorCode != 0 || resp.SessionID != session || len(answered(resp)) != 0 {
				t.Fatalf("incremental fetch with nothing new: error %d, session %d, answered %v", resp.ErrorCode, resp.SessionID, answered(resp))
			}

			// Records on partition 1: only it is answered, at the
			// offsets the session keeps.
			produceTo(t, h, store, "s", 1, batch)
			if got := answered(fetch(t, h, sessionFetch(version, "s", id, session, 2, nil))); !slices.Equal(got, []string{"1:" + fmt.Sprint(len(batch))}) {
				t.Fatalf("incremental fetch after a produce answered %v", got)
			}

			// A forgotten partition is no longer fetched.
			forget := sessionFetch(version, "s", id, session, 3, map[int32]int64{1: 2})
			ft := kmsg.NewFetchRequestForgottenTopic()
			ft.Topic, ft.TopicID, ft.Partitions = "s", id, []int32{2}
			forget.ForgottenTopics = append(forget.ForgottenTopics, ft)
			fetch(t, h, forget)
			produceTo(t, h, store, "s", 2, batch)
			if got := answered(fetch(t, h, sessionFetch(version, "s", id, session, 4, nil))); len(got) != 0 {
				t.Fatalf("a forgotten partition was answered: %v", got)
			}

			// Wrong epochs and unknown sessions.
			for _, tc := range []struct {
				session, epoch int32
				want           *kerr.Error
			}{
				{session, 4, kerr.InvalidFetchSessionEpoch},
				{session, 9, kerr.InvalidFetchSessionEpoch},
				{session + 1, 5, kerr.FetchSessionIDNotFound},
				{0, 3, kerr.FetchSessionIDNotFound},
			} {
				if resp := fetch(t, h, sessionFetch(version, "s", id, tc.session, tc.epoch, nil)); resp.ErrorCode != tc.want.Code {
					t.Errorf("session %d epoch %d: error %d, want %s", tc.session, tc.epoch, resp.ErrorCode, tc.want.Message)
				}
			}

			// A final fetch closes the session and is answered without one.
			resp = fetch(t, h, sessionFetch(version, "s", id, session, finalEpoch, map[int32]int64{0: 0}))
			if resp.ErrorCode != 0 || resp.SessionID != 0 || len(answered(resp)) != 1 {
				t.Fatalf("final fetch: error %d, session %d, answered %v", resp.ErrorCode, resp.SessionID, answered(resp))
			}
			if resp := fetch(t, h, sessionFetch(version, "s", id, session, 5, nil)); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
				t.Fatalf("fetch in a closed session: error %d", resp.ErrorCode)
			}
		})
	}
}

// TestFetchSessionEdges: an error is answered again once it clears, a
// session whose partitions are all forgotten ends, a session is used with
// the topic naming it was opened with, and huge sessions are declined.
func TestFetchSessionEdges(t *testing.T) {
	h, store := newTestHandler(t, func(c *Config) { c.FetchSessionSlots = 4 })
	id := createTopic(t, h, "s", 1, nil)
	produceTo(t, h, store, "s", 0, testBatch(t, 2, 10, record.None))

	// Out of range, then back in range with nothing new: the partition
	// is answered, without records, so the client learns the error is
	// gone.
	resp := fetch(t, h, sessionFetch(13, "s", id, 0, 0, map[int32]int64{0: 99}))
	session := resp.SessionID
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch past the end: error %d", p.ErrorCode)
	}
	if got := answered(fetch(t, h, sessionFetch(13, "s", id, session, 1, map[int32]int64{0: 2}))); !slices.Equal(got, []string{"0:0"}) {
		t.Fatalf("after the error cleared: answered %v", got)
	}

	// A session used at a version naming topics the other way.
	if resp := fetch(t, h, sessionFetch(12, "s", id, session, 2, nil)); resp.ErrorCode != kerr.FetchSessionTopicIDError.Code {
		t.Fatalf("a v13 session used at v12: error %d", resp.ErrorCode)
	}

	// Forgetting every partition ends the session.
	forget := sessionFetch(13, "s", id, session, 2, nil)
	forget.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{TopicID: id, Partitions: []int32{0}}}
	if resp := fetch(t, h, forget); resp.ErrorCode != 0 || resp.SessionID != 0 {
		t.Fatalf("forgetting everything: error %d, session %d", resp.ErrorCode, resp.SessionID)
	}
	if resp := fetch(t, h, sessionFetch(13, "s", id, session, 3, nil)); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("the emptied session: error %d", resp.ErrorCode)
	}

	// A full fetch of more partitions than a session may hold gets none.
	huge := map[int32]int64{}
	for p := range int32(maxSessionPartitions + 1) {
		huge[p] = 0
	}
	if resp := fetch(t, h, sessionFetch(13, "s", id, 0, 0, huge)); resp.ErrorCode != 0 || resp.SessionID != 0 {
		t.Fatalf("a full fetch of %d partitions: error %d, session %d", len(huge), resp.ErrorCode, resp.SessionID)
	}
	if h.sessions.partitions != 0 {
		t.Fatalf("the cache counts %d partitions with no session", h.sessions.partitions)
	}
}

// TestFetchSessionCacheFull: a full cache declines new sessions, until a
// session has gone unused long enough to be evicted.
func TestFetchSessionCacheFull(t *testing.T) {
	h, _ := newTestHandler(t, func(c *Config) { c.FetchSessionSlots = 1 })
	now := time.Unix(1_700_000_000, 0)
	h.sessions.now = func() time.Time { return now }
	id := createTopic(t, h, "s", 1, nil)
	open := func() int32 {
		return fetch(t, h, sessionFetch(13, "s", id, 0, 0, map[int32]int64{0: 0})).SessionID
	}
	first := open()
	if first == 0 {
		t.Fatal("no session opened")
	}
	if second := open(); second != 0 {
		t.Fatalf("a full cache opened session %d", second)
	}
	now = now.Add(fetchSessionIdle)
	if third := open(); third == 0 || third == first {
		t.Fatalf("after the first went idle: session %d", third)
	}
	if resp := fetch(t, h, sessionFetch(13, "s", id, first, 1, nil)); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("the evicted session answered with error %d", resp.ErrorCode)
	}
}

// TestFetchSessionsDeclined: with no slots, every fetch is answered
// without a session, as before KIP-227, and an incremental one names a
// session that does not exist.
func TestFetchSessionsDeclined(t *testing.T) {
	h, _ := newTestHandler(t)
	id := createTopic(t, h, "s", 1, nil)
	if resp := fetch(t, h, sessionFetch(13, "s", id, 0, 0, map[int32]int64{0: 0})); resp.ErrorCode != 0 || resp.SessionID != 0 {
		t.Fatalf("error %d, session %d", resp.ErrorCode, resp.SessionID)
	}
	if resp := fetch(t, h, sessionFetch(13, "s", id, 12345, 7, nil)); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("an incremental fetch with sessions declined: error %d", resp.ErrorCode)
	}
}

// BenchmarkFetchSessionIncremental measures an incremental fetch of a
// session of 1000 partitions of which one has new records, against the
// same fetch without a session, in the same run.
func BenchmarkFetchSessionIncremental(b *testing.B) {
	h, store := newTestHandler(b, func(c *Config) { c.FetchSessionSlots = 10 })
	id := createTopic(b, h, "s", 1000, nil)
	offsets := map[int32]int64{}
	for p := range int32(1000) {
		offsets[p] = 0
	}
	batch := testBatch(b, 1, 100, record.None)
	b.Run("sessionless", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			produceTo(b, h, store, "s", 7, batch)
			fetch(b, h, sessionFetch(13, "s", id, 0, finalEpoch, offsets))
			offsets[7]++
		}
	})
	b.Run("session", func(b *testing.B) {
		b.ReportAllocs()
		resp := fetch(b, h, sessionFetch(13, "s", id, 0, 0, offsets))
		epoch := int32(1)
		for b.Loop() {
			produceTo(b, h, store, "s", 7, batch)
			offsets[7]++
			fetch(b, h, sessionFetch(13, "s", id, resp.SessionID, epoch, map[int32]int64{7: offsets[7] - 1}))
			epoch++
		}
	})
}

// produceTo appends batch to one partition of topic through the store.
func produceTo(t testing.TB, _ *Handler, store *log.Log, topic string, partition int32, batch []byte) {
	t.Helper()
	p, err := store.Partition(topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(batch); err != nil {
		t.Fatal(err)
	}
}
