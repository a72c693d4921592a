package log

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rocketkafka/broker/index"
	"github.com/rocketkafka/broker/record"
)

// keyIndexDir holds the IndexFiles.
const keyIndexDir = "index"

// Key index geometry: 500,000 slots (a 2 MB table) and 2,000,000 entries
// (88 MB) per file keep a laptop's first start small; a file rolls after
// 2 million keys.
const (
	defaultKeySlots   = 500_000
	defaultKeyEntries = 2_000_000
)

// keyIndexer follows the CommitLog behind the appenders, as RocketMQ's
// index dispatcher does, and adds every record key of topics with
// key.index.enable to the IndexFiles. Decoding (and decompressing) records
// stays off the produce path; the index lags the log by at most a wake-up.
type keyIndexer struct {
	l   *Log
	idx *index.KeyIndex

	mu  sync.Mutex // held while indexing; a checkpoint takes it for a consistent (pos, End)
	pos int64      // next CommitLog position to index

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

func (k *keyIndexer) kick() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

func (k *keyIndexer) run() {
	defer close(k.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-k.wake:
		case <-t.C:
		}
		if err := k.catchUp(); err != nil {
			k.l.logger.Error("indexing record keys failed; retrying", zap.Error(err))
		}
	}
}

// catchUp indexes the entries written since the last pass.
func (k *keyIndexer) catchUp() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	to := k.l.cl.written.Load()
	if k.pos >= to {
		return nil
	}
	k.pos = max(k.pos, k.l.cl.start())
	var addErr error
	end, err := k.l.cl.scanTo(k.pos, to, false, func(e scanned) {
		if addErr == nil {
			addErr = k.add(e)
		}
	})
	if addErr != nil {
		return addErr
	}
	k.pos = end
	return err
}

// add indexes the keys of one CommitLog entry.
func (k *keyIndexer) add(e scanned) error {
	k.l.mu.RLock()
	t, ok := k.l.byID[e.header.topicID]
	k.l.mu.RUnlock()
	if !ok || !t.settings.Load().keyIndex {
		return nil
	}
	h, err := record.ParseHeader(e.batch)
	if err != nil {
		return nil // recovery's checks passed, so this cannot happen; skip rather than stall
	}
	var addErr error
	err = record.Records(e.batch, maxDecompressedBatch, func(r record.Record) bool {
		if r.Key == nil {
			return true
		}
		ts := h.FirstTimestamp + r.TimestampDelta
		if h.LogAppendTime() {
			ts = h.MaxTimestamp
		}
		addErr = k.idx.Add(index.KeyEntry{
			Hash: index.KeyHash(t.id, r.Key), Partition: e.header.partition,
			Offset: h.BaseOffset + int64(r.OffsetDelta), Timestamp: ts, Pos: e.batchPos,
		})
		return addErr == nil
	})
	if addErr != nil {
		return errors.Join(ErrStorage, addErr)
	}
	if err != nil {
		k.l.logger.Warn("skipping the keys of a batch that does not decode", zap.String("topic", t.name), zap.Int32("partition", e.header.partition), zap.Error(err))
	}
	return nil
}

// indexedTo is the CommitLog position indexing has reached.
func (k *keyIndexer) indexedTo() int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.pos
}

// checkpoint makes the index durable and returns the CommitLog position it
// covers with the matching index End.
func (k *keyIndexer) checkpoint() (pos, end int64, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.idx.Sync(); err != nil {
		return 0, 0, errors.Join(ErrStorage, err)
	}
	return k.pos, k.idx.End(), nil
}

func (k *keyIndexer) close() error {
	close(k.stop)
	<-k.done
	return k.idx.Close()
}

// KeyRecord is a record found by key.
type KeyRecord struct {
	Partition  int32
	Offset     int64
	Timestamp  int64
	Key, Value []byte
}

