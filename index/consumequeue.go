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

// tailEntries is how many entries the write-behind tail holds: 4 KiB, one
// page of a file. Append writes the tail out with one pwritev when the
// entries reach a page boundary of their file or the file's end, so the
// tail never spans two files and never holds more than tailEntries.
const tailEntries = 128

// zeroTail is never written: flush points an iovec at it to clear what a
// failed flush may have left past Len.
var zeroTail [tailEntries * EntrySize]byte

// ConsumeQueue is the index of one topic-partition. It takes one appender
// and any number of concurrent readers.
//
// Entries [0, flushed) are in the files, where readers find them through
// the mapping (or ReadAt) without a lock; entries [flushed, Len) are only
// in the tail, an in-memory buffer the appender writes out in pages.
// Readers copy tail entries under mu.RLock; a flush moves flushed under
// mu.Lock, which is what lets the appender reuse the buffer.
type ConsumeQueue struct {
	q       *segment.Queue
	perFile int64

	first   atomic.Int64
	n       atomic.Int64 // Len: published after the entry is readable
	flushed atomic.Int64 // entries below it are in the files; stored under mu
	closed  atomic.Bool

	mu sync.RWMutex
	// tail holds tailEntries slots, slot k being entry flushed+k; allocated
	// under mu by the first Append, so idle partitions cost nothing. Slots
	// at or past Len are filled without mu: no reader looks at them, and
	// Len is published (atomically, with release ordering) only after.
	tail []byte

	// wmu serializes the mutators: Append, TruncateFrom, SetFirstIndex,
	// Sync (its flush), Close and Remove.
	wmu     sync.Mutex
	last    Entry // under wmu: entry Len-1, for the ordering check
	hasLast bool  // under wmu
	// junkEnd, under wmu: a failed flush may have left bytes of entries
	// [Len, junkEnd) in the file; the next flush writes zeros over them.
	junkEnd int64
	iov     [2][]byte // under wmu
}

