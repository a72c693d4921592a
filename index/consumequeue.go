package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/rocketkafka/broker/segment"
)

// EntrySize is the size of one entry on disk.
const EntrySize = 32

var (
	// ErrOutOfRange reports an index outside [FirstIndex, Len).
	ErrOutOfRange = errors.New("index: index out of range")
	// ErrOutOfOrder reports an Append whose offsets overlap the previous entry.
	ErrOutOfOrder = errors.New("index: entry out of order")
	// ErrCorrupt reports files that break the format; check with errors.Is.
	ErrCorrupt = errors.New("index: corrupt")
	// ErrInvalid reports an Append of an entry that cannot describe a batch.
	ErrInvalid = errors.New("index: invalid entry")
)

// Entry locates one RecordBatch in the CommitLog.
type Entry struct {
	Pos          int64 // CommitLog position of the RecordBatch bytes
	Size         int32 // RecordBatch length in bytes
	Count        int32 // offsets covered: lastOffsetDelta+1
	BaseOffset   int64 // Kafka offset of the batch's first record
	MaxTimestamp int64 // running maximum of batch max timestamps so far in this partition
}

func (e *Entry) encode(b []byte) {
	_ = b[EntrySize-1]
	binary.BigEndian.PutUint64(b[0:], uint64(e.Pos))
	binary.BigEndian.PutUint32(b[8:], uint32(e.Size))
	binary.BigEndian.PutUint32(b[12:], uint32(e.Count))
	binary.BigEndian.PutUint64(b[16:], uint64(e.BaseOffset))
	binary.BigEndian.PutUint64(b[24:], uint64(e.MaxTimestamp))
}

func decode(b []byte) Entry {
	_ = b[EntrySize-1]
	return Entry{
		Pos:          int64(binary.BigEndian.Uint64(b[0:])),
		Size:         int32(binary.BigEndian.Uint32(b[8:])),
		Count:        int32(binary.BigEndian.Uint32(b[12:])),
		BaseOffset:   int64(binary.BigEndian.Uint64(b[16:])),
		MaxTimestamp: int64(binary.BigEndian.Uint64(b[24:])),
	}
}

// Search keys. Both never decrease along the queue.
const (
	byEnd  = iota // BaseOffset+Count: the first offset after the batch
	byTime        // MaxTimestamp
)

func key(b []byte, by int) int64 {
	if by == byTime {
		return int64(binary.BigEndian.Uint64(b[24:32]))
	}
	return int64(binary.BigEndian.Uint64(b[16:24])) + int64(int32(binary.BigEndian.Uint32(b[12:16])))
}

// ConsumeQueue is the index of one topic-partition. It takes one appender
// and any number of concurrent readers; reads are lock-free and go straight
// to the mapped files.
type ConsumeQueue struct {
	q       *segment.Queue
	perFile int64

	first  atomic.Int64
	n      atomic.Int64 // Len: published after the entry is written
	closed atomic.Bool

	// wmu serializes the mutators: Append, TruncateFrom, SetFirstIndex,
	// Close and Remove.
	wmu sync.Mutex
	buf [EntrySize]byte // under wmu
	iov [1][]byte       // under wmu; iov[0] is buf

	// mu guards the cached last entry, which readers see through Last.
	mu      sync.RWMutex
	last    Entry
	hasLast bool // last holds entry Len-1
}

// OpenConsumeQueue opens (creating if needed) the queue in dir, recovering
// Len from the last used entry. Entries are written through a writable
// mapping where the segment package deems that safe (segment.MappedWrites),
// with pwritev otherwise.
func OpenConsumeQueue(fs segment.FS, dir string, entriesPerFile int64) (*ConsumeQueue, error) {
	return openConsumeQueue(fs, dir, entriesPerFile)
}

