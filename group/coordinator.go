package group

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rocketkafka/broker/log"
)

// OffsetsTopic is the internal topic that keeps committed offsets.
const OffsetsTopic = "__consumer_offsets"

// offsetsTopicConfigs are the overrides the internal topic is created with,
// Kafka's: compacted, never deleted by retention, batches kept as written.
var offsetsTopicConfigs = map[string]string{
	"cleanup.policy":   "compact",
	"compression.type": "producer",
}

// Kafka's constants that are not broker configs here.
const (
	// newMemberJoinTimeout bounds how long a member that has never
	// completed a join may stay parked in a rebalance: it cannot heartbeat,
	// and a client that gave up on its JoinGroup would otherwise hold the
	// rebalance until the rebalance timeout, again and again.
	newMemberJoinTimeout = 5 * time.Minute
	// maxMetadataBytes is offset.metadata.max.bytes at its default.
	maxMetadataBytes = 4096
)

// Options configures a Coordinator. DefaultOptions gives Kafka's defaults;
// the fields are used as set.
type Options struct {
	Store  *log.Log
	Logger *zap.Logger // nil: no logging

	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (group.min.session.timeout.ms,
	// group.max.session.timeout.ms).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is how long the first rebalance of an Empty
	// group waits for more members (group.initial.rebalance.delay.ms).
	InitialRebalanceDelay time.Duration
	// OffsetsRetention is offsets.retention.minutes; RetentionCheckInterval
	// is offsets.retention.check.interval.ms.
	OffsetsRetention, RetentionCheckInterval time.Duration
	// MaxSize is group.max.size, the most members a classic group takes.
	MaxSize int

	// ConsumerSessionTimeout and ConsumerHeartbeatInterval are
	// group.consumer.session.timeout.ms and
	// group.consumer.heartbeat.interval.ms, which the coordinator sets
	// for KIP-848 consumer groups; ConsumerMaxSize is
	// group.consumer.max.size.
	ConsumerSessionTimeout, ConsumerHeartbeatInterval time.Duration
	ConsumerMaxSize                                   int

	Now func() time.Time // nil: time.Now
}

// DefaultOptions returns Kafka's defaults for store.
func DefaultOptions(store *log.Log) Options {
	return Options{
		Store:                  store,
		MinSessionTimeout:      6 * time.Second,
		MaxSessionTimeout:      30 * time.Minute,
		InitialRebalanceDelay:  3 * time.Second,
		OffsetsRetention:       7 * 24 * time.Hour,
		RetentionCheckInterval: 10 * time.Minute,
		MaxSize:                math.MaxInt32,

		ConsumerSessionTimeout:    45 * time.Second,
		ConsumerHeartbeatInterval: 5 * time.Second,
		ConsumerMaxSize:           math.MaxInt32,
	}
}

// Coordinator is the group coordinator of every group; it is safe for
// concurrent use.
type Coordinator struct {
	opts   Options
	store  *log.Log
	logger *zap.Logger
	now    func() time.Time

	mu     sync.Mutex // guards groups; never held while taking a group's mutex
	groups map[string]*group

	timers timers
	closed atomic.Bool   // set first thing in Close; requests that would park check it under the group's mutex
	stop   chan struct{} // closed by Close to end the retention loop
	done   chan struct{} // closed when the retention loop has returned
}

// Open creates the internal topic if it is missing, replays it to rebuild
// the committed offsets and starts the coordinator.
func Open(opts Options) (*Coordinator, error) {
	if opts.Store == nil {
		return nil, errors.New("group: no store")
	}
	if opts.MinSessionTimeout > opts.MaxSessionTimeout {
		return nil, fmt.Errorf("group: minimum session timeout %v above the maximum %v", opts.MinSessionTimeout, opts.MaxSessionTimeout)
	}
	if opts.MaxSize < 1 || opts.ConsumerMaxSize < 1 {
		return nil, fmt.Errorf("group: maximum group sizes %d and %d must be at least 1", opts.MaxSize, opts.ConsumerMaxSize)
	}
	if opts.ConsumerHeartbeatInterval <= 0 || opts.ConsumerHeartbeatInterval >= opts.ConsumerSessionTimeout {
		return nil, fmt.Errorf("group: consumer heartbeat interval %v must be positive and below the session timeout %v", opts.ConsumerHeartbeatInterval, opts.ConsumerSessionTimeout)
	}
	if opts.RetentionCheckInterval <= 0 {
		return nil, fmt.Errorf("group: offsets retention check interval %v is not positive", opts.RetentionCheckInterval)
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Coordinator{
		opts:   opts,
		store:  opts.Store,
		logger: opts.Logger,
		now:    opts.Now,
		groups: map[string]*group{},
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if _, ok := c.store.Topic(OffsetsTopic); !ok {
		if _, err := c.store.CreateTopic(OffsetsTopic, 1, maps.Clone(offsetsTopicConfigs)); err != nil && !errors.Is(err, log.ErrTopicExists) {
			return nil, fmt.Errorf("group: creating %s: %w", OffsetsTopic, err)
		}
		c.logger.Info("created the offsets topic", zap.String("topic", OffsetsTopic))
	}
	start := time.Now()
	n, err := c.replay()
	if err != nil {
		return nil, err
	}
	c.logger.Info("loaded committed offsets", zap.Int("records", n), zap.Int("groups", len(c.groups)), zap.Duration("took", time.Since(start)))
	go c.retentionLoop()
	return c, nil
}

// Close stops the timers and the retention loop and answers every parked
// JoinGroup and SyncGroup with NOT_COORDINATOR, as it answers those that
// come after. Other requests served after Close fail on the closed store
// or find no members.
func (c *Coordinator) Close() {
	c.closed.Store(true)
	close(c.stop)
	<-c.done
	c.timers.close()
	c.mu.Lock()
	groups := slices.Collect(maps.Values(c.groups))
	c.mu.Unlock()
	for _, g := range groups {
		g.mu.Lock()
		g.unload()
		g.mu.Unlock()
	}
}

// lockGroup returns the group named id with its mutex held, creating it
// (Empty) if create is set; nil if it does not exist. A group deleted
// between the lookup and the lock is looked up again.
func (c *Coordinator) lockGroup(id string, create bool) *group {
	for {
		c.mu.Lock()
		g := c.groups[id]
		if g == nil {
			if !create {
				c.mu.Unlock()
				return nil
			}
			g = newGroup(c, id)
			c.groups[id] = g
		}
		c.mu.Unlock()
		g.mu.Lock()
		if g.state != dead {
			return g
		}
		g.mu.Unlock()
	}
}

// removeGroup marks g Dead and drops it from the map; g.mu must be held.
func (c *Coordinator) removeGroup(g *group) {
	g.transition(dead)
	c.mu.Lock()
	if c.groups[g.id] == g {
		delete(c.groups, g.id)
	}
	c.mu.Unlock()
}

// snapshot lists the groups in the map, sorted by id.
func (c *Coordinator) snapshot() []*group {
	c.mu.Lock()
	out := slices.Collect(maps.Values(c.groups))
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b *group) int { return cmp.Compare(a.id, b.id) })
	return out
}

// retentionLoop expires offsets, removes empty groups and compacts the
// offsets topic every RetentionCheckInterval until Close.
func (c *Coordinator) retentionLoop() {
	defer close(c.done)
	ticker := time.NewTicker(c.opts.RetentionCheckInterval)
	defer ticker.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-ticker.C:
			c.expireOffsets()
			c.compact()
		}
	}
}

// timers runs callbacks after a delay and lets Close wait for those that
// are running; callbacks that fire after close do nothing.
type timers struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (t *timers) after(d time.Duration, fn func()) *time.Timer {
	return time.AfterFunc(d, func() {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return
		}
		t.wg.Add(1)
		t.mu.Unlock()
		defer t.wg.Done()
		fn()
	})
}

func (t *timers) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.wg.Wait()
}

// newMemberID is Kafka's member id: the client id (or the group instance
// id of a static member), a dash and a random UUID.
func newMemberID(prefix string) string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
