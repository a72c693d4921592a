package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
	"sync/atomic"

	"github.com/rocketkafka/broker/record"
	"github.com/rocketkafka/broker/segment"
)

// commitLog is the one append-only log every partition writes to.
type commitLog struct {
	queue *segment.Queue

	mu      sync.Mutex // serialises appends and rolls
	hdr     []byte     // reusable entry header buffer, guarded by mu
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

// append writes one batch entry and returns the CommitLog position of the
// batch bytes and the end of the entry.
func (c *commitLog) append(topic string, id TopicID, partition int32, storeTime int64, batch []byte) (batchPos, end int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hdr = appendEntryHeader(c.hdr[:0], topic, id, partition, storeTime, batch)
	total := int64(len(c.hdr) + len(batch))
	size := c.queue.SegmentSize()
	if total > size {
		return 0, 0, fmt.Errorf("%w: entry of %d bytes exceeds the %d-byte CommitLog file", ErrTooLarge, total, size)
	}
	pos := c.written.Load()
	seg, err := c.queue.SegmentFor(pos)
	if err != nil {
		return 0, 0, errors.Join(ErrStorage, err)
	}
	off := pos - seg.Base()
	if off+total > size {
		// The entry does not fit: end this file with padding and roll.
		if rest := size - off; rest >= minEntrySize {
			if err := seg.WriteAt([][]byte{paddingMarker(int(rest))}, off); err != nil {
				return 0, 0, errors.Join(ErrStorage, err)
			}
		}
		pos = seg.Base() + size
		c.written.Store(pos)
		if seg, err = c.queue.SegmentFor(pos); err != nil {
			return 0, 0, errors.Join(ErrStorage, err)
		}
		off = 0
	}
	if err := seg.WriteAt([][]byte{c.hdr, batch}, off); err != nil {
		return 0, 0, errors.Join(ErrStorage, err)
	}
	end = pos + total
	c.written.Store(end)
	return pos + int64(len(c.hdr)), end, nil
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

// view returns n bytes at CommitLog position pos, from the mmap when it can
// and otherwise copied into a new buffer.
func (c *commitLog) view(pos, n int64) ([]byte, error) {
	seg := c.queue.Find(pos)
	if seg == nil || pos-seg.Base()+n > seg.Size() {
		return nil, fmt.Errorf("%w: no CommitLog data at %d+%d", ErrCorrupt, pos, n)
	}
	off := pos - seg.Base()
	if b := seg.View(off, n); b != nil {
		return b, nil
	}
	b := make([]byte, n)
	if err := seg.ReadAt(b, off); err != nil {
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
	var buf []byte
	for {
		seg := c.queue.Find(pos)
		if seg == nil {
			return pos, nil
		}
		off := pos - seg.Base()
		rest := seg.Size() - off
		data := seg.View(off, rest)
		if data == nil {
			if int64(cap(buf)) < rest {
				buf = make([]byte, rest)
			}
			data = buf[:rest]
			if err := seg.ReadAt(data, off); err != nil {
				return pos, errors.Join(ErrStorage, err)
			}
		}
		for len(data) > 0 {
			h, batch, err := decodeEntry(data)
			if errors.Is(err, errEndOfData) && len(data) < minEntrySize {
				break // a tail too short for padding: the file is full
			}
			if err != nil {
				return pos, nil
			}
			if h.typ == entryTypePadding {
				break
			}
			if _, err := record.ParseHeader(batch); err != nil || !batchCRCValid(batch) {
				return pos, nil
			}
			fn(scanned{pos: pos, batchPos: pos + int64(len(data[:h.length])-len(batch)), header: h, batch: batch})
			pos += int64(h.length)
			data = data[h.length:]
		}
		pos = seg.Base() + seg.Size()
	}
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