// OpenConsumeQueue opens (creating if needed) the queue in dir, recovering
// Len from the last used entry.
func OpenConsumeQueue(fs segment.FS, dir string, entriesPerFile int64) (*ConsumeQueue, error) {
	if entriesPerFile <= 0 || entriesPerFile > math.MaxInt64/EntrySize {
		return nil, fmt.Errorf("index: invalid entries per file %d", entriesPerFile)
	}
	q, err := segment.OpenQueue(fs, dir, entriesPerFile*EntrySize)
	if errors.Is(err, segment.ErrCorrupt) {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if err != nil {
		return nil, err
	}
	cq := &ConsumeQueue{q: q, perFile: entriesPerFile}
	if err := cq.recover(); err != nil {
		_ = q.Close()
		return nil, err
	}
	return cq, nil
}

// OpenConsumeQueueAt opens the queue in dir trusting exactly its first n
// entries, as a checkpoint recorded them once they were synced: whatever
// lies past them (entries written after the checkpoint, torn or not) is
// cleared unread and later files are removed. The caller re-indexes what
// came after the checkpoint from the CommitLog.
func OpenConsumeQueueAt(fs segment.FS, dir string, entriesPerFile, n int64) (*ConsumeQueue, error) {
	if entriesPerFile <= 0 || entriesPerFile > math.MaxInt64/EntrySize || n < 0 {
		return nil, fmt.Errorf("index: invalid entries per file %d or length %d", entriesPerFile, n)
	}
	q, err := segment.OpenQueue(fs, dir, entriesPerFile*EntrySize)
	if errors.Is(err, segment.ErrCorrupt) {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if err != nil {
		return nil, err
	}
	cq := &ConsumeQueue{q: q, perFile: entriesPerFile}
	if err := cq.recoverAt(n); err != nil {
		_ = q.Close()
		return nil, err
	}
	return cq, nil
}

// recoverAt sets Len to n and clears everything after it.
func (cq *ConsumeQueue) recoverAt(n int64) error {
	segs := cq.q.Segments()
	if len(segs) == 0 {
		if n != 0 {
			return fmt.Errorf("%w: %d entries expected, no files", ErrCorrupt, n)
		}
		return nil
	}
	first := segs[0].Base() / EntrySize
	end := segs[len(segs)-1].Base()/EntrySize + cq.perFile
	if n < first || n > end {
		return fmt.Errorf("%w: %d entries expected, files hold [%d, %d)", ErrCorrupt, n, first, end)
	}
	// Treat every slot the files hold as used, then cut at n: that zeroes
	// the rest of n's file and removes the files after it.
	cq.first.Store(first)
	cq.flushed.Store(end)
	cq.n.Store(end)
	if err := cq.TruncateFrom(n); err != nil {
		return err
	}
	if n > first && !cq.hasLast {
		e, err := cq.read(n - 1)
		if err != nil {
			return err
		}
		cq.last, cq.hasLast = e, true
	}
	return nil
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
	cq.flushed.Store(n)
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
//
// The entry goes into the tail and is readable when Append returns; the
// tail is written to the file when it reaches a page boundary or the end
// of the file. An error (from creating the next file, or from that write)
// leaves the queue as it was.
func (cq *ConsumeQueue) Append(e Entry) error {
	if e.Size <= 0 || e.Count <= 0 || e.Pos < 0 {
		return fmt.Errorf("%w: pos %d, size %d, count %d", ErrInvalid, e.Pos, e.Size, e.Count)
	}
	cq.wmu.Lock()
	defer cq.wmu.Unlock()
	if cq.closed.Load() {
		return segment.ErrClosed
	}
	if cq.hasLast {
		if next := cq.last.BaseOffset + int64(cq.last.Count); e.BaseOffset < next {
			return fmt.Errorf("%w: base offset %d, want >= %d", ErrOutOfOrder, e.BaseOffset, next)
		}
		e.MaxTimestamp = max(e.MaxTimestamp, cq.last.MaxTimestamp)
	}
	i := cq.n.Load()
	// Created here rather than at the flush, so that a failure to create
	// the file fails the Append of its first entry.
	s, err := cq.q.SegmentFor(i * EntrySize)
	if err != nil {
		return err
	}
	if cq.tail == nil {
		cq.mu.Lock()
		cq.tail = make([]byte, tailEntries*EntrySize)
		cq.mu.Unlock()
	}
	e.encode(cq.tail[(i-cq.flushed.Load())*EntrySize:])
	if k := i + 1 - s.Base()/EntrySize; k%tailEntries == 0 || k == cq.perFile {
		if err := cq.flush(s, i+1); err != nil {
			return err
		}
	} else {
		cq.n.Store(i + 1)
	}
	cq.last, cq.hasLast = e, true
	return nil
}

// flush writes entries [flushed, end) from the tail to s, the file that
// holds them, with one pwritev, then publishes end as both flushed and Len.
// On failure neither moves and the tail keeps its entries. Callers hold wmu.
func (cq *ConsumeQueue) flush(s *segment.Segment, end int64) error {
	from := cq.flushed.Load()
	iov := cq.iov[:1]
	iov[0] = cq.tail[:(end-from)*EntrySize]
	if cq.junkEnd > end {
		iov = cq.iov[:2]
		iov[1] = zeroTail[:(cq.junkEnd-end)*EntrySize]
	}
	if err := s.WriteAt(iov, from*EntrySize-s.Base()); err != nil {
		cq.junkEnd = max(cq.junkEnd, end)
		return err
	}
	cq.junkEnd = 0
	// Under the lock: readers inside the tail finish before the appender
	// can overwrite slot 0, and later ones find the entries in the file.
	cq.mu.Lock()
	cq.flushed.Store(end)
	cq.n.Store(end)
	cq.mu.Unlock()
	return nil
}

// flushTail writes out whatever the tail holds. Callers hold wmu.
func (cq *ConsumeQueue) flushTail() error {
	from, n := cq.flushed.Load(), cq.n.Load()
	if from == n && cq.junkEnd <= n {
		return nil
	}
	s := cq.q.Find(from * EntrySize)
	if s == nil {
		return fmt.Errorf("%w: no file for unwritten entry %d", ErrOutOfRange, from)
	}
	return cq.flush(s, n)
}

// Len returns the index one past the last entry.
func (cq *ConsumeQueue) Len() int64 { return cq.n.Load() }

// FirstIndex returns the first live entry's index.
func (cq *ConsumeQueue) FirstIndex() int64 { return cq.first.Load() }

// SetFirstIndex moves FirstIndex to i, anywhere from the first entry still
// on disk to Len, and deletes the files wholly below it. The file holding
// the last entry is kept even when i == Len: recovery derives Len from it,
// and the tail's entries belong to it.
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

// read returns entry i, below Len, from the tail or from its file,
// wherever i is relative to FirstIndex; ErrOutOfRange if the file is gone.
func (cq *ConsumeQueue) read(i int64) (Entry, error) {
	if i >= cq.flushed.Load() {
		if e, ok := cq.readTail(i); ok {
			return e, nil
		}
	}
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

// readTail returns entry i from the tail, or false if it is not there (a
// flush moved it to the file meanwhile).
func (cq *ConsumeQueue) readTail(i int64) (Entry, bool) {
	cq.mu.RLock()
	defer cq.mu.RUnlock()
	f := cq.flushed.Load()
	if i < f || i >= cq.n.Load() {
		return Entry{}, false
	}
	return decode(cq.tail[(i-f)*EntrySize:]), true
}

// Last returns the last entry, if there is a live one.
func (cq *ConsumeQueue) Last() (Entry, bool) {
	for {
		lo, n := cq.first.Load(), cq.n.Load()
		if n <= lo {
			return Entry{}, false
		}
		e, err := cq.read(n - 1)
		if err == nil {
			return e, true
		}
		// Appends and retention since the loads deleted its file; FirstIndex
		// moved first, so look again.
		if err != ErrOutOfRange || cq.first.Load() == lo {
			return Entry{}, false
		}
	}
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
		// [lo, mid) is in the files; [mid, hi) was in the tail a moment ago.
		mid := min(max(cq.flushed.Load(), lo), hi)
		i, err := cq.searchRange(lo, mid, by, target)
		if err == nil && i == mid && mid < hi {
			var ok bool
			if i, ok = cq.searchTail(mid, hi, by, target); !ok {
				continue // flushed meanwhile: look again in the file
			}
		}
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

// searchTail binary-searches [lo, hi) in the tail, returning hi if no key
// exceeds target, or false if a flush moved part of the range out of the
// tail meanwhile.
func (cq *ConsumeQueue) searchTail(lo, hi int64, by int, target int64) (int64, bool) {
	cq.mu.RLock()
	defer cq.mu.RUnlock()
	f := cq.flushed.Load()
	if lo < f {
		return 0, false
	}
	for lo < hi {
		h := int64(uint64(lo+hi) >> 1)
		if key(cq.tail[(h-f)*EntrySize:], by) > target {
			hi = h
		} else {
			lo = h + 1
		}
	}
	return lo, true
}

// searchRange binary-searches [lo, hi), all of it in the files, returning
// hi if no key exceeds target. Keys never decrease, so it first picks the
// file by probing the last entry of candidate files, then searches inside
// that file under a single reference.
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
	// Entries [i, n) leave the tail, or all of it when the cut is below it.
	cq.mu.Lock()
	cq.flushed.Store(min(cq.flushed.Load(), i))
	cq.n.Store(i)
	cq.mu.Unlock()
	cq.last, cq.hasLast = last, hasLast

	// Later files go first: zeros made durable while they remained would
	// read as a hole before used entries. In the file holding i, entries
	// [i, n) are cleared whether or not they were flushed, and so is what
	// a failed flush may have left past n.
	end := (i/cq.perFile + 1) * cq.perFile
	if _, err := cq.q.RemoveFrom(end * EntrySize); err != nil {
		return err
	}
	dirty := min(max(n, cq.junkEnd), end)
	cq.junkEnd = 0
	s := cq.q.Find(i * EntrySize)
	if s == nil {
		return nil
	}
	if err := s.Zero((i-s.Base()/EntrySize)*EntrySize, (dirty-i)*EntrySize); err != nil {
		return err
	}
	return s.Sync()
}

// Sync writes the tail to its file and makes every appended entry durable.
func (cq *ConsumeQueue) Sync() error {
	cq.wmu.Lock()
	var err error
	if !cq.closed.Load() {
		err = cq.flushTail()
	}
	cq.wmu.Unlock()
	if err != nil {
		return err
	}
	return cq.q.Sync()
}

// Close writes the tail to its file, syncs and closes the queue. If the
// tail cannot be written, the queue is closed all the same and its entries
// are lost (the store rebuilds the queue from the CommitLog).
func (cq *ConsumeQueue) Close() error {
	cq.wmu.Lock()
	defer cq.wmu.Unlock()
	if cq.closed.Load() {
		return segment.ErrClosed
	}
	err := cq.flushTail()
	cq.closed.Store(true)
	if cerr := cq.q.Close(); err == nil {
		err = cerr
	}
	return err
}

// Remove closes the queue and deletes its directory, tail and all.
func (cq *ConsumeQueue) Remove() error {
	cq.wmu.Lock()
	defer cq.wmu.Unlock()
	cq.closed.Store(true)
	return cq.q.RemoveAll()
}
