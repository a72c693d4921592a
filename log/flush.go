package log

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// flusher makes CommitLog writes durable: on an interval (ASYNC_FLUSH), and
// on demand for acks=all producers (SYNC_FLUSH group commit: every producer
// waiting when an fsync starts is answered by that one fsync).
type flusher struct {
	cl       *commitLog
	logger   *zap.Logger
	syncMode bool
	interval time.Duration
	messages int64 // flush after this many appended records; <= 0 is never

	pending atomic.Int64 // records appended since the last flush
	kick    chan struct{}

	mu      sync.Mutex
	waiters []durableWaiter

	stop chan struct{}
	done chan struct{}
}

type durableWaiter struct {
	pos int64
	ch  chan error
}

func newFlusher(cl *commitLog, logger *zap.Logger, syncMode bool, interval time.Duration, messages int64) *flusher {
	f := &flusher{
		cl: cl, logger: logger, syncMode: syncMode, interval: interval, messages: messages,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go f.run()
	return f
}

func (f *flusher) appended(records int64) {
	if f.messages > 0 && f.pending.Add(records) >= f.messages {
		f.trigger()
	}
}

func (f *flusher) trigger() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// waitDurable blocks until the CommitLog is synced through pos. Only
// SYNC_FLUSH waits; ASYNC_FLUSH acknowledges what is in the page cache, as
// Kafka does by default.
func (f *flusher) waitDurable(ctx context.Context, pos int64) error {
	if !f.syncMode || f.cl.synced.Load() >= pos {
		return nil
	}
	ch := make(chan error, 1)
	f.mu.Lock()
	f.waiters = append(f.waiters, durableWaiter{pos: pos, ch: ch})
	f.mu.Unlock()
	f.trigger()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *flusher) run() {
	defer close(f.done)
	var tick <-chan time.Time
	if f.interval > 0 {
		t := time.NewTicker(f.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-f.stop:
			f.flush()
			return
		case <-tick:
		case <-f.kick:
		}
		f.flush()
	}
}

func (f *flusher) flush() {
	f.pending.Store(0)
	synced, err := f.cl.sync()
	if err != nil {
		f.logger.Error("CommitLog fsync failed", zap.Error(err))
	}
	f.mu.Lock()
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		switch {
		case err != nil:
			w.ch <- err
		case w.pos <= synced:
			w.ch <- nil
		default:
			kept = append(kept, w)
		}
	}
	f.waiters = kept
	f.mu.Unlock()
	if len(kept) > 0 {
		f.trigger()
	}
}

func (f *flusher) close() {
	close(f.stop)
	<-f.done
}
