package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	iofs "io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/rocketkafka/broker/segment"
)

// Defaults for OpenKeyIndex, RocketMQ's: a file of 4 KiB + 20 MB of slots
// + 880 MB of entries.
const (
	DefaultKeySlots          = 5_000_000
	DefaultKeyEntriesPerFile = 20_000_000
)

// Layout of an IndexFile; see the package documentation.
const (
	keyEntrySize  = 44
	keyHeaderSize = 64
	keyHeaderCopy = 512        // offset of the second header copy
	keySlotsOff   = 4096       // the slot table starts on its own page
	keyMagic      = 0x524b4958 // "RKIX"
	keyVersion    = 1
	keyFlagClean  = 1 // every write the header counts is durable, and none follows

	// keyTailEntries is how many entries the write-behind tail holds
	// (22 KiB): Add writes them out with one pwritev.
	keyTailEntries = 512
	// keyBlockSlots is the granularity at which Sync writes changed slots:
	// one 4 KiB page of the table.
	keyBlockSlots = 1024
	// keyRunBlocks bounds one write of consecutive changed blocks.
	keyRunBlocks = 64
	// keyWarmAhead is how many entries ahead replay loads slots.
	keyWarmAhead = 64
)

// zeroKeyTail is never written: flush points an iovec at it to clear what
// a failed flush may have left past the last entry.
var zeroKeyTail [keyTailEntries * keyEntrySize]byte

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// KeyHash is the 64-bit hash under which a record key is indexed: FNV-1a
// 64 over the 16 bytes of the topic ID and then the key, passed through
// MurmurHash3's 64-bit finalizer so that every bit of it reaches the low
// bits that pick the slot. 0 is reserved for empty entries and becomes 1.
// It is part of the on-disk format: changing it orphans every IndexFile.
func KeyHash(topicID [16]byte, key []byte) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for _, c := range topicID {
		h ^= uint64(c)
		h *= prime64
	}
	for _, c := range key {
		h ^= uint64(c)
		h *= prime64
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	if h == 0 {
		h = 1
	}
	return h
}

// KeyEntry is one indexed record key.
type KeyEntry struct {
	Hash      uint64 // KeyHash of (topic, key); never 0
	Partition int32
	Offset    int64 // Kafka offset of the record
	Timestamp int64 // record timestamp, ms
	Pos       int64 // CommitLog position of the batch holding the record
}

func putKeyEntry(b []byte, e *KeyEntry, prev, seed uint32) {
	_ = b[keyEntrySize-1]
	binary.BigEndian.PutUint64(b[0:], e.Hash)
	binary.BigEndian.PutUint32(b[8:], uint32(e.Partition))
	binary.BigEndian.PutUint64(b[12:], uint64(e.Offset))
	binary.BigEndian.PutUint64(b[20:], uint64(e.Timestamp))
	binary.BigEndian.PutUint64(b[28:], uint64(e.Pos))
	binary.BigEndian.PutUint32(b[36:], prev)
	binary.BigEndian.PutUint32(b[40:], crc32.Update(seed, castagnoli, b[:40]))
}

// getKeyEntry decodes an entry and its link to the previous entry of its
// slot (that entry's number in the file plus one, 0 for none).
func getKeyEntry(b []byte) (KeyEntry, uint32) {
	_ = b[keyEntrySize-1]
	return KeyEntry{
		Hash:      binary.BigEndian.Uint64(b[0:]),
		Partition: int32(binary.BigEndian.Uint32(b[8:])),
		Offset:    int64(binary.BigEndian.Uint64(b[12:])),
		Timestamp: int64(binary.BigEndian.Uint64(b[20:])),
		Pos:       int64(binary.BigEndian.Uint64(b[28:])),
	}, binary.BigEndian.Uint32(b[36:])
}

// epochSeed is the CRC-32C of the epoch's 4 big-endian bytes: entry
// checksums continue from it, so they cover the epoch without storing it.
func epochSeed(epoch uint32) uint32 {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], epoch)
	return crc32.Checksum(b[:], castagnoli)
}

// keyHeader is one copy of an IndexFile's header.
type keyHeader struct {
	flags          uint16
	seq            uint32 // the valid copy with the later seq is current
	epoch          uint32 // seeds the checksums of entries past count
	slots          uint32
	capacity       uint32
	count          uint32
	minTs, maxTs   int64
	minPos, maxPos int64
}

func (h *keyHeader) encode(b []byte) {
	_ = b[keyHeaderSize-1]
	binary.BigEndian.PutUint32(b[0:], keyMagic)
	binary.BigEndian.PutUint16(b[4:], keyVersion)
	binary.BigEndian.PutUint16(b[6:], h.flags)
	binary.BigEndian.PutUint32(b[8:], h.seq)
	binary.BigEndian.PutUint32(b[12:], h.epoch)
	binary.BigEndian.PutUint32(b[16:], h.slots)
	binary.BigEndian.PutUint32(b[20:], h.capacity)
	binary.BigEndian.PutUint32(b[24:], h.count)
	binary.BigEndian.PutUint64(b[28:], uint64(h.minTs))
	binary.BigEndian.PutUint64(b[36:], uint64(h.maxTs))
	binary.BigEndian.PutUint64(b[44:], uint64(h.minPos))
	binary.BigEndian.PutUint64(b[52:], uint64(h.maxPos))
	binary.BigEndian.PutUint32(b[60:], crc32.Checksum(b[:60], castagnoli))
}

