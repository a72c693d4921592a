package segment

import (
	"io"
	iofs "io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MemFS is an in-memory FS for tests that models what a crash keeps. File
// contents are durable as of their last Sync, directory entries (creates,
// removes, renames) as of their directory's last SyncDir. Crash throws away
// everything else. Its files have no descriptor (Fd is -1), so segments on a
// MemFS are not mapped and readers take the ReadAt path.
//
// Open files keep referring to their data after Remove, as on Linux.
// Handles opened before a crash should not be used after it.
type MemFS struct {
	mu       sync.Mutex
	root     *memNode
	fail     error     // returned by writes; see FailWrites
	failIn   int       // writes left before fail applies; see FailWritesAfter
	failRead string    // files whose reads fail with EIO; see FailReads
	last     *memWrite // most recent write not yet covered by a Sync
}

type memNode struct {
	dir bool
	// Directories: live entries, and entries as of the last SyncDir.
	children, synced map[string]*memNode
	// Files: live contents, and contents as of the last Sync.
	data, durable []byte
}

type memWrite struct {
	node *memNode
	off  int64
	p    []byte
}

// NewMemFS returns an empty MemFS; its root directory always exists.
func NewMemFS() *MemFS {
	return &MemFS{root: newDir()}
}

func newDir() *memNode {
	return &memNode{dir: true, children: map[string]*memNode{}, synced: map[string]*memNode{}}
}

// FailWrites makes every later write, truncate and allocate fail with err
// (for example syscall.ENOSPC), changing nothing. FailWrites(nil) heals.
func (fs *MemFS) FailWrites(err error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.fail, fs.failIn = err, 0
}

// FailWritesAfter lets n more writes (of data: not truncates or
// allocations) succeed and makes every write after them fail with err, as
// FailWrites does.
func (fs *MemFS) FailWritesAfter(n int, err error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.fail, fs.failIn = err, n
}

// FailReads makes reads of the file at path fail with EIO, as a damaged
// disk region does; "" heals.
func (fs *MemFS) FailReads(path string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.failRead = path
}

// Crash simulates power loss: file contents revert to their last Sync and
// directories to their last SyncDir.
func (fs *MemFS) Crash() { fs.crash(nil) }

// CrashTorn is Crash, except that the most recent unsynced write (if its
// file survives) lands partly: a random prefix of it, cut at a byte chosen
// by rng, short of the whole.
func (fs *MemFS) CrashTorn(rng *rand.Rand) { fs.crash(rng) }

func (fs *MemFS) crash(rng *rand.Rand) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	seen := map[*memNode]bool{}
	var revert func(n *memNode)
	revert = func(n *memNode) {
		if seen[n] {
			return // a renamed node can sit in two synced directories
		}
		seen[n] = true
		if n.dir {
			n.children = maps.Clone(n.synced)
			for _, c := range n.children {
				revert(c)
			}
			return
		}
		n.data = slices.Clone(n.durable)
	}
	revert(fs.root)
	if w := fs.last; rng != nil && w != nil && seen[w.node] && len(w.p) > 0 {
		w.node.data = writeAt(w.node.data, w.p[:rng.IntN(len(w.p))], w.off)
	}
	fs.last = nil
}

// writeAt writes p into data at off, growing data with zeros as needed.
func writeAt(data, p []byte, off int64) []byte {
	if end := int(off) + len(p); end > len(data) {
		data = append(data, make([]byte, end-len(data))...)
	}
	copy(data[off:], p)
	return data
}

// split turns a path into its components below the root; relative and
// absolute names mean the same.
func split(name string) []string {
	name = filepath.Clean("/" + name)
	if name == "/" {
		return nil
	}
	return strings.Split(name[1:], "/")
}

func pathErr(op, name string, err error) error {
	return &os.PathError{Op: op, Path: name, Err: err}
}

// lookup returns the node at name. Callers hold fs.mu.
func (fs *MemFS) lookup(name string) (*memNode, bool) {
	n := fs.root
	for _, c := range split(name) {
		if !n.dir {
			return nil, false
		}
		if n = n.children[c]; n == nil {
			return nil, false
		}
	}
	return n, true
}

// parent returns the directory that holds name, and name's last component.
// Callers hold fs.mu.
func (fs *MemFS) parent(op, name string) (*memNode, string, error) {
	parts := split(name)
	if len(parts) == 0 {
		return nil, "", pathErr(op, name, syscall.EINVAL)
	}
	dir, ok := fs.lookup(strings.Join(parts[:len(parts)-1], "/"))
	if !ok {
		return nil, "", pathErr(op, name, syscall.ENOENT)
	}
	if !dir.dir {
		return nil, "", pathErr(op, name, syscall.ENOTDIR)
	}
	return dir, parts[len(parts)-1], nil
}

// OpenFile supports O_RDONLY, O_WRONLY, O_RDWR, O_CREATE, O_EXCL and O_TRUNC.
func (fs *MemFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	dir, base, err := fs.parent("open", name)
	if err != nil {
		return nil, err
	}
	n := dir.children[base]
	switch {
	case n == nil && flag&os.O_CREATE == 0:
		return nil, pathErr("open", name, syscall.ENOENT)
	case n != nil && flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		return nil, pathErr("open", name, syscall.EEXIST)
	case n != nil && n.dir:
		return nil, pathErr("open", name, syscall.EISDIR)
	case n == nil:
		n = &memNode{}
		dir.children[base] = n
	}
	acc := flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	f := &memFile{fs: fs, node: n, name: name, read: acc != os.O_WRONLY, write: acc != os.O_RDONLY}
	if flag&os.O_TRUNC != 0 && f.write {
		n.data = n.data[:0]
	}
	return f, nil
}

