package record

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpora under testdata/fuzz")

// isSentinel reports whether err is, or wraps, one of the package errors:
// callers map those to Kafka error codes and must never see anything else.
func isSentinel(err error) bool {
	for _, s := range []error{ErrCorrupt, ErrInvalidRecord, ErrUnsupportedMagic, ErrUnsupportedCodec, ErrTooLarge} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func FuzzValidate(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		checkValidate(t, b)
		// The CRC turns away nearly every mutation before the records
		// are looked at; fix it up so that the fuzzer reaches them.
		if len(b) >= HeaderSize {
			b = slices.Clone(b)
			fixCRC(b)
			checkValidate(t, b)
		}
	})
}

func checkValidate(t *testing.T, b []byte) {
	h, err := Validate(b)
	switch err {
	case nil:
	case ErrCorrupt, ErrInvalidRecord, ErrUnsupportedMagic, ErrUnsupportedCodec:
		return
	default:
		t.Fatalf("Validate returned %v", err)
	}

	// The broker's rewrites keep a valid batch valid.
	c := slices.Clone(b)
	SetBaseOffset(c, 1<<50)
	SetPartitionLeaderEpoch(c, 9)
	SetMaxTimestampLogAppendTime(c, 1<<40)
	if _, err := Validate(c); err != nil {
		t.Fatalf("Validate after rewrites: %v", err)
	}

	if h.Codec() != None {
		// Compressed records are not checked by Validate; they need
		// only decode without panicking.
		if err := Records(b, 1<<20, func(Record) bool { return true }); err != nil && !isSentinel(err) {
			t.Fatalf("Records returned %v", err)
		}
		return
	}
	var recs []Record
	err = Records(b, 0, func(r Record) bool {
		if r.OffsetDelta != int32(len(recs)) {
			t.Fatalf("record %d has offset delta %d", len(recs), r.OffsetDelta)
		}
		r.Headers = slices.Clone(r.Headers) // reused by Records
		recs = append(recs, r)
		return true
	})
	if err != nil || len(recs) != int(h.NumRecords) {
		t.Fatalf("Records on a valid batch: %d records of %d, %v", len(recs), h.NumRecords, err)
	}
	// Whatever Validate accepts, Build can reproduce.
	rebuilt, err := Build(nil, h, recs, None)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if _, err := Validate(rebuilt); err != nil {
		t.Fatalf("Validate rebuilt: %v", err)
	}
	got, err := collect(rebuilt, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, got, recs)
}

func FuzzRecords(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, limit uint32) {
		// 4 MiB keeps the fuzzer's memory in check while leaving room
		// for every seed.
		lim := int(limit % (4 << 20))
		handed := 0
		err := Records(b, lim, func(r Record) bool {
			handed += len(r.Key) + len(r.Value)
			for _, h := range r.Headers {
				handed += len(h.Key) + len(h.Value)
			}
			return true
		})
		if err != nil && !isSentinel(err) {
			t.Fatalf("Records returned %v", err)
		}
		// Every byte handed out comes from the batch or from at most
		// lim bytes of decompressed records.
		if handed > max(len(b), lim) {
			t.Fatalf("handed out %d bytes from a %d byte batch with limit %d", handed, len(b), lim)
		}
	})
}