func decodeKeyHeader(b []byte) (keyHeader, bool) {
	_ = b[keyHeaderSize-1]
	if binary.BigEndian.Uint32(b[0:]) != keyMagic || binary.BigEndian.Uint16(b[4:]) != keyVersion ||
		binary.BigEndian.Uint32(b[60:]) != crc32.Checksum(b[:60], castagnoli) {
		return keyHeader{}, false
	}
	h := keyHeader{
		flags:    binary.BigEndian.Uint16(b[6:]),
		seq:      binary.BigEndian.Uint32(b[8:]),
		epoch:    binary.BigEndian.Uint32(b[12:]),
		slots:    binary.BigEndian.Uint32(b[16:]),
		capacity: binary.BigEndian.Uint32(b[20:]),
		count:    binary.BigEndian.Uint32(b[24:]),
		minTs:    int64(binary.BigEndian.Uint64(b[28:])),
		maxTs:    int64(binary.BigEndian.Uint64(b[36:])),
		minPos:   int64(binary.BigEndian.Uint64(b[44:])),
		maxPos:   int64(binary.BigEndian.Uint64(b[52:])),
	}
	if h.slots == 0 || h.capacity == 0 || h.capacity == math.MaxUint32 || h.count > h.capacity {
		return keyHeader{}, false
	}
	return h, true
}

// sameState reports whether h and o record the same state (seq aside).
func (h keyHeader) sameState(o keyHeader) bool {
	h.seq = o.seq
	return h == o
}

func keyFileSize(slots uint64, capacity int64) int64 {
	return keySlotsOff + int64(slots)*4 + capacity*keyEntrySize
}

// keyFile is one IndexFile. Entry numbers inside it (local, from 0) are
// what the slots and the chain links hold, plus one.
type keyFile struct {
	seg     *segment.Segment
	base    int64 // number of its first entry across the index: its name
	slots   uint64
	cap     int64
	entries int64 // byte offset of entry 0

	n       atomic.Int64 // entries published: readable through the slots
	flushed atomic.Int64 // entries below it are in the file; stored under mu
	// Bounds of the entries' timestamps and positions; widened before an
	// entry is published.
	minTs, maxTs, minPos, maxPos atomic.Int64

	// mem is the slot table while the file takes entries, and until a Sync
	// has written the table of a full file out; nil afterwards, when the
	// table is read from the file. Elements are accessed atomically except
	// by the appender's own reads.
	mem atomic.Pointer[[]uint32]

	mu   sync.RWMutex
	tail []byte // entries [flushed, n), and the one being added

	// Under KeyIndex.wmu.
	seed     uint32   // checksum seed of the epoch this process writes with
	dirty    []uint64 // bitmap of slot blocks changed since a Sync took it
	dirtyAny bool
	junkEnd  int64 // a failed flush may have left entries [n, junkEnd) in the file

	// Under KeyIndex.syncMu.
	spare       []uint64  // a cleared bitmap for the next Sync to swap in
	hdr         keyHeader // the last header written
	sealPending bool      // a clean header is written, not yet synced
	done        bool      // a clean header is durable: nothing left to do
}

func newKeyFile(seg *segment.Segment, base int64, slots uint64, capacity int64) *keyFile {
	f := &keyFile{seg: seg, base: base, slots: slots, cap: capacity, entries: keySlotsOff + int64(slots)*4}
	f.minTs.Store(math.MaxInt64)
	f.maxTs.Store(math.MinInt64)
	f.minPos.Store(math.MaxInt64)
	f.maxPos.Store(math.MinInt64)
	return f
}

// header returns the header describing entries [0, count).
func (f *keyFile) header(count int64, flags uint16) keyHeader {
	return keyHeader{
		flags:    flags,
		epoch:    f.hdr.epoch,
		slots:    uint32(f.slots),
		capacity: uint32(f.cap),
		count:    uint32(count),
		minTs:    f.minTs.Load(),
		maxTs:    f.maxTs.Load(),
		minPos:   f.minPos.Load(),
		maxPos:   f.maxPos.Load(),
	}
}

// writeHeader writes h into the copy the current header is not in, so a
// torn write leaves the current one intact.
func (f *keyFile) writeHeader(h keyHeader) error {
	h.seq = f.hdr.seq + 1
	var b [keyHeaderSize]byte
	h.encode(b[:])
	if err := f.seg.WriteAt([][]byte{b[:]}, int64(h.seq%2)*keyHeaderCopy); err != nil {
		return err
	}
	f.hdr = h
	return nil
}

