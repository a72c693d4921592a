package segment

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

var (
	// ErrOutOfRange reports a position outside a segment or queue.
	ErrOutOfRange = errors.New("segment: position out of range")
	// ErrCorrupt reports files on disk that break the format; check with errors.Is.
	ErrCorrupt = errors.New("segment: corrupt")
	// ErrClosed reports use of a closed segment or queue.
	ErrClosed = errors.New("segment: closed")
)

const nameLen = 20

// Name returns the file name of the segment starting at base.
func Name(base int64) string {
	return fmt.Sprintf("%0*d", nameLen, base)
}

// ParseName is the inverse of Name; it rejects anything Name cannot produce.
func ParseName(name string) (int64, bool) {
	if len(name) != nameLen {
		return 0, false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return 0, false
		}
	}
	base, err := strconv.ParseInt(name, 10, 64)
	return base, err == nil
}

// Option configures how segments are opened; see MappedWrites.
type Option func(*options)

type options struct {
	mappedWrites bool
}

func makeOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// MappedWrites makes WriteAt and Zero copy into a writable shared mapping
// of the file instead of calling pwritev: one page fault per 4 KiB page
// instead of one syscall per write, which pays off for small writes such
// as the ConsumeQueue's 32-byte entries (the package documentation has the
// numbers, and why the CommitLog keeps pwritev).
//
// A store into a mapped page that has no disk block behind it raises
// SIGBUS when the filesystem is full, so a segment only writes through its
// mapping when the blocks are known to be reserved: it has a descriptor,
// fallocate did not fall back to a sparse file, the file was created at
// full size or, when opened, already was full size (fallocate is re-run
// over it to restore anything a crash lost), and the filesystem overwrites
// preallocated blocks in place (ext4, XFS, tmpfs; not copy-on-write ones).
// Otherwise it writes with pwritev as without the option; see
// Segment.MappedWrites.
func MappedWrites() Option {
	return func(o *options) { o.mappedWrites = true }
}

// Segment is one preallocated file of a logical byte space, starting at Base.
// Offsets taken by its methods are relative to the start of the file.
type Segment struct {
	fs   FS
	f    File
	path string
	base int64
	size int64
	// data is a shared mapping of the whole file, nil without one. It is
	// writable when mapped is set at open; View hands out read-only slices.
	data []byte
	// mapped: WriteAt and Zero copy into data. Set at open, cleared for
	// good if a copy faults.
	mapped atomic.Bool

	refs   atomic.Int32 // the owner's reference plus one per Acquire
	closed atomic.Bool  // the owner's reference is gone
	dirty  atomic.Bool  // written since the last Sync
	// syncMu makes a Sync that finds nothing dirty wait for one in flight,
	// so that every Sync returns only once earlier writes are durable.
	syncMu sync.Mutex
}

// Create creates {dir}/{Name(base)}, preallocated to size bytes of zeros and
// mapped when the file has a descriptor: read-only, or writable with
// MappedWrites.
func Create(fs FS, dir string, base, size int64, opts ...Option) (*Segment, error) {
	return create(fs, dir, base, size, makeOptions(opts))
}

func create(fs FS, dir string, base, size int64, o options) (*Segment, error) {
	if base < 0 || size <= 0 {
		return nil, fmt.Errorf("%w: base %d, size %d", ErrOutOfRange, base, size)
	}
	path := filepath.Join(dir, Name(base))
	f, err := fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	s, err := open(fs, f, path, base, size, true, o)
	if err == nil {
		// Until the directory entry is durable, synced data in the file is not.
		if err = fs.SyncDir(dir); err != nil {
			_ = s.Close()
		}
	}
	if err != nil {
		_ = fs.Remove(path)
		return nil, err
	}
	return s, nil
}

// Open opens the existing segment {dir}/{Name(base)}, extending it to size
// bytes if it is shorter (a crash can lose an unsynced preallocation).
func Open(fs FS, dir string, base, size int64, opts ...Option) (*Segment, error) {
	return openExisting(fs, dir, base, size, makeOptions(opts))
}

func openExisting(fs FS, dir string, base, size int64, o options) (*Segment, error) {
	if base < 0 || size <= 0 {
		return nil, fmt.Errorf("%w: base %d, size %d", ErrOutOfRange, base, size)
	}
	path := filepath.Join(dir, Name(base))
	f, err := fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return open(fs, f, path, base, size, false, o)
}

