package protocol

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Incremental fetch sessions (KIP-227). A full fetch with epoch 0 opens a
// session holding its partitions and their fetch positions; later
// fetches at the next epoch name only what changed (added, updated or
// forgotten partitions) and are answered with only the partitions that
// have records or whose high watermark, log start offset or error changed
// since the session's last response. With many partitions, both requests
// and responses shrink to what moves.

// fetchSessionIdle is how long a session must go unused before a new one
// may evict it from a full cache, Kafka's
// min.incremental.fetch.session.eviction.ms.
const fetchSessionIdle = 120 * time.Second

// Bounds on what sessions hold, so that fetches naming huge numbers of
// partitions cannot make the cache grow without limit: a session may hold
// maxSessionPartitions, and a cache maxCachedPartitions across its
// sessions (some 250 bytes each). A full fetch beyond them is answered
// without a session; an incremental one that would pass them ends its
// session, and the client starts over with a full fetch.
const (
	maxSessionPartitions = 100_000
	maxCachedPartitions  = 1_000_000
)

// finalEpoch is the session epoch of a fetch that wants no session.
const finalEpoch = -1

// fetchSessions is the cache of sessions, at most slots of them. Its
// mutex guards the map, the partition count and each session's lastUsed
// and counted.
type fetchSessions struct {
	mu         sync.Mutex
	slots      int
	sessions   map[int32]*fetchSession
	partitions int // held by all sessions, as last counted
	now        func() time.Time
}

// fetchSession is one client's session. Its mutex guards epoch, parts and
// index; a fetch holds it only to read or update the session, not while
// it waits for records. id and byID do not change.
type fetchSession struct {
	mu    sync.Mutex
	id    int32
	byID  bool                // topics are named by ID (v13+), else by name
	epoch int32               // the epoch the next fetch must carry
	parts []*sessionPartition // in the order they are fetched
	index map[sessionKey]*sessionPartition

	lastUsed time.Time
	counted  int // partitions the cache counts for the session
}

// sessionKey names a partition of a session: by topic ID or by name.
type sessionKey struct {
	topic     string
	id        [16]byte
	partition int32
}

// sessionPartition is a partition of a session: the client's last word on
// it, and what the session's last response told the client.
type sessionPartition struct {
	topic   string
	id      [16]byte
	req     kmsg.FetchRequestTopicPartition // without its unknown tags, which would keep the request's frame alive
	removed bool

	sent       bool  // in a response yet
	hwm, start int64 // as last sent; hwm is -1 after an error, so the partition is sent again
	served     bool  // returned records in the response being answered
}

func newFetchSessions(slots int) *fetchSessions {
	return &fetchSessions{slots: slots, sessions: map[int32]*fetchSession{}, now: time.Now}
}

// open starts a session holding req's partitions, or returns nil when the
// cache has no room for it (the fetch is then answered without one). A
// full cache makes room by evicting its least recently used session if
// that has been idle for fetchSessionIdle.
func (c *fetchSessions) open(req *kmsg.FetchRequest, byID bool) *fetchSession {
	s := &fetchSession{byID: byID, epoch: 1, index: map[sessionKey]*sessionPartition{}}
	s.update(req)
	n := len(s.parts)
	if n > maxSessionPartitions {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.sessions) >= c.slots {
		var oldest *fetchSession
		for _, o := range c.sessions {
			if oldest == nil || o.lastUsed.Before(oldest.lastUsed) {
				oldest = o
			}
		}
		if oldest == nil || now.Sub(oldest.lastUsed) < fetchSessionIdle {
			return nil
		}
		c.removeLocked(oldest)
	}
	if c.partitions+n > maxCachedPartitions {
		return nil
	}
	for s.id == 0 || c.sessions[s.id] != nil {
		s.id = rand.Int32N(math.MaxInt32) + 1
	}
	s.lastUsed, s.counted = now, n
	c.partitions += n
	c.sessions[s.id] = s
	return s
}

// get returns the session id names, or nil.
func (c *fetchSessions) get(id int32) *fetchSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[id]
	if s != nil {
		s.lastUsed = c.now()
	}
	return s
}

