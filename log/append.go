package log

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/rocketkafka/broker/index"
	"github.com/rocketkafka/broker/record"
)

// BatchAppend is one partition's batch in a multi-partition Append, with
// its outcome filled in.
type BatchAppend struct {
	Partition *Partition
	Batch     []byte // modified in place: the base offset is written in
	Result    AppendResult
	Err       error

	header record.Header
	state  *producerState
	pos    int64 // CommitLog position of the batch bytes once written
}

// Append appends every batch, each to its partition, as one CommitLog
// write: a Produce request spread over many partitions costs a pwritev
// per MiB, not one per partition. Each batch is validated and checked against its
// producer's sequence on its own, and fails or succeeds on its own.
func (l *Log) Append(appends []BatchAppend) {
	now := l.opts.Now().UnixMilli()
	ready := make([]*BatchAppend, 0, len(appends))
	for i := range appends {
		a := &appends[i]
		a.Result = AppendResult{LogAppendTime: -1}
		if a.Err = a.Partition.check(a); a.Err == nil {
			ready = append(ready, a)
		}
	}
	if len(ready) == 0 {
		return
	}
	l.gate.RLock()
	defer l.gate.RUnlock()
	if l.closed.Load() {
		// Close's final checkpoint may already be taken: nothing may
		// land after it.
		for _, a := range ready {
			a.Err = ErrClosed
		}
		return
	}
	// Partitions are locked in one global order, so concurrent requests
	// over overlapping partitions cannot deadlock; a partition named twice
	// is locked once and its batches keep their request order.
	slices.SortStableFunc(ready, func(a, b *BatchAppend) int {
		return cmp.Or(cmp.Compare(a.Partition.topic.name, b.Partition.topic.name), cmp.Compare(a.Partition.index, b.Partition.index))
	})
	for i, a := range ready {
		if i == 0 || ready[i-1].Partition != a.Partition {
			a.Partition.mu.Lock()
			defer a.Partition.mu.Unlock()
		}
	}

	// Idempotence checks and offsets, in order within each partition.
	writes := ready[:0:0]
	var next int64 // the next offset of the partition of the previous batch
	for i, a := range ready {
		p := a.Partition
		base := p.end.Load()
		if i > 0 && ready[i-1].Partition == p {
			base = next
		}
		next = base
		a.Result.LogStartOffset = p.start.Load()
		if a.header.ProducerID >= 0 {
			a.state = p.producers[a.header.ProducerID]
			dupOffset, dup, err := checkSequence(a.state, a.header)
			if err == nil && !dup {
				err = pendingSequence(writes, a)
			}
			if err != nil {
				a.Err = err
				continue
			}
			if dup {
				a.Result.BaseOffset, a.Result.Duplicate = dupOffset, true
				a.Result.End = l.cl.written.Load()
				continue
			}
		}
		record.SetBaseOffset(a.Batch, base)
		record.SetPartitionLeaderEpoch(a.Batch, 0)
		a.Result.BaseOffset = base
		if p.topic.settings.Load().logAppendTime {
			record.SetMaxTimestampLogAppendTime(a.Batch, now)
			a.header.MaxTimestamp, a.Result.LogAppendTime = now, now
		}
		next = base + int64(a.header.LastOffsetDelta) + 1
		writes = append(writes, a)
	}
	if len(writes) == 0 {
		return
	}

	end, err := l.cl.appendBatches(now, writes)
	if err != nil {
		for _, a := range writes {
			a.Err = err
		}
		return
	}
	var records int64
	for _, a := range writes {
		p := a.Partition
		if p.end.Load() != a.Result.BaseOffset {
			// An earlier batch of this partition in this request failed
			// to index; later ones would leave a gap, so they fail too
			// and recovery re-indexes whatever the CommitLog holds.
			a.Err = fmt.Errorf("%w: an earlier batch of %s-%d failed", ErrStorage, p.topic.name, p.index)
			continue
		}
		running := max(p.maxTimestamp, a.header.MaxTimestamp)
		if err := p.cq.Append(index.Entry{Pos: a.pos, Size: int32(len(a.Batch)), Count: a.header.LastOffsetDelta + 1, BaseOffset: a.Result.BaseOffset, MaxTimestamp: running}); err != nil {
			a.Err = errors.Join(ErrStorage, err)
			continue
		}
		p.maxTimestamp = running
		p.liveBytes += int64(len(a.Batch))
		if a.header.ProducerID >= 0 {
			if p.producers[a.header.ProducerID] == nil {
				p.producers[a.header.ProducerID] = &producerState{Epoch: a.header.ProducerEpoch}
			}
			p.producers[a.header.ProducerID].record(a.header, a.Result.BaseOffset)
		}
		p.end.Store(a.Result.BaseOffset + int64(a.header.LastOffsetDelta) + 1)
		a.Result.End = end
		records += int64(a.header.NumRecords)
		p.wake()
	}
	l.flusher.appended(records)
	l.keys.kick()
}

// check validates a batch before any lock is taken.
func (p *Partition) check(a *BatchAppend) error {
	if p.log.closed.Load() {
		return ErrClosed
	}
	if p.log.diskFull.Load() {
		return errors.Join(ErrStorage, ErrDiskFull)
	}
	settings := p.topic.settings.Load()
	if len(a.Batch) > settings.maxMessageBytes {
		return fmt.Errorf("%w: %d bytes, max.message.bytes is %d", ErrTooLarge, len(a.Batch), settings.maxMessageBytes)
	}
	if size := int64(entryFixedSize + len(p.topic.name) + len(a.Batch)); size > p.log.cl.queue.SegmentSize() {
		return fmt.Errorf("%w: a %d-byte entry exceeds the %d-byte CommitLog file", ErrTooLarge, size, p.log.cl.queue.SegmentSize())
	}
	h, err := record.Validate(a.Batch)
	if err != nil {
		return err
	}
	if h.Transactional() || h.Control() {
		return ErrTransactional
	}
	a.header = h
	return nil
}

// pendingSequence applies the sequence check to a batch that follows
// batches of the same producer and partition earlier in this request.
func pendingSequence(writes []*BatchAppend, a *BatchAppend) error {
	for i := len(writes) - 1; i >= 0; i-- {
		w := writes[i]
		if w.Partition == a.Partition && w.header.ProducerID == a.header.ProducerID {
			s := &producerState{Epoch: w.header.ProducerEpoch, Batches: []batchMeta{{FirstSeq: w.header.BaseSequence, LastSeq: batchLastSeq(w.header), BaseOffset: w.Result.BaseOffset}}}
			_, dup, err := checkSequence(s, a.header)
			if dup {
				return ErrOutOfOrderSequence // the same batch twice in one request
			}
			return err
		}
	}
	return nil
}