// widen extends the bounds to cover e.
func (f *keyFile) widen(e *KeyEntry) {
	if e.Timestamp < f.minTs.Load() {
		f.minTs.Store(e.Timestamp)
	}
	if e.Timestamp > f.maxTs.Load() {
		f.maxTs.Store(e.Timestamp)
	}
	if e.Pos < f.minPos.Load() {
		f.minPos.Store(e.Pos)
	}
	if e.Pos > f.maxPos.Load() {
		f.maxPos.Store(e.Pos)
	}
}

// activate makes f the file that takes entries, holding n of them and
// the slot table tbl. A new epoch is made durable first: entries a
// previous process wrote past n (unsynced, maybe torn) carry an older
// epoch, so they can never pass for entries of this one after a crash.
func (f *keyFile) activate(n int64, tbl []uint32, sync bool) error {
	f.hdr.epoch++
	f.seed = epochSeed(f.hdr.epoch)
	if err := f.writeHeader(f.header(n, 0)); err != nil {
		return err
	}
	if sync {
		if err := f.seg.Sync(); err != nil {
			return err
		}
	}
	f.tail = make([]byte, keyTailEntries*keyEntrySize)
	words := ((f.slots+keyBlockSlots-1)/keyBlockSlots + 63) / 64
	f.dirty = make([]uint64, words)
	f.flushed.Store(n)
	f.n.Store(n)
	f.mem.Store(&tbl)
	return nil
}

// KeyIndex finds records by key: a directory of IndexFiles, each a hash
// table of slots whose chains of fixed-size entries are appended in order.
// Files are named by the number of their first entry and rolled when
// full; only the last takes entries. It takes one appender and any number
// of concurrent readers.
type KeyIndex struct {
	fs         segment.FS
	dir        string
	slots      int
	maxEntries int

	// files is an immutable snapshot, ascending by base, replaced whole
	// under wmu.
	files  atomic.Pointer[[]*keyFile]
	total  atomic.Int64
	closed atomic.Bool

	// syncMu serializes Sync, RemoveBefore and Close: the writing of slot
	// tables and headers, and file removal. Taken before wmu.
	syncMu  sync.Mutex
	scratch []byte // under syncMu

	// wmu serializes the appender with the parts of the others that touch
	// its state.
	wmu    sync.Mutex
	active *keyFile // the last file, under wmu
	iov    [2][]byte
}

// OpenKeyIndex opens (creating if needed) the index in dir. New files get
// slots slots and hold maxEntries entries (0 selects DefaultKeySlots and
// DefaultKeyEntriesPerFile); existing files keep the geometry they were
// created with. Files not closed cleanly are recovered: every entry that
// was synced is kept, anything after the last entry written whole is cut.
func OpenKeyIndex(fs segment.FS, dir string, slots, maxEntries int) (*KeyIndex, error) {
	return openKeyIndex(fs, dir, slots, maxEntries, -1)
}

// OpenKeyIndexAt is OpenKeyIndex keeping exactly the entries before end,
// an End recorded after a Sync (by a checkpoint): entries after it are
// cut, so that the caller can index again what came after the checkpoint
// without duplicates, and without entries pointing at CommitLog bytes
// that recovery cut. If the index holds fewer entries than end, which a
// Sync before the End rules out, the error wraps ErrCorrupt.
func OpenKeyIndexAt(fs segment.FS, dir string, slots, maxEntries int, end int64) (*KeyIndex, error) {
	if end < 0 {
		return nil, fmt.Errorf("index: invalid key index end %d", end)
	}
	return openKeyIndex(fs, dir, slots, maxEntries, end)
}

