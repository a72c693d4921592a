package log

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/rocketkafka/broker/record"
	"github.com/rocketkafka/broker/segment"
)

// FuzzDecodeEntry: no input panics the entry decoder, and whatever it
// accepts re-encodes to the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	batch := buildBatch(f, batchSpec{n: 2, valueSize: 5})
	entry := appendEntryHeader(nil, "topic", TopicID{1, 2}, 3, 1700000000000, batch)
	entry = append(entry, batch...)
	f.Add(entry)
	f.Add(paddingMarker(minEntrySize))
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, batch, err := decodeEntry(b)
		if err != nil || h.typ != entryTypeBatch {
			return
		}
		again := appendEntryHeader(nil, h.topic, h.topicID, h.partition, h.storeTime, batch)
		again = append(again, batch...)
		if string(again) != string(b[:h.length]) {
			t.Fatalf("accepted entry does not re-encode to its bytes")
		}
	})
}

// FuzzRecovery writes arbitrary bytes over the CommitLog after a crash:
// Open must not panic, and everything it then serves must be intact.
func FuzzRecovery(f *testing.F) {
	f.Add(int64(0), []byte{0xff, 0xff, 0xff, 0xff})
	f.Add(int64(100), []byte{0, 0, 0, 40, 1, 2, 3, 4, 1})
	f.Add(int64(5000), make([]byte, 64))
	f.Fuzz(func(t *testing.T, at int64, garbage []byte) {
		fs := segment.NewMemFS()
		l := openTest(t, testOptions(fs))
		l.CreateTopic("t", 2, nil)
		for i := range 12 {
			p, _ := l.Partition("t", int32(i%2))
			if _, err := p.Append(buildBatch(t, batchSpec{n: 2, valueSize: 700})); err != nil {
				t.Fatal(err)
			}
		}
		l.cl.sync()
		fs.Crash()
		name := filepath.Join("/data", commitLogDir, segment.Name(0))
		file, err := fs.OpenFile(name, 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		if at < 0 {
			at = -at
		}
		file.WriteAt(garbage, at%(64<<10))
		file.Sync()
		file.Close()
		l, err = Open(testOptions(fs))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrStorage) {
				t.Fatalf("Open failed with an unclassified error: %v", err)
			}
			return
		}
		defer l.Close()
		for i := range int32(2) {
			p, _ := l.Partition("t", i)
			offset := p.LogStartOffset()
			for offset < p.HighWatermark() {
				chunks, err := p.Read(offset, 1<<20, true, nil)
				if err != nil || len(chunks) == 0 {
					t.Fatalf("read at %d below hwm %d: %v", offset, p.HighWatermark(), err)
				}
				for _, c := range chunks {
					b := make([]byte, c.Len)
					c.Segment.ReadAt(b, c.Off)
					h, err := record.Validate(b)
					if err != nil {
						t.Fatalf("recovered partition serves a bad batch: %v", err)
					}
					offset = h.LastOffset() + 1
				}
			}
		}
	})
}
