package log

import (
	"errors"
	"fmt"

	"go.uber.org/zap"
)

// startOffsetsFile keeps every partition's log start offset, which
// retention and DeleteRecords move and nothing else records.
const startOffsetsFile = "log-start-offsets.json"

// partitionKey names a partition in files that outlive topic re-creation.
func partitionKey(id TopicID, partition int32) string {
	return fmt.Sprintf("%s/%d", id, partition)
}

// advanceStartLocked moves the log start offset up to offset (at most the
// high watermark) and lets the ConsumeQueue drop files wholly below the
// batch that now holds it. p.mu must be held. It reports whether the start
// moved.
func (p *Partition) advanceStartLocked(offset int64) (bool, error) {
	offset = min(offset, p.end.Load())
	if offset <= p.start.Load() {
		return false, nil
	}
	oldIdx, _ := p.cq.SearchOffset(p.start.Load())
	newIdx, ok := p.cq.SearchOffset(offset)
	if !ok {
		newIdx = p.cq.Len()
	}
	for i := max(oldIdx, p.cq.FirstIndex()); i < newIdx; i++ {
		e, err := p.cq.At(i)
		if err != nil {
			return false, errors.Join(ErrStorage, err)
		}
		p.liveBytes -= int64(e.Size)
	}
	p.start.Store(offset)
	if newIdx > p.cq.FirstIndex() {
		if err := p.cq.SetFirstIndex(newIdx); err != nil {
			return true, errors.Join(ErrStorage, err)
		}
	}
	return true, nil
}

// recountLiveBytes sums the batches from the log start offset on.
func (p *Partition) recountLiveBytes() error {
	p.liveBytes = 0
	i, ok := p.cq.SearchOffset(p.start.Load())
	if !ok {
		return nil
	}
	for n := p.cq.Len(); i < n; i++ {
		e, err := p.cq.At(i)
		if err != nil {
			return errors.Join(ErrStorage, err)
		}
		p.liveBytes += int64(e.Size)
	}
	return nil
}

// DeleteRecords moves the log start offset to offset (-1: the high
// watermark), as Kafka's DeleteRecords does, durably before it returns,
// and returns the new log start offset. Records below it are never served
// again; CommitLog files are freed by the next retention pass.
func (p *Partition) DeleteRecords(offset int64) (int64, error) {
	p.mu.Lock()
	end := p.end.Load()
	if offset == -1 {
		offset = end
	}
	if offset < 0 || offset > end {
		p.mu.Unlock()
		return p.start.Load(), ErrOffsetOutOfRange
	}
	moved, err := p.advanceStartLocked(offset)
	start := p.start.Load()
	p.mu.Unlock()
	if err != nil {
		return start, err
	}
	if moved {
		if err := p.log.saveStartOffsets(); err != nil {
			return start, err
		}
	}
	return start, nil
}

// saveStartOffsets writes every partition's log start offset.
func (l *Log) saveStartOffsets() error {
	l.startMu.Lock()
	defer l.startMu.Unlock()
	offsets := map[string]int64{}
	l.mu.RLock()
	for _, t := range l.topics {
		for _, p := range t.parts {
			if s := p.start.Load(); s > 0 {
				offsets[partitionKey(t.id, p.index)] = s
			}
		}
	}
	l.mu.RUnlock()
	return writeJSON(l.fs, l.path(startOffsetsFile), offsets)
}

// loadStartOffsets applies the saved log start offsets, clamped to what the
// ConsumeQueues hold, and counts each partition's live bytes.
func (l *Log) loadStartOffsets() error {
	offsets := map[string]int64{}
	if _, err := readJSON(l.fs, l.path(startOffsetsFile), &offsets); err != nil {
		return err
	}
	for _, t := range l.topics {
		for _, p := range t.parts {
			start := p.start.Load()
			if first, err := p.cq.At(p.cq.FirstIndex()); err == nil {
				start = max(start, first.BaseOffset)
			}
			start = max(start, offsets[partitionKey(t.id, p.index)])
			// Retention may have emptied the partition and its files are
			// gone: the log is then empty up to its start offset, and new
			// records must not reuse the offsets below it.
			if start > p.end.Load() {
				p.end.Store(start)
			}
			p.start.Store(start)
			if err := p.recountLiveBytes(); err != nil {
				return err
			}
		}
	}
	return nil
}

