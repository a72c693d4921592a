package log

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rocketkafka/broker/index"
	"github.com/rocketkafka/broker/record"
	"github.com/rocketkafka/broker/segment"
)

// maxDecompressedBatch bounds decompression when a timestamp lookup, the
// key indexer or a key lookup looks inside a compressed batch: a client's
// batch of at most max.message.bytes must not make the broker allocate
// without limit. 64 MiB is 64 times Kafka's default max.message.bytes,
// more than real data compresses; a batch beyond it is reported corrupt.
const maxDecompressedBatch = 64 << 20

// topicSettings are the topic configs the store itself enforces.
type topicSettings struct {
	maxMessageBytes int
	logAppendTime   bool
	deletes         bool  // cleanup.policy has delete: retention applies
	retentionMs     int64 // -1: no time limit
	retentionBytes  int64 // -1: no size limit
	keyIndex        bool  // key.index.enable: record keys go to the IndexFiles
}

func parseSettings(defaults, overrides map[string]string) topicSettings {
	get := func(k string) string {
		if v, ok := overrides[k]; ok {
			return v
		}
		return defaults[k]
	}
	s := topicSettings{maxMessageBytes: 1048588, retentionMs: -1, retentionBytes: -1}
	if n, err := strconv.Atoi(get("max.message.bytes")); err == nil {
		s.maxMessageBytes = n
	}
	s.logAppendTime = get("message.timestamp.type") == "LogAppendTime"
	s.deletes = get("cleanup.policy") == "" || slices.Contains(strings.Split(get("cleanup.policy"), ","), "delete")
	if n, err := strconv.ParseInt(get("retention.ms"), 10, 64); err == nil {
		s.retentionMs = n
	}
	if n, err := strconv.ParseInt(get("retention.bytes"), 10, 64); err == nil {
		s.retentionBytes = n
	}
	s.keyIndex = get("key.index.enable") != "false"
	return s
}

// Partition is one topic-partition: its ConsumeQueue over the shared
// CommitLog, its offsets and its idempotent producers.
type Partition struct {
	log   *Log
	topic *topic
	index int32
	cq    *index.ConsumeQueue

	mu           sync.Mutex // serialises appends and log start offset moves
	producers    map[int64]*producerState
	maxTimestamp int64
	liveBytes    int64 // bytes of the batches from the log start offset on

	end   atomic.Int64 // log end offset, which is also the high watermark: there are no followers
	start atomic.Int64 // log start offset

	waitMu  sync.Mutex
	waiters map[chan struct{}]struct{}
}

func newPartition(l *Log, t *topic, i int32, cq *index.ConsumeQueue) *Partition {
	p := &Partition{log: l, topic: t, index: i, cq: cq, producers: map[int64]*producerState{}, maxTimestamp: -1}
	p.resetOffsetsFromIndex()
	return p
}

// resetOffsetsFromIndex derives the offsets from the ConsumeQueue.
func (p *Partition) resetOffsetsFromIndex() {
	if first, err := p.cq.At(p.cq.FirstIndex()); err == nil {
		p.start.Store(first.BaseOffset)
	}
	if last, ok := p.cq.Last(); ok {
		p.end.Store(last.BaseOffset + int64(last.Count))
		p.maxTimestamp = last.MaxTimestamp
	}
}

// HighWatermark is the offset after the last appended record.
func (p *Partition) HighWatermark() int64 { return p.end.Load() }

// LogStartOffset is the first offset still readable.
func (p *Partition) LogStartOffset() int64 { return p.start.Load() }

// PinnedBytes is how far behind the end of the CommitLog the partition's
// oldest live batch lies: the CommitLog bytes it keeps from being deleted
// (0 when it has no live batch). A topic that retention never trims, such
// as the offsets topic, can rewrite its live records once this passes a
// file's size, so that it never holds old files.
func (p *Partition) PinnedBytes() (int64, error) {
	pos, ok, err := p.oldestLivePos()
	if !ok || err != nil {
		return 0, err
	}
	return p.log.cl.written.Load() - pos, nil
}

// oldestLivePos is the CommitLog position of the partition's oldest live
// batch; false when it has none. Like reads, it needs no lock.
func (p *Partition) oldestLivePos() (int64, bool, error) {
	if p.start.Load() >= p.end.Load() {
		return 0, false, nil
	}
	i, ok := p.cq.SearchOffset(p.start.Load())
	if !ok {
		return 0, false, nil
	}
	e, err := p.cq.At(i)
	if err != nil {
		return 0, false, errors.Join(ErrStorage, err)
	}
	return e.Pos, true, nil
}

// AppendResult says where a batch landed.
type AppendResult struct {
	BaseOffset     int64
	LogAppendTime  int64 // -1 unless the topic uses LogAppendTime
	LogStartOffset int64
	// Duplicate is set when an idempotent retry matched a stored batch;
	// BaseOffset is then that batch's offset and nothing was written.
	Duplicate bool
	// End is the CommitLog position after the entry, for WaitDurable.
	End int64
}

// Append validates one RecordBatch, assigns it the next offsets by
// rewriting its base offset in place, and writes it to the CommitLog and
// the ConsumeQueue. batch is modified and must not be used concurrently.
func (p *Partition) Append(batch []byte) (AppendResult, error) {
	appends := []BatchAppend{{Partition: p, Batch: batch}}
	p.log.Append(appends)
	return appends[0].Result, appends[0].Err
}

