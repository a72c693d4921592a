package log

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rocketkafka/broker/index"
	"github.com/rocketkafka/broker/segment"
)

// Options configures a Log. Zero values take the defaults noted.
type Options struct {
	Dir                 string
	FS                  segment.FS  // default segment.OS
	Logger              *zap.Logger // default no-op
	SegmentBytes        int64       // CommitLog file size, default 1 GiB
	ConsumeQueueEntries int64       // entries per ConsumeQueue file, default 300000
	SyncFlush           bool        // SYNC_FLUSH: acks=all waits for the fsync covering it
	FlushInterval       time.Duration
	FlushMessages       int64 // fsync after this many records (log.flush.interval.messages); <= 0 never
	// RetentionInterval is how often retention runs (default 5 minutes,
	// Kafka's log.retention.check.interval.ms).
	RetentionInterval time.Duration
	// CheckpointInterval is how often a checkpoint bounds what recovery
	// after a crash scans (default 10 seconds).
	CheckpointInterval time.Duration
	// DiskReclaimRatio and DiskCriticalRatio are disk usage marks (0..1;
	// 0 disables): above the first the oldest CommitLog files are
	// reclaimed early, above the second produce is refused.
	DiskReclaimRatio  float64
	DiskCriticalRatio float64
	DiskUsage         DiskUsage // default: statfs of Dir
	// KeyIndexSlots and KeyIndexEntries size new IndexFiles (defaults
	// 500,000 slots and 2,000,000 entries per file).
	KeyIndexSlots     int
	KeyIndexEntries   int
	DiskCheckInterval time.Duration // default 1 second
	ClusterID         string
	// TopicDefaults are the broker-level topic config values
	// (max.message.bytes, message.timestamp.type, ...) a topic falls back to.
	TopicDefaults map[string]string
	Now           func() time.Time // default time.Now
}

// Log is the store: one CommitLog shared by every partition, a ConsumeQueue
// per partition, and the topic catalogue.
type Log struct {
	opts    Options
	fs      segment.FS
	logger  *zap.Logger
	cl      *commitLog
	flusher *flusher
	keys    *keyIndexer
	lock    *os.File // flock on the data directory, while open
	closed  atomic.Bool

	// gate is held shared by appends from their CommitLog write until
	// their ConsumeQueue entries exist, and exclusively by a checkpoint
	// taking its cut.
	gate sync.RWMutex
	// trusted is, while recovery opens ConsumeQueues, how many entries of
	// each the checkpoint vouches for.
	trusted map[string]int64

	diskFull atomic.Bool

	// Periodic chores (retention, checkpoints, disk checks) run until
	// stopChores is closed.
	stopChores chan struct{}
	chores     sync.WaitGroup

	startMu sync.Mutex // serialises writes of the log start offsets file

	clusterID string

	// catalogVersion changes whenever topics are created, grown or
	// deleted, so callers can cache what they derive from Topics.
	catalogVersion atomic.Uint64

	mu              sync.RWMutex // guards the catalogue below
	topics          map[string]*topic
	byID            map[TopicID]*topic
	nextProducerID  int64
	producerIDLimit int64
}

type topic struct {
	name     string
	id       TopicID
	configs  map[string]string // overrides; replaced, never mutated
	settings atomic.Pointer[topicSettings]
	parts    []*Partition // replaced on growth, never mutated
}

// Topic describes a topic.
type Topic struct {
	Name       string
	ID         TopicID
	Partitions int32
	Configs    map[string]string // the topic's own overrides
}

func (t *topic) describe() Topic {
	return Topic{Name: t.name, ID: t.id, Partitions: int32(len(t.parts)), Configs: t.configs}
}

