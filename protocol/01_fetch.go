package protocol

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rocketkafka/broker/log"
	"github.com/rocketkafka/broker/netpoll"
)

// Fetch (key 1), v4-v18: v4 is the first version that carries magic-2
// batches and the last stable offset; v7 brings incremental fetch
// sessions (KIP-227, fetch_session.go), up to
// max.incremental.fetch.session.cache.slots of them; v13 names topics by
// ID.
func init() { register(api{key: 1, min: 4, max: 18, serve: serveFetch}) }

// fetchPartition is one partition of a fetch as it is being answered.
type fetchPartition struct {
	req       *kmsg.FetchRequestTopicPartition
	part      *log.Partition
	errorCode int16
	chunks    []log.Chunk
	bytes     int64
	// hwm and start are the high watermark and log start offset the
	// response gives, read once the fetch is done waiting.
	hwm, start int64
	// data holds the records already read, for files that cannot be sent
	// with sendfile nor viewed through a mapping.
	data []byte
}

type fetchTopic struct {
	name  string
	id    [16]byte
	parts []fetchPartition
}

func serveFetch(h *Handler, ctx context.Context, r *request) (*netpoll.Response, error) {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(r.version)
	if err := req.ReadFrom(r.body); err != nil {
		return nil, fmt.Errorf("%w: Fetch v%d: %v", ErrMalformed, r.version, err)
	}
	session, epoch, code := h.fetchSession(r.version, req)
	if code != 0 {
		return fetchError(r, req, code), nil
	}
	var sessionID int32
	if session != nil {
		sessionID = session.id
		session.mu.Lock()
		req = session.request(req)
		session.mu.Unlock()
	}
	topics := h.resolveFetch(r.version, req)
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	var wake chan struct{}
	for {
		total, failed := h.readFetch(req, topics)
		if total >= int64(req.MinBytes) || failed || req.MaxWaitMillis <= 0 || !time.Now().Before(deadline) {
			break
		}
		if wake == nil {
			wake = make(chan struct{}, 1)
			watch(topics, wake, true)
			defer watch(topics, wake, false)
			continue // re-read: an append may have landed before we watched
		}
		timer := time.NewTimer(time.Until(deadline))
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		if ctx.Err() != nil {
			break
		}
	}
	readUnmapped(topics)
	for i := range topics {
		for j := range topics[i].parts {
			if fp := &topics[i].parts[j]; fp.part != nil {
				fp.hwm, fp.start = fp.part.HighWatermark(), fp.part.LogStartOffset()
			} else {
				fp.hwm, fp.start = -1, -1
			}
		}
	}
	if session != nil {
		session.mu.Lock()
		answered, ok := session.answer(topics, epoch)
		session.mu.Unlock()
		if !ok {
			releaseAll(topics)
			return fetchError(r, req, kerr.InvalidFetchSessionEpoch.Code), nil
		}
		topics = answered
	}
	resp, err := h.encodeFetch(r, sessionID, topics)
	if err != nil {
		releaseAll(topics)
	}
	return resp, err
}

// fetchError is a Fetch response with a top-level error alone.
func fetchError(r *request, req *kmsg.FetchRequest, code int16) *netpoll.Response {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.ErrorCode = code
	return encodeResponse(r, resp)
}

// fetchSession is the session a fetch is part of, after applying what the
// fetch says of it (KIP-227), and the epoch the fetch left it at: nil for
// a fetch without one, or an error code for the response.
func (h *Handler) fetchSession(version int16, req *kmsg.FetchRequest) (*fetchSession, int32, int16) {
	full := req.SessionEpoch == 0 || req.SessionEpoch == finalEpoch
	switch {
	case version < 7:
		return nil, 0, 0
	case full && req.SessionID != 0 && h.sessions != nil:
		h.sessions.close(req.SessionID) // a full fetch ends the session it names
	case !full && (h.sessions == nil || req.SessionID == 0):
		return nil, 0, kerr.FetchSessionIDNotFound.Code
	}
	byID := version >= 13
	if full {
		if req.SessionEpoch == finalEpoch || h.sessions == nil {
			return nil, 0, 0
		}
		s := h.sessions.open(req, byID)
		if s == nil {
			return nil, 0, 0
		}
		return s, 1, 0
	}
	s := h.sessions.get(req.SessionID)
	if s == nil {
		return nil, 0, kerr.FetchSessionIDNotFound.Code
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.byID != byID:
		return nil, 0, kerr.FetchSessionTopicIDError.Code
	case req.SessionEpoch != s.epoch:
		return nil, 0, kerr.InvalidFetchSessionEpoch.Code
	}
	s.epoch = nextEpoch(s.epoch)
	s.update(req)
	if !h.sessions.recount(s, len(s.parts)) {
		return nil, 0, kerr.FetchSessionIDNotFound.Code
	}
	if len(s.parts) == 0 {
		// Kafka ends a session left with nothing, freeing its slot.
		h.sessions.close(s.id)
		return nil, 0, 0
	}
	return s, s.epoch, 0
}

