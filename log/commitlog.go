package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sync"
	"sync/atomic"

	"github.com/rocketkafka/broker/record"
	"github.com/rocketkafka/broker/segment"
)

// commitLog is the one append-only log every partition writes to.
type commitLog struct {
	queue *segment.Queue

	mu      sync.Mutex // serialises appends and rolls
	hdr     []byte     // reusable entry headers, guarded by mu
	iov     [][]byte   // reusable pwritev vector, guarded by mu
	writes  []pwrite   // reusable list of a request's writes, guarded by mu
	written atomic.Int64
	synced  atomic.Int64

	syncMu sync.Mutex // serialises fsyncs so synced only moves forward
}

func openCommitLog(fs segment.FS, dir string, segmentBytes int64) (*commitLog, error) {
	q, err := segment.OpenQueue(fs, dir, segmentBytes)
	if err != nil {
		return nil, err
	}
	c := &commitLog{queue: q}
	if first := q.First(); first != nil {
		c.written.Store(first.Base())
		c.synced.Store(first.Base())
	}
	return c, nil
}

// start is the position of the oldest byte still on disk.
func (c *commitLog) start() int64 {
	if first := c.queue.First(); first != nil {
		return first.Base()
	}
	return c.written.Load()
}

// maxWriteBytes bounds one pwritev of appendBatches: a produce request
// of 100 partitions is some 12 MB, and writing it in one call cost the
// kernel three times the CPU of writing it in 1 MiB calls (the copy into
// the page cache, copy_folio_from_iter_atomic, dominating); 256 KiB calls
// were no cheaper than 1 MiB ones, 4 MiB ones as dear as one call.
const maxWriteBytes = 1 << 20

// pwrite is one pwritev of appendBatches: iov[from:to] at off in seg.
type pwrite struct {
	seg      *segment.Segment
	off      int64
	from, to int
}

// appendBatches writes the entries of batches back to back in pwritev
// calls of about maxWriteBytes (and at file boundaries), sets each batch's
// pos, and returns the end of the last entry. Nothing counts as written
// unless all of it is: the calls go last to first, so that if one fails
// (or the process dies) before the first, the CommitLog still ends where
// it did, at zeros recovery stops at, and no part of a request that
// failed comes back after a restart.
func (c *commitLog) appendBatches(storeTime int64, batches []*BatchAppend) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hdr = c.hdr[:0]
	for _, a := range batches {
		p := a.Partition
		c.hdr = appendEntryHeader(c.hdr, p.topic.name, p.topic.id, p.index, storeTime, a.Batch)
	}
	size := c.queue.SegmentSize()
	start := c.written.Load()
	pos := start
	seg, err := c.queue.SegmentFor(pos)
	if err != nil {
		return 0, errors.Join(ErrStorage, err)
	}
	c.iov, c.writes = c.iov[:0], c.writes[:0]
	groupStart, hdrOff := pos, 0
	endWrite := func() {
		c.writes = append(c.writes, pwrite{seg: seg, off: groupStart - seg.Base(), from: c.writes[len(c.writes)-1].to, to: len(c.iov)})
	}
	c.writes = append(c.writes, pwrite{}) // a sentinel: the first write starts at iov[0]
	for _, a := range batches {
		hdrLen := entryFixedSize + len(a.Partition.topic.name)
		total := int64(hdrLen + len(a.Batch))
		if off := pos - seg.Base(); off+total > size {
			// The entry does not fit: end this file with padding and
			// go on in the next.
			if rest := size - off; rest >= minEntrySize {
				c.iov = append(c.iov, paddingMarker(int(rest)))
			}
			endWrite()
			pos = seg.Base() + size
			if seg, err = c.queue.SegmentFor(pos); err != nil {
				return 0, errors.Join(ErrStorage, err)
			}
			groupStart = pos
		}
		if pos-groupStart >= maxWriteBytes {
			endWrite()
			groupStart = pos
		}
		c.iov = append(c.iov, c.hdr[hdrOff:hdrOff+hdrLen], a.Batch)
		hdrOff += hdrLen
		a.pos = pos + int64(hdrLen)
		pos += total
	}
	endWrite()
	for i := len(c.writes) - 1; i > 0; i-- {
		w := c.writes[i]
		if w.from == w.to {
			continue
		}
		if err := w.seg.WriteAt(c.iov[w.from:w.to], w.off); err != nil {
			c.unwrite(c.writes[i+1:])
			return 0, errors.Join(ErrStorage, err)
		}
	}
	c.written.Store(pos)
	return pos, nil
}

// unwrite zeroes, as far as it can, the writes of a request that failed
// after them: beyond the CommitLog's end they are unreachable, but a later
// append that happened to end where one of them begins would make it look
// like a continuation to recovery.
func (c *commitLog) unwrite(done []pwrite) {
	for _, w := range done {
		var n int64
		for _, b := range c.iov[w.from:w.to] {
			n += int64(len(b))
		}
		_ = w.seg.Zero(w.off, n) // best effort: the write failing is what the caller reports
	}
}

