package segment

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
)

// eachFS runs fn against the real filesystem and against a MemFS.
func eachFS(t *testing.T, fn func(t *testing.T, fs FS, dir string)) {
	t.Run("os", func(t *testing.T) { fn(t, OS, t.TempDir()) })
	t.Run("mem", func(t *testing.T) { fn(t, NewMemFS(), "/data/q") })
}

func TestName(t *testing.T) {
	for _, base := range []int64{0, 1, 1 << 30, 1<<63 - 1} {
		name := Name(base)
		if len(name) != 20 {
			t.Fatalf("Name(%d) = %q: want 20 digits", base, name)
		}
		got, ok := ParseName(name)
		if !ok || got != base {
			t.Fatalf("ParseName(%q) = %d, %v; want %d", name, got, ok, base)
		}
	}
	if got := Name(1 << 30); got != "00000000001073741824" {
		t.Fatalf("Name(1<<30) = %q", got)
	}
	for _, name := range []string{"", "123", "0000000000000000000a", "+0000000000000000001",
		"-0000000000000000001", "99999999999999999999", "000000000000000000000", "x.tmp"} {
		if _, ok := ParseName(name); ok {
			t.Errorf("ParseName(%q) accepted", name)
		}
	}
}

func TestSegment(t *testing.T) {
	eachFS(t, func(t *testing.T, fs FS, dir string) {
		if err := fs.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		const size = 4096
		s, err := Create(fs, dir, 3*size, size)
		if err != nil {
			t.Fatal(err)
		}
		if s.Base() != 3*size || s.Size() != size || s.Path() != filepath.Join(dir, Name(3*size)) {
			t.Fatalf("base %d size %d path %s", s.Base(), s.Size(), s.Path())
		}
		if _, err := Create(fs, dir, 3*size, size); err == nil {
			t.Fatal("Create over an existing segment succeeded")
		}
		if err := s.WriteAt([][]byte{[]byte("hello "), nil, []byte("world")}, 100); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 13)
		if err := s.ReadAt(got, 99); err != nil {
			t.Fatal(err)
		}
		if want := "\x00hello world\x00"; string(got) != want {
			t.Fatalf("ReadAt = %q, want %q", got, want)
		}
		if v := s.View(100, 11); fs == OS && string(v) != "hello world" {
			t.Fatalf("View = %q", v)
		} else if fs != OS && v != nil {
			t.Fatal("View without a mapping returned bytes")
		}
		if fs == OS && (s.Fd() < 0 || cap(s.View(0, 1)) != 1) {
			t.Fatalf("fd %d, view cap %d", s.Fd(), cap(s.View(0, 1)))
		}
		for _, off := range []int64{-1, size - 10, size} {
			if err := s.WriteAt([][]byte{make([]byte, 11)}, off); !errors.Is(err, ErrOutOfRange) {
				t.Errorf("WriteAt(%d): %v", off, err)
			}
			if err := s.ReadAt(make([]byte, 11), off); !errors.Is(err, ErrOutOfRange) {
				t.Errorf("ReadAt(%d): %v", off, err)
			}
			if s.View(off, 11) != nil {
				t.Errorf("View(%d) not nil", off)
			}
		}
		if err := s.WriteAt([][]byte{make([]byte, 10)}, size-10); err != nil {
			t.Fatal(err) // the last byte is writable
		}
		if err := s.Zero(102, 3); err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); !errors.Is(err, ErrClosed) {
			t.Fatalf("second Close: %v", err)
		}

		s, err = Open(fs, dir, 3*size, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ReadAt(got[:11], 100); err != nil || string(got[:11]) != "he\x00\x00\x00 world" {
			t.Fatalf("after reopen: %q, %v", got[:11], err)
		}
		if err := s.Remove(); err != nil {
			t.Fatal(err)
		}
		if _, err := fs.Stat(s.Path()); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("file survived Remove: %v", err)
		}
	})
}

func TestOpenSizes(t *testing.T) {
	eachFS(t, func(t *testing.T, fs FS, dir string) {
		if err := fs.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := fs.OpenFile(filepath.Join(dir, Name(0)), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("abc"), 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		s, err := Open(fs, dir, 0, 1024) // short: extended with zeros
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 1024)
		if err := s.ReadAt(got, 0); err != nil || !bytes.Equal(got[:4], []byte("abc\x00")) {
			t.Fatalf("%q, %v", got[:4], err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(fs, dir, 0, 512); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open of an oversized file: %v", err)
		}
		if _, err := Open(fs, dir, 1024, 1024); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Open of a missing file: %v", err)
		}
	})
}

