package segment

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// FS is the filesystem the store writes through; tests inject faults (drop
// unsynced data, tear writes, ENOSPC) with MemFS.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Remove(name string) error
	RemoveAll(path string) error
	Rename(oldpath, newpath string) error
	MkdirAll(path string, perm os.FileMode) error
	ReadDir(name string) ([]string, error) // entry names, sorted
	SyncDir(name string) error
	Stat(name string) (os.FileInfo, error)
}

// File is an open file of an FS.
type File interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	WritevAt(bufs [][]byte, off int64) (int, error) // pwritev on the OS
	Sync() error                                    // fdatasync on the OS
	Truncate(size int64) error
	Allocate(size int64) error // fallocate on the OS (falls back to Truncate if unsupported)
	Fd() int                   // OS descriptor, or -1 for files that have none
	Size() (int64, error)
	Close() error
}

// OS is the real filesystem. Files are raw descriptors opened with
// O_CLOEXEC and driven with positional syscalls: regular files gain nothing
// from os.File's poller, and the descriptor is needed for mmap and sendfile.
var OS FS = osFS{}

// iovMax is Linux's UIO_MAXIOV: pwritev rejects longer vectors.
const iovMax = 1024

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	for {
		fd, err := unix.Open(name, flag|unix.O_CLOEXEC, uint32(perm.Perm()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return &osFile{fd: fd, name: name}, nil
	}
}

func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) RemoveAll(path string) error                  { return os.RemoveAll(path) }
func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }
func (osFS) Stat(name string) (os.FileInfo, error)        { return os.Stat(name) }

func (osFS) ReadDir(name string) ([]string, error) {
	ents, err := os.ReadDir(name) // sorted by name
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

func (osFS) SyncDir(name string) error {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	err = retry(func() error { return unix.Fsync(fd) })
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return &os.PathError{Op: "fsync", Path: name, Err: err}
	}
	return nil
}

type osFile struct {
	fd   int
	name string
}

func (f *osFile) err(op string, err error) error {
	return &os.PathError{Op: op, Path: f.name, Err: err}
}

func (f *osFile) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Pread(f.fd, p[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, f.err("pread", err)
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}

func (f *osFile) WriteAt(p []byte, off int64) (int, error) {
	return f.WritevAt([][]byte{p}, off)
}

// WritevAt loops over short writes so that it only returns less than the
// full length together with an error (ENOSPC, EIO, ...).
func (f *osFile) WritevAt(bufs [][]byte, off int64) (int, error) {
	want := 0
	for _, b := range bufs {
		want += len(b)
	}
	bufs = advance(bufs, 0)
	n := 0
	for n < want {
		m, err := unix.Pwritev(f.fd, bufs[:min(len(bufs), iovMax)], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, f.err("pwritev", err)
		}
		if m == 0 {
			return n, f.err("pwritev", io.ErrShortWrite)
		}
		n += m
		bufs = advance(bufs, m)
	}
	return n, nil
}

// advance drops the first m bytes of bufs and any empty buffers that follow.
// It copies the slice headers only when a buffer was partly written, so the
// caller's slice is never modified.
func advance(bufs [][]byte, m int) [][]byte {
	for len(bufs) > 0 && len(bufs[0]) <= m {
		m -= len(bufs[0])
		bufs = bufs[1:]
	}
	if m == 0 {
		return bufs
	}
	rest := make([][]byte, len(bufs))
	copy(rest, bufs)
	rest[0] = rest[0][m:]
	return rest
}

func (f *osFile) Sync() error {
	if err := retry(func() error { return unix.Fdatasync(f.fd) }); err != nil {
		return f.err("fdatasync", err)
	}
	return nil
}

func (f *osFile) Truncate(size int64) error {
	if err := retry(func() error { return unix.Ftruncate(f.fd, size) }); err != nil {
		return f.err("ftruncate", err)
	}
	return nil
}

func (f *osFile) Allocate(size int64) error {
	err := retry(func() error { return unix.Fallocate(f.fd, 0, 0, size) })
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		// Some filesystems (tmpfs on old kernels, NFS) cannot preallocate: a
		// sparse file of the right size is the best we can do.
		cur, serr := f.Size()
		if serr != nil || cur >= size {
			return serr
		}
		return f.Truncate(size)
	}
	if err != nil {
		return f.err("fallocate", err)
	}
	return nil
}

func (f *osFile) Fd() int { return f.fd }

func (f *osFile) Size() (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err != nil {
		return 0, f.err("fstat", err)
	}
	return st.Size, nil
}

func (f *osFile) Close() error {
	// Retrying close after EINTR could close a reused descriptor: don't.
	if err := unix.Close(f.fd); err != nil {
		return f.err("close", err)
	}
	return nil
}

func retry(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}
