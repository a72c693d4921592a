package log

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// recover loads the catalogue and brings every ConsumeQueue and the
// idempotent producer state in line with the CommitLog. With a checkpoint,
// the ConsumeQueues are trusted up to it and the CommitLog is replayed from
// its position, which after a clean shutdown finds nothing to replay.
// Without one (a store from before checkpoints, or one whose checkpoint
// was lost), every index is rebuilt from the whole CommitLog.
func (l *Log) recover() error {
	var md metadata
	if _, err := readJSON(l.fs, l.path(metadataFile), &md); err != nil {
		return err
	}
	var cp checkpoint
	found, err := readJSON(l.fs, l.path(checkpointFile), &cp)
	if err != nil {
		return err
	}
	haveCheckpoint := found && cp.Queues != nil
	if haveCheckpoint {
		l.trusted = cp.Queues
	} else {
		cp = checkpoint{CommitLogEnd: l.cl.start()}
		// Every index is rebuilt from the CommitLog, so whatever a crash
		// left of them is dropped unread.
		if err := l.fs.RemoveAll(filepath.Join(l.opts.Dir, consumeQueueDir)); err != nil {
			return errors.Join(ErrStorage, err)
		}
	}
	l.producerIDLimit = md.ProducerIDLimit
	l.nextProducerID = md.ProducerIDLimit
	for _, tm := range md.Topics {
		id, err := ParseTopicID(tm.ID)
		if err != nil {
			return err
		}
		t := &topic{name: tm.Name, id: id, configs: tm.Configs}
		t.settings.Store(new(parseSettings(l.opts.TopicDefaults, tm.Configs)))
		if err := l.growLocked(t, tm.Partitions, false); err != nil {
			return err
		}
		l.topics[t.name] = t
		l.byID[id] = t
	}
	l.trusted = nil
	if err := l.removeStrayConsumeQueues(); err != nil {
		return err
	}
	if err := l.applyProducers(cp.Producers); err != nil {
		return err
	}
	if cp.Clean {
		l.cl.written.Store(cp.CommitLogEnd)
		l.cl.synced.Store(cp.CommitLogEnd)
		l.logger.Info("store opened after a clean shutdown", zap.Int64("commitlog_end", cp.CommitLogEnd), zap.Int("topics", len(l.topics)))
	} else if err := l.replay(max(cp.CommitLogEnd, l.cl.start())); err != nil {
		return err
	}
	if err := l.loadStartOffsets(); err != nil {
		return err
	}
	if err := l.openKeyIndexer(cp, haveCheckpoint); err != nil {
		return err
	}
	// From here until Close the shutdown is not clean; this checkpoint is
	// where recovery would start if the broker crashed right away.
	return l.writeCheckpoint(false)
}

// replay scans the CommitLog from pos, re-dispatches every intact entry
// the indexes do not have yet, and cuts the log at the first bad byte.
func (l *Log) replay(from int64) error {
	began := time.Now()
	var entries, skipped int
	var dispatchErr error
	end, err := l.cl.scan(from, func(e scanned) {
		if dispatchErr != nil {
			return
		}
		t, ok := l.byID[e.header.topicID]
		if !ok || e.header.partition < 0 || int(e.header.partition) >= len(t.parts) {
			skipped++ // a deleted topic's entry
			return
		}
		p := t.parts[e.header.partition]
		if batchBaseOffset(e.batch) < p.end.Load() {
			skipped++ // indexed before the checkpoint, or written but never indexed and then rewritten
			return
		}
		if err := p.dispatch(e.batchPos, e.batch); err != nil {
			dispatchErr = fmt.Errorf("re-indexing %s-%d at CommitLog position %d: %w", t.name, p.index, e.pos, err)
			return
		}
		entries++
	})
	if err != nil {
		return err
	}
	if dispatchErr != nil {
		return errors.Join(ErrStorage, dispatchErr)
	}
	tail := int64(0)
	if last := l.cl.queue.Last(); last != nil {
		tail = last.Base() + last.Size() - end
	}
	if err := l.cl.cut(end); err != nil {
		return err
	}
	took := time.Since(began)
	fields := []zap.Field{zap.Int64("from", from), zap.Int64("scanned_bytes", end-from), zap.Int("entries", entries), zap.Int("skipped", skipped),
		zap.Int64("discarded_tail_bytes", tail), zap.Duration("took", took)}
	if end > from {
		fields = append(fields, zap.Float64("seconds_per_gib", took.Seconds()/(float64(end-from)/(1<<30))))
	}
	l.logger.Info("store recovered by replaying the CommitLog past the checkpoint", fields...)
	return nil
}

// removeStrayConsumeQueues deletes ConsumeQueue directories of topics that
// no longer exist (a crash between deleting a topic and its files).
func (l *Log) removeStrayConsumeQueues() error {
	root := filepath.Join(l.opts.Dir, consumeQueueDir)
	names, err := l.fs.ReadDir(root)
	if err != nil {
		return nil // no ConsumeQueues yet
	}
	for _, name := range names {
		if _, ok := l.topics[name]; ok {
			continue
		}
		if err := l.fs.RemoveAll(filepath.Join(root, name)); err != nil {
			return errors.Join(ErrStorage, err)
		}
		l.logger.Info("removed ConsumeQueues of a deleted topic", zap.String("topic", name))
	}
	return nil
}
