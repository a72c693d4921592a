package log

import (
	"errors"
	"fmt"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// ErrDiskFull is an append refused because the disk is above the critical
// mark (KAFKA_STORAGE_ERROR to the producer): better a refused produce than
// a full disk that can take nothing, not even a checkpoint.
var ErrDiskFull = errors.New("log: disk above the critical usage mark")

// DiskUsage reports the used and total bytes of the filesystem holding the
// data directory.
type DiskUsage func() (used, total uint64, err error)

// statfsUsage measures dir's filesystem; space reserved for root counts as
// used, as df shows it.
func statfsUsage(dir string) DiskUsage {
	return func() (uint64, uint64, error) {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return 0, 0, err
		}
		total := st.Blocks * uint64(st.Bsize)
		return total - st.Bavail*uint64(st.Bsize), total, nil
	}
}

// checkDisk compares disk usage with the marks: above the reclaim mark the
// oldest CommitLog files are reclaimed early, as RocketMQ does, moving the
// log start offsets of the partitions whose data they hold; above the
// critical mark appends are refused until usage falls again.
func (l *Log) checkDisk() error {
	if l.opts.DiskReclaimRatio <= 0 && l.opts.DiskCriticalRatio <= 0 {
		return nil
	}
	ratio, err := l.diskRatio()
	if err != nil {
		return err
	}
	full := l.opts.DiskCriticalRatio > 0 && ratio >= l.opts.DiskCriticalRatio
	if l.diskFull.Swap(full) != full {
		l.logger.Warn("disk usage crossed the critical mark", zap.Bool("refusing_produce", full), zap.Float64("usage", ratio))
	}
	for l.opts.DiskReclaimRatio > 0 && ratio >= l.opts.DiskReclaimRatio {
		freed, err := l.reclaimOldestFile()
		if err != nil || !freed {
			return err
		}
		if ratio, err = l.diskRatio(); err != nil {
			return err
		}
		l.diskFull.Store(l.opts.DiskCriticalRatio > 0 && ratio >= l.opts.DiskCriticalRatio)
	}
	return nil
}

func (l *Log) diskRatio() (float64, error) {
	used, total, err := l.opts.DiskUsage()
	if err != nil {
		return 0, errors.Join(ErrStorage, err)
	}
	if total == 0 {
		return 0, fmt.Errorf("%w: filesystem reports no size", ErrStorage)
	}
	return float64(used) / float64(total), nil
}

// reclaimOldestFile moves every partition's log start offset past the
// oldest CommitLog file and deletes it; the file being written is never
// reclaimed. It reports whether a file was freed.
func (l *Log) reclaimOldestFile() (bool, error) {
	segs := l.cl.queue.Segments()
	if len(segs) < 2 {
		return false, nil
	}
	end := segs[0].Base() + segs[0].Size()
	l.mu.RLock()
	var parts []*Partition
	for _, t := range l.topics {
		parts = append(parts, t.parts...)
	}
	l.mu.RUnlock()
	for _, p := range parts {
		moved, err := p.moveStartPast(end)
		if err != nil {
			return false, err
		}
		if moved {
			l.logger.Warn("disk above the reclaim mark: log start offset moved past the oldest CommitLog file",
				zap.String("topic", p.topic.name), zap.Int32("partition", p.index), zap.Int64("log_start_offset", p.start.Load()))
		}
	}
	if err := l.saveStartOffsets(); err != nil {
		return false, err
	}
	before := len(segs)
	if err := l.removeDeadFiles(parts); err != nil {
		return false, err
	}
	return len(l.cl.queue.Segments()) < before, nil
}

// moveStartPast moves the log start offset to the first batch stored at or
// after CommitLog position pos.
func (p *Partition) moveStartPast(pos int64) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i, ok := p.cq.SearchOffset(p.start.Load())
	if !ok {
		return false, nil
	}
	target := p.end.Load()
	for n := p.cq.Len(); i < n; i++ {
		e, err := p.cq.At(i)
		if err != nil {
			return false, errors.Join(ErrStorage, err)
		}
		if e.Pos >= pos {
			target = e.BaseOffset
			break
		}
	}
	return p.advanceStartLocked(target)
}