// Open opens or creates the store in opts.Dir and recovers it.
func Open(opts Options) (*Log, error) {
	if opts.FS == nil {
		opts.FS = segment.OS
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 1 << 30
	}
	if opts.ConsumeQueueEntries <= 0 {
		opts.ConsumeQueueEntries = 300000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetentionInterval <= 0 {
		opts.RetentionInterval = 5 * time.Minute
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = 10 * time.Second
	}
	if opts.DiskUsage == nil {
		opts.DiskUsage = statfsUsage(opts.Dir)
	}
	if opts.DiskCheckInterval <= 0 {
		opts.DiskCheckInterval = time.Second
	}
	if opts.KeyIndexSlots <= 0 {
		opts.KeyIndexSlots = defaultKeySlots
	}
	if opts.KeyIndexEntries <= 0 {
		opts.KeyIndexEntries = defaultKeyEntries
	}
	l := &Log{opts: opts, fs: opts.FS, logger: opts.Logger, topics: map[string]*topic{}, byID: map[TopicID]*topic{}}
	if err := l.fs.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, errors.Join(ErrStorage, err)
	}
	// The directory's own entry must be durable before anything in it is.
	if err := l.fs.SyncDir(filepath.Dir(filepath.Clean(opts.Dir))); err != nil {
		return nil, errors.Join(ErrStorage, err)
	}
	var err error
	if l.lock, err = lockDir(l.fs, opts.Dir); err != nil {
		return nil, err
	}
	opened := false
	defer func() {
		if !opened && l.lock != nil {
			l.lock.Close()
		}
	}()
	if l.clusterID, err = loadClusterID(l.fs, opts.Dir, opts.ClusterID); err != nil {
		return nil, err
	}
	if l.cl, err = openCommitLog(l.fs, filepath.Join(opts.Dir, commitLogDir), opts.SegmentBytes); err != nil {
		return nil, err
	}
	if err := l.recover(); err != nil {
		l.closeFiles()
		return nil, err
	}
	l.flusher = newFlusher(l.cl, l.logger, opts.SyncFlush, opts.FlushInterval, opts.FlushMessages)
	go l.keys.run()
	l.stopChores = make(chan struct{})
	l.every(opts.RetentionInterval, "retention pass failed", l.retain)
	l.every(opts.CheckpointInterval, "checkpoint failed; recovery after a crash will scan from the previous one", func() error { return l.writeCheckpoint(false) })
	l.every(opts.DiskCheckInterval, "disk usage check failed", l.checkDisk)
	opened = true
	return l, nil
}

// ClusterID is the cluster ID kept in meta.properties.
func (l *Log) ClusterID() string { return l.clusterID }

// Close flushes everything and records a clean shutdown, so the next Open
// does not scan the CommitLog.
func (l *Log) Close() error {
	if l.closed.Swap(true) {
		return ErrClosed
	}
	close(l.stopChores)
	l.chores.Wait()
	l.flusher.close()
	var errs []error
	if err := l.writeCheckpoint(true); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, l.keys.close())
	defer func() {
		if l.lock != nil {
			l.lock.Close() // releases the flock, after everything is closed
		}
	}()
	errs = append(errs, l.closeFiles())
	return errors.Join(errs...)
}

func (l *Log) closeFiles() error {
	var errs []error
	for _, t := range l.topics {
		for _, p := range t.parts {
			errs = append(errs, p.cq.Close())
		}
	}
	errs = append(errs, l.cl.close())
	return errors.Join(errs...)
}

func (l *Log) path(name string) string { return filepath.Join(l.opts.Dir, name) }

func (l *Log) consumeQueueDir(name string, partition int32) string {
	return filepath.Join(l.opts.Dir, consumeQueueDir, name, strconv.Itoa(int(partition)))
}

// WaitDurable blocks until the CommitLog is durable through end (an
// AppendResult.End) when the flush policy is SYNC_FLUSH.
func (l *Log) WaitDurable(ctx context.Context, end int64) error {
	return l.flusher.waitDurable(ctx, end)
}

// Stats are store figures for metrics.
type Stats struct {
	CommitLogStart, CommitLogEnd, CommitLogSynced int64
	Topics, Partitions                            int
	KeyIndexFiles                                 int
	KeyIndexEntries                               int64
}