func openKeyIndex(fsys segment.FS, dir string, slots, maxEntries int, end int64) (*KeyIndex, error) {
	if slots == 0 {
		slots = DefaultKeySlots
	}
	if maxEntries == 0 {
		maxEntries = DefaultKeyEntriesPerFile
	}
	if slots < 0 || uint64(slots) > math.MaxUint32 || maxEntries < 0 || uint64(maxEntries) >= math.MaxUint32 {
		return nil, fmt.Errorf("index: invalid key index geometry: %d slots, %d entries per file", slots, maxEntries)
	}
	if err := keyMkdirAll(fsys, dir); err != nil {
		return nil, err
	}
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	k := &KeyIndex{fs: fsys, dir: dir, slots: slots, maxEntries: maxEntries}
	var files []*keyFile
	var hdrs []keyHeader
	fail := func(err error) (*KeyIndex, error) {
		for _, f := range files {
			_ = f.seg.Close()
		}
		return nil, err
	}
	removed := false
	for _, name := range names {
		base, ok := segment.ParseName(name)
		if !ok {
			continue
		}
		path := filepath.Join(dir, name)
		h, ok, err := readKeyHeader(fsys, path)
		if err != nil {
			return fail(err)
		}
		// No valid header: the file was created but no Sync followed (a
		// Sync makes the header durable along with the first entries), so
		// it holds nothing that was synced. A file the checkpoint does not
		// reach goes too.
		if !ok || (end >= 0 && base >= end) {
			if err := fsys.Remove(path); err != nil {
				return fail(err)
			}
			removed = true
			continue
		}
		seg, err := segment.Open(fsys, dir, base, keyFileSize(uint64(h.slots), int64(h.capacity)))
		if errors.Is(err, segment.ErrCorrupt) {
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if err != nil {
			return fail(err)
		}
		f := newKeyFile(seg, base, uint64(h.slots), int64(h.capacity))
		if n := len(files); n > 0 && base < files[n-1].base+files[n-1].cap {
			files = append(files, f)
			return fail(fmt.Errorf("%w: %s overlaps the file before it", ErrCorrupt, path))
		}
		files = append(files, f)
		hdrs = append(hdrs, h)
	}
	if removed {
		if err := fsys.SyncDir(dir); err != nil {
			return fail(err)
		}
	}
	if end > 0 && len(files) == 0 {
		return fail(fmt.Errorf("%w: %s: %d entries expected, no files", ErrCorrupt, dir, end))
	}
	for i, f := range files {
		limit := int64(-1)
		if last := i == len(files)-1; last && end >= 0 {
			limit = end - f.base
		}
		if err := f.recover(fsys, hdrs[i], i == len(files)-1, limit); err != nil {
			return fail(err)
		}
		k.total.Add(f.n.Load())
	}
	k.files.Store(&files)
	if len(files) > 0 {
		k.active = files[len(files)-1]
	}
	return k, nil
}

// keyMkdirAll creates dir and its missing parents, syncing each parent so
// that the new entries survive a crash.
func keyMkdirAll(fsys segment.FS, dir string) error {
	_, err := fsys.Stat(dir)
	if err == nil || !errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := keyMkdirAll(fsys, parent); err != nil {
			return err
		}
	}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return fsys.SyncDir(parent)
}

// readKeyHeader returns the current header of the file at path, or false
// if neither copy is valid.
func readKeyHeader(fsys segment.FS, path string) (keyHeader, bool, error) {
	fh, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return keyHeader{}, false, err
	}
	defer fh.Close()
	var b [keyHeaderCopy + keyHeaderSize]byte
	// A short file (its preallocation lost) reads as zeros past its end.
	if _, err := fh.ReadAt(b[:], 0); err != nil && err != io.EOF {
		return keyHeader{}, false, err
	}
	h0, ok0 := decodeKeyHeader(b[:keyHeaderSize])
	h1, ok1 := decodeKeyHeader(b[keyHeaderCopy:])
	switch {
	case ok0 && ok1:
		if h0.slots != h1.slots || h0.capacity != h1.capacity {
			return keyHeader{}, false, fmt.Errorf("%w: %s: header copies disagree on the geometry", ErrCorrupt, path)
		}
		if int32(h1.seq-h0.seq) > 0 {
			return h1, true, nil
		}
		return h0, true, nil
	case ok0:
		return h0, true, nil
	case ok1:
		return h1, true, nil
	}
	return keyHeader{}, false, nil
}

// recover establishes how many entries f holds from its current header h
// and, if f is the last file, makes it take entries unless it is full.
// limit, if not negative, is how many entries to keep (OpenKeyIndexAt).
//
// A clean header is trusted. Otherwise the slot table on disk is not:
// Sync writes its changed pages before the fdatasync that makes the
// entries durable, and a crash keeps any subset of them, torn. So the
// entries are replayed from the first to rebuild the table (see replay),
// which also finds the real end, and the table is written back.
func (f *keyFile) recover(fsys segment.FS, h keyHeader, last bool, limit int64) error {
	f.hdr = h
	clean := h.flags&keyFlagClean != 0
	n := int64(h.count)
	if limit > n && clean {
		return fmt.Errorf("%w: %s: %d entries expected, %d there", ErrCorrupt, f.seg.Path(), limit, n)
	}
	var tbl []uint32
	if clean && (limit < 0 || limit == n) {
		f.minTs.Store(h.minTs)
		f.maxTs.Store(h.maxTs)
		f.minPos.Store(h.minPos)
		f.maxPos.Store(h.maxPos)
		f.n.Store(n)
		f.flushed.Store(n)
		if !last || n == f.cap {
			f.done = true
			return nil
		}
		var err error
		if tbl, err = f.loadSlots(fsys); err != nil {
			return err
		}
	} else {
		var err error
		if tbl, n, err = f.replay(fsys, h, limit); err != nil {
			return err
		}
		if limit > n {
			return fmt.Errorf("%w: %s: %d entries expected, %d recovered", ErrCorrupt, f.seg.Path(), limit, n)
		}
		f.n.Store(n)
		f.flushed.Store(n)
		if err := f.writeTable(tbl); err != nil {
			return err
		}
		if !last || n == f.cap {
			// Sealed: the rebuilt table must be durable before the clean
			// header that vouches for it.
			if err := f.seg.Sync(); err != nil {
				return err
			}
			if err := f.writeHeader(f.header(n, keyFlagClean)); err != nil {
				return err
			}
			if err := f.seg.Sync(); err != nil {
				return err
			}
			f.done = true
			return nil
		}
	}
	// The new epoch's header is synced before any entry is written with
	// it (so an epoch is never reused), and it clears the clean flag, so
	// a crash from here on makes the next open replay.
	return f.activate(n, tbl, true)
}

