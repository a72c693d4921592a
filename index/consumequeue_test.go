package index

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/rocketkafka/broker/segment"
)

const perFile = 4

// eachFS runs fn against the real filesystem and against a MemFS.
func eachFS(t *testing.T, fn func(t *testing.T, fs segment.FS, dir string)) {
	t.Run("os", func(t *testing.T) {
		fn(t, segment.OS, filepath.Join(t.TempDir(), "consumequeue", "topic", "0"))
	})
	t.Run("mem", func(t *testing.T) { fn(t, segment.NewMemFS(), "/root/consumequeue/topic/0") })
}

func open(t *testing.T, fs segment.FS, dir string) *ConsumeQueue {
	t.Helper()
	return openN(t, fs, dir, perFile)
}

func openN(t *testing.T, fs segment.FS, dir string, entriesPerFile int64) *ConsumeQueue {
	t.Helper()
	cq, err := OpenConsumeQueue(fs, dir, entriesPerFile)
	if err != nil {
		t.Fatal(err)
	}
	return cq
}

// model is the reference: a plain slice searched linearly.
type model struct {
	first   int64
	entries []Entry // from index 0
}

func (m *model) searchOffset(off int64) (int64, bool) {
	for i := m.first; i < int64(len(m.entries)); i++ {
		if e := m.entries[i]; e.BaseOffset+int64(e.Count) > off {
			return i, true
		}
	}
	return 0, false
}

func (m *model) searchTimestamp(ts int64) (int64, bool) {
	for i := m.first; i < int64(len(m.entries)); i++ {
		if m.entries[i].MaxTimestamp >= ts {
			return i, true
		}
	}
	return 0, false
}

// gen returns n entries with gaps between batches, Count > 1 and timestamps
// that go backwards now and then (stored as the running max).
func gen(rng *rand.Rand, n int, from Entry) []Entry {
	es := make([]Entry, n)
	next, pos, ts := from.BaseOffset+int64(from.Count), from.Pos+int64(from.Size), from.MaxTimestamp
	for i := range es {
		e := Entry{
			Pos:          pos,
			Size:         int32(61 + rng.IntN(1000)),
			Count:        int32(1 + rng.IntN(5)),
			BaseOffset:   next + int64(rng.IntN(3)), // compaction leaves gaps
			MaxTimestamp: ts + int64(rng.IntN(20)) - 5,
		}
		es[i] = e
		ts = max(ts, e.MaxTimestamp)
		pos += int64(e.Size)
		next = e.BaseOffset + int64(e.Count)
	}
	return es
}

func (m *model) append(t *testing.T, cq *ConsumeQueue, es ...Entry) {
	t.Helper()
	for _, e := range es {
		if err := cq.Append(e); err != nil {
			t.Fatal(err)
		}
		if len(m.entries) > 0 {
			e.MaxTimestamp = max(e.MaxTimestamp, m.entries[len(m.entries)-1].MaxTimestamp)
		}
		m.entries = append(m.entries, e)
	}
}