// Remove deletes a file or an empty directory.
func (fs *MemFS) Remove(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	dir, base, err := fs.parent("remove", name)
	if err != nil {
		return err
	}
	n := dir.children[base]
	if n == nil {
		return pathErr("remove", name, syscall.ENOENT)
	}
	if n.dir && len(n.children) > 0 {
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	delete(dir.children, base)
	return nil
}

// RemoveAll deletes path and everything below it; a missing path is fine.
func (fs *MemFS) RemoveAll(path string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	dir, base, err := fs.parent("removeall", path)
	if err != nil {
		if _, ok := fs.lookup(path); !ok {
			return nil
		}
		return err
	}
	delete(dir.children, base)
	return nil
}

// Rename moves oldpath to newpath, replacing a file there.
func (fs *MemFS) Rename(oldpath, newpath string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	odir, obase, err := fs.parent("rename", oldpath)
	if err != nil {
		return err
	}
	ndir, nbase, err := fs.parent("rename", newpath)
	if err != nil {
		return err
	}
	n := odir.children[obase]
	if n == nil {
		return pathErr("rename", oldpath, syscall.ENOENT)
	}
	if old := ndir.children[nbase]; old != nil && old.dir {
		return pathErr("rename", newpath, syscall.EEXIST)
	}
	delete(odir.children, obase)
	ndir.children[nbase] = n
	return nil
}

// MkdirAll creates path and any missing parents.
func (fs *MemFS) MkdirAll(path string, perm os.FileMode) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := fs.root
	for _, c := range split(path) {
		next := n.children[c]
		if next == nil {
			next = newDir()
			n.children[c] = next
		}
		if !next.dir {
			return pathErr("mkdir", path, syscall.ENOTDIR)
		}
		n = next
	}
	return nil
}

// ReadDir returns the sorted names in directory name.
func (fs *MemFS) ReadDir(name string) ([]string, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n, ok := fs.lookup(name)
	if !ok {
		return nil, pathErr("readdir", name, syscall.ENOENT)
	}
	if !n.dir {
		return nil, pathErr("readdir", name, syscall.ENOTDIR)
	}
	names := make([]string, 0, len(n.children))
	for c := range n.children {
		names = append(names, c)
	}
	slices.Sort(names)
	return names, nil
}

// SyncDir makes the entries of directory name durable.
func (fs *MemFS) SyncDir(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n, ok := fs.lookup(name)
	if !ok {
		return pathErr("fsync", name, syscall.ENOENT)
	}
	if !n.dir {
		return pathErr("fsync", name, syscall.ENOTDIR)
	}
	n.synced = maps.Clone(n.children)
	return nil
}

// Stat describes name.
func (fs *MemFS) Stat(name string) (os.FileInfo, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n, ok := fs.lookup(name)
	if !ok {
		return nil, pathErr("stat", name, syscall.ENOENT)
	}
	return memInfo{name: filepath.Base(name), size: int64(len(n.data)), dir: n.dir}, nil
}

type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }

func (i memInfo) Mode() iofs.FileMode {
	if i.dir {
		return iofs.ModeDir | 0o755
	}
	return 0o644
}

type memFile struct {
	fs          *MemFS
	node        *memNode
	name        string
	read, write bool
	closed      bool // under fs.mu
}

// check returns the error for an operation on f. Callers hold fs.mu.
func (f *memFile) check(op string, write bool) error {
	switch {
	case f.closed:
		return pathErr(op, f.name, os.ErrClosed)
	case write && !f.write, !write && !f.read:
		return pathErr(op, f.name, syscall.EBADF)
	case write && f.fs.fail != nil:
		if op == "write" && f.fs.failIn > 0 {
			f.fs.failIn--
			return nil
		}
		return pathErr(op, f.name, f.fs.fail)
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("read", false); err != nil {
		return 0, err
	}
	if f.fs.failRead != "" && f.fs.failRead == f.name {
		return 0, pathErr("read", f.name, syscall.EIO)
	}
	if off < 0 {
		return 0, pathErr("read", f.name, syscall.EINVAL)
	}
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	return f.WritevAt([][]byte{p}, off)
}

// WritevAt applies bufs as one write, which is the unit CrashTorn tears.
func (f *memFile) WritevAt(bufs [][]byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("write", true); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("write", f.name, syscall.EINVAL)
	}
	p := slices.Concat(bufs...)
	if len(p) == 0 {
		return 0, nil // an empty write does not extend the file
	}
	f.node.data = writeAt(f.node.data, p, off)
	f.fs.last = &memWrite{node: f.node, off: off, p: p}
	return len(p), nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("fsync", f.name, os.ErrClosed)
	}
	f.node.durable = append(f.node.durable[:0], f.node.data...)
	if w := f.fs.last; w != nil && w.node == f.node {
		f.fs.last = nil
	}
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("truncate", true); err != nil {
		return err
	}
	if size < 0 {
		return pathErr("truncate", f.name, syscall.EINVAL)
	}
	if size <= int64(len(f.node.data)) {
		f.node.data = f.node.data[:size]
	} else {
		f.node.data = writeAt(f.node.data, nil, size)
	}
	return nil
}

// Allocate grows the file to size; like fallocate, it never shrinks.
func (f *memFile) Allocate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("fallocate", true); err != nil {
		return err
	}
	f.node.data = writeAt(f.node.data, nil, size)
	return nil
}

func (f *memFile) Fd() int { return -1 }

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, pathErr("stat", f.name, os.ErrClosed)
	}
	return int64(len(f.node.data)), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("close", f.name, os.ErrClosed)
	}
	f.closed = true
	return nil
}