// replay reads the entries in order, rebuilding the slot table as Add
// built it, and returns it with the number of entries that belong to the
// file. Entry i belongs if its hash is not 0 and its link equals the slot
// as rebuilt so far; past the header's count (entries that were not
// synced) its checksum must also verify with the header's epoch, which
// rejects torn entries and stale ones from before the last open. The
// first entry that fails ends the file there; one below the count is
// corruption. limit, if not negative, stops the replay early.
func (f *keyFile) replay(fsys segment.FS, h keyHeader, limit int64) ([]uint32, int64, error) {
	tbl := make([]uint32, f.slots)
	synced := int64(h.count)
	seed := epochSeed(h.epoch)
	end := f.cap
	if limit >= 0 {
		end = min(end, limit)
	}
	r, err := openSeqReader(fsys, f.seg.Path(), f.entries, end*keyEntrySize, keyEntrySize)
	if err != nil {
		return nil, 0, err
	}
	defer r.close()
	i := int64(0)
	var sink uint32
	for ; i < end; i++ {
		if i%keyWarmAhead == 0 {
			// Load the slots of the next entries first: independent loads,
			// whose cache misses overlap, where the checks below would
			// take them one at a time. Twice as fast over a large table.
			for k := range keyWarmAhead {
				b, ok := r.peek(k)
				if !ok {
					break
				}
				sink += tbl[binary.BigEndian.Uint64(b)%f.slots]
			}
		}
		b, err := r.next()
		if err != nil {
			return nil, 0, err
		}
		e, prev := getKeyEntry(b)
		s := e.Hash % f.slots
		ok := e.Hash != 0 && prev == tbl[s]
		if ok && i >= synced {
			ok = binary.BigEndian.Uint32(b[40:]) == crc32.Update(seed, castagnoli, b[:40])
		}
		if !ok {
			if i < synced {
				return nil, 0, fmt.Errorf("%w: %s: synced entry %d of %d is damaged", ErrCorrupt, f.seg.Path(), i, synced)
			}
			break
		}
		tbl[s] = uint32(i + 1)
		f.widen(&e)
	}
	runtime.KeepAlive(sink) // keeps the loads
	return tbl, i, nil
}

// seqReader reads fixed-size records in order with large preads, on a
// descriptor of its own: a first pass over a file through the mapping
// would take a page fault per 4 KiB.
type seqReader struct {
	f        segment.File
	buf      []byte
	off, end int64 // file offsets: of buf[len(buf)], and of the end
	rec      int
	at       int // next record in buf
}

func openSeqReader(fsys segment.FS, path string, off, n int64, rec int) (*seqReader, error) {
	fh, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	const chunk = 1 << 20
	return &seqReader{f: fh, buf: make([]byte, 0, chunk-chunk%rec), off: off, end: off + n, rec: rec}, nil
}

// next returns the next record, valid until the following call.
func (r *seqReader) next() ([]byte, error) {
	if r.at+r.rec > len(r.buf) {
		m := min(int64(cap(r.buf)), r.end-r.off)
		if m < int64(r.rec) {
			return nil, io.ErrUnexpectedEOF
		}
		r.buf = r.buf[:m]
		if n, err := r.f.ReadAt(r.buf, r.off); n != len(r.buf) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		r.off += m
		r.at = 0
	}
	b := r.buf[r.at : r.at+r.rec]
	r.at += r.rec
	return b, nil
}

// peek returns the record k after the next one if it is already read.
func (r *seqReader) peek(k int) ([]byte, bool) {
	at := r.at + k*r.rec
	if at+r.rec > len(r.buf) {
		return nil, false
	}
	return r.buf[at : at+r.rec], true
}

func (r *seqReader) close() { _ = r.f.Close() }

// loadSlots reads the slot table of a cleanly closed file.
func (f *keyFile) loadSlots(fsys segment.FS) ([]uint32, error) {
	r, err := openSeqReader(fsys, f.seg.Path(), keySlotsOff, int64(f.slots)*4, 4)
	if err != nil {
		return nil, err
	}
	defer r.close()
	tbl := make([]uint32, f.slots)
	for s := range tbl {
		b, err := r.next()
		if err != nil {
			return nil, err
		}
		tbl[s] = binary.BigEndian.Uint32(b)
	}
	return tbl, nil
}