// check compares cq with m exhaustively.
func (m *model) check(t *testing.T, cq *ConsumeQueue) {
	t.Helper()
	n := int64(len(m.entries))
	if cq.Len() != n || cq.FirstIndex() != m.first {
		t.Fatalf("Len %d FirstIndex %d, want %d %d", cq.Len(), cq.FirstIndex(), n, m.first)
	}
	for _, i := range []int64{m.first - 1, n, -1} {
		if _, err := cq.At(i); !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("At(%d): %v", i, err)
		}
	}
	for i := m.first; i < n; i++ {
		if e, err := cq.At(i); err != nil || e != m.entries[i] {
			t.Fatalf("At(%d) = %+v, %v; want %+v", i, e, err, m.entries[i])
		}
	}
	last, ok := cq.Last()
	if want := n > m.first; ok != want || (ok && last != m.entries[n-1]) {
		t.Fatalf("Last = %+v, %v", last, ok)
	}
	lo, hi := int64(-2), int64(2)
	if n > 0 {
		lo, hi = m.entries[0].BaseOffset-2, m.entries[n-1].BaseOffset+int64(m.entries[n-1].Count)+2
	}
	for off := lo; off < hi; off++ {
		i, ok := cq.SearchOffset(off)
		wi, wok := m.searchOffset(off)
		if i != wi || ok != wok {
			t.Fatalf("SearchOffset(%d) = %d, %v; want %d, %v", off, i, ok, wi, wok)
		}
	}
	for _, ts := range []int64{math.MinInt64, math.MaxInt64, -1, 0} {
		i, ok := cq.SearchTimestamp(ts)
		wi, wok := m.searchTimestamp(ts)
		if ok != wok || (ok && i != wi) {
			t.Fatalf("SearchTimestamp(%d) = %d, %v; want %d, %v", ts, i, ok, wi, wok)
		}
	}
	for i := m.first; i < n; i++ {
		for _, ts := range []int64{m.entries[i].MaxTimestamp - 1, m.entries[i].MaxTimestamp, m.entries[i].MaxTimestamp + 1} {
			got, ok := cq.SearchTimestamp(ts)
			wi, wok := m.searchTimestamp(ts)
			if ok != wok || (ok && got != wi) {
				t.Fatalf("SearchTimestamp(%d) = %d, %v; want %d, %v", ts, got, ok, wi, wok)
			}
		}
	}
}

func TestAppendSearch(t *testing.T) {
	eachFS(t, func(t *testing.T, fs segment.FS, dir string) {
		rng := rand.New(rand.NewPCG(1, 1))
		cq := open(t, fs, dir)
		m := &model{}
		m.check(t, cq)
		for n := range 23 { // 0..22 entries: file boundaries, partial files
			if n > 0 {
				m.append(t, cq, gen(rng, 1, m.last())...)
			}
			m.check(t, cq)
		}
		first := Entry{Pos: 0, Size: 100, Count: 10, BaseOffset: 1000, MaxTimestamp: 5}
		if err := cq.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := cq.At(0); !errors.Is(err, segment.ErrClosed) {
			t.Fatalf("At after Close: %v", err)
		}
		if err := cq.Append(first); !errors.Is(err, segment.ErrClosed) {
			t.Fatalf("Append after Close: %v", err)
		}
	})
}

func TestAppendRejects(t *testing.T) {
	eachFS(t, func(t *testing.T, fs segment.FS, dir string) {
		cq := open(t, fs, dir)
		defer cq.Close()
		for _, e := range []Entry{{Size: 0, Count: 1}, {Size: 1, Count: 0}, {Pos: -1, Size: 1, Count: 1}, {Size: -3, Count: 1}} {
			if err := cq.Append(e); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Append(%+v): %v", e, err)
			}
		}
		if err := cq.Append(Entry{Size: 10, Count: 5, BaseOffset: 100, MaxTimestamp: 50}); err != nil {
			t.Fatal(err)
		}
		for _, off := range []int64{0, 100, 104} {
			if err := cq.Append(Entry{Size: 10, Count: 1, BaseOffset: off}); !errors.Is(err, ErrOutOfOrder) {
				t.Fatalf("Append at offset %d: %v", off, err)
			}
		}
		if err := cq.Append(Entry{Size: 10, Count: 1, BaseOffset: 105, MaxTimestamp: 10}); err != nil {
			t.Fatal(err)
		}
		if e, _ := cq.Last(); e.MaxTimestamp != 50 {
			t.Fatalf("MaxTimestamp %d, want the running max 50", e.MaxTimestamp)
		}
		if cq.Len() != 2 {
			t.Fatalf("Len %d", cq.Len())
		}
	})
}

