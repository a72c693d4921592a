package segment

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// Segment is one preallocated file of a logical byte space, starting at Base.
// Offsets taken by its methods are relative to the start of the file.
type Segment struct {
	fs   FS
	f    File
	path string
	base int64
	size int64
	data []byte // read-only shared mapping of the whole file; nil without one

	refs   atomic.Int32 // the owner's reference plus one per Acquire
	closed atomic.Bool  // the owner's reference is gone
	dirty  atomic.Bool  // written since the last Sync
	// syncMu makes a Sync that finds nothing dirty wait for one in flight,
	// so that every Sync returns only once earlier writes are durable.
	syncMu sync.Mutex
}

// Create creates {dir}/{Name(base)}, preallocated to size bytes of zeros and
// mapped read-only when the file has a descriptor.
func Create(fs FS, dir string, base, size int64) (*Segment, error) {
	if base < 0 || size <= 0 {
		return nil, fmt.Errorf("%w: base %d, size %d", ErrOutOfRange, base, size)
	}
	path := filepath.Join(dir, Name(base))
	f, err := fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	s, err := open(fs, f, path, base, size)
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
func Open(fs FS, dir string, base, size int64) (*Segment, error) {
	if base < 0 || size <= 0 {
		return nil, fmt.Errorf("%w: base %d, size %d", ErrOutOfRange, base, size)
	}
	path := filepath.Join(dir, Name(base))
	f, err := fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return open(fs, f, path, base, size)
}

// open sizes and maps f, closing it on failure.
func open(fs FS, f File, path string, base, size int64) (*Segment, error) {
	s := &Segment{fs: fs, f: f, path: path, base: base, size: size}
	err := s.init()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	s.refs.Store(1)
	return s, nil
}

func (s *Segment) init() error {
	cur, err := s.f.Size()
	if err != nil {
		return err
	}
	if cur > s.size {
		return fmt.Errorf("%w: %s is %d bytes, want %d", ErrCorrupt, s.path, cur, s.size)
	}
	if cur < s.size {
		if err := s.f.Allocate(s.size); err != nil {
			return err
		}
	}
	if fd := s.f.Fd(); fd >= 0 {
		s.data, err = unix.Mmap(fd, 0, int(s.size), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return &os.PathError{Op: "mmap", Path: s.path, Err: err}
		}
	}
	return nil
}

// Base returns the logical position of the segment's first byte.
func (s *Segment) Base() int64 { return s.base }

// Size returns the segment's length in bytes.
func (s *Segment) Size() int64 { return s.size }

// Path returns the segment's file name.
func (s *Segment) Path() string { return s.path }

// WriteAt writes bufs contiguously at off with one pwritev; the bytes are in
// the page cache, visible to View and ReadAt, when it returns. A short write
// is an error; the bytes that did land are left in place.
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
	// stay reserved.
	if fd := s.f.Fd(); fd >= 0 && n >= zeroRangeMin {
		if err := unix.Fallocate(fd, unix.FALLOC_FL_ZERO_RANGE, off, n); err == nil {
			s.dirty.Store(true)
			return nil
		}
	}
	bufs := make([][]byte, 0, (n+int64(len(zeros))-1)/int64(len(zeros)))
	for r := n; r > 0; r -= int64(len(zeros)) {
		bufs = append(bufs, zeros[:min(r, int64(len(zeros)))])
	}
	return s.WriteAt(bufs, off)
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
// back to ReadAt. The slice is read-only and valid while the caller holds a
// reference (see Acquire); its capacity is clipped so append copies.
func (s *Segment) View(off, n int64) []byte {
	if s.data == nil || off < 0 || n < 0 || off > s.size-n {
		return nil
	}
	return s.data[off : off+n : off+n]
}

// Fd returns the descriptor, for sendfile(2) at explicit offsets, or -1.
func (s *Segment) Fd() int { return s.f.Fd() }

// Sync makes the segment's written bytes durable. It skips the fdatasync
// when nothing was written since the last one.
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