// recount takes s's new partition count into the cache's; false when the
// session or the cache would hold too many, and the session is removed.
func (c *fetchSessions) recount(s *fetchSession, n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessions[s.id] != s {
		return false
	}
	if n > maxSessionPartitions || c.partitions-s.counted+n > maxCachedPartitions {
		c.removeLocked(s)
		return false
	}
	c.partitions += n - s.counted
	s.counted = n
	return true
}

func (c *fetchSessions) close(id int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sessions[id]; s != nil {
		c.removeLocked(s)
	}
}

func (c *fetchSessions) removeLocked(s *fetchSession) {
	delete(c.sessions, s.id)
	c.partitions -= s.counted
	s.counted = 0
}

// nextEpoch is the epoch after e, which wraps to 1, never 0 or -1.
func nextEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}

func (s *fetchSession) key(topic string, id [16]byte, partition int32) sessionKey {
	if s.byID {
		return sessionKey{id: id, partition: partition}
	}
	return sessionKey{topic: topic, partition: partition}
}

// update takes a fetch's changes into s: partitions it names are added or
// take its fetch position; forgotten ones leave.
func (s *fetchSession) update(req *kmsg.FetchRequest) {
	removed := false
	for _, ft := range req.ForgottenTopics {
		for _, p := range ft.Partitions {
			k := s.key(ft.Topic, ft.TopicID, p)
			if sp := s.index[k]; sp != nil {
				sp.removed, removed = true, true
				delete(s.index, k)
			}
		}
	}
	if removed {
		s.parts = slices.DeleteFunc(s.parts, func(sp *sessionPartition) bool { return sp.removed })
	}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			k := s.key(rt.Topic, rt.TopicID, rp.Partition)
			rp.UnknownTags = kmsg.Tags{}
			if sp := s.index[k]; sp != nil {
				sp.req = rp
				continue
			}
			sp := &sessionPartition{topic: rt.Topic, id: rt.TopicID, req: rp}
			s.index[k] = sp
			s.parts = append(s.parts, sp)
		}
	}
}

// request is the session as a full fetch request: every partition, in
// fetch order, grouped into topics as they come.
func (s *fetchSession) request(req *kmsg.FetchRequest) *kmsg.FetchRequest {
	full := *req
	full.Topics = nil
	for _, sp := range s.parts {
		n := len(full.Topics)
		if n == 0 || full.Topics[n-1].Topic != sp.topic || full.Topics[n-1].TopicID != sp.id {
			full.Topics = append(full.Topics, kmsg.FetchRequestTopic{Topic: sp.topic, TopicID: sp.id})
			n++
		}
		full.Topics[n-1].Partitions = append(full.Topics[n-1].Partitions, sp.req)
	}
	return &full
}

// answer picks the partitions of a fetch of s to put in its response:
// those new to the session, with records, with an error, or whose high
// watermark or log start offset moved since the last response. It records
// what is sent, and moves the partitions that returned records to the end
// of the fetch order, so that under the response's byte limit the others
// get their turn next time. It refuses (false) when another fetch moved
// the session's epoch past epoch, the one this fetch left it at, since
// the two would answer the same records.
func (s *fetchSession) answer(topics []fetchTopic, epoch int32) ([]fetchTopic, bool) {
	if s.epoch != epoch {
		return nil, false
	}
	var out []fetchTopic
	var served []*sessionPartition
	for i := range topics {
		ft := topics[i]
		ft.parts = nil
		for _, fp := range topics[i].parts {
			sp := s.index[s.key(topics[i].name, topics[i].id, fp.req.Partition)]
			if sp == nil || sp.sent && fp.bytes == 0 && fp.errorCode == 0 && fp.hwm == sp.hwm && fp.start == sp.start {
				releaseChunks(fp.chunks) // not answered (nil: forgotten by a fetch meanwhile)
				continue
			}
			sp.sent, sp.hwm, sp.start = true, fp.hwm, fp.start
			if fp.errorCode != 0 {
				sp.hwm = -1
			}
			if fp.bytes > 0 {
				sp.served = true
				served = append(served, sp)
			}
			ft.parts = append(ft.parts, fp)
		}
		if len(ft.parts) > 0 {
			out = append(out, ft)
		}
	}
	if len(served) > 0 {
		s.parts = slices.DeleteFunc(s.parts, func(sp *sessionPartition) bool { return sp.served })
		for _, sp := range served {
			sp.served = false
		}
		s.parts = append(s.parts, served...)
	}
	return out, true
}