// writeTable writes the whole slot table tbl into the file.
func (f *keyFile) writeTable(tbl []uint32) error {
	buf := make([]byte, min(int64(f.slots), keyRunBlocks*keyBlockSlots)*4)
	for lo := uint64(0); lo < f.slots; {
		hi := min(f.slots, lo+uint64(len(buf))/4)
		b := buf[:(hi-lo)*4]
		for s := lo; s < hi; s++ {
			binary.BigEndian.PutUint32(b[(s-lo)*4:], tbl[s])
		}
		if err := f.seg.WriteAt([][]byte{b}, keySlotsOff+int64(lo)*4); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

// Add indexes e in the last file, rolling to a new one when it is full.
// The entry is in a write-behind tail, visible to Lookup, when Add
// returns; the tail goes to the file with one pwritev every
// keyTailEntries entries, and on Sync and Close. An error leaves the
// index as it was.
func (k *KeyIndex) Add(e KeyEntry) error {
	if e.Hash == 0 || e.Partition < 0 || e.Offset < 0 || e.Pos < 0 {
		return fmt.Errorf("%w: key hash %#x, partition %d, offset %d, pos %d",
			ErrInvalid, e.Hash, e.Partition, e.Offset, e.Pos)
	}
	k.wmu.Lock()
	defer k.wmu.Unlock()
	if k.closed.Load() {
		return segment.ErrClosed
	}
	f := k.active
	if f == nil || f.n.Load() == f.cap {
		var err error
		if f, err = k.roll(); err != nil {
			return err
		}
	}
	tbl := *f.mem.Load()
	i := f.n.Load()
	s := e.Hash % f.slots
	putKeyEntry(f.tail[(i-f.flushed.Load())*keyEntrySize:], &e, tbl[s], f.seed)
	f.widen(&e) // before publishing: a reader that finds e finds the file
	if (i+1)%keyTailEntries == 0 || i+1 == f.cap {
		if err := k.flush(f, i+1); err != nil {
			return err
		}
	} else {
		f.n.Store(i + 1)
	}
	// After the entry is readable: a reader that finds it in the slot can
	// read it.
	atomic.StoreUint32(&tbl[s], uint32(i+1))
	b := s / keyBlockSlots
	f.dirty[b/64] |= 1 << (b % 64)
	f.dirtyAny = true
	k.total.Add(1)
	return nil
}

// roll creates the next file and makes it the one that takes entries. Its
// header is not synced: until a Sync does, the file holds nothing synced
// either, and a reopen removes it for want of a header. Callers hold wmu.
func (k *KeyIndex) roll() (*keyFile, error) {
	files := *k.files.Load()
	var base int64
	if n := len(files); n > 0 {
		base = files[n-1].base + files[n-1].cap
	}
	slots, capacity := uint64(k.slots), int64(k.maxEntries)
	seg, err := segment.Create(k.fs, k.dir, base, keyFileSize(slots, capacity))
	if err != nil {
		return nil, err
	}
	f := newKeyFile(seg, base, slots, capacity)
	if err := f.activate(0, make([]uint32, slots), false); err != nil {
		_ = seg.Remove()
		return nil, err
	}
	next := append(slices.Clip(files), f)
	k.files.Store(&next)
	k.active = f
	return f, nil
}

// flush writes entries [flushed, end) from f's tail to the file with one
// pwritev, then publishes end as both flushed and n. On failure neither
// moves and the tail keeps its entries. Callers hold wmu.
func (k *KeyIndex) flush(f *keyFile, end int64) error {
	from := f.flushed.Load()
	iov := k.iov[:1]
	iov[0] = f.tail[:(end-from)*keyEntrySize]
	if f.junkEnd > end {
		iov = k.iov[:2]
		iov[1] = zeroKeyTail[:(f.junkEnd-end)*keyEntrySize]
	}
	err := f.seg.WriteAt(iov, f.entries+from*keyEntrySize)
	k.iov = [2][]byte{}
	if err != nil {
		f.junkEnd = max(f.junkEnd, end)
		return err
	}
	f.junkEnd = 0
	// Under the lock: readers inside the tail finish before the appender
	// can reuse its first slot, and later ones find the entries in the file.
	f.mu.Lock()
	f.flushed.Store(end)
	f.n.Store(end)
	f.mu.Unlock()
	return nil
}

// flushTail writes out whatever the tail holds. Callers hold wmu.
func (k *KeyIndex) flushTail() error {
	f := k.active
	if f == nil {
		return nil
	}
	if n := f.n.Load(); f.flushed.Load() < n || f.junkEnd > n {
		return k.flush(f, n)
	}
	return nil
}

// Lookup calls fn with every entry of hash whose timestamp is in [from,
// to], newest first: the files whose timestamps overlap the range, the
// newest first, and in each the chain of the hash's slot. Entries of other
// keys with the same 64-bit hash come too: the caller compares the key of
// the record it reads at Pos. It stops after limit entries (limit <= 0:
// no limit) or when fn returns false. It allocates nothing when the files
// are mapped, and runs concurrently with Add.
//
// The chain holds every key of the slot in the order they were added, and
// record timestamps need not increase, so the walk cannot stop at the
// first entry older than from: a narrow range over a hot key walks its
// whole chain in each overlapping file.
func (k *KeyIndex) Lookup(hash uint64, from, to int64, limit int, fn func(KeyEntry) bool) error {
	if k.closed.Load() {
		return segment.ErrClosed
	}
	if from > to {
		return nil
	}
	files := *k.files.Load()
	left := limit
	for i := len(files) - 1; i >= 0; i-- {
		more, err := files[i].lookup(hash, from, to, &left, fn)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// lookup walks the chain of hash in f; false means stop.
func (f *keyFile) lookup(hash uint64, from, to int64, left *int, fn func(KeyEntry) bool) (bool, error) {
	if f.n.Load() == 0 || f.maxTs.Load() < from || f.minTs.Load() > to {
		return true, nil
	}
	if !f.seg.Acquire() {
		return true, nil // deleted by retention meanwhile
	}
	defer f.seg.Release()
	v := f.seg.View(0, f.seg.Size())
	s := hash % f.slots
	var next uint32
	if m := f.mem.Load(); m != nil {
		next = atomic.LoadUint32(&(*m)[s])
	} else {
		off := keySlotsOff + int64(s)*4
		if v != nil {
			next = binary.BigEndian.Uint32(v[off:])
		} else {
			var b [4]byte
			if err := f.seg.ReadAt(b[:], off); err != nil {
				return false, err
			}
			next = binary.BigEndian.Uint32(b[:])
		}
	}
	n := f.n.Load() // loaded after the slot: it covers what the slot points at
	for next != 0 {
		j := int64(next - 1)
		if j >= n {
			return false, fmt.Errorf("%w: %s: chain reaches entry %d of %d", ErrCorrupt, f.seg.Path(), j, n)
		}
		e, prev, err := f.entry(v, j)
		if err != nil {
			return false, err
		}
		if prev >= next {
			return false, fmt.Errorf("%w: %s: entry %d links forward to %d", ErrCorrupt, f.seg.Path(), j, int64(prev)-1)
		}
		if e.Hash == hash && e.Timestamp >= from && e.Timestamp <= to {
			if !fn(e) {
				return false, nil
			}
			if *left > 0 {
				if *left--; *left == 0 {
					return false, nil
				}
			}
		}
		next = prev
	}
	return true, nil
}

// entry returns published entry j of f and its link, from the tail or from
// the file (v, the mapping of the whole file, if it is mapped).
func (f *keyFile) entry(v []byte, j int64) (KeyEntry, uint32, error) {
	if j >= f.flushed.Load() {
		if e, prev, ok := f.readTail(j); ok {
			return e, prev, nil
		}
	}
	off := f.entries + j*keyEntrySize
	if v != nil {
		e, prev := getKeyEntry(v[off:])
		return e, prev, nil
	}
	var b [keyEntrySize]byte
	if err := f.seg.ReadAt(b[:], off); err != nil {
		return KeyEntry{}, 0, err
	}
	e, prev := getKeyEntry(b[:])
	return e, prev, nil
}

// readTail returns entry j from the tail, or false if a flush moved it to
// the file meanwhile.
func (f *keyFile) readTail(j int64) (KeyEntry, uint32, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fl := f.flushed.Load()
	if j < fl || j >= f.n.Load() {
		return KeyEntry{}, 0, false
	}
	e, prev := getKeyEntry(f.tail[(j-fl)*keyEntrySize:])
	return e, prev, true
}

// End returns the number the next entry will get: entries are numbered
// across the files, from the first file's name, with gaps where a file
// holds fewer entries than it could. Recorded after a Sync, it is what
// OpenKeyIndexAt takes.
func (k *KeyIndex) End() int64 {
	k.wmu.Lock()
	defer k.wmu.Unlock()
	files := *k.files.Load()
	if len(files) == 0 {
		return 0
	}
	f := files[len(files)-1]
	return f.base + f.n.Load()
}

// keySync is one file's share of a Sync, taken under wmu.
type keySync struct {
	f     *keyFile
	dirty []uint64 // slot blocks to write, or nil
	h     keyHeader
}

// snapshot takes f's changed slot blocks and the header that describes
// its entries now. Callers hold syncMu and wmu, with the tail flushed.
func (k *KeyIndex) snapshot(f *keyFile) keySync {
	j := keySync{f: f, h: f.header(f.n.Load(), 0)}
	if f.dirtyAny {
		j.dirty = f.dirty
		if f.spare == nil {
			f.spare = make([]uint64, len(f.dirty))
		}
		f.dirty, f.spare, f.dirtyAny = f.spare, nil, false
	}
	return j
}

// Sync makes every entry added so far durable: it writes the tail and the
// changed slot blocks, fdatasyncs, and then records the count in the
// header (which the next Sync makes durable). Add waits only for the tail
// write, not for the slot writes or the fdatasync.
func (k *KeyIndex) Sync() error {
	k.syncMu.Lock()
	defer k.syncMu.Unlock()
	k.wmu.Lock()
	if k.closed.Load() {
		k.wmu.Unlock()
		return segment.ErrClosed
	}
	err := k.flushTail()
	var jobs []keySync
	if err == nil {
		for _, f := range *k.files.Load() {
			if !f.done {
				jobs = append(jobs, k.snapshot(f))
			}
		}
	}
	k.wmu.Unlock()
	if err != nil {
		return err
	}
	for i := range jobs {
		if err := k.syncFile(&jobs[i], false); err != nil {
			// Give back the blocks it may not have written.
			k.wmu.Lock()
			for _, j := range jobs[i:] {
				if j.dirty != nil {
					for w, bits := range j.dirty {
						j.f.dirty[w] |= bits
					}
					j.f.dirtyAny = true
				}
			}
			k.wmu.Unlock()
			return err
		}
	}
	return nil
}

// syncFile writes j's slot blocks, fdatasyncs and writes the header. A
// full file gets a clean header, and stops being synced once that header
// is durable; closing gives every file a clean header, synced. Callers
// hold syncMu.
func (k *KeyIndex) syncFile(j *keySync, closing bool) error {
	f := j.f
	if j.dirty != nil {
		if err := k.writeSlots(f, j.dirty); err != nil {
			return err
		}
		clear(j.dirty)
		f.spare, j.dirty = j.dirty, nil
	}
	full := int64(j.h.count) == f.cap
	if full {
		// No Add changes the table of a full file: once written, it is
		// read from the file.
		f.mem.Store(nil)
	}
	if err := f.seg.Sync(); err != nil {
		return err
	}
	if f.sealPending {
		f.sealPending, f.done = false, true
		return nil
	}
	h := j.h
	if full || closing {
		h.flags |= keyFlagClean
	}
	if h.sameState(f.hdr) {
		return nil
	}
	if err := f.writeHeader(h); err != nil {
		return err
	}
	if closing {
		return f.seg.Sync()
	}
	f.sealPending = full
	return nil
}

// writeSlots writes the slot blocks set in dirty, a run of consecutive
// blocks per pwritev. Values are read atomically: the appender may be
// changing them, and a value newer than the header count is harmless (a
// recovery that does not find a clean header rebuilds the table).
// Callers hold syncMu.
func (k *KeyIndex) writeSlots(f *keyFile, dirty []uint64) error {
	m := f.mem.Load()
	if m == nil {
		return nil
	}
	tbl := *m
	if k.scratch == nil {
		k.scratch = make([]byte, keyRunBlocks*keyBlockSlots*4)
	}
	blocks := (f.slots + keyBlockSlots - 1) / keyBlockSlots
	bit := func(b uint64) bool { return dirty[b/64]&(1<<(b%64)) != 0 }
	for b := uint64(0); b < blocks; {
		if dirty[b/64] == 0 {
			b = (b/64 + 1) * 64
			continue
		}
		if !bit(b) {
			b++
			continue
		}
		e := b + 1
		for e < blocks && e-b < keyRunBlocks && bit(e) {
			e++
		}
		lo, hi := b*keyBlockSlots, min(e*keyBlockSlots, f.slots)
		buf := k.scratch[:(hi-lo)*4]
		for s := lo; s < hi; s++ {
			binary.BigEndian.PutUint32(buf[(s-lo)*4:], atomic.LoadUint32(&tbl[s]))
		}
		if err := f.seg.WriteAt([][]byte{buf}, keySlotsOff+int64(lo)*4); err != nil {
			return err
		}
		b = e
	}
	return nil
}

// RemoveBefore deletes the files whose newest entry is older than ts
// (retention), never the last one, and returns how many went. Timestamps
// need not increase along the index, so these need not be the oldest
// files. Lookups already inside a file finish reading it.
func (k *KeyIndex) RemoveBefore(ts int64) (int, error) {
	k.syncMu.Lock()
	defer k.syncMu.Unlock()
	k.wmu.Lock()
	if k.closed.Load() {
		k.wmu.Unlock()
		return 0, segment.ErrClosed
	}
	files := *k.files.Load()
	var keep, gone []*keyFile
	for i, f := range files {
		if i < len(files)-1 && f.maxTs.Load() < ts {
			gone = append(gone, f)
		} else {
			keep = append(keep, f)
		}
	}
	if len(gone) > 0 {
		// Unpublished first: new lookups stop finding the files.
		k.files.Store(&keep)
	}
	k.wmu.Unlock()
	var err error
	for _, f := range gone {
		k.total.Add(-f.n.Load())
		if rerr := f.seg.Remove(); err == nil {
			err = rerr
		}
	}
	if len(gone) > 0 {
		if serr := k.fs.SyncDir(k.dir); err == nil {
			err = serr
		}
	}
	return len(gone), err
}

// Stats returns the number of files and of entries they hold.
func (k *KeyIndex) Stats() (files int, entries int64) {
	return len(*k.files.Load()), k.total.Load()
}

// Close writes out the tail and every slot table, gives every file a
// clean header, syncs and closes the files. A reopen then trusts the
// files without reading their entries.
func (k *KeyIndex) Close() error {
	k.syncMu.Lock()
	defer k.syncMu.Unlock()
	k.wmu.Lock()
	defer k.wmu.Unlock()
	if k.closed.Load() {
		return segment.ErrClosed
	}
	err := k.flushTail()
	k.closed.Store(true)
	files := *k.files.Load()
	for _, f := range files {
		if err == nil && !f.done {
			j := k.snapshot(f)
			err = k.syncFile(&j, true)
		}
	}
	for _, f := range files {
		if cerr := f.seg.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