func TestAcquireOutlivesClose(t *testing.T) {
	eachFS(t, func(t *testing.T, fs FS, dir string) {
		if err := fs.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		s, err := Create(fs, dir, 0, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.WriteAt([][]byte{[]byte("kept")}, 0); err != nil {
			t.Fatal(err)
		}
		if !s.Acquire() {
			t.Fatal("Acquire failed on an open segment")
		}
		if err := s.Remove(); err != nil {
			t.Fatal(err)
		}
		if s.Acquire() {
			t.Fatal("Acquire succeeded after Remove")
		}
		// The reader's reference keeps the unlinked file readable.
		got := make([]byte, 4)
		if err := s.ReadAt(got, 0); err != nil || string(got) != "kept" {
			t.Fatalf("%q, %v", got, err)
		}
		s.Release()
	})
}

func TestQueue(t *testing.T) {
	eachFS(t, func(t *testing.T, fs FS, dir string) {
		const size = 1024
		q, err := OpenQueue(fs, dir, size)
		if err != nil {
			t.Fatal(err)
		}
		if q.First() != nil || q.Last() != nil || q.Find(0) != nil || q.SegmentSize() != size {
			t.Fatal("new queue not empty")
		}
		// An empty queue may start at any aligned position.
		const start = 5 * size
		var want []int64
		for pos := int64(start + 10); pos < start+4*size; pos += 300 {
			s, err := q.SegmentFor(pos)
			if err != nil {
				t.Fatal(err)
			}
			if pos < s.Base() || pos >= s.Base()+size {
				t.Fatalf("SegmentFor(%d) = segment at %d", pos, s.Base())
			}
			if err := s.WriteAt([][]byte{[]byte{byte(pos)}}, pos-s.Base()); err != nil {
				t.Fatal(err)
			}
			want = append(want, pos)
		}
		if n := len(q.Segments()); n != 4 || q.First().Base() != start || q.Last().Base() != start+3*size {
			t.Fatalf("%d segments, first %d, last %d", n, q.First().Base(), q.Last().Base())
		}
		if _, err := q.SegmentFor(start + 6*size); !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("SegmentFor past the next segment: %v", err)
		}
		if _, err := q.SegmentFor(start - 1); !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("SegmentFor before the first segment: %v", err)
		}
		for _, pos := range []int64{0, start - 1, start + 4*size, -1} {
			if s := q.Find(pos); s != nil {
				t.Fatalf("Find(%d) = segment at %d", pos, s.Base())
			}
		}
		check := func(q *Queue, from int64) {
			t.Helper()
			for _, pos := range want {
				if pos < from {
					continue
				}
				s := q.Find(pos)
				if s == nil {
					t.Fatalf("Find(%d) = nil", pos)
				}
				b := []byte{0}
				if err := s.ReadAt(b, pos-s.Base()); err != nil || b[0] != byte(pos) {
					t.Fatalf("at %d: %v, %v", pos, b, err)
				}
			}
		}
		check(q, 0)
		if err := q.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := q.SegmentFor(start); !errors.Is(err, ErrClosed) {
			t.Fatalf("SegmentFor after Close: %v", err)
		}

		// Reopen: same segments, same bytes; foreign files are ignored.
		junk, err := fs.OpenFile(filepath.Join(dir, "checkpoint.tmp"), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if err := junk.Close(); err != nil {
			t.Fatal(err)
		}
		q, err = OpenQueue(fs, dir, size)
		if err != nil {
			t.Fatal(err)
		}
		check(q, 0)

		if n, err := q.RemoveBefore(start + 2*size + 1); err != nil || n != 2 {
			t.Fatalf("RemoveBefore: %d, %v", n, err)
		}
		if q.First().Base() != start+2*size || q.Find(start+2*size-1) != nil {
			t.Fatal("RemoveBefore kept the old segments")
		}
		check(q, start+2*size)
		if n, err := q.RemoveFrom(start + 3*size); err != nil || n != 1 {
			t.Fatalf("RemoveFrom: %d, %v", n, err)
		}
		if q.Last().Base() != start+2*size {
			t.Fatalf("last is %d", q.Last().Base())
		}
		if s, err := q.SegmentFor(start + 3*size); err != nil || s.Base() != start+3*size {
			t.Fatalf("SegmentFor after RemoveFrom: %v", err)
		}
		names, err := fs.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{Name(start + 2*size), Name(start + 3*size), "checkpoint.tmp"}; !slices.Equal(names, want) {
			t.Fatalf("files %q, want %q", names, want)
		}
		if err := q.RemoveAll(); err != nil {
			t.Fatal(err)
		}
		if _, err := fs.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("directory survived RemoveAll: %v", err)
		}
	})
}