// LookupKey finds the records of topic with key whose timestamps are in
// [from, to], newest timestamp first, at most limit (<= 0: no limit). Only records
// still in the log are returned; records appended in the last moments may
// not be indexed yet.
func (l *Log) LookupKey(topic string, key []byte, from, to int64, limit int) ([]KeyRecord, error) {
	l.mu.RLock()
	t, ok := l.topics[topic]
	l.mu.RUnlock()
	if !ok {
		return nil, ErrUnknownTopic
	}
	var out []KeyRecord
	var readErr error
	err := l.keys.idx.Lookup(index.KeyHash(t.id, key), from, to, 0, func(e index.KeyEntry) bool {
		rec, found, err := l.recordAt(t, e)
		if err != nil {
			readErr = err
			return false
		}
		// A hash collision, or a record retention has removed.
		if found && bytes.Equal(rec.Key, key) {
			out = append(out, rec)
			// The index yields the most recently stored first, not the
			// newest timestamps: keep every candidate, but never more
			// than twice the limit in memory.
			if limit > 0 && len(out) >= 2*limit {
				out = newestFirst(out)[:limit]
			}
		}
		return true
	})
	if err != nil {
		return nil, errors.Join(ErrStorage, err)
	}
	out = newestFirst(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, readErr
}

// newestFirst sorts records by timestamp, newest first.
func newestFirst(recs []KeyRecord) []KeyRecord {
	slices.SortStableFunc(recs, func(a, b KeyRecord) int {
		return cmp.Or(cmp.Compare(b.Timestamp, a.Timestamp), cmp.Compare(a.Partition, b.Partition), cmp.Compare(b.Offset, a.Offset))
	})
	return recs
}

// recordAt reads back the record an index entry points at.
func (l *Log) recordAt(t *topic, e index.KeyEntry) (KeyRecord, bool, error) {
	if e.Partition < 0 || int(e.Partition) >= len(t.parts) || e.Pos < l.cl.start() {
		return KeyRecord{}, false, nil
	}
	p := t.parts[e.Partition]
	if e.Offset < p.start.Load() || e.Offset >= p.end.Load() {
		return KeyRecord{}, false, nil
	}
	hdr, err := l.cl.read(e.Pos, record.HeaderSize)
	if err != nil {
		return KeyRecord{}, false, err
	}
	h, err := record.ParseHeader(hdr)
	if err != nil {
		return KeyRecord{}, false, fmt.Errorf("%w: key index points at no batch: %v", ErrCorrupt, err)
	}
	batch, err := l.cl.read(e.Pos, int64(h.Size()))
	if err != nil {
		return KeyRecord{}, false, err
	}
	var rec KeyRecord
	found := false
	err = record.Records(batch, maxDecompressedBatch, func(r record.Record) bool {
		if h.BaseOffset+int64(r.OffsetDelta) != e.Offset {
			return true
		}
		rec = KeyRecord{Partition: e.Partition, Offset: e.Offset, Timestamp: e.Timestamp,
			Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value)}
		found = true
		return false
	})
	if err != nil {
		return KeyRecord{}, false, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return rec, found, nil
}

// openKeyIndexer opens the IndexFiles, trusting exactly what the
// checkpoint recorded (nothing without one), and resumes indexing where
// the checkpoint left off.
func (l *Log) openKeyIndexer(cp checkpoint, haveCheckpoint bool) error {
	dir := filepath.Join(l.opts.Dir, keyIndexDir)
	end, pos := cp.KeyIndexEnd, cp.KeyIndexPos
	if !haveCheckpoint {
		end, pos = 0, l.cl.start()
	}
	idx, err := index.OpenKeyIndexAt(l.fs, dir, l.opts.KeyIndexSlots, l.opts.KeyIndexEntries, end)
	if errors.Is(err, index.ErrCorrupt) {
		// The IndexFiles do not hold what the checkpoint says: build
		// them again from the CommitLog.
		l.logger.Warn("rebuilding the key index from the CommitLog", zap.Error(err))
		if err = l.fs.RemoveAll(dir); err == nil {
			idx, err = index.OpenKeyIndex(l.fs, dir, l.opts.KeyIndexSlots, l.opts.KeyIndexEntries)
		}
		pos = l.cl.start()
	}
	if err != nil {
		return errors.Join(ErrStorage, err)
	}
	l.keys = &keyIndexer{l: l, idx: idx, pos: pos, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	return nil
}