// open sizes and maps f, closing it on failure. created says f was just
// created empty.
func open(fs FS, f File, path string, base, size int64, created bool, o options) (*Segment, error) {
	s := &Segment{fs: fs, f: f, path: path, base: base, size: size}
	err := s.init(created, o)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	s.refs.Store(1)
	return s, nil
}

func (s *Segment) init(created bool, o options) error {
	cur, err := s.f.Size()
	if err != nil {
		return err
	}
	if cur > s.size {
		return fmt.Errorf("%w: %s is %d bytes, want %d", ErrCorrupt, s.path, cur, s.size)
	}
	fd := s.f.Fd()
	// Mapped writes need every block of the file reserved (see
	// MappedWrites). A file found short lost its preallocation in a crash;
	// it is extended but keeps to pwritev. A full-size one was fallocated
	// when created, but what survived the crash is unknown, so it is
	// fallocated again: cheap and idempotent over allocated ranges.
	mapped := o.mappedWrites && fd >= 0 && (created || cur == s.size) && reservesBlocks(fd)
	if cur < s.size || mapped {
		sparse, err := s.f.Allocate(s.size)
		if err != nil {
			return err
		}
		mapped = mapped && !sparse
	}
	if fd >= 0 {
		prot := unix.PROT_READ
		if mapped {
			prot |= unix.PROT_WRITE
		}
		s.data, err = unix.Mmap(fd, 0, int(s.size), prot, unix.MAP_SHARED)
		if err != nil {
			return &os.PathError{Op: "mmap", Path: s.path, Err: err}
		}
	}
	s.mapped.Store(mapped)
	return nil
}

// reservesBlocks reports whether fd's filesystem overwrites fallocated
// blocks in place, so that a store through a mapping into them can't fail
// for want of space. Copy-on-write filesystems (btrfs, ZFS) allocate anew
// on every overwrite, and others are not known to be safe.
func reservesBlocks(fd int) bool {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return false
	}
	switch int64(st.Type) {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.TMPFS_MAGIC:
		return true
	}
	return false
}

// Base returns the logical position of the segment's first byte.
func (s *Segment) Base() int64 { return s.base }

// Size returns the segment's length in bytes.
func (s *Segment) Size() int64 { return s.size }

// Path returns the segment's file name.
func (s *Segment) Path() string { return s.path }

// MappedWrites reports whether WriteAt and Zero copy into the mapping
// rather than calling pwritev (see the MappedWrites option).
func (s *Segment) MappedWrites() bool { return s.mapped.Load() }

// WriteAt writes bufs contiguously at off: with one pwritev, or by copying
// into the mapping with MappedWrites. Either way the bytes are in the page
// cache, visible to View and ReadAt, when it returns. A short write is an
// error; the bytes that did land are left in place.
func (s *Segment) WriteAt(bufs [][]byte, off int64) error {
	var n int64
	for _, b := range bufs {
		n += int64(len(b))
	}
	if off < 0 || off > s.size-n {
		return fmt.Errorf("%w: write of %d bytes at %d in %s", ErrOutOfRange, n, off, s.path)
	}
	if n == 0 {
		return nil
	}
	if s.mapped.Load() && s.store(bufs, off, n) {
		s.dirty.Store(true) // after the copy, for the reason given below
		return nil
	}
	m, err := s.f.WritevAt(bufs, off)
	// Marked after the write so that a concurrent Sync can't clear the flag
	// between marking and writing; set even on failure since part may have landed.
	s.dirty.Store(true)
	if err == nil && int64(m) != n {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("segment: write %s at %d: %w", s.path, off, err)
	}
	return nil
}

// zeroRangeMin is the smallest Zero worth a fallocate call rather than a
// write of zeros.
const zeroRangeMin = 64 << 10

// zeros is never written: Zero points iovecs at it.
var zeros [64 << 10]byte