// seedBatches returns valid batches of every codec and shape the corpus
// should start from, and broken ones covering each error.
func seedBatches(t *testing.T) map[string][]byte {
	rng := rand.New(rand.NewPCG(31, 32))
	seeds := map[string][]byte{}
	h := producerHeader()
	for _, codec := range codecs {
		seeds["valid-"+codec.String()+"-one"] = mustBuild(t, h, []Record{{Key: []byte("k"), Value: []byte("v")}}, codec)
		seeds["valid-"+codec.String()+"-mixed"] = mustBuild(t, h, sampleRecords(rng, 6, 40), codec)
		if codec != None {
			// Compresses to little: exercises the decompression limit.
			seeds["valid-"+codec.String()+"-bomb"] = mustBuild(t, h, []Record{{Value: make([]byte, 128<<10)}}, codec)
		}
	}
	idem := h
	idem.ProducerID, idem.ProducerEpoch, idem.BaseSequence, idem.Attributes = 5, 1, 10, attrTransactional
	seeds["valid-none-transactional"] = mustBuild(t, idem, sampleRecords(rng, 3, 10), None)

	recs := sampleRecords(rng, 8, 300)
	raw, _ := appendRecords(nil, recs, recs[0].TimestampDelta)
	seeds["valid-snappy-xerial"] = batch(Snappy, 8, 7, xerialFrame(raw, 1000))
	seeds["valid-zstd-streamed"] = batch(Zstd, 8, 7, zstdStream(t, raw, 1<<20))

	good := seeds["valid-none-mixed"]
	two := append(okRecord(0), okRecord(1)...)
	flip := func(i int) []byte { b := slices.Clone(good); b[i] ^= 0x10; return b }
	seeds["bad-truncated"] = good[:len(good)-3]
	seeds["bad-trailing"] = append(slices.Clone(good), 0)
	seeds["bad-crc"] = flip(18)
	seeds["bad-magic"] = flip(16)
	seeds["bad-count"] = batch(None, 3, 2, two)
	seeds["bad-delta"] = batch(None, 2, 1, append(okRecord(0), okRecord(3)...))
	seeds["bad-varint"] = batch(None, 1, 0, rawRecord([]byte{0}, vi(0), []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0}, vi(-1), vi(-1), vi(0)))
	seeds["bad-garbage-in-batch"] = batch(None, 2, 1, append(slices.Clone(two), 0xff))
	seeds["bad-codec"] = batch(6, 2, 1, two)
	seeds["bad-gzip"] = batch(Gzip, 1, 0, []byte("\x1f\x8b\x08\x00garbage"))
	seeds["bad-zstd"] = batch(Zstd, 1, 0, []byte("\x28\xb5\x2f\xfdgarbage"))
	return seeds
}

// TestUpdateFuzzCorpus regenerates the committed seed corpora when run
// with -update-corpus, and is skipped otherwise; the fuzz targets load
// the files as seeds, so plain go test runs them all.
func TestUpdateFuzzCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to rewrite testdata/fuzz")
	}
	for name, b := range seedBatches(t) {
		writeSeed(t, "FuzzValidate", name, fmt.Appendf(nil, "[]byte(%q)\n", b))
		for _, limit := range []uint32{64 << 10, 1 << 20} {
			writeSeed(t, "FuzzRecords", fmt.Sprint(name, "-", limit>>10, "k"), fmt.Appendf(nil, "[]byte(%q)\nuint32(%d)\n", b, limit))
		}
	}
}

func writeSeed(t *testing.T, target, name string, values []byte) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := append([]byte("go test fuzz v1\n"), values...)
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSeedCorpusCoversCodecs guards the committed corpus against going
// stale: it must hold a valid batch of every codec.
func TestSeedCorpusCoversCodecs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzValidate", "valid-*"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[Codec]bool{}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		b, ok := parseSeed(data)
		if !ok {
			t.Fatalf("%s: not a one-[]byte corpus file", name)
		}
		h, err := Validate(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		seen[h.Codec()] = true
	}
	for _, c := range codecs {
		if !seen[c] {
			t.Errorf("no valid %v batch in the FuzzValidate corpus", c)
		}
	}
}

// parseSeed decodes a corpus file holding a single []byte.
func parseSeed(data []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(data, []byte("go test fuzz v1\n[]byte("))
	if !ok {
		return nil, false
	}
	rest, ok = bytes.CutSuffix(bytes.TrimSpace(rest), []byte(")"))
	if !ok {
		return nil, false
	}
	s, err := strconv.Unquote(string(rest))
	return []byte(s), err == nil
}
