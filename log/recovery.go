package log

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// recover loads the catalogue and brings every ConsumeQueue and the
// idempotent producer state in line with the CommitLog. After a clean
// shutdown that is a matter of reading what Close wrote; otherwise the
// CommitLog is scanned, its torn tail cut, and every index rebuilt from it.
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
	clean := found && cp.Clean
	if !clean {
		// Every index is rebuilt from the CommitLog, so whatever a crash
		// left of them, torn or not, is dropped unread.
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
		if err := l.growLocked(t, tm.Partitions); err != nil {
			return err
		}
		l.topics[t.name] = t
		l.byID[id] = t
	}
	if err := l.removeStrayConsumeQueues(); err != nil {
		return err
	}
	if clean && l.loadProducers() == nil {
		l.cl.written.Store(cp.CommitLogEnd)
		l.cl.synced.Store(cp.CommitLogEnd)
		l.logger.Info("store opened after a clean shutdown", zap.Int64("commitlog_end", cp.CommitLogEnd), zap.Int("topics", len(l.topics)))
	} else if err := l.rebuild(); err != nil {
		return err
	}
	if err := l.loadStartOffsets(); err != nil {
		return err
	}
	// From here until Close the shutdown is not clean.
	return writeJSON(l.fs, l.path(checkpointFile), checkpoint{})
}

// rebuild scans the whole CommitLog and re-dispatches every intact entry.
func (l *Log) rebuild() error {
	began := time.Now()
	for _, t := range l.topics {
		for _, p := range t.parts {
			if err := p.cq.TruncateFrom(p.cq.FirstIndex()); err != nil {
				return errors.Join(ErrStorage, err)
			}
			p.start.Store(0)
			p.producers = map[int64]*producerState{}
			p.maxTimestamp = -1
			p.end.Store(p.start.Load())
		}
	}
	from := l.cl.start()
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
			skipped++ // an entry written but never indexed, then rewritten
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
	l.logger.Info("store recovered by scanning the CommitLog",
		zap.Int64("scanned_bytes", end-from), zap.Int("entries", entries), zap.Int("skipped", skipped),
		zap.Int64("discarded_tail_bytes", tail), zap.Duration("took", time.Since(began)))
	return nil
}

// loadProducers restores the idempotent state Close saved.
func (l *Log) loadProducers() error {
	var snapshot []partitionProducers
	found, err := readJSON(l.fs, l.path(producersFile), &snapshot)
	if err != nil || !found {
		return errors.Join(ErrCorrupt, err)
	}
	for _, pp := range snapshot {
		id, err := ParseTopicID(pp.TopicID)
		if err != nil {
			return err
		}
		t, ok := l.byID[id]
		if !ok || int(pp.Partition) >= len(t.parts) || pp.Partition < 0 {
			continue
		}
		if pp.Producers != nil {
			t.parts[pp.Partition].producers = pp.Producers
		}
	}
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
