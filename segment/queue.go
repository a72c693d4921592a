package segment

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
)

// Queue is an ordered run of contiguous segments of one size in one
// directory, RocketMQ's MappedFileQueue. Lookups are lock-free; changes to
// the run of segments serialize on a mutex. It is safe for concurrent
// readers and one writer.
type Queue struct {
	fs   FS
	dir  string
	size int64

	mu     sync.Mutex
	closed bool // under mu
	// segs is an immutable snapshot, replaced wholesale under mu, so Find
	// is a load and a division.
	segs atomic.Pointer[[]*Segment]
}

// OpenQueue opens (creating if needed) the queue in dir. Files whose names
// parse as positions are opened in order; other files are ignored. Bases
// that are not multiples of segmentSize, or a gap between files, wrap
// ErrCorrupt.
func OpenQueue(fsys FS, dir string, segmentSize int64) (*Queue, error) {
	if segmentSize <= 0 {
		return nil, fmt.Errorf("segment: invalid segment size %d", segmentSize)
	}
	if err := mkdirAll(fsys, dir); err != nil {
		return nil, err
	}
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	for _, name := range names {
		if base, ok := ParseName(name); ok {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	for i, base := range bases {
		if base%segmentSize != 0 {
			return nil, fmt.Errorf("%w: %s: base %d is not a multiple of %d",
				ErrCorrupt, dir, base, segmentSize)
		}
		if i > 0 && base != bases[i-1]+segmentSize {
			return nil, fmt.Errorf("%w: %s: gap between %s and %s",
				ErrCorrupt, dir, Name(bases[i-1]), Name(base))
		}
	}
	segs := make([]*Segment, 0, len(bases))
	for _, base := range bases {
		s, err := Open(fsys, dir, base, segmentSize)
		if err != nil {
			for _, s := range segs {
				_ = s.Close()
			}
			return nil, err
		}
		segs = append(segs, s)
	}
	q := &Queue{fs: fsys, dir: dir, size: segmentSize}
	q.segs.Store(&segs)
	return q, nil
}

// mkdirAll creates dir and its missing parents, syncing each parent so that
// the new entries survive a crash.
func mkdirAll(fsys FS, dir string) error {
	_, err := fsys.Stat(dir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAll(fsys, parent); err != nil {
			return err
		}
	}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return fsys.SyncDir(parent)
}

// Dir returns the queue's directory.
func (q *Queue) Dir() string { return q.dir }

// SegmentSize returns the size of every segment.
func (q *Queue) SegmentSize() int64 { return q.size }

// Segments returns a copy of the current segments, ascending by base.
func (q *Queue) Segments() []*Segment { return slices.Clone(*q.segs.Load()) }

// First returns the lowest segment, or nil if the queue is empty.
func (q *Queue) First() *Segment {
	if segs := *q.segs.Load(); len(segs) > 0 {
		return segs[0]
	}
	return nil
}

// Last returns the highest segment, or nil if the queue is empty.
func (q *Queue) Last() *Segment {
	if segs := *q.segs.Load(); len(segs) > 0 {
		return segs[len(segs)-1]
	}
	return nil
}

// Find returns the segment holding pos, or nil. Segments are contiguous, so
// this is arithmetic on a snapshot: no lock, no allocation. A reader that
// uses the segment's mapping or descriptor must Acquire it, and treat a
// failed Acquire like nil (the segment was removed meanwhile).
func (q *Queue) Find(pos int64) *Segment {
	segs := *q.segs.Load()
	if len(segs) == 0 || pos < segs[0].base {
		return nil
	}
	if i := (pos - segs[0].base) / q.size; i < int64(len(segs)) {
		return segs[i]
	}
	return nil
}

// SegmentFor returns the segment holding pos, creating it when pos is in
// the segment right after Last (or anywhere, aligned, in an empty queue).
// Only the writer calls it.
func (q *Queue) SegmentFor(pos int64) (*Segment, error) {
	if s := q.Find(pos); s != nil {
		return s, nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, ErrClosed
	}
	if pos < 0 {
		return nil, fmt.Errorf("%w: position %d", ErrOutOfRange, pos)
	}
	segs := *q.segs.Load()
	base := pos - pos%q.size
	if n := len(segs); n > 0 && base != segs[n-1].base+q.size {
		return nil, fmt.Errorf("%w: position %d is not next in %s (segments [%d, %d))",
			ErrOutOfRange, pos, q.dir, segs[0].base, segs[n-1].base+q.size)
	}
	s, err := Create(q.fs, q.dir, base, q.size)
	if err != nil {
		return nil, err
	}
	next := append(slices.Clip(segs), s)
	q.segs.Store(&next)
	return s, nil
}

// RemoveBefore deletes the segments that end at or before pos, lowest
// first, and returns how many went.
func (q *Queue) RemoveBefore(pos int64) (int, error) {
	return q.remove(func(segs []*Segment) int {
		n := 0
		for n < len(segs) && segs[n].base+q.size <= pos {
			n++
		}
		return n
	}, true)
}

// RemoveFrom deletes the segments that start at or after pos, cutting the
// tail during recovery, and returns how many went.
func (q *Queue) RemoveFrom(pos int64) (int, error) {
	return q.remove(func(segs []*Segment) int {
		n := 0
		for n < len(segs) && segs[len(segs)-1-n].base >= pos {
			n++
		}
		return n
	}, false)
}

// remove deletes count(segs) segments from the front or the back.
func (q *Queue) remove(count func([]*Segment) int, front bool) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, ErrClosed
	}
	segs := *q.segs.Load()
	n := count(segs)
	if n == 0 {
		return 0, nil
	}
	var gone, keep []*Segment
	if front {
		gone, keep = segs[:n], slices.Clone(segs[n:])
	} else {
		gone, keep = segs[len(segs)-n:], slices.Clone(segs[:len(segs)-n])
	}
	// Unpublish first: new lookups stop finding the segments, and readers
	// already inside hold references that keep the mapping alive.
	q.segs.Store(&keep)
	var err error
	for _, s := range gone {
		if rerr := s.Remove(); err == nil {
			err = rerr
		}
	}
	if serr := q.fs.SyncDir(q.dir); err == nil {
		err = serr
	}
	return n, err
}

// RemoveAll deletes every segment and the directory, and closes the queue.
func (q *Queue) RemoveAll() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	err := q.closeLocked(false)
	if err == ErrClosed {
		err = nil
	}
	if rerr := q.fs.RemoveAll(q.dir); err == nil {
		err = rerr
	}
	if serr := q.fs.SyncDir(filepath.Dir(q.dir)); err == nil {
		err = serr
	}
	return err
}

// Sync makes everything written durable. That is normally just the last
// segment, but a roll can leave its predecessor with unsynced bytes too;
// segments with nothing unsynced skip the fdatasync.
func (q *Queue) Sync() error {
	for _, s := range *q.segs.Load() {
		if !s.Acquire() {
			continue // removed meanwhile: nothing of it to keep
		}
		err := s.Sync()
		s.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// Close syncs and closes every segment.
func (q *Queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closeLocked(true)
}

func (q *Queue) closeLocked(sync bool) error {
	if q.closed {
		return ErrClosed
	}
	var err error
	if sync {
		err = q.Sync()
	}
	q.closed = true
	segs := *q.segs.Load()
	q.segs.Store(&[]*Segment{})
	for _, s := range segs {
		if cerr := s.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