// Stats reports the store's current positions and sizes.
func (l *Log) Stats() Stats {
	l.mu.RLock()
	defer l.mu.RUnlock()
	s := Stats{CommitLogStart: l.cl.start(), CommitLogEnd: l.cl.written.Load(), CommitLogSynced: l.cl.synced.Load(), Topics: len(l.topics)}
	for _, t := range l.topics {
		s.Partitions += len(t.parts)
	}
	s.KeyIndexFiles, s.KeyIndexEntries = l.keys.idx.Stats()
	return s
}

// Topics lists every topic, sorted by name.
func (l *Log) Topics() []Topic {
	l.mu.RLock()
	out := make([]Topic, 0, len(l.topics))
	for _, t := range l.topics {
		out = append(out, t.describe())
	}
	l.mu.RUnlock()
	slices.SortFunc(out, func(a, b Topic) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// SegmentBytes is the size of each CommitLog file.
func (l *Log) SegmentBytes() int64 { return l.opts.SegmentBytes }

// CatalogVersion changes (grows) whenever a topic is created, grown or
// deleted.
func (l *Log) CatalogVersion() uint64 { return l.catalogVersion.Load() }

// Topic describes one topic by name.
func (l *Log) Topic(name string) (Topic, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	t, ok := l.topics[name]
	if !ok {
		return Topic{}, false
	}
	return t.describe(), true
}

// TopicByID describes one topic by ID.
func (l *Log) TopicByID(id TopicID) (Topic, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	t, ok := l.byID[id]
	if !ok {
		return Topic{}, false
	}
	return t.describe(), true
}

// Partition returns a topic-partition for reads and appends.
func (l *Log) Partition(name string, partition int32) (*Partition, error) {
	l.mu.RLock()
	t, ok := l.topics[name]
	var parts []*Partition
	if ok {
		parts = t.parts
	}
	l.mu.RUnlock()
	if !ok {
		return nil, ErrUnknownTopic
	}
	if partition < 0 || int(partition) >= len(parts) {
		return nil, ErrUnknownPartition
	}
	return parts[partition], nil
}

// CreateTopic creates a topic with partitions partitions; configs are its
// overrides of the broker defaults, already validated by the caller.
func (l *Log) CreateTopic(name string, partitions int32, configs map[string]string) (Topic, error) {
	if partitions <= 0 {
		return Topic{}, ErrInvalidPartitions
	}
	if l.closed.Load() {
		return Topic{}, ErrClosed
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.topics[name]; ok {
		return Topic{}, ErrTopicExists
	}
	// A crash during an earlier delete may have left this name's
	// ConsumeQueues behind; they belong to the old topic ID.
	if err := l.fs.RemoveAll(filepath.Join(l.opts.Dir, consumeQueueDir, name)); err != nil {
		return Topic{}, errors.Join(ErrStorage, err)
	}
	t := &topic{name: name, id: newTopicID(), configs: configs}
	t.settings.Store(new(parseSettings(l.opts.TopicDefaults, configs)))
	if err := l.growLocked(t, partitions, true); err != nil {
		return Topic{}, err
	}
	l.topics[name] = t
	l.byID[t.id] = t
	if err := l.saveMetadataLocked(); err != nil {
		delete(l.topics, name)
		delete(l.byID, t.id)
		for _, p := range t.parts {
			p.cq.Remove()
		}
		return Topic{}, err
	}
	return t.describe(), nil
}

// growLocked opens ConsumeQueues for partitions up to total. On failure
// it removes the queues it opened for new partitions (created), and only
// closes those recovery opened, which hold data.
func (l *Log) growLocked(t *topic, total int32, created bool) error {
	parts := slices.Clone(t.parts)
	undo := func() {
		for _, p := range parts[len(t.parts):] {
			if created {
				p.cq.Remove()
			} else {
				p.cq.Close()
			}
		}
	}
	for i := int32(len(parts)); i < total; i++ {
		cq, err := l.openConsumeQueue(t, i)
		if err != nil {
			undo()
			return errors.Join(ErrStorage, err)
		}
		parts = append(parts, newPartition(l, t, i, cq))
	}
	t.parts = parts
	return nil
}

// CreatePartitions grows a topic to total partitions.
func (l *Log) CreatePartitions(name string, total int32) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.topics[name]
	if !ok {
		return ErrUnknownTopic
	}
	if int(total) <= len(t.parts) {
		return fmt.Errorf("%w: topic %s has %d partitions, cannot go to %d", ErrInvalidPartitions, name, len(t.parts), total)
	}
	old := t.parts
	if err := l.growLocked(t, total, true); err != nil {
		return err
	}
	if err := l.saveMetadataLocked(); err != nil {
		for _, p := range t.parts[len(old):] {
			p.cq.Remove()
		}
		t.parts = old
		return err
	}
	return nil
}

// DeleteTopic deletes a topic; its records are never served again, even
// if a topic of the same name is created later.
func (l *Log) DeleteTopic(name string) (Topic, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.topics[name]
	if !ok {
		return Topic{}, ErrUnknownTopic
	}
	delete(l.topics, name)
	delete(l.byID, t.id)
	if err := l.saveMetadataLocked(); err != nil {
		l.topics[name] = t
		l.byID[t.id] = t
		return Topic{}, err
	}
	for _, p := range t.parts {
		if err := p.cq.Remove(); err != nil {
			l.logger.Warn("removing ConsumeQueue of deleted topic", zap.String("topic", name), zap.Error(err))
		}
	}
	if err := l.fs.RemoveAll(filepath.Join(l.opts.Dir, consumeQueueDir, name)); err != nil {
		l.logger.Warn("removing ConsumeQueues of deleted topic", zap.String("topic", name), zap.Error(err))
	}
	return t.describe(), nil
}

// InitProducerID hands out a new idempotent producer ID with epoch 0.
func (l *Log) InitProducerID() (int64, int16, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nextProducerID >= l.producerIDLimit {
		l.producerIDLimit = l.nextProducerID + producerIDBlock
		if err := l.saveMetadataLocked(); err != nil {
			l.producerIDLimit = l.nextProducerID
			return -1, -1, err
		}
	}
	id := l.nextProducerID
	l.nextProducerID++
	return id, 0, nil
}

// saveMetadataLocked writes the catalogue after a change to it; the
// catalogue version moves even if the write fails and the change is
// undone, as a spurious change only costs a cache refresh.
func (l *Log) saveMetadataLocked() error {
	l.catalogVersion.Add(1)
	md := metadata{ProducerIDLimit: l.producerIDLimit}
	for _, t := range l.topics {
		md.Topics = append(md.Topics, topicMeta{Name: t.name, ID: t.id.String(), Partitions: int32(len(t.parts)), Configs: t.configs})
	}
	slices.SortFunc(md.Topics, func(a, b topicMeta) int { return strings.Compare(a.Name, b.Name) })
	return writeJSON(l.fs, l.path(metadataFile), md)
}

// openConsumeQueue opens a partition's ConsumeQueue; during recovery it
// trusts only the entries the checkpoint vouches for (none for a partition
// the checkpoint does not know, which is then indexed from the replay).
func (l *Log) openConsumeQueue(t *topic, i int32) (*index.ConsumeQueue, error) {
	dir := l.consumeQueueDir(t.name, i)
	if l.trusted != nil {
		return index.OpenConsumeQueueAt(l.fs, dir, l.opts.ConsumeQueueEntries, l.trusted[partitionKey(t.id, i)])
	}
	return index.OpenConsumeQueue(l.fs, dir, l.opts.ConsumeQueueEntries)
}

// every runs fn each interval on its own goroutine until Close, logging
// its failures.
func (l *Log) every(interval time.Duration, failure string, fn func() error) {
	l.chores.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-l.stopChores:
				return
			case <-t.C:
				if err := fn(); err != nil {
					l.logger.Error(failure, zap.Error(err))
				}
			}
		}
	})
}