// releaseAll drops the file references of a fetch once it is sent.
func releaseAll(topics []fetchTopic) {
	for i := range topics {
		for j := range topics[i].parts {
			releaseChunks(topics[i].parts[j].chunks)
			topics[i].parts[j].chunks = nil
		}
	}
}

// resolveFetch maps the requested topics to partitions of the store.
func (h *Handler) resolveFetch(version int16, req *kmsg.FetchRequest) []fetchTopic {
	topics := make([]fetchTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		ft := &topics[i]
		ft.name, ft.id = rt.Topic, rt.TopicID
		unknown := int16(0)
		if version >= 13 {
			if t, ok := h.store.TopicByID(log.TopicID(rt.TopicID)); ok {
				ft.name = t.Name
			} else {
				unknown = kerr.UnknownTopicID.Code
			}
		}
		ft.parts = make([]fetchPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			fp := &ft.parts[j]
			fp.req = &rt.Partitions[j]
			switch {
			case unknown != 0:
				fp.errorCode = unknown
			case fp.req.CurrentLeaderEpoch > 0:
				fp.errorCode = kerr.UnknownLeaderEpoch.Code // our only epoch is 0
			default:
				p, err := h.store.Partition(ft.name, fp.req.Partition)
				fp.part, fp.errorCode = p, errorCode(err)
			}
		}
	}
	return topics
}

// readFetch (re)computes which batches every partition returns, honouring
// the partition and response byte limits; the first batch of the response
// is returned whole even past the limits (KIP-74).
func (h *Handler) readFetch(req *kmsg.FetchRequest, topics []fetchTopic) (total int64, failed bool) {
	maxBytes := int64(req.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 1<<31 - 1
	}
	for i := range topics {
		for j := range topics[i].parts {
			fp := &topics[i].parts[j]
			releaseChunks(fp.chunks)
			fp.chunks, fp.bytes = fp.chunks[:0], 0
			if fp.part == nil {
				failed = true
				continue
			}
			limit := min(int64(fp.req.PartitionMaxBytes), maxBytes-total)
			if limit <= 0 && total > 0 {
				continue
			}
			chunks, err := fp.part.Read(fp.req.FetchOffset, max(limit, 0), total == 0, fp.chunks)
			fp.chunks = chunks
			if fp.errorCode = errorCode(err); err != nil {
				failed = true
				continue
			}
			for _, c := range chunks {
				fp.bytes += c.Len
			}
			total += fp.bytes
		}
	}
	return total, failed
}

// readUnmapped reads the records of partitions whose files offer neither
// a descriptor nor a mapping (a test filesystem) before the response is
// encoded, so that a read error becomes KAFKA_STORAGE_ERROR for that
// partition instead of a broken response.
func readUnmapped(topics []fetchTopic) {
	for i := range topics {
		for j := range topics[i].parts {
			fp := &topics[i].parts[j]
			if len(fp.chunks) == 0 || fp.chunks[0].Segment.Fd() >= 0 {
				continue
			}
			fp.data = make([]byte, 0, fp.bytes)
			for _, c := range fp.chunks {
				n := len(fp.data)
				fp.data = fp.data[:n+int(c.Len)]
				if err := c.Segment.ReadAt(fp.data[n:], c.Off); err != nil {
					releaseChunks(fp.chunks)
					fp.chunks, fp.data, fp.bytes = nil, nil, 0
					fp.errorCode = kerr.KafkaStorageError.Code
					break
				}
			}
		}
	}
}

func releaseChunks(chunks []log.Chunk) {
	for _, c := range chunks {
		c.Release()
	}
}

func watch(topics []fetchTopic, wake chan struct{}, on bool) {
	for i := range topics {
		for j := range topics[i].parts {
			if p := topics[i].parts[j].part; p != nil {
				if on {
					p.Watch(wake)
				} else {
					p.Unwatch(wake)
				}
			}
		}
	}
}

