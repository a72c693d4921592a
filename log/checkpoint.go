package log

import (
	"errors"
	"maps"
	"slices"

	"github.com/rocketkafka/broker/segment"
)

// checkpoint is a consistent cut of the store: every CommitLog entry before
// CommitLogEnd is in the ConsumeQueues' first Queues[partition] entries
// and in Producers, and all of that was synced before the checkpoint was
// written. Recovery trusts it and replays the CommitLog from CommitLogEnd.
type checkpoint struct {
	// Clean is set by Close: nothing was written after CommitLogEnd.
	Clean        bool                 `json:"clean"`
	CommitLogEnd int64                `json:"commitlog_end"`
	Queues       map[string]int64     `json:"consume_queues"`
	Producers    []partitionProducers `json:"producers"`
	// KeyIndexPos is where key indexing resumes; the IndexFiles hold
	// exactly KeyIndexEnd entries for the CommitLog before it.
	KeyIndexPos int64 `json:"key_index_pos"`
	KeyIndexEnd int64 `json:"key_index_end"`
}

// partitionProducers is the idempotent state of one partition, by producer ID.
type partitionProducers struct {
	TopicID   string                   `json:"topic_id"`
	Partition int32                    `json:"partition"`
	Producers map[int64]*producerState `json:"producers"`
}

// writeCheckpoint takes a consistent cut (appends pause for the copy, not
// for the I/O), makes it durable and records it.
func (l *Log) writeCheckpoint(clean bool) error {
	l.gate.Lock()
	cp := checkpoint{Clean: clean, CommitLogEnd: l.cl.written.Load(), Queues: map[string]int64{}}
	var parts []*Partition
	l.mu.RLock()
	for _, t := range l.topics {
		for _, p := range t.parts {
			parts = append(parts, p)
			cp.Queues[partitionKey(t.id, p.index)] = p.cq.Len()
			if len(p.producers) > 0 {
				cp.Producers = append(cp.Producers, p.copyProducers())
			}
		}
	}
	l.mu.RUnlock()
	l.gate.Unlock()

	// The key index first: the CommitLog sync that follows then covers
	// everything it points at.
	var err error
	if cp.KeyIndexPos, cp.KeyIndexEnd, err = l.keys.checkpoint(); err != nil {
		return err
	}
	if _, err := l.cl.sync(); err != nil {
		return err
	}
	for _, p := range parts {
		if err := p.cq.Sync(); err != nil && !errors.Is(err, segment.ErrClosed) {
			return errors.Join(ErrStorage, err) // ErrClosed: the topic was deleted meanwhile
		}
	}
	return writeJSON(l.fs, l.path(checkpointFile), cp)
}

// copyProducers copies the partition's idempotent state; the caller holds
// l.gate, so no append is changing it.
func (p *Partition) copyProducers() partitionProducers {
	out := partitionProducers{TopicID: p.topic.id.String(), Partition: p.index, Producers: make(map[int64]*producerState, len(p.producers))}
	for id, s := range p.producers {
		out.Producers[id] = &producerState{Epoch: s.Epoch, Batches: slices.Clone(s.Batches)}
	}
	return out
}

// applyProducers installs the producer state of a checkpoint.
func (l *Log) applyProducers(snapshot []partitionProducers) error {
	for _, pp := range snapshot {
		id, err := ParseTopicID(pp.TopicID)
		if err != nil {
			return err
		}
		t, ok := l.byID[id]
		if !ok || pp.Partition < 0 || int(pp.Partition) >= len(t.parts) || pp.Producers == nil {
			continue
		}
		maps.Copy(t.parts[pp.Partition].producers, pp.Producers)
	}
	return nil
}