func TestReopen(t *testing.T) {
	eachFS(t, func(t *testing.T, fs segment.FS, dir string) {
		rng := rand.New(rand.NewPCG(2, 2))
		for _, n := range []int{0, 1, 3, 4, 5, 8, 13} {
			cq := open(t, fs, dir)
			m := &model{}
			m.append(t, cq, gen(rng, n, Entry{BaseOffset: 7})...)
			if err := cq.Close(); err != nil {
				t.Fatal(err)
			}
			cq = open(t, fs, dir)
			m.check(t, cq)
			// The recovered last entry keeps ordering enforced.
			if n > 0 {
				if err := cq.Append(m.entries[n-1]); !errors.Is(err, ErrOutOfOrder) {
					t.Fatalf("n=%d: replayed append: %v", n, err)
				}
			}
			m.append(t, cq, gen(rng, 3, m.last())...)
			m.check(t, cq)
			if err := cq.Remove(); err != nil {
				t.Fatal(err)
			}
			if _, err := fs.Stat(dir); err == nil {
				t.Fatal("Remove left the directory")
			}
		}
	})
}

func (m *model) last() Entry {
	if len(m.entries) == 0 {
		return Entry{}
	}
	return m.entries[len(m.entries)-1]
}

func TestTruncateFrom(t *testing.T) {
	eachFS(t, func(t *testing.T, fs segment.FS, dir string) {
		rng := rand.New(rand.NewPCG(3, 3))
		cq := open(t, fs, dir)
		m := &model{}
		m.append(t, cq, gen(rng, 14, Entry{})...)
		if err := cq.SetFirstIndex(2); err != nil {
			t.Fatal(err)
		}
		m.first = 2
		for _, i := range []int64{13, 9, 8, 6, 4, 2} { // mid-file and file boundaries
			if err := cq.TruncateFrom(i); err != nil {
				t.Fatal(err)
			}
			m.entries = m.entries[:i]
			m.check(t, cq)
			if got := len(mustSegments(t, fs, dir)); got != int(i/perFile+1) {
				t.Fatalf("TruncateFrom(%d) left %d files", i, got)
			}
			// Reopen: Len survives; FirstIndex falls back to the first file.
			if err := cq.Close(); err != nil {
				t.Fatal(err)
			}
			cq = open(t, fs, dir)
			m.first = 0
			m.check(t, cq)
			if err := cq.SetFirstIndex(2); err != nil {
				t.Fatal(err)
			}
			m.first = 2
		}
		if err := cq.TruncateFrom(1); !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("TruncateFrom below FirstIndex: %v", err)
		}
		if err := cq.TruncateFrom(100); err != nil || cq.Len() != 2 {
			t.Fatalf("TruncateFrom past Len: %v, Len %d", err, cq.Len())
		}
		// Appending after a cut continues from the entry before the cut.
		m.append(t, cq, gen(rng, 7, m.last())...)
		m.check(t, cq)
		if err := cq.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func mustSegments(t *testing.T, fs segment.FS, dir string) []string {
	t.Helper()
	names, err := fs.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestSetFirstIndex(t *testing.T) {
	eachFS(t, func(t *testing.T, fs segment.FS, dir string) {
		rng := rand.New(rand.NewPCG(4, 4))
		cq := open(t, fs, dir)
		m := &model{}
		m.append(t, cq, gen(rng, 10, Entry{})...)
		for _, step := range []struct{ first, files int64 }{{1, 3}, {4, 2}, {7, 2}, {9, 1}, {10, 1}} {
			if err := cq.SetFirstIndex(step.first); err != nil {
				t.Fatal(err)
			}
			m.first = step.first
			m.check(t, cq)
			if got := len(mustSegments(t, fs, dir)); int64(got) != step.files {
				t.Fatalf("FirstIndex %d: %d files, want %d", step.first, got, step.files)
			}
		}
		for _, i := range []int64{7, 11} { // below the first file, past Len
			if err := cq.SetFirstIndex(i); !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("SetFirstIndex(%d): %v", i, err)
			}
		}
		// Everything is dead, yet the last file keeps Len across a restart.
		if err := cq.Close(); err != nil {
			t.Fatal(err)
		}
		cq = open(t, fs, dir)
		if cq.FirstIndex() != 8 || cq.Len() != 10 {
			t.Fatalf("after reopen: FirstIndex %d Len %d", cq.FirstIndex(), cq.Len())
		}
		if err := cq.SetFirstIndex(10); err != nil {
			t.Fatal(err)
		}
		m.check(t, cq)
		m.append(t, cq, gen(rng, 5, m.last())...)
		m.check(t, cq)
		if err := cq.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCorrupt(t *testing.T) {
	eachFS(t, func(t *testing.T, fs segment.FS, dir string) {
		cq := open(t, fs, dir)
		m := &model{}
		m.append(t, cq, gen(rand.New(rand.NewPCG(5, 5)), 7, Entry{})...)
		if err := cq.Close(); err != nil {
			t.Fatal(err)
		}
		// Punch a hole at entry 5, before the used entry 6.
		s, err := segment.Open(fs, dir, perFile*EntrySize, perFile*EntrySize)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Zero(1*EntrySize, EntrySize); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenConsumeQueue(fs, dir, perFile); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("hole: %v", err)
		}
		// Files of another size do not line up.
		if _, err := OpenConsumeQueue(fs, dir, 3); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("wrong file size: %v", err)
		}
	})
}

func TestCrash(t *testing.T) {
	fs := segment.NewMemFS()
	const dir = "/root/consumequeue/t/0"
	cq := open(t, fs, dir)
	m := &model{}
	rng := rand.New(rand.NewPCG(6, 6))
	m.append(t, cq, gen(rng, 6, Entry{})...)
	if err := cq.Sync(); err != nil {
		t.Fatal(err)
	}
	synced := m.entries
	m.append(t, cq, gen(rng, 5, m.last())...) // entries 6..10, across a roll
	fs.Crash()

	cq = open(t, fs, dir)
	m.entries = synced
	m.check(t, cq)
	if err := cq.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrent runs searches against appends, syncs and retention, with
// files smaller than the tail (perFile 4: a flush at every file end) and
// larger (flushes at page boundaries, entries read from the tail); run
// with -race.
func TestConcurrent(t *testing.T) {
	for _, per := range []int64{perFile, 1000} {
		t.Run(fmt.Sprintf("perFile=%d", per), func(t *testing.T) {
			eachFS(t, func(t *testing.T, fs segment.FS, dir string) { testConcurrent(t, fs, dir, per) })
		})
	}
}

func testConcurrent(t *testing.T, fs segment.FS, dir string, per int64) {
	cq := openN(t, fs, dir, per)
	defer cq.Close()
	var done atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	fail := func(format string, args ...any) { errc <- fmt.Errorf(format, args...) }
	for range 3 {
		wg.Go(func() {
			for !done.Load() {
				// Entry i has BaseOffset 2i, Count 2 and MaxTimestamp i.
				n := cq.Len()
				if n == 0 {
					continue
				}
				// The newest entry, most often still in the tail.
				e, err := cq.At(n - 1)
				if err == nil && (e.BaseOffset != 2*(n-1) || e.MaxTimestamp != n-1 || e.Size != 100) {
					fail("At(%d) = %+v", n-1, e)
					return
				}
				if err != nil && !(errors.Is(err, ErrOutOfRange) && cq.FirstIndex() > n-1) {
					fail("At(%d): %v", n-1, err)
					return
				}
				if i, ok := cq.SearchOffset(2*(n-1) + 1); !ok || i < n-1 || (i > n-1 && cq.FirstIndex() <= n-1) {
					fail("SearchOffset(%d) = %d, %v; Len was %d", 2*(n-1)+1, i, ok, n)
					return
				}
				if i, ok := cq.SearchTimestamp(n - 1); !ok || i < n-1 || (i > n-1 && cq.FirstIndex() <= n-1) {
					fail("SearchTimestamp(%d) = %d, %v", n-1, i, ok)
					return
				}
				if e, ok := cq.Last(); !ok || e.BaseOffset < 2*(n-1) || e.BaseOffset%2 != 0 || e.MaxTimestamp != e.BaseOffset/2 {
					fail("Last = %+v, %v; Len was %d", e, ok, n)
					return
				}
				for off := int64(0); off < 2*n; off += 7 {
					i, ok := cq.SearchOffset(off)
					if !ok || i < off/2 {
						fail("SearchOffset(%d) = %d, %v: missed a written entry", off, i, ok)
						return
					}
					if i == off/2 {
						e, err := cq.At(i)
						if err == nil && e.BaseOffset != 2*i {
							fail("At(%d) read a wrong entry: %+v", i, e)
							return
						}
					}
				}
			}
		})
	}
	for i := int64(0); i < 3000; i++ {
		if err := cq.Append(Entry{Pos: i * 100, Size: 100, Count: 2, BaseOffset: 2 * i, MaxTimestamp: i}); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 && i > 0 {
			if err := cq.SetFirstIndex(i - 20); err != nil {
				t.Fatal(err)
			}
		}
		if i%97 == 0 { // a flush off a page boundary
			if err := cq.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	done.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

// BenchmarkConsumeQueueAppend measures Append for one partition and for a
// Produce that spreads its batches over 1000 partitions, each with its own
// queue. Entries go to the tail, and every tailEntries appends a queue
// writes them to its file with one 4 KiB pwritev, which the per-append
// figure includes. An append that creates the next file (a directory
// fsync, ~1 ms) is left out of the timing; retention deletes the file
// before it, so the disk use stays bounded.
func BenchmarkConsumeQueueAppend(b *testing.B) {
	for _, parts := range []int{1, 1000} {
		perFile := int64(300000)
		if parts > 1 {
			perFile = 4096 // 128 KiB files: 1000 queues stay small on disk
		}
		b.Run(fmt.Sprintf("partitions=%d", parts), func(b *testing.B) {
			dir := b.TempDir()
			cqs := make([]*ConsumeQueue, parts)
			es := make([]Entry, parts)
			for p := range cqs {
				cq, err := OpenConsumeQueue(segment.OS, filepath.Join(dir, strconv.Itoa(p)), perFile)
				if err != nil {
					b.Fatal(err)
				}
				defer cq.Close()
				cqs[p] = cq
				// One append outside the timing creates the first file and
				// the tail.
				es[p] = Entry{Size: 1000, Count: 10}
				if err := cq.Append(es[p]); err != nil {
					b.Fatal(err)
				}
				es[p].Pos += 1000
				es[p].BaseOffset += 10
			}
			b.ReportAllocs()
			p := 0
			for b.Loop() {
				cq, e := cqs[p], &es[p]
				roll := cq.Len()%perFile == 0
				if roll {
					b.StopTimer()
					if err := cq.SetFirstIndex(cq.Len()); err != nil {
						b.Fatal(err)
					}
				}
				if err := cq.Append(*e); err != nil {
					b.Fatal(err)
				}
				if roll {
					b.StartTimer()
				}
				e.Pos += int64(e.Size)
				e.BaseOffset += int64(e.Count)
				e.MaxTimestamp++
				if p++; p == parts {
					p = 0
				}
			}
		})
	}
}

// BenchmarkConsumeQueueSearchOffset searches random offsets over a million
// entries in four files, and over the entries still in the tail.
func BenchmarkConsumeQueueSearchOffset(b *testing.B) {
	const n = 1_000_000
	cq, err := OpenConsumeQueue(segment.OS, b.TempDir(), 300000) // 4 files
	if err != nil {
		b.Fatal(err)
	}
	defer cq.Close()
	rng := rand.New(rand.NewPCG(7, 7))
	var e Entry
	for range n {
		e = gen(rng, 1, e)[0]
		if err := cq.Append(e); err != nil {
			b.Fatal(err)
		}
	}
	end := e.BaseOffset + int64(e.Count)
	t, err := cq.At(cq.flushed.Load())
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range []struct {
		name string
		lo   int64
	}{{"all", 0}, {"tail", t.BaseOffset}} {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			x := uint64(1)
			for b.Loop() {
				x ^= x << 13 // xorshift: random offsets without rand's cost in the loop
				x ^= x >> 7
				x ^= x << 17
				if _, ok := cq.SearchOffset(r.lo + int64(x%uint64(end-r.lo))); !ok {
					b.Fatal("offset not found")
				}
			}
		})
	}
}

func TestAppendENOSPC(t *testing.T) {
	fs := segment.NewMemFS()
	cq := open(t, fs, "/cq")
	m := &model{}
	rng := rand.New(rand.NewPCG(8, 8))
	// Fail a write into the open file (Len 3), then the creation of a new one (Len 4).
	for _, n := range []int{3, 1} {
		m.append(t, cq, gen(rng, n, m.last())...)
		fs.FailWrites(syscall.ENOSPC)
		if err := cq.Append(gen(rng, 1, m.last())[0]); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Append: %v", err)
		}
		fs.FailWrites(nil)
		m.check(t, cq)
	}
	if got := len(mustSegments(t, fs, "/cq")); got != 1 {
		t.Fatalf("%d files after a failed roll", got)
	}
	m.append(t, cq, gen(rng, 3, m.last())...)
	m.check(t, cq)
	if err := cq.Close(); err != nil {
		t.Fatal(err)
	}
	m.check(t, open(t, fs, "/cq"))
}

// flushedAt is where flushed stands after the entries [0, n) were appended
// one by one without a Sync: at the last page boundary of the file
// holding entry n-1, or at n when n ends a file.
func flushedAt(n, per int64) int64 {
	if n%per == 0 {
		return n
	}
	base := n - n%per
	return base + (n-base)/tailEntries*tailEntries
}

// inFile reports whether entry i's slot in its file is used, reading the
// file rather than the queue.
func inFile(t *testing.T, cq *ConsumeQueue, i int64) bool {
	t.Helper()
	s := cq.q.Find(i * EntrySize)
	if s == nil {
		t.Fatalf("no file for entry %d", i)
	}
	var b [EntrySize]byte
	if err := s.ReadAt(b[:], i*EntrySize-s.Base()); err != nil {
		t.Fatal(err)
	}
	return decode(b[:]).Size != 0
}

// TestTail appends into files that are not a whole number of pages
// (300 entries: flushes at 128, 256, 300, 428, ...), checking that every
// entry is readable and searchable as soon as Append returns, that it
// reaches its file exactly at the flush points, and that Sync, Close and a
// reopen see it all.
func TestTail(t *testing.T) {
	eachFS(t, func(t *testing.T, fs segment.FS, dir string) {
		const per = 300
		rng := rand.New(rand.NewPCG(9, 9))
		cq := openN(t, fs, dir, per)
		m := &model{}
		step := func(i int64) {
			t.Helper()
			e := m.entries[i]
			if got, err := cq.At(i); err != nil || got != e {
				t.Fatalf("At(%d) = %+v, %v; want %+v", i, got, err, e)
			}
			if got, ok := cq.Last(); !ok || got != e {
				t.Fatalf("Last = %+v, %v; want entry %d", got, ok, i)
			}
			if got, ok := cq.SearchOffset(e.BaseOffset + int64(e.Count) - 1); !ok || got != i {
				t.Fatalf("SearchOffset(last offset of %d) = %d, %v", i, got, ok)
			}
			if got, ok := cq.SearchOffset(e.BaseOffset + int64(e.Count)); ok {
				t.Fatalf("SearchOffset past the end = %d", got)
			}
			wi, _ := m.searchTimestamp(e.MaxTimestamp)
			if got, ok := cq.SearchTimestamp(e.MaxTimestamp); !ok || got != wi {
				t.Fatalf("SearchTimestamp(%d) = %d, %v; want %d", e.MaxTimestamp, got, ok, wi)
			}
		}
		var n int64
		for ; n < 700; n++ {
			m.append(t, cq, gen(rng, 1, m.last())...)
			step(n)
			f := cq.flushed.Load()
			if want := flushedAt(n+1, per); f != want {
				t.Fatalf("Len %d: flushed %d, want %d", n+1, f, want)
			}
			// Unflushed entries are in memory only; the file has them all
			// up to the flush point.
			if inFile(t, cq, n) != (f == n+1) || (f > 0 && !inFile(t, cq, f-1)) {
				t.Fatalf("Len %d, flushed %d: entry %d in file %v", n+1, f, n, inFile(t, cq, n))
			}
			if n%97 == 0 || n == 299 || n == 300 || n == 127 || n == 128 {
				m.check(t, cq)
			}
		}
		// 700 = 600 + 100: a tail of 100 entries that Sync writes out off a
		// page boundary. The next flush is at the boundary, 28 entries on.
		if cq.flushed.Load() != 600 {
			t.Fatalf("flushed %d", cq.flushed.Load())
		}
		if err := cq.Sync(); err != nil {
			t.Fatal(err)
		}
		if cq.flushed.Load() != n || !inFile(t, cq, n-1) {
			t.Fatalf("after Sync: flushed %d of %d", cq.flushed.Load(), n)
		}
		m.check(t, cq)
		for ; n < 800; n++ {
			m.append(t, cq, gen(rng, 1, m.last())...)
			step(n)
			if f, want := cq.flushed.Load(), max(700, flushedAt(n+1, per)); f != want {
				t.Fatalf("Len %d: flushed %d, want %d", n+1, f, want)
			}
		}
		m.check(t, cq)
		if cq.flushed.Load() == n {
			t.Fatal("nothing left in the tail for Close")
		}
		if err := cq.Close(); err != nil {
			t.Fatal(err)
		}
		cq = openN(t, fs, dir, per)
		m.check(t, cq)
		// Appending after the reopen starts from an empty tail in the
		// middle of a page, and keeps the entries' order.
		m.append(t, cq, gen(rng, 200, m.last())...)
		m.check(t, cq)
		if err := cq.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTruncateTail cuts inside the tail, at its start and below it.
func TestTruncateTail(t *testing.T) {
	eachFS(t, func(t *testing.T, fs segment.FS, dir string) {
		const per = 300
		rng := rand.New(rand.NewPCG(10, 10))
		cq := openN(t, fs, dir, per)
		m := &model{}
		m.append(t, cq, gen(rng, 550, Entry{})...) // flushed 428, tail [428, 550)
		for _, i := range []int64{540, 500, 428, 400, 299} {
			if err := cq.TruncateFrom(i); err != nil {
				t.Fatal(err)
			}
			m.entries = m.entries[:i]
			m.check(t, cq)
			if f := cq.flushed.Load(); f > i {
				t.Fatalf("TruncateFrom(%d): flushed %d", i, f)
			}
			// The cut is durable and on disk: a reopen finds the same.
			if err := cq.Close(); err != nil {
				t.Fatal(err)
			}
			cq = openN(t, fs, dir, per)
			m.check(t, cq)
			// Append across the next flush point again.
			m.append(t, cq, gen(rng, 140, m.last())...)
			m.check(t, cq)
			m.entries = m.entries[:i]
			if err := cq.TruncateFrom(i); err != nil {
				t.Fatal(err)
			}
			m.check(t, cq)
		}
		if err := cq.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCrashTail: a crash loses what was not synced, the tail included, and
// the queue still opens, holding exactly what the last Sync (or Close) made
// durable. The store then rebuilds the rest from the CommitLog.
func TestCrashTail(t *testing.T) {
	const per = 300
	rng := rand.New(rand.NewPCG(11, 11))
	for round := range 20 {
		fs := segment.NewMemFS()
		const dir = "/root/consumequeue/t/0"
		cq := openN(t, fs, dir, per)
		m := &model{}
		durable := 0
		for range 1 + rng.IntN(4) {
			m.append(t, cq, gen(rng, rng.IntN(400), m.last())...)
			switch rng.IntN(3) {
			case 0:
				if err := cq.Sync(); err != nil {
					t.Fatal(err)
				}
				durable = len(m.entries)
			case 1:
				if err := cq.Close(); err != nil {
					t.Fatal(err)
				}
				durable = len(m.entries)
				cq = openN(t, fs, dir, per)
			}
		}
		appended := len(m.entries)
		fs.Crash()
		cq, err := OpenConsumeQueue(fs, dir, per)
		if err != nil {
			t.Fatalf("round %d: reopen after a crash: %v", round, err)
		}
		if cq.Len() != int64(durable) {
			t.Fatalf("round %d: Len %d after a crash; %d durable of %d appended", round, cq.Len(), durable, appended)
		}
		m.entries = m.entries[:durable]
		m.check(t, cq)
		m.append(t, cq, gen(rng, 150, m.last())...)
		m.check(t, cq)
		if err := cq.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// landFS lands every write and then, while fail is set, reports EIO: the
// worst case of a failed write, bytes on disk that the writer was told
// did not get there.
type landFS struct {
	segment.FS
	fail *atomic.Bool
}

type landFile struct {
	segment.File
	fail *atomic.Bool
}

func (fs landFS) OpenFile(name string, flag int, perm os.FileMode) (segment.File, error) {
	f, err := fs.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return landFile{f, fs.fail}, nil
}

func (f landFile) WritevAt(bufs [][]byte, off int64) (int, error) {
	n, err := f.File.WritevAt(bufs, off)
	if err == nil && f.fail.Load() {
		err = syscall.EIO
	}
	return n, err
}

// TestFailedFlush: a flush that fails leaves the queue as it was, and what
// it may have put in the file past Len is cleared by the next flush or
// cut, so that a reopen does not find entries that were never appended.
func TestFailedFlush(t *testing.T) {
	for _, cut := range []bool{false, true} {
		t.Run(fmt.Sprintf("cut=%v", cut), func(t *testing.T) {
			var fail atomic.Bool
			fs := landFS{segment.NewMemFS(), &fail}
			const dir = "/cq"
			cq := open(t, fs, dir)
			m := &model{}
			rng := rand.New(rand.NewPCG(12, 12))
			m.append(t, cq, gen(rng, 7, Entry{})...) // tail [4, 7)
			fail.Store(true)
			if err := cq.Append(gen(rng, 1, m.last())[0]); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Append that flushes: %v", err)
			}
			if !inFile(t, cq, 7) {
				t.Fatal("the failed flush did not land")
			}
			m.check(t, cq)
			if cut {
				fail.Store(false)
				if err := cq.TruncateFrom(5); err != nil {
					t.Fatal(err)
				}
				m.entries = m.entries[:5]
			} else {
				if err := cq.Sync(); !errors.Is(err, syscall.EIO) {
					t.Fatalf("Sync: %v", err)
				}
				m.check(t, cq)
				fail.Store(false)
			}
			if err := cq.Close(); err != nil {
				t.Fatal(err)
			}
			cq = open(t, fs, dir)
			m.check(t, cq)
			m.append(t, cq, gen(rng, 5, m.last())...)
			m.check(t, cq)
			if err := cq.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOpenAtCheckpointClearsWhatCameAfter(t *testing.T) {
	fs := segment.NewMemFS()
	cq, err := OpenConsumeQueue(fs, "/cq", 4)
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(10) {
		if err := cq.Append(Entry{Pos: i * 100, Size: 10, Count: 1, BaseOffset: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cq.Close(); err != nil {
		t.Fatal(err)
	}
	cq, err = OpenConsumeQueueAt(fs, "/cq", 4, 6)
	if err != nil {
		t.Fatal(err)
	}
	if cq.Len() != 6 {
		t.Fatalf("Len %d, want 6", cq.Len())
	}
	if last, ok := cq.Last(); !ok || last.BaseOffset != 5 {
		t.Fatalf("Last = %+v, %v", last, ok)
	}
	if err := cq.Append(Entry{Pos: 600, Size: 10, Count: 1, BaseOffset: 6}); err != nil {
		t.Fatalf("append after the checkpoint's end: %v", err)
	}
	cq.Close()
	cq, err = OpenConsumeQueue(fs, "/cq", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer cq.Close()
	if cq.Len() != 7 {
		t.Fatalf("reopened Len %d, want 7: entries past the checkpoint were not cleared", cq.Len())
	}
	if _, err := OpenConsumeQueueAt(fs, "/cq", 4, 20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a checkpoint beyond the files: %v", err)
	}
}