// encodeFetch writes the response by hand around the record ranges: the
// header bytes are built from the batch sizes alone (netpoll sums the
// pieces for the size prefix), and the batches
// themselves follow as file ranges for sendfile (or, below the threshold,
// as bytes copied from the mmap). Field order follows the Fetch schema.
func (h *Handler) encodeFetch(r *request, sessionID int32, topics []fetchTopic) (*netpoll.Response, error) {
	e := fetchEncoder{flexible: r.version >= 12, threshold: h.cfg.FetchSendfileMinBytes}
	e.buf = make([]byte, 0, 512)
	e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(r.correlationID))
	if e.flexible {
		e.buf = append(e.buf, 0) // response header tags
	}
	e.int32(0) // throttle
	if r.version >= 7 {
		e.int16(0) // error code
		e.int32(sessionID)
	}
	e.arrayLen(len(topics))
	for i := range topics {
		ft := &topics[i]
		if r.version >= 13 {
			e.buf = append(e.buf, ft.id[:]...)
		} else {
			e.string(ft.name)
		}
		e.arrayLen(len(ft.parts))
		for j := range ft.parts {
			fp := &ft.parts[j]
			e.int32(fp.req.Partition)
			e.int16(fp.errorCode)
			e.int64(fp.hwm)
			e.int64(fp.hwm) // last stable offset: no transactions, so the high watermark
			if r.version >= 5 {
				e.int64(fp.start)
			}
			e.nullArray() // aborted transactions
			if r.version >= 11 {
				e.int32(-1) // preferred read replica
			}
			if err := e.records(fp); err != nil {
				return nil, err
			}
			if e.flexible {
				e.buf = append(e.buf, 0) // partition tags
			}
		}
		if e.flexible {
			e.buf = append(e.buf, 0) // topic tags
		}
	}
	if e.flexible {
		e.buf = append(e.buf, 0) // response tags
	}
	e.flush()
	h.fetchBytesCopied.Add(uint64(e.copied))
	h.fetchBytesFile.Add(uint64(e.file))
	return &netpoll.Response{Pieces: e.pieces, Release: func() { releaseAll(topics) }}, nil
}

// fetchEncoder accumulates header bytes and splits them into pieces around
// file ranges.
type fetchEncoder struct {
	flexible     bool
	threshold    int64
	buf          []byte
	start        int // where the unflushed bytes of buf begin
	pieces       []netpoll.Piece
	copied, file int64
}

func (e *fetchEncoder) int16(v int16) { e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(v)) }
func (e *fetchEncoder) int32(v int32) { e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(v)) }
func (e *fetchEncoder) int64(v int64) { e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(v)) }

func (e *fetchEncoder) arrayLen(n int) {
	if e.flexible {
		e.buf = binary.AppendUvarint(e.buf, uint64(n)+1)
	} else {
		e.int32(int32(n))
	}
}

func (e *fetchEncoder) nullArray() {
	if e.flexible {
		e.buf = append(e.buf, 0)
	} else {
		e.int32(-1)
	}
}

func (e *fetchEncoder) string(s string) {
	if e.flexible {
		e.buf = binary.AppendUvarint(e.buf, uint64(len(s))+1)
	} else {
		e.int16(int16(len(s)))
	}
	e.buf = append(e.buf, s...)
}

// records writes the records field: its length, then the batches. Runs of
// batches that sit back to back in one CommitLog file (a partition's
// batches usually do) go out as one range: by sendfile when the run is at
// least the threshold long, else copied from the mapping into the header
// bytes. Files with neither were read beforehand (readUnmapped).
func (e *fetchEncoder) records(fp *fetchPartition) error {
	if e.flexible {
		e.buf = binary.AppendUvarint(e.buf, uint64(fp.bytes)+1)
	} else {
		e.int32(int32(fp.bytes))
	}
	if fp.data != nil {
		e.buf = append(e.buf, fp.data...)
		e.copied += int64(len(fp.data))
		return nil
	}
	chunks := fp.chunks
	for len(chunks) > 0 {
		run := chunks[0]
		n := 1
		for ; n < len(chunks) && chunks[n].Segment == run.Segment && chunks[n].Off == run.Off+run.Len; n++ {
			run.Len += chunks[n].Len
		}
		chunks = chunks[n:]
		if err := e.run(run); err != nil {
			return err
		}
	}
	return nil
}

// run adds one contiguous file range to the response.
func (e *fetchEncoder) run(c log.Chunk) error {
	fd := c.Segment.Fd()
	if c.Len >= e.threshold && fd >= 0 {
		e.flush()
		e.pieces = append(e.pieces, netpoll.Piece{Fd: fd, Off: c.Off, Len: c.Len})
		e.file += c.Len
		return nil
	}
	v := c.Segment.View(c.Off, c.Len)
	if v == nil {
		return fmt.Errorf("no mapping of %d record bytes to copy into a fetch", c.Len)
	}
	e.buf = append(e.buf, v...)
	e.copied += c.Len
	return nil
}

// flush turns the bytes appended since the last piece into a piece.
func (e *fetchEncoder) flush() {
	if len(e.buf) > e.start {
		e.pieces = append(e.pieces, netpoll.Piece{Bytes: e.buf[e.start:len(e.buf):len(e.buf)]})
		e.start = len(e.buf)
	}
}