// openConsumeQueue is OpenConsumeQueue with the segment options spelled
// out; benchmarks compare mapped writes with pwritev through it.
func openConsumeQueue(fs segment.FS, dir string, entriesPerFile int64, opts ...segment.Option) (*ConsumeQueue, error) {
	if entriesPerFile <= 0 || entriesPerFile > math.MaxInt64/EntrySize {
		return nil, fmt.Errorf("index: invalid entries per file %d", entriesPerFile)
	}
	q, err := segment.OpenQueue(fs, dir, entriesPerFile*EntrySize, opts...)
	if errors.Is(err, segment.ErrCorrupt) {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if err != nil {
		return nil, err
	}
	cq := &ConsumeQueue{q: q, perFile: entriesPerFile}
	cq.iov[0] = cq.buf[:]
	if err := cq.recover(); err != nil {
		_ = q.Close()
		return nil, err
	}
	return cq, nil
}

// recover finds the last used entry. Unsynced writes reach the disk in any
// order, so holes can only appear where data was unsynced: the file holding
// the last entry, and the one before it if the queue rolled since the last
// Sync. Those two are checked entry by entry; older files are taken as
// synced, which holds as long as the caller syncs more often than a file fills.
func (cq *ConsumeQueue) recover() error {
	segs := cq.q.Segments()
	if len(segs) == 0 {
		return nil
	}
	first := segs[0].Base() / EntrySize
	n := first
	found, checked := false, 0
	for j := len(segs) - 1; j >= 0 && checked < 2; j-- {
		s := segs[j]
		b := s.View(0, s.Size())
		if b == nil {
			b = make([]byte, s.Size())
			if err := s.ReadAt(b, 0); err != nil {
				return err
			}
		}
		base := s.Base() / EntrySize
		for k := cq.perFile - 1; k >= 0; k-- {
			size := int32(binary.BigEndian.Uint32(b[k*EntrySize+8:]))
			switch {
			case size < 0 || (size == 0 && found):
				return fmt.Errorf("%w: %s: entry %d has size %d", ErrCorrupt, s.Path(), base+k, size)
			case size > 0 && !found:
				found, n = true, base+k+1
			}
		}
		if found {
			checked++
		}
	}
	cq.first.Store(first)
	cq.n.Store(n)
	if found {
		e, err := cq.read(n - 1)
		if err != nil {
			return err
		}
		cq.last, cq.hasLast = e, true
	}
	return nil
}

// Append adds e at index Len. e.BaseOffset must not overlap the previous
// entry's offsets. MaxTimestamp is stored as the running maximum, whatever
// the caller passes, so that timestamp searches stay valid.
func (cq *ConsumeQueue) Append(e Entry) error {
	if e.Size <= 0 || e.Count <= 0 || e.Pos < 0 {
		return fmt.Errorf("%w: pos %d, size %d, count %d", ErrInvalid, e.Pos, e.Size, e.Count)
	}
	cq.wmu.Lock()
	defer cq.wmu.Unlock()
	if cq.hasLast {
		if next := cq.last.BaseOffset + int64(cq.last.Count); e.BaseOffset < next {
			return fmt.Errorf("%w: base offset %d, want >= %d", ErrOutOfOrder, e.BaseOffset, next)
		}
		e.MaxTimestamp = max(e.MaxTimestamp, cq.last.MaxTimestamp)
	}
	i := cq.n.Load()
	pos := i * EntrySize
	s, err := cq.q.SegmentFor(pos)
	if err != nil {
		return err
	}
	e.encode(cq.buf[:])
	// With mapped writes this copies straight into memory readers map. They
	// only read below Len, and Len is stored (atomically, so with release
	// ordering) after WriteAt has copied the whole entry: a reader that sees
	// the new Len sees all 32 bytes, never a torn entry.
	if err := s.WriteAt(cq.iov[:], pos-s.Base()); err != nil {
		return err
	}
	cq.mu.Lock()
	cq.last, cq.hasLast = e, true
	cq.n.Store(i + 1)
	cq.mu.Unlock()
	return nil
}

// Len returns the index one past the last entry.
func (cq *ConsumeQueue) Len() int64 { return cq.n.Load() }

// FirstIndex returns the first live entry's index.
func (cq *ConsumeQueue) FirstIndex() int64 { return cq.first.Load() }

// SetFirstIndex moves FirstIndex to i, anywhere from the first entry still
// on disk to Len, and deletes the files wholly below it. The file holding
// the last entry is kept even when i == Len: recovery derives Len from it.
func (cq *ConsumeQueue) SetFirstIndex(i int64) error {
	cq.wmu.Lock()
	defer cq.wmu.Unlock()
	if cq.closed.Load() {
		return segment.ErrClosed
	}
	n := cq.n.Load()
	lo := n
	if s := cq.q.First(); s != nil {
		lo = min(lo, s.Base()/EntrySize)
	}
	if i < lo || i > n {
		return fmt.Errorf("%w: first index %d outside [%d, %d]", ErrOutOfRange, i, lo, n)
	}
	// Published before the deletion, so a reader that finds a file gone
	// knows to look again from here.
	cq.first.Store(i)
	if n == 0 {
		return nil
	}
	limit := min(i, (n-1)-(n-1)%cq.perFile)
	_, err := cq.q.RemoveBefore(limit * EntrySize)
	return err
}

// At returns entry i.
func (cq *ConsumeQueue) At(i int64) (Entry, error) {
	if cq.closed.Load() {
		return Entry{}, segment.ErrClosed
	}
	if i < cq.first.Load() || i >= cq.n.Load() {
		return Entry{}, ErrOutOfRange
	}
	return cq.read(i)
}

// read returns entry i from its file, wherever i is relative to
// FirstIndex; ErrOutOfRange if the file is gone.
func (cq *ConsumeQueue) read(i int64) (Entry, error) {
	pos := i * EntrySize
	s := cq.q.Find(pos)
	if s == nil || !s.Acquire() {
		return Entry{}, ErrOutOfRange
	}
	defer s.Release()
	off := pos - s.Base()
	if b := s.View(off, EntrySize); b != nil {
		return decode(b), nil
	}
	var b [EntrySize]byte
	if err := s.ReadAt(b[:], off); err != nil {
		return Entry{}, err
	}
	return decode(b[:]), nil
}

// Last returns the last entry, if there is a live one.
func (cq *ConsumeQueue) Last() (Entry, bool) {
	cq.mu.RLock()
	defer cq.mu.RUnlock()
	return cq.last, cq.hasLast && cq.n.Load() > cq.first.Load()
}

// SearchOffset returns the index of the entry holding offset or, if offset
// falls in a gap or below the first entry, of the first entry after it. It
// reports false when no entry ends after offset.
func (cq *ConsumeQueue) SearchOffset(offset int64) (int64, bool) {
	return cq.search(byEnd, offset)
}

// SearchTimestamp returns the index of the first entry with MaxTimestamp >=
// ts, or false if there is none.
func (cq *ConsumeQueue) SearchTimestamp(ts int64) (int64, bool) {
	if ts == math.MinInt64 { // every entry qualifies, and ts-1 would wrap
		if first := cq.first.Load(); first < cq.n.Load() {
			return first, true
		}
		return 0, false
	}
	return cq.search(byTime, ts-1)
}

// search returns the first live index whose key exceeds target.
func (cq *ConsumeQueue) search(by int, target int64) (int64, bool) {
	for {
		lo, hi := cq.first.Load(), cq.n.Load()
		i, err := cq.searchRange(lo, hi, by, target)
		if err == nil && i < hi {
			return i, true
		}
		if err == nil {
			return 0, false
		}
		// A file vanished under us: retention moved FirstIndex before
		// deleting, so look again from there. Anything else (closed, I/O
		// error) finds nothing.
		if err != ErrOutOfRange || cq.first.Load() == lo {
			return 0, false
		}
	}
}

// searchRange binary-searches [lo, hi), returning hi if no key exceeds
// target. Keys never decrease, so it first picks the file by probing the
// last entry of candidate files, then searches inside that file under a
// single reference.
func (cq *ConsumeQueue) searchRange(lo, hi int64, by int, target int64) (int64, error) {
	if lo >= hi {
		return hi, nil
	}
	per := cq.perFile
	f, fhi := lo/per, (hi-1)/per
	for f < fhi {
		m := int64(uint64(f+fhi) >> 1)
		k, err := cq.keyAt((m+1)*per-1, by) // below hi since m < fhi
		if err != nil {
			return 0, err
		}
		if k > target {
			fhi = m
		} else {
			f = m + 1
		}
	}
	s := cq.q.Find(f * per * EntrySize)
	if s == nil || !s.Acquire() {
		return 0, ErrOutOfRange
	}
	defer s.Release()
	base := f * per
	v := s.View(0, s.Size())
	i, j := max(lo, base), min(hi, base+per)
	for i < j {
		h := int64(uint64(i+j) >> 1)
		k, err := entryKey(s, v, (h-base)*EntrySize, by)
		if err != nil {
			return 0, err
		}
		if k > target {
			j = h
		} else {
			i = h + 1
		}
	}
	return i, nil
}

// keyAt returns the key of entry i.
func (cq *ConsumeQueue) keyAt(i int64, by int) (int64, error) {
	pos := i * EntrySize
	s := cq.q.Find(pos)
	if s == nil || !s.Acquire() {
		return 0, ErrOutOfRange
	}
	defer s.Release()
	return entryKey(s, s.View(0, s.Size()), pos-s.Base(), by)
}

// entryKey returns the key of the entry at off in s, from v (s's whole
// mapping) when s is mapped.
func entryKey(s *segment.Segment, v []byte, off int64, by int) (int64, error) {
	if v != nil {
		return key(v[off:], by), nil
	}
	var b [EntrySize]byte
	if err := s.ReadAt(b[:], off); err != nil {
		return 0, err
	}
	return key(b[:], by), nil
}

// TruncateFrom drops entries i and later, for recovery after the CommitLog
// lost its tail. The cut is durable when it returns. Readers must not race
// with it: they could see dropped entries zeroed.
func (cq *ConsumeQueue) TruncateFrom(i int64) error {
	cq.wmu.Lock()
	defer cq.wmu.Unlock()
	if cq.closed.Load() {
		return segment.ErrClosed
	}
	n := cq.n.Load()
	if i >= n {
		return nil
	}
	if i < cq.first.Load() {
		return fmt.Errorf("%w: truncate at %d below first index %d", ErrOutOfRange, i, cq.first.Load())
	}
	var last Entry
	var hasLast bool
	if i > 0 {
		e, err := cq.read(i - 1) // may be below FirstIndex but still on disk
		if err != nil && err != ErrOutOfRange {
			return err
		}
		last, hasLast = e, err == nil
	}
	cq.mu.Lock()
	cq.n.Store(i)
	cq.last, cq.hasLast = last, hasLast
	cq.mu.Unlock()

	// Later files go first: zeros made durable while they remained would
	// read as a hole before used entries.
	end := (i/cq.perFile + 1) * cq.perFile
	if _, err := cq.q.RemoveFrom(end * EntrySize); err != nil {
		return err
	}
	s := cq.q.Find(i * EntrySize)
	if s == nil {
		return nil
	}
	if err := s.Zero((i-s.Base()/EntrySize)*EntrySize, (min(n, end)-i)*EntrySize); err != nil {
		return err
	}
	return s.Sync()
}

// Sync makes every appended entry durable.
func (cq *ConsumeQueue) Sync() error { return cq.q.Sync() }

// Close syncs and closes the queue.
func (cq *ConsumeQueue) Close() error {
	cq.wmu.Lock()
	defer cq.wmu.Unlock()
	if cq.closed.Swap(true) {
		return segment.ErrClosed
	}
	return cq.q.Close()
}

// Remove closes the queue and deletes its directory.
func (cq *ConsumeQueue) Remove() error {
	cq.wmu.Lock()
	defer cq.wmu.Unlock()
	cq.closed.Store(true)
	return cq.q.RemoveAll()
}
