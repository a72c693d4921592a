package segment

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"syscall"
	"testing"
)

func TestMemFSCrash(t *testing.T) {
	fs := NewMemFS()
	q, err := OpenQueue(fs, "/db/cq/topic/0", 64)
	if err != nil {
		t.Fatal(err)
	}
	write := func(pos int64, p string) {
		t.Helper()
		s, err := q.SegmentFor(pos)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.WriteAt([][]byte{[]byte(p)}, pos-s.Base()); err != nil {
			t.Fatal(err)
		}
	}
	write(0, "synced-0")
	write(64, "synced-1")            // rolls to segment 1
	if err := q.Sync(); err != nil { // must cover segment 0 too, written before the roll
		t.Fatal(err)
	}
	write(8, "lost")
	write(128, "new segment")
	fs.Crash()

	q, err = OpenQueue(fs, "/db/cq/topic/0", 64)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(q.Segments()); n != 3 {
		t.Fatalf("%d segments after crash, want 3 (creation is synced)", n)
	}
	got := make([]byte, 64)
	read := func(pos int64) string {
		t.Helper()
		s := q.Find(pos)
		if err := s.ReadAt(got[:12], pos-s.Base()); err != nil {
			t.Fatal(err)
		}
		return string(bytes.TrimRight(got[:12], "\x00"))
	}
	if r := read(0); r != "synced-0" {
		t.Fatalf("segment 0: %q", r)
	}
	if r := read(64); r != "synced-1" {
		t.Fatalf("segment 1: %q", r)
	}
	if r := read(128); r != "" {
		t.Fatalf("unsynced write survived: %q", r)
	}
}

func TestMemFSCrashDirectories(t *testing.T) {
	fs := NewMemFS()
	if err := fs.MkdirAll("/a/b", 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := fs.OpenFile("/a/b/f", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	fs.Crash() // no directory was synced: all of it goes
	if _, err := fs.Stat("/a"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unsynced directory survived: %v", err)
	}

	if err := mkdirAll(fs, "/a/b"); err != nil { // syncs each new parent
		t.Fatal(err)
	}
	for _, name := range []string{"/a/b/keep", "/a/b/gone"} {
		f, err := fs.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte(name), 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if name == "/a/b/keep" {
			if err := fs.SyncDir("/a/b"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := fs.Rename("/a/b/keep", "/a/b/renamed"); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	names, err := fs.ReadDir("/a/b")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"keep"}) {
		t.Fatalf("after crash: %q", names)
	}
	f, err = fs.OpenFile("/a/b/keep", os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 20)
	if n, _ := f.ReadAt(got, 0); string(got[:n]) != "/a/b/keep" {
		t.Fatalf("contents %q", got[:n])
	}
	if _, err := f.WriteAt([]byte("x"), 0); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("write to a read-only handle: %v", err)
	}
}

func TestMemFSCrashTorn(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	torn := 0
	for range 50 {
		fs := NewMemFS()
		s, err := Create(fs, "/", 0, 256)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.WriteAt([][]byte{[]byte("durable")}, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteAt([][]byte{[]byte("dropped")}, 7); err != nil {
			t.Fatal(err)
		}
		last := bytes.Repeat([]byte{'t'}, 100)
		if err := s.WriteAt([][]byte{last[:50], last[50:]}, 100); err != nil {
			t.Fatal(err)
		}
		fs.CrashTorn(rng)

		s, err = Open(fs, "/", 0, 256)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 256)
		if err := s.ReadAt(got, 0); err != nil {
			t.Fatal(err)
		}
		if string(got[:14]) != "durable\x00\x00\x00\x00\x00\x00\x00" {
			t.Fatalf("head %q", got[:14])
		}
		// A prefix of the last write landed, never all of it.
		n := bytes.IndexByte(got[100:], 0)
		if n < 0 || n >= len(last) || !bytes.Equal(got[100:100+n], last[:n]) || bytes.ContainsAny(got[100+n:], "t") {
			t.Fatalf("tail not a strict prefix: %q", got[100:])
		}
		if n > 0 {
			torn++
		}
	}
	if torn == 0 {
		t.Fatal("no write was ever torn")
	}
}

func TestMemFSFailWrites(t *testing.T) {
	fs := NewMemFS()
	s, err := Create(fs, "/", 0, 128)
	if err != nil {
		t.Fatal(err)
	}
	fs.FailWrites(syscall.ENOSPC)
	if err := s.WriteAt([][]byte{[]byte("x")}, 0); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WriteAt: %v", err)
	}
	if _, err := Create(fs, "/", 128, 128); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Create (allocate): %v", err)
	}
	if _, err := fs.Stat("/" + Name(128)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed Create left a file: %v", err)
	}
	fs.FailWrites(nil)
	if err := s.WriteAt([][]byte{[]byte("x")}, 0); err != nil {
		t.Fatal(err)
	}
	got := []byte{0}
	if err := s.ReadAt(got, 0); err != nil || got[0] != 'x' {
		t.Fatalf("%q, %v", got, err)
	}
}