// retain applies retention.ms and retention.bytes to every partition, then
// deletes the CommitLog files that no live batch needs any more.
func (l *Log) retain() error {
	now := l.opts.Now().UnixMilli()
	l.mu.RLock()
	var parts []*Partition
	for _, t := range l.topics {
		parts = append(parts, t.parts...)
	}
	l.mu.RUnlock()
	movedAny, failed := false, false
	for _, p := range parts {
		moved, err := p.applyRetention(now)
		if err != nil {
			// A topic deleted during the pass, or an I/O error: skip the
			// partition, and delete no files this pass.
			failed = true
			l.logger.Warn("retention skipped a partition", zap.String("topic", p.topic.name), zap.Int32("partition", p.index), zap.Error(err))
			continue
		}
		if moved {
			movedAny = true
			l.logger.Info("retention moved the log start offset", zap.String("topic", p.topic.name), zap.Int32("partition", p.index), zap.Int64("log_start_offset", p.start.Load()))
		}
	}
	// The new start offsets are durable before any file they free goes.
	if movedAny {
		if err := l.saveStartOffsets(); err != nil {
			return err
		}
	}
	if failed {
		return nil
	}
	if err := l.removeDeadFiles(parts); err != nil {
		return err
	}
	return l.removeOldKeyFiles(now)
}

// removeOldKeyFiles deletes IndexFiles whose newest key is older than the
// longest time retention of any key-indexed topic; with a topic that keeps
// keys forever, none go. Entries that outlive their records are harmless:
// lookups skip records no longer in the log.
func (l *Log) removeOldKeyFiles(now int64) error {
	longest := int64(0)
	l.mu.RLock()
	for _, t := range l.topics {
		s := t.settings.Load()
		if !s.keyIndex {
			continue
		}
		if !s.deletes || s.retentionMs < 0 {
			l.mu.RUnlock()
			return nil
		}
		longest = max(longest, s.retentionMs)
	}
	l.mu.RUnlock()
	n, err := l.keys.idx.RemoveBefore(now - longest)
	if err != nil {
		return errors.Join(ErrStorage, err)
	}
	if n > 0 {
		l.logger.Info("deleted IndexFiles older than every topic's retention", zap.Int("files", n))
	}
	return nil
}

// applyRetention moves the log start offset past the batches that are
// older than retention.ms or beyond retention.bytes.
func (p *Partition) applyRetention(now int64) (bool, error) {
	s := p.topic.settings.Load()
	if !s.deletes || (s.retentionMs < 0 && s.retentionBytes < 0) {
		return false, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	target := p.start.Load()
	if s.retentionMs >= 0 {
		// MaxTimestamp is the running maximum, so the first entry that
		// reaches the cutoff ends the expired prefix.
		if i, ok := p.cq.SearchTimestamp(now - s.retentionMs); !ok {
			target = p.end.Load()
		} else if e, err := p.cq.At(i); err == nil {
			target = max(target, e.BaseOffset)
		}
	}
	if s.retentionBytes >= 0 {
		live := p.liveBytes
		i, ok := p.cq.SearchOffset(target)
		for ; ok && live > s.retentionBytes && i < p.cq.Len(); i++ {
			e, err := p.cq.At(i)
			if err != nil {
				return false, errors.Join(ErrStorage, err)
			}
			if e.BaseOffset >= target {
				live -= int64(e.Size)
			}
			target = max(target, e.BaseOffset+int64(e.Count))
		}
	}
	return p.advanceStartLocked(target)
}

// removeDeadFiles deletes the CommitLog files below the oldest position any
// partition still serves, and below what key indexing has read. Only live
// batches pin a file: an empty partition or a deleted topic pins nothing.
func (l *Log) removeDeadFiles(parts []*Partition) error {
	// Key indexing reads entries behind the appenders: it pins what it
	// has not read yet.
	oldest := min(l.cl.written.Load(), l.keys.indexedTo())
	for _, p := range parts {
		pos, ok, err := p.oldestLivePos()
		if err != nil {
			return err
		}
		if ok {
			oldest = min(oldest, pos)
		}
	}
	n, err := l.cl.queue.RemoveBefore(oldest)
	if err != nil {
		return errors.Join(ErrStorage, err)
	}
	if n > 0 {
		l.logger.Info("deleted CommitLog files that hold nothing live", zap.Int("files", n), zap.Int64("commitlog_start", l.cl.start()))
	}
	return nil
}