func TestOpenQueueCorrupt(t *testing.T) {
	eachFS(t, func(t *testing.T, fs FS, dir string) {
		touch := func(base int64) {
			s, err := Create(fs, dir, base, 100)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err := fs.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		touch(0)
		touch(200) // gap
		if _, err := OpenQueue(fs, dir, 100); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("gap: %v", err)
		}
		touch(100)
		if _, err := OpenQueue(fs, dir, 50); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("oversized files: %v", err)
		}
		if err := fs.Remove(filepath.Join(dir, Name(200))); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenQueue(fs, dir, 200); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("misaligned base: %v", err)
		}
		q, err := OpenQueue(fs, dir, 100)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestQueueConcurrent runs readers against a writer and retention; run with -race.
func TestQueueConcurrent(t *testing.T) {
	eachFS(t, testQueueConcurrent)
}

func testQueueConcurrent(t *testing.T, fs FS, dir string) {
	const size = 256
	q, err := OpenQueue(fs, dir, size)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var written, removed atomic.Int64
	done := make(chan struct{})
	errc := make(chan error, 4)
	for range 3 {
		go func() {
			b := make([]byte, 8)
			for {
				select {
				case <-done:
					errc <- nil
					return
				default:
				}
				hi := written.Load()
				for pos := removed.Load(); pos+8 <= hi; pos += 8 * 7 {
					s := q.Find(pos)
					if s == nil || !s.Acquire() {
						continue // removed under us
					}
					off := pos - s.Base()
					var err error
					if v := s.View(off, 8); v != nil {
						copy(b, v)
					} else {
						err = s.ReadAt(b, off)
					}
					s.Release()
					if err != nil {
						errc <- err
						return
					}
					if got := int64(b[0]) | int64(b[1])<<8 | int64(b[2])<<16; got != pos&0xffffff {
						errc <- errors.New("read a wrong value")
						return
					}
				}
			}
		}()
	}
	for pos := int64(0); pos < 200*size; pos += 8 {
		s, err := q.SegmentFor(pos)
		if err != nil {
			t.Fatal(err)
		}
		rec := []byte{byte(pos), byte(pos >> 8), byte(pos >> 16), 0, 0, 0, 0, 0}
		if err := s.WriteAt([][]byte{rec}, pos-s.Base()); err != nil {
			t.Fatal(err)
		}
		written.Store(pos + 8)
		if pos%(10*size) == 0 && pos > 4*size {
			removed.Store(pos - 4*size)
			if _, err := q.RemoveBefore(pos - 4*size); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	for range 3 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkSegmentWriteAt measures pwritev by write size. Every write lands
// on fresh preallocated pages, as appends do; creating the next file when
// one fills is left out of the timing.
func BenchmarkSegmentWriteAt(b *testing.B) {
	for _, n := range []int{32, 1 << 10, 4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dB", n), func(b *testing.B) {
			const size = 64 << 20
			dir := b.TempDir()
			create := func() *Segment {
				s, err := Create(OS, dir, 0, size)
				if err != nil {
					b.Fatal(err)
				}
				return s
			}
			s := create()
			buf := bytes.Repeat([]byte{0xab}, n)
			bufs := [][]byte{buf}
			if n > 61 {
				bufs = [][]byte{buf[:61], buf[61:]} // header + body, as the CommitLog writes
			}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			off := int64(0)
			for b.Loop() {
				if off+int64(n) > size {
					b.StopTimer()
					if err := s.Remove(); err != nil {
						b.Fatal(err)
					}
					s, off = create(), 0
					b.StartTimer()
				}
				if err := s.WriteAt(bufs, off); err != nil {
					b.Fatal(err)
				}
				off += int64(n)
			}
			if err := s.Remove(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

func TestZeroLargeRangeOnOS(t *testing.T) {
	dir := t.TempDir()
	s, err := Create(OS, dir, 0, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	junk := bytes.Repeat([]byte{0xab}, 1<<20)
	for off := int64(0); off < 8<<20; off += 1 << 20 {
		if err := s.WriteAt([][]byte{junk}, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Zero(100, 8<<20-100); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 8<<20)
	if err := s.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:100], junk[:100]) || !bytes.Equal(got[100:], make([]byte, 8<<20-100)) {
		t.Fatal("Zero did not clear exactly the range")
	}
}