// dispatch indexes a recovered CommitLog entry, as Append would have.
func (p *Partition) dispatch(batchPos int64, batch []byte) error {
	h, err := record.ParseHeader(batch)
	if err != nil {
		return err
	}
	p.maxTimestamp = max(p.maxTimestamp, h.MaxTimestamp)
	if err := p.cq.Append(index.Entry{Pos: batchPos, Size: int32(len(batch)), Count: h.LastOffsetDelta + 1, BaseOffset: h.BaseOffset, MaxTimestamp: p.maxTimestamp}); err != nil {
		return err
	}
	if h.ProducerID >= 0 {
		state := p.producers[h.ProducerID]
		if state == nil {
			state = &producerState{Epoch: h.ProducerEpoch}
			p.producers[h.ProducerID] = state
		}
		state.record(h, h.BaseOffset)
	}
	p.end.Store(h.BaseOffset + int64(h.LastOffsetDelta) + 1)
	return nil
}

// Chunk is one stored RecordBatch: a byte range of a CommitLog file. Read
// holds a reference on the file for each chunk, so the file stays open even
// if retention deletes it; Release drops it once the bytes are sent.
type Chunk struct {
	Segment *segment.Segment
	Off     int64 // within Segment
	Len     int64
}

// Release drops the file reference Read took for the chunk.
func (c Chunk) Release() { c.Segment.Release() }

// Read appends to dst the batches from the one containing offset onward
// while their total stays within maxBytes. With minOne the first batch is
// returned even when it alone exceeds maxBytes (KIP-74). Reading at the
// high watermark returns nothing; outside [start, end] is ErrOffsetOutOfRange.
// Every returned chunk must be released.
func (p *Partition) Read(offset, maxBytes int64, minOne bool, dst []Chunk) ([]Chunk, error) {
	end := p.end.Load()
	if offset < p.start.Load() || offset > end {
		return dst, ErrOffsetOutOfRange
	}
	if offset == end {
		return dst, nil
	}
	i, ok := p.cq.SearchOffset(offset)
	if !ok {
		return dst, nil
	}
	var total int64
	for n := p.cq.Len(); i < n; i++ {
		e, err := p.cq.At(i)
		if err != nil {
			return dst, errors.Join(ErrStorage, err)
		}
		size := int64(e.Size)
		if total+size > maxBytes && (total > 0 || !minOne) {
			break
		}
		seg := p.log.cl.queue.Find(e.Pos)
		if seg == nil || e.Pos-seg.Base()+size > seg.Size() || !seg.Acquire() {
			return dst, fmt.Errorf("%w: %s-%d offset %d points outside the CommitLog", ErrCorrupt, p.topic.name, p.index, e.BaseOffset)
		}
		dst = append(dst, Chunk{Segment: seg, Off: e.Pos - seg.Base(), Len: size})
		total += size
		if total >= maxBytes {
			break
		}
	}
	return dst, nil
}

// OffsetForTimestamp finds the first record whose timestamp is at or after
// ts, as ListOffsets does; found is false when no such record exists.
func (p *Partition) OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	i, ok := p.cq.SearchTimestamp(ts)
	if !ok {
		return -1, -1, false, nil
	}
	return p.recordAtOrAfter(i, ts)
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (the first such record), or -1, -1 when empty.
func (p *Partition) MaxTimestamp() (offset, timestamp int64, err error) {
	last, ok := p.cq.Last()
	if !ok {
		return -1, -1, nil
	}
	i, ok := p.cq.SearchTimestamp(last.MaxTimestamp)
	if !ok {
		return -1, -1, nil
	}
	offset, timestamp, _, err = p.recordAtOrAfter(i, last.MaxTimestamp)
	return offset, timestamp, err
}

// recordAtOrAfter looks inside the batch of ConsumeQueue entry i for its
// first record with a timestamp at or after ts.
func (p *Partition) recordAtOrAfter(i, ts int64) (offset, timestamp int64, found bool, err error) {
	e, err := p.cq.At(i)
	if err != nil {
		return -1, -1, false, errors.Join(ErrStorage, err)
	}
	batch, err := p.log.cl.read(e.Pos, int64(e.Size))
	if err != nil {
		return -1, -1, false, err
	}
	h, err := record.ParseHeader(batch)
	if err != nil {
		return -1, -1, false, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if h.LogAppendTime() {
		return h.BaseOffset, h.MaxTimestamp, true, nil
	}
	offset, timestamp = -1, -1
	err = record.Records(batch, maxDecompressedBatch, func(r record.Record) bool {
		if t := h.FirstTimestamp + r.TimestampDelta; t >= ts {
			offset, timestamp = h.BaseOffset+int64(r.OffsetDelta), t
			return false
		}
		return true
	})
	if err != nil {
		return -1, -1, false, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return offset, timestamp, offset >= 0, nil
}

// Watch registers ch to receive a non-blocking send at the next append, so
// a long-polling fetch sleeps until there is something to read. Call
// Unwatch when done waiting.
func (p *Partition) Watch(ch chan struct{}) {
	p.waitMu.Lock()
	if p.waiters == nil {
		p.waiters = map[chan struct{}]struct{}{}
	}
	p.waiters[ch] = struct{}{}
	p.waitMu.Unlock()
}

// Unwatch removes ch registered with Watch.
func (p *Partition) Unwatch(ch chan struct{}) {
	p.waitMu.Lock()
	delete(p.waiters, ch)
	p.waitMu.Unlock()
}

func (p *Partition) wake() {
	p.waitMu.Lock()
	for ch := range p.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	p.waitMu.Unlock()
}