// sync makes everything written so far durable and returns the position it
// covers. Files wholly behind the synced position were synced before it
// moved past them, so only the files from there on need an fsync.
func (c *commitLog) sync() (int64, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	target := c.written.Load()
	from := c.synced.Load()
	if target <= from {
		return from, nil
	}
	for _, seg := range c.queue.Segments() {
		if seg.Base()+seg.Size() <= from || seg.Base() >= target {
			continue
		}
		if err := seg.Sync(); err != nil {
			return from, errors.Join(ErrStorage, err)
		}
	}
	c.synced.Store(target)
	return target, nil
}

// read copies n bytes at CommitLog position pos. It holds a reference on
// the file while copying, so retention deleting the file meanwhile cannot
// unmap the bytes under it.
func (c *commitLog) read(pos, n int64) ([]byte, error) {
	seg := c.queue.Find(pos)
	if seg == nil || pos-seg.Base()+n > seg.Size() || !seg.Acquire() {
		return nil, fmt.Errorf("%w: no CommitLog data at %d+%d", ErrCorrupt, pos, n)
	}
	defer seg.Release()
	b := make([]byte, n)
	if err := seg.ReadAt(b, pos-seg.Base()); err != nil {
		return nil, errors.Join(ErrStorage, err)
	}
	return b, nil
}

// scanned is one intact batch entry found by scan.
type scanned struct {
	pos      int64 // entry position
	batchPos int64
	header   entryHeader
	batch    []byte
}

// scan walks intact entries from pos and returns where the intact data ends:
// the first torn, corrupt or never-written byte.
func (c *commitLog) scan(pos int64, fn func(scanned)) (int64, error) {
	return c.scanTo(pos, math.MaxInt64, true, fn)
}

// scanTo is scan stopping at position to. Without verify, batch CRCs are
// not recomputed: the caller reads entries that were checked when they
// were appended or replayed.
func (c *commitLog) scanTo(pos, to int64, verify bool, fn func(scanned)) (int64, error) {
	var buf []byte
	for {
		seg := c.queue.Find(pos)
		if seg == nil || !seg.Acquire() {
			return pos, nil
		}
		end, more, err := c.scanSegment(seg, pos, to, verify, &buf, fn)
		seg.Release()
		if err != nil || !more {
			return end, err
		}
		pos = end
	}
}

// scanSegment is scanTo within one file; more reports whether the scan
// goes on in the next file.
func (c *commitLog) scanSegment(seg *segment.Segment, pos, to int64, verify bool, buf *[]byte, fn func(scanned)) (end int64, more bool, err error) {
	off := pos - seg.Base()
	rest := seg.Size() - off
	data := seg.View(off, rest)
	if data == nil {
		if int64(cap(*buf)) < rest {
			*buf = make([]byte, rest)
		}
		data = (*buf)[:rest]
		if err := seg.ReadAt(data, off); err != nil {
			return pos, false, errors.Join(ErrStorage, err)
		}
	}
	for len(data) > 0 {
		if pos >= to {
			return pos, false, nil
		}
		h, batch, err := decodeEntry(data)
		if errors.Is(err, errEndOfData) && len(data) < minEntrySize {
			break // a tail too short for padding: the file is full
		}
		if err != nil {
			return pos, false, nil
		}
		if h.typ == entryTypePadding {
			break
		}
		if _, err := record.ParseHeader(batch); err != nil || (verify && !batchCRCValid(batch)) {
			return pos, false, nil
		}
		fn(scanned{pos: pos, batchPos: pos + int64(len(data[:h.length])-len(batch)), header: h, batch: batch})
		pos += int64(h.length)
		data = data[h.length:]
	}
	next := seg.Base() + seg.Size()
	if next >= to {
		return to, false, nil
	}
	return next, true, nil
}

// cut discards everything from pos on: the rest of its file is zeroed so
// stale bytes can never be read as entries after a later crash, and later
// files are deleted.
func (c *commitLog) cut(pos int64) error {
	if _, err := c.queue.RemoveFrom(pos); err != nil {
		return errors.Join(ErrStorage, err)
	}
	if last := c.queue.Last(); last != nil && pos < last.Base()+last.Size() {
		off := pos - last.Base()
		if err := last.Zero(off, last.Size()-off); err != nil {
			return errors.Join(ErrStorage, err)
		}
	}
	c.written.Store(pos)
	c.synced.Store(pos)
	return nil
}

// batchCRCValid reports whether a stored batch's length and CRC32C hold;
// recovery checks it because the entry checksum stops at the batch CRC.
func batchCRCValid(batch []byte) bool {
	if len(batch) < record.HeaderSize || int64(binary.BigEndian.Uint32(batch[8:]))+12 != int64(len(batch)) {
		return false
	}
	return crc32.Checksum(batch[batchCRCEnd:], castagnoli) == binary.BigEndian.Uint32(batch[17:])
}

func (c *commitLog) close() error {
	return c.queue.Close()
}
