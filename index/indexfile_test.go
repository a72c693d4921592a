package index

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rocketkafka/broker/segment"
)

var kiTopic = [16]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

func kiHash(key int) uint64 { return KeyHash(kiTopic, []byte("key-"+strconv.Itoa(key))) }

// kiEachFS runs fn against the real filesystem and against a MemFS.
func kiEachFS(t *testing.T, fn func(t *testing.T, fs segment.FS, dir string)) {
	t.Run("os", func(t *testing.T) { fn(t, segment.OS, filepath.Join(t.TempDir(), "index")) })
	t.Run("mem", func(t *testing.T) { fn(t, segment.NewMemFS(), "/root/index") })
}

func kiOpen(t *testing.T, fs segment.FS, dir string, slots, per int) *KeyIndex {
	t.Helper()
	k, err := OpenKeyIndex(fs, dir, slots, per)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// kiModel is the reference: every entry in the order added, searched
// linearly.
type kiModel struct {
	es     []KeyEntry
	offset int64
	pos    int64
	ts     int64
}

// gen returns n entries over keys distinct keys, with timestamps that
// mostly increase by 10 but jump back now and then.
func (m *kiModel) gen(rng *rand.Rand, n, keys int) []KeyEntry {
	es := make([]KeyEntry, n)
	for i := range es {
		m.ts += 10
		ts := m.ts
		if rng.IntN(5) == 0 {
			ts -= int64(rng.IntN(100))
		}
		es[i] = KeyEntry{Hash: kiHash(rng.IntN(keys)), Partition: int32(rng.IntN(3)), Offset: m.offset, Timestamp: ts, Pos: m.pos}
		m.offset++
		m.pos += int64(100 + rng.IntN(1000))
	}
	return es
}

func (m *kiModel) add(t *testing.T, k *KeyIndex, es ...KeyEntry) {
	t.Helper()
	for _, e := range es {
		if err := k.Add(e); err != nil {
			t.Fatal(err)
		}
		m.es = append(m.es, e)
	}
}

func (m *kiModel) want(hash uint64, from, to int64, limit int) []KeyEntry {
	var out []KeyEntry
	for i := len(m.es) - 1; i >= 0; i-- {
		if e := m.es[i]; e.Hash == hash && e.Timestamp >= from && e.Timestamp <= to {
			out = append(out, e)
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

func kiLookup(t *testing.T, k *KeyIndex, hash uint64, from, to int64, limit int) []KeyEntry {
	t.Helper()
	var out []KeyEntry
	if err := k.Lookup(hash, from, to, limit, func(e KeyEntry) bool {
		out = append(out, e)
		return true
	}); err != nil {
		t.Fatalf("Lookup(%#x, %d, %d, %d): %v", hash, from, to, limit, err)
	}
	return out
}

// check compares k with m for every key m holds and one it does not,
// over the whole time range, random ranges and with limits.
func (m *kiModel) check(t *testing.T, k *KeyIndex, rng *rand.Rand) {
	t.Helper()
	if _, n := k.Stats(); n != int64(len(m.es)) {
		t.Fatalf("Stats: %d entries, want %d", n, len(m.es))
	}
	hashes := []uint64{kiHash(-1)}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, e := range m.es {
		if !slices.Contains(hashes, e.Hash) {
			hashes = append(hashes, e.Hash)
		}
		lo, hi = min(lo, e.Timestamp), max(hi, e.Timestamp)
	}
	type rng2 struct{ from, to int64 }
	ranges := []rng2{{math.MinInt64, math.MaxInt64}}
	if len(m.es) > 0 {
		for range 4 {
			a, b := lo+rng.Int64N(hi-lo+1), lo+rng.Int64N(hi-lo+1)
			ranges = append(ranges, rng2{min(a, b), max(a, b)})
		}
		ranges = append(ranges, rng2{hi, hi}, rng2{math.MinInt64, lo}, rng2{hi + 1, math.MaxInt64})
	}
	for _, h := range hashes {
		for _, r := range ranges {
			for _, limit := range []int{0, 1, 3} {
				got, want := kiLookup(t, k, h, r.from, r.to, limit), m.want(h, r.from, r.to, limit)
				if !slices.Equal(got, want) {
					t.Fatalf("Lookup(%#x, %d, %d, limit %d):\n got %v\nwant %v", h, r.from, r.to, limit, got, want)
				}
			}
		}
	}
}

// checkAll is a lighter check: every key over all time.
func (m *kiModel) checkAll(t *testing.T, k *KeyIndex) {
	t.Helper()
	if _, n := k.Stats(); n != int64(len(m.es)) {
		t.Fatalf("Stats: %d entries, want %d", n, len(m.es))
	}
	byHash := map[uint64][]KeyEntry{}
	for i := len(m.es) - 1; i >= 0; i-- {
		byHash[m.es[i].Hash] = append(byHash[m.es[i].Hash], m.es[i])
	}
	for h, want := range byHash {
		if got := kiLookup(t, k, h, math.MinInt64, math.MaxInt64, 0); !slices.Equal(got, want) {
			t.Fatalf("Lookup(%#x):\n got %v\nwant %v", h, got, want)
		}
	}
}

func TestKeyIndexAddLookup(t *testing.T) {
	kiEachFS(t, func(t *testing.T, fs segment.FS, dir string) {
		rng := rand.New(rand.NewPCG(1, 1))
		k := kiOpen(t, fs, dir, 7, 10000)
		m := &kiModel{}
		m.check(t, k, rng)
		for _, n := range []int{1, 5, 200, 700} { // the tail, and past a flush of it
			m.add(t, k, m.gen(rng, n, 40)...)
			m.check(t, k, rng)
		}
		if err := k.Sync(); err != nil {
			t.Fatal(err)
		}
		m.check(t, k, rng)

		// fn returning false stops the walk.
		h := m.es[len(m.es)-1].Hash
		calls := 0
		if err := k.Lookup(h, math.MinInt64, math.MaxInt64, 0, func(KeyEntry) bool { calls++; return false }); err != nil || calls != 1 {
			t.Fatalf("Lookup stopped after %d calls: %v", calls, err)
		}
		if files, _ := k.Stats(); files != 1 {
			t.Fatalf("%d files", files)
		}
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestKeyIndexCollisions: with one slot every key shares a chain, and
// entries of different keys with the same 64-bit hash are all returned.
func TestKeyIndexCollisions(t *testing.T) {
	kiEachFS(t, func(t *testing.T, fs segment.FS, dir string) {
		rng := rand.New(rand.NewPCG(2, 2))
		k := kiOpen(t, fs, dir, 1, 10000)
		m := &kiModel{}
		m.add(t, k, m.gen(rng, 300, 10)...)
		// Two keys that hash alike: both come back, newest first.
		same := []KeyEntry{
			{Hash: 42, Partition: 1, Offset: 7, Timestamp: 100, Pos: 1000},
			{Hash: 42, Partition: 2, Offset: 9, Timestamp: 50, Pos: 2000},
		}
		m.add(t, k, same...)
		m.add(t, k, m.gen(rng, 30, 10)...)
		m.check(t, k, rng)
		if got := kiLookup(t, k, 42, 0, 1000, 0); !slices.Equal(got, []KeyEntry{same[1], same[0]}) {
			t.Fatalf("colliding keys: %v", got)
		}
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestKeyIndexRoll: entries spread over many files are found newest file
// first, files outside the time range are skipped, and a reopen (with
// another geometry for new files) finds the same.
func TestKeyIndexRoll(t *testing.T) {
	kiEachFS(t, func(t *testing.T, fs segment.FS, dir string) {
		rng := rand.New(rand.NewPCG(3, 3))
		const per = 16
		k := kiOpen(t, fs, dir, 5, per)
		m := &kiModel{}
		for i := range 10 {
			m.add(t, k, m.gen(rng, 1+rng.IntN(40), 12)...)
			if i%3 == 0 {
				if err := k.Sync(); err != nil {
					t.Fatal(err)
				}
			}
			m.check(t, k, rng)
		}
		files, n := k.Stats()
		if want := (n + per - 1) / per; int64(files) != want {
			t.Fatalf("%d files for %d entries, want %d", files, n, want)
		}
		if end := k.End(); end != n {
			t.Fatalf("End %d, want %d", end, n)
		}
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
		if err := k.Close(); !errors.Is(err, segment.ErrClosed) {
			t.Fatalf("second Close: %v", err)
		}

		k = kiOpen(t, fs, dir, 3, 7)
		m.check(t, k, rng)
		m.add(t, k, m.gen(rng, 50, 12)...)
		m.check(t, k, rng)
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
		k = kiOpen(t, fs, dir, 0, 0)
		m.check(t, k, rng)
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestKeyIndexReopen closes and reopens at every point of a file's life:
// empty, with entries in the tail, full, and right after a roll.
func TestKeyIndexReopen(t *testing.T) {
	kiEachFS(t, func(t *testing.T, fs segment.FS, dir string) {
		rng := rand.New(rand.NewPCG(4, 4))
		const per = 10
		m := &kiModel{}
		for _, n := range []int{0, 3, 7, 0, 1, 9, 10, 25} {
			k := kiOpen(t, fs, dir, 4, per)
			m.check(t, k, rng)
			m.add(t, k, m.gen(rng, n, 8)...)
			m.check(t, k, rng)
			if err := k.Close(); err != nil {
				t.Fatal(err)
			}
		}
		k := kiOpen(t, fs, dir, 4, per)
		m.check(t, k, rng)
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestKeyIndexCrash: after a crash (with or without a torn last write) the
// index holds everything synced, maybe some of what followed, and nothing
// else; it takes entries again and survives the next crash.
func TestKeyIndexCrash(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for round := range 60 {
		fs := segment.NewMemFS()
		const dir = "/root/index"
		per := 5 + rng.IntN(60)
		slots := 1 + rng.IntN(20)
		k := kiOpen(t, fs, dir, slots, per)
		m := &kiModel{}
		durable := 0
		for crash := range 3 {
			for range 1 + rng.IntN(5) {
				m.add(t, k, m.gen(rng, rng.IntN(3*per), 15)...)
				switch rng.IntN(4) {
				case 0, 1:
					if err := k.Sync(); err != nil {
						t.Fatal(err)
					}
					durable = len(m.es)
				case 2:
					if err := k.Close(); err != nil {
						t.Fatal(err)
					}
					durable = len(m.es)
					k = kiOpen(t, fs, dir, slots, per)
				}
			}
			added := len(m.es)
			if rng.IntN(2) == 0 {
				fs.Crash()
			} else {
				fs.CrashTorn(rng)
			}
			var err error
			if k, err = OpenKeyIndex(fs, dir, slots, per); err != nil {
				t.Fatalf("round %d, crash %d: reopen: %v", round, crash, err)
			}
			_, n := k.Stats()
			if n < int64(durable) || n > int64(added) {
				t.Fatalf("round %d, crash %d: %d entries after a crash; %d durable of %d added", round, crash, n, durable, added)
			}
			m.es = m.es[:n]
			m.check(t, k, rng)
			durable = int(n) // all recovered entries are durable now
		}
		m.add(t, k, m.gen(rng, 2*per, 15)...)
		m.check(t, k, rng)
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
		k = kiOpen(t, fs, dir, slots, per)
		m.check(t, k, rng)
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKeyIndexCrashTornTail tears the write of the tail itself: the
// entries it holds whole are kept, the torn one and the rest are not. Many
// slots, so that most links are 0 and only the checksum tells a torn entry.
func TestKeyIndexCrashTornTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	for round := range 100 {
		fs := segment.NewMemFS()
		const dir = "/root/index"
		const slots, per = 4096, 1000
		k := kiOpen(t, fs, dir, slots, per)
		m := &kiModel{}
		m.add(t, k, m.gen(rng, rng.IntN(2*keyTailEntries), 1000)...)
		if rng.IntN(2) == 0 {
			if err := k.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
		k = kiOpen(t, fs, dir, slots, per)
		durable := len(m.es)
		// Up to the next tail flush, which is the last write.
		m.add(t, k, m.gen(rng, keyTailEntries-len(m.es)%keyTailEntries, 1000)...)
		fs.CrashTorn(rng)
		k = kiOpen(t, fs, dir, slots, per)
		_, n := k.Stats()
		if n < int64(durable) || n >= int64(len(m.es)) {
			t.Fatalf("round %d: %d entries after a torn tail; %d durable of %d added", round, n, durable, len(m.es))
		}
		m.es = m.es[:n]
		m.checkAll(t, k)
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKeyIndexOpenAt keeps exactly the entries before a recorded End,
// whatever came after it: more entries, a roll, a clean close or a crash.
func TestKeyIndexOpenAt(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	for round := range 30 {
		fs := segment.NewMemFS()
		const dir = "/root/index"
		const per, slots = 8, 3
		k := kiOpen(t, fs, dir, slots, per)
		m := &kiModel{}
		m.add(t, k, m.gen(rng, rng.IntN(30), 10)...)
		if err := k.Sync(); err != nil {
			t.Fatal(err)
		}
		end, kept := k.End(), len(m.es)
		m.add(t, k, m.gen(rng, rng.IntN(30), 10)...)
		if round%2 == 0 {
			if err := k.Close(); err != nil {
				t.Fatal(err)
			}
		} else {
			if rng.IntN(2) == 0 {
				if err := k.Sync(); err != nil {
					t.Fatal(err)
				}
			}
			fs.CrashTorn(rng)
		}
		k, err := OpenKeyIndexAt(fs, dir, slots, per, end)
		if err != nil {
			t.Fatalf("round %d: OpenKeyIndexAt(%d): %v", round, end, err)
		}
		m.es = m.es[:kept]
		m.check(t, k, rng)
		if got := k.End(); got != end {
			t.Fatalf("End %d after OpenKeyIndexAt(%d)", got, end)
		}
		// The cut is durable as soon as the open returns: the entries past
		// it, synced or not, never come back, after a crash or a clean
		// close (which trusts the slot table on disk).
		if round%3 == 0 {
			if err := k.Close(); err != nil {
				t.Fatal(err)
			}
		} else {
			fs.Crash()
		}
		if k, err = OpenKeyIndex(fs, dir, slots, per); err != nil {
			t.Fatalf("round %d: reopen after a cut: %v", round, err)
		}
		m.check(t, k, rng)
		m.add(t, k, m.gen(rng, 20, 10)...)
		m.check(t, k, rng)
		// The cut is durable: a crash now keeps it.
		if err := k.Sync(); err != nil {
			t.Fatal(err)
		}
		fs.Crash()
		k = kiOpen(t, fs, dir, slots, per)
		m.check(t, k, rng)
		// An end past what the index holds is corruption.
		end = k.End()
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenKeyIndexAt(fs, dir, slots, per, end+1); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("OpenKeyIndexAt past the end: %v", err)
		}
	}
}

func TestKeyIndexRemoveBefore(t *testing.T) {
	kiEachFS(t, func(t *testing.T, fs segment.FS, dir string) {
		rng := rand.New(rand.NewPCG(7, 7))
		const per = 10
		k := kiOpen(t, fs, dir, 4, per)
		m := &kiModel{}
		m.add(t, k, m.gen(rng, 95, 10)...) // 10 files, the last not full
		if err := k.Sync(); err != nil {
			t.Fatal(err)
		}
		// fileMax[i] is the newest timestamp in file i.
		fileMax := func() []int64 {
			var out []int64
			for i, e := range m.es {
				if i%per == 0 {
					out = append(out, math.MinInt64)
				}
				out[len(out)-1] = max(out[len(out)-1], e.Timestamp)
			}
			return out
		}()
		ts := fileMax[3] + 1 // files 0-3 go, unless a later one jumps back below
		gone := 0
		var keep []KeyEntry
		for i, e := range m.es {
			if f := i / per; f < len(fileMax)-1 && fileMax[f] < ts {
				if i%per == 0 {
					gone++
				}
				continue
			}
			keep = append(keep, e)
		}
		n, err := k.RemoveBefore(ts)
		if err != nil || n != gone || gone < 4 {
			t.Fatalf("RemoveBefore = %d, %v; want %d", n, err, gone)
		}
		m.es = keep
		m.check(t, k, rng)
		if files, _ := k.Stats(); files != len(fileMax)-gone {
			t.Fatalf("%d files left", files)
		}
		// The last file stays, however old.
		if n, err := k.RemoveBefore(math.MaxInt64); err != nil || n != len(fileMax)-gone-1 {
			t.Fatalf("RemoveBefore(max) = %d, %v", n, err)
		}
		m.es = m.es[len(m.es)-95%per:]
		m.check(t, k, rng)
		end := k.End()
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
		k = kiOpen(t, fs, dir, 4, per)
		m.check(t, k, rng)
		if k.End() != end {
			t.Fatalf("End %d after reopen, want %d", k.End(), end)
		}
		m.add(t, k, m.gen(rng, 30, 10)...)
		m.check(t, k, rng)
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestKeyIndexInvalid(t *testing.T) {
	fs := segment.NewMemFS()
	for _, g := range [][2]int{{-1, 10}, {10, -1}, {1, math.MaxUint32}} {
		if _, err := OpenKeyIndex(fs, "/x", g[0], g[1]); err == nil {
			t.Fatalf("geometry %v accepted", g)
		}
	}
	k := kiOpen(t, fs, "/index", 4, 4)
	for _, e := range []KeyEntry{{Hash: 0}, {Hash: 1, Partition: -1}, {Hash: 1, Offset: -1}, {Hash: 1, Pos: -1}} {
		if err := k.Add(e); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Add(%+v): %v", e, err)
		}
	}
	if files, n := k.Stats(); files != 0 || n != 0 {
		t.Fatalf("Stats %d %d after rejected adds", files, n)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if err := k.Add(KeyEntry{Hash: 1}); !errors.Is(err, segment.ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
	if err := k.Lookup(1, 0, 1, 0, func(KeyEntry) bool { return true }); !errors.Is(err, segment.ErrClosed) {
		t.Fatalf("Lookup after Close: %v", err)
	}
	if err := k.Sync(); !errors.Is(err, segment.ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
	if _, err := k.RemoveBefore(0); !errors.Is(err, segment.ErrClosed) {
		t.Fatalf("RemoveBefore after Close: %v", err)
	}
}

// TestKeyIndexCorrupt: damage to a synced entry is reported when recovery
// reads it.
func TestKeyIndexCorrupt(t *testing.T) {
	fs := segment.NewMemFS()
	const dir = "/index"
	k := kiOpen(t, fs, dir, 4, 100)
	m := &kiModel{}
	m.add(t, k, m.gen(rand.New(rand.NewPCG(8, 8)), 20, 5)...)
	if err := k.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := k.Sync(); err != nil { // the header with the count is durable
		t.Fatal(err)
	}
	fs.Crash()
	f, err := fs.OpenFile(filepath.Join(dir, segment.Name(0)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Entry 5's link now points to itself.
	if _, err := f.WriteAt([]byte{0, 0, 0, 6}, keySlotsOff+4*4+5*keyEntrySize+36); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKeyIndex(fs, dir, 4, 100); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open with a damaged synced entry: %v", err)
	}
}

// TestKeyIndexFailedFlush: a tail write that fails after landing leaves
// nothing that a reopen would take for entries, even when the next write
// of the tail is shorter (a Sync before the failed entry is added again)
// and a crash follows.
func TestKeyIndexFailedFlush(t *testing.T) {
	var fail atomic.Bool
	mem := segment.NewMemFS()
	fs := landFS{mem, &fail}
	const dir = "/index"
	rng := rand.New(rand.NewPCG(9, 9))
	k := kiOpen(t, fs, dir, 3, 1000)
	m := &kiModel{}
	m.add(t, k, m.gen(rng, keyTailEntries-1, 5)...)
	fail.Store(true)
	if err := k.Add(m.gen(rng, 1, 5)[0]); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Add that flushes: %v", err)
	}
	m.check(t, k, rng)
	if err := k.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync: %v", err)
	}
	fail.Store(false)
	// Writes entries [0, 511) and zeros over what the failed write left
	// of entry 511, which a replay would otherwise take.
	if err := k.Sync(); err != nil {
		t.Fatal(err)
	}
	mem.Crash()
	k = kiOpen(t, fs, dir, 3, 1000)
	m.check(t, k, rng)
	m.add(t, k, m.gen(rng, 3, 5)...)
	m.check(t, k, rng)
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	k = kiOpen(t, fs, dir, 3, 1000)
	m.check(t, k, rng)
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestKeyHash pins the hash: it is part of the on-disk format.
func TestKeyHash(t *testing.T) {
	for _, c := range []struct {
		topic [16]byte
		key   string
		want  uint64
	}{
		{[16]byte{}, "", 0xa5e0dba6c385580a},
		{[16]byte{}, "a", 0x4609c443a0f1835e},
		{kiTopic, "key-1", 0x4006a29adbb1e431},
	} {
		if got := KeyHash(c.topic, []byte(c.key)); got != c.want {
			t.Errorf("KeyHash(%x, %q) = %#x, want %#x", c.topic, c.key, got, c.want)
		}
	}
	if KeyHash(kiTopic, []byte("k")) == KeyHash([16]byte{}, []byte("k")) {
		t.Error("the topic does not change the hash")
	}
}

// TestKeyIndexConcurrent runs lookups against adds, rolls, syncs and
// retention; run with -race.
func TestKeyIndexConcurrent(t *testing.T) {
	kiEachFS(t, func(t *testing.T, fs segment.FS, dir string) {
		const keys, per, total = 13, 200, 6000
		k := kiOpen(t, fs, dir, 7, per)
		defer k.Close()
		var added, retain atomic.Int64 // entries [retain, added) are all there
		var done atomic.Bool
		var wg sync.WaitGroup
		errc := make(chan error, 4)
		fail := func(format string, args ...any) { errc <- fmt.Errorf(format, args...) }
		// Entry i has key i%keys, offset i, timestamp i.
		for r := range 3 {
			wg.Go(func() {
				for key := r; !done.Load(); key = (key + 1) % keys {
					a := added.Load()
					from := int64(math.MinInt64)
					if r == 2 {
						from = a / 2 // a range that skips files
					}
					var got []int64
					err := k.Lookup(kiHash(key), from, math.MaxInt64, 0, func(e KeyEntry) bool {
						got = append(got, e.Offset)
						if e.Hash != kiHash(key) || e.Offset%keys != int64(key) || e.Timestamp != e.Offset || e.Pos != 10*e.Offset {
							fail("key %d: entry %+v", key, e)
						}
						return true
					})
					if err != nil {
						fail("Lookup: %v", err)
						return
					}
					lo := max(retain.Load(), from)
					for i, off := range got {
						if i > 0 && off >= got[i-1] {
							fail("key %d: offsets out of order: %v", key, got)
							return
						}
					}
					for off := a - 1; off >= lo; off-- {
						if off%keys == int64(key) && !slices.Contains(got, off) {
							fail("key %d: offset %d missing (added %d, retain %d): %v", key, off, a, lo, got)
							return
						}
					}
				}
			})
		}
		for i := int64(0); i < total; i++ {
			if err := k.Add(KeyEntry{Hash: kiHash(int(i % keys)), Offset: i, Timestamp: i, Pos: 10 * i}); err != nil {
				t.Fatal(err)
			}
			added.Store(i + 1)
			if i%97 == 0 {
				if err := k.Sync(); err != nil {
					t.Fatal(err)
				}
			}
			if i%500 == 0 && i > 1000 {
				retain.Store(i - 1000)
				if _, err := k.RemoveBefore(i - 1000); err != nil {
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
	})
}

// BenchmarkKeyIndexLookup looks up random existing keys, each indexed
// once, among 10 million on the real filesystem: with RocketMQ's geometry
// (5 million slots, 20 million entries per file: one file, slot table in
// memory), and with files of 4 million entries, where a lookup probes
// three files, two of them sealed (slot table read through the mapping)
// unless the time range rules them out. "all" searches all time, "1m" a
// minute around the record's timestamp. The keys are picked among 65536,
// so nearly every lookup misses the CPU caches.
func BenchmarkKeyIndexLookup(b *testing.B) {
	if testing.Short() {
		b.Skip("builds an index of 10 million keys")
	}
	const n = 10_000_000
	const ts0 = 1_700_000_000_000 // entry i has timestamp ts0 + i/10: 10 per ms
	for _, per := range []int{DefaultKeyEntriesPerFile, 4_000_000} {
		k, err := OpenKeyIndex(segment.OS, b.TempDir(), DefaultKeySlots, per)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		key := make([]byte, 0, 32)
		hashOf := func(i int) uint64 {
			key = strconv.AppendInt(append(key[:0], "order-"...), int64(i), 10)
			return KeyHash(kiTopic, key)
		}
		for i := range n {
			e := KeyEntry{Hash: hashOf(i), Partition: int32(i % 16), Offset: int64(i / 16), Timestamp: ts0 + int64(i/10), Pos: int64(i) * 100}
			if err := k.Add(e); err != nil {
				b.Fatal(err)
			}
		}
		if err := k.Sync(); err != nil {
			b.Fatal(err)
		}
		files, _ := k.Stats()
		b.Logf("%d entries per file: %d keys added in %v, %d files", per, n, time.Since(start).Round(time.Millisecond), files)
		rng := rand.New(rand.NewPCG(10, 10))
		type probe struct {
			hash uint64
			ts   int64
		}
		sample := make([]probe, 1<<16)
		for i := range sample {
			j := rng.IntN(n)
			sample[i] = probe{hashOf(j), ts0 + int64(j/10)}
		}
		for _, window := range []int64{0, 30_000} {
			name := "all"
			if window > 0 {
				name = "1m"
			}
			b.Run(fmt.Sprintf("perFile=%d/%s", per, name), func(b *testing.B) {
				found := 0
				fn := func(KeyEntry) bool { found++; return true }
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					p := sample[i&(len(sample)-1)]
					from, to := int64(math.MinInt64), int64(math.MaxInt64)
					if window > 0 {
						from, to = p.ts-window, p.ts+window
					}
					if err := k.Lookup(p.hash, from, to, 0, fn); err != nil {
						b.Fatal(err)
					}
					i++
				}
				if found < i {
					b.Fatalf("%d found for %d lookups", found, i)
				}
			})
		}
		if err := k.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKeyIndexAdd adds entries of random keys with RocketMQ's
// geometry on the real filesystem: the slot update in a 20 MB table, the
// entry into the tail and, every keyTailEntries adds, a 22 KiB pwritev.
// The hash is computed outside the loop (see BenchmarkKeyHash).
func BenchmarkKeyIndexAdd(b *testing.B) {
	k, err := OpenKeyIndex(segment.OS, b.TempDir(), 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	rng := rand.New(rand.NewPCG(11, 11))
	hashes := make([]uint64, 1<<20)
	for i := range hashes {
		hashes[i] = rng.Uint64() | 1
	}
	// The first Add creates the file (fallocate, directory fsync).
	if err := k.Add(KeyEntry{Hash: 1}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e := KeyEntry{Hash: hashes[i&(len(hashes)-1)], Partition: int32(i & 15), Offset: int64(i), Timestamp: int64(i), Pos: int64(i) * 100}
		if err := k.Add(e); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkKeyHash(b *testing.B) {
	key := []byte("order-1234567890")
	b.ReportAllocs()
	for b.Loop() {
		_ = KeyHash(kiTopic, key)
	}
}