// Zero overwrites n bytes at off with zeros, returning them to the unused
// state; recovery uses it to cut a torn tail.
func (s *Segment) Zero(off, n int64) error {
	if off < 0 || n < 0 || off > s.size-n {
		return fmt.Errorf("%w: zero %d bytes at %d in %s", ErrOutOfRange, n, off, s.path)
	}
	// FALLOC_FL_ZERO_RANGE turns the range back into unwritten extents:
	// a metadata update instead of writing up to a whole file of zeros
	// (recovery cuts a torn tail of a 1 GiB file this way), and the blocks
	// stay reserved, so mapped writes stay safe.
	if fd := s.f.Fd(); fd >= 0 && n >= zeroRangeMin {
		if err := unix.Fallocate(fd, unix.FALLOC_FL_ZERO_RANGE, off, n); err == nil {
			s.dirty.Store(true)
			return nil
		}
	}
	if n > 0 && s.mapped.Load() && s.store(nil, off, n) {
		s.dirty.Store(true)
		return nil
	}
	bufs := make([][]byte, 0, (n+int64(len(zeros))-1)/int64(len(zeros)))
	for r := n; r > 0; r -= int64(len(zeros)) {
		bufs = append(bufs, zeros[:min(r, int64(len(zeros)))])
	}
	return s.WriteAt(bufs, off)
}

// store copies bufs into the mapping at off, n bytes in all, or clears n
// bytes there when bufs is nil. Blocks are reserved, so the copy should not
// fault; if it does anyway (SIGBUS: the filesystem could not back a page
// after all, or reading one in failed), the fault becomes a panic that is
// recovered here rather than crashing the process. The segment then
// switches to pwritev for good and store reports false, so that the caller
// redoes the whole write with pwritev and gets the real error, if any.
func (s *Segment) store(bufs [][]byte, off, n int64) (ok bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, fault := r.(interface{ Addr() uintptr }); !fault {
				panic(r)
			}
			s.mapped.Store(false)
			ok = false
		}
	}()
	dst := s.data[off : off+n]
	if bufs == nil {
		clear(dst)
		return true
	}
	for _, b := range bufs {
		dst = dst[copy(dst, b):]
	}
	return true
}

// ReadAt fills p from off, from the mapping when there is one.
func (s *Segment) ReadAt(p []byte, off int64) error {
	if off < 0 || off > s.size-int64(len(p)) {
		return fmt.Errorf("%w: read of %d bytes at %d in %s", ErrOutOfRange, len(p), off, s.path)
	}
	if s.data != nil {
		copy(p, s.data[off:])
		return nil
	}
	n, err := s.f.ReadAt(p, off)
	if n == len(p) {
		return nil // io.ReaderAt may report io.EOF with a full read
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("segment: read %s at %d: %w", s.path, off, err)
}

// View returns the n bytes at off straight from the mapping, or nil when the
// segment is not mapped or the range is out of bounds; callers then fall
// back to ReadAt. The slice is read-only, even where the mapping is
// writable for MappedWrites: only WriteAt and Zero store into it. It is
// valid while the caller holds a reference (see Acquire); its capacity is
// clipped so append copies.
func (s *Segment) View(off, n int64) []byte {
	if s.data == nil || off < 0 || n < 0 || off > s.size-n {
		return nil
	}
	return s.data[off : off+n : off+n]
}

// Fd returns the descriptor, for sendfile(2) at explicit offsets, or -1.
func (s *Segment) Fd() int { return s.f.Fd() }

// Sync makes the segment's written bytes durable. It skips the fdatasync
// when nothing was written since the last one. fdatasync also writes back
// pages dirtied through a shared mapping, so it covers MappedWrites too.
func (s *Segment) Sync() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if !s.dirty.Swap(false) {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		s.dirty.Store(true)
		return err
	}
	return nil
}

// Acquire takes a reference that keeps the mapping and descriptor alive
// across a concurrent Close or Remove. It reports false once the segment is
// closed; every true must be paired with a Release.
func (s *Segment) Acquire() bool {
	for {
		// closed turns new readers away while older ones drain; racing
		// with Close is harmless because the reference still counts.
		r := s.refs.Load()
		if r <= 0 || s.closed.Load() {
			return false
		}
		if s.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

// Release drops a reference taken by Acquire.
func (s *Segment) Release() {
	// A close error can't be reported to a reader, and a read-only use has
	// nothing it could lose.
	_ = s.unref()
}

func (s *Segment) unref() error {
	if s.refs.Add(-1) != 0 {
		return nil
	}
	var err error
	if s.data != nil {
		err = unix.Munmap(s.data)
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close drops the owner's reference: munmap and close happen now, or when
// the last reader releases. It does not sync.
func (s *Segment) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	return s.unref()
}

// Remove closes the segment and deletes its file. Readers holding a
// reference keep reading the unlinked file until they release it.
func (s *Segment) Remove() error {
	err := s.Close()
	if err == ErrClosed {
		err = nil
	}
	if rerr := s.fs.Remove(s.path); err == nil {
		err = rerr
	}
	return err
}
