package group

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/rocketkafka/broker/log"
	"github.com/rocketkafka/broker/record"
)

// Record keys of __consumer_offsets start with their version, which says
// what they are, as in Kafka.
const (
	offsetKeyVersion = 1 // OffsetCommitKey (0 is the same layout, written by Kafka before 0.10)
	groupKeyVersion  = 2 // GroupMetadataKey
)

// groupValueVersion is the GroupMetadataValue version written: v3, with
// group instance ids (KIP-345), as Kafka writes for classic groups.
const groupValueVersion = 3

// Value versions of OffsetCommitValue that Kafka writes: 3, or 1 to keep
// an expire timestamp (the only version that has one).
const (
	offsetValueVersion       = 3
	offsetValueExpireVersion = 1
)

// maxReplayBatch bounds decompression of an offsets batch during replay;
// the coordinator writes them uncompressed, so only a foreign producer's
// batch could be compressed.
const maxReplayBatch = 64 << 20

// replayReadBytes is how much of the topic replay reads at a time.
const replayReadBytes = 1 << 20

type topicPartition struct {
	topic     string
	partition int32
}

// offset is one committed offset.
type offset struct {
	offset      int64
	leaderEpoch int32 // -1 when not given
	metadata    string
	commitTime  int64 // ms
	expireTime  int64 // ms; -1 unless the commit carried a retention time (v2-v4) or expire timestamp
}

func offsetKey(group string, tp topicPartition) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: tp.topic, Partition: tp.partition}
	return k.AppendTo(nil)
}

func offsetValue(o offset) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetValueVersion
	if o.expireTime >= 0 {
		v.Version, v.ExpireTimestamp = offsetValueExpireVersion, o.expireTime
	}
	v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = o.offset, o.leaderEpoch, o.metadata, o.commitTime
	return v.AppendTo(nil)
}

// commitRecord is a commit (value set) or a tombstone (value nil).
func commitRecord(group string, tp topicPartition, o *offset) record.Record {
	r := record.Record{Key: offsetKey(group, tp)}
	if o != nil {
		r.Value = offsetValue(*o)
	}
	return r
}

func groupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: group}
	return k.AppendTo(nil)
}

// metadataValue is g's GroupMetadataValue: its generation and members
// with their metadata for the selected protocol and their assignments.
func (g *group) metadataValue() []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVersion
	v.ProtocolType, v.Generation, v.Protocol, v.Leader = g.protocolType, g.generation, strPtr(g.protocol), strPtr(g.leader)
	v.CurrentStateTimestamp = g.stateSince.UnixMilli()
	for _, m := range g.sortedMembers() {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID, vm.InstanceID, vm.ClientID, vm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		vm.RebalanceTimeoutMillis, vm.SessionTimeoutMillis = int32(m.rebalanceTimeout.Milliseconds()), int32(m.sessionTimeout.Milliseconds())
		vm.Subscription, vm.Assignment = m.metadata(g.protocol), m.assignment
		v.Members = append(v.Members, vm)
	}
	return v.AppendTo(nil)
}

// storeMetadata writes g's membership, as Kafka does when a generation
// gets its assignment, when the group empties and when a static member is
// replaced, so that after a restart members of the generation carry on
// (their commits and heartbeats accepted) rather than start over.
func (g *group) storeMetadata() error {
	value := g.metadataValue()
	if err := g.c.write([]record.Record{{Key: groupKey(g.id), Value: value}}); err != nil {
		return err
	}
	g.storedMeta = value
	return nil
}

// write appends recs to __consumer_offsets as one batch and waits until it
// is durable as the flush policy defines it (fsynced under SYNC_FLUSH).
func (c *Coordinator) write(recs []record.Record) error {
	p, err := c.store.Partition(OffsetsTopic, 0)
	if err != nil {
		return err
	}
	h := record.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, FirstTimestamp: c.now().UnixMilli()}
	batch, err := record.Build(nil, h, recs, record.None)
	if err != nil {
		return err
	}
	res, err := p.Append(batch)
	if err != nil {
		return err
	}
	// Not the request's context: the fsync is coming whatever the client
	// does, and the group's state must wait for it to follow the log.
	return c.store.WaitDurable(context.Background(), res.End)
}

// writeError is the error code a client gets for a failed write: a batch
// too large for the topic is the commit's size; anything else (a storage
// error, a store closing) sends the client to find the coordinator again,
// as Kafka answers when its log append fails.
func writeError(err error) *kerr.Error {
	if tooLarge(err) {
		return kerr.InvalidCommitOffsetSize
	}
	return kerr.NotCoordinator
}

// syncWriteError is what SyncGroup answers when the group's metadata
// cannot be written, as Kafka maps it.
func syncWriteError(err error) *kerr.Error {
	if tooLarge(err) {
		return kerr.UnknownServerError
	}
	return kerr.NotCoordinator
}

func tooLarge(err error) bool {
	return errors.Is(err, log.ErrTooLarge) || errors.Is(err, record.ErrTooLarge)
}

// replay rebuilds the committed offsets from __consumer_offsets, last
// write winning and tombstones deleting, and drops the groups left
// without offsets. It returns how many records it read.
func (c *Coordinator) replay() (int, error) {
	p, err := c.store.Partition(OffsetsTopic, 0)
	if err != nil {
		return 0, fmt.Errorf("group: %s: %w", OffsetsTopic, err)
	}
	n := 0
	var chunks []log.Chunk
	var buf []byte
	for next, end := p.LogStartOffset(), p.HighWatermark(); next < end; {
		chunks, err = p.Read(next, replayReadBytes, true, chunks[:0])
		if err != nil {
			releaseChunks(chunks)
			return n, fmt.Errorf("group: reading %s at offset %d: %w", OffsetsTopic, next, err)
		}
		if len(chunks) == 0 {
			break
		}
		for i, ch := range chunks {
			buf = append(buf[:0], make([]byte, ch.Len)...)
			var last int64
			if err = ch.Segment.ReadAt(buf, ch.Off); err == nil {
				last, err = c.replayBatch(buf, &n)
			}
			if err != nil {
				releaseChunks(chunks[i:])
				return n, fmt.Errorf("group: replaying %s at offset %d: %w", OffsetsTopic, next, err)
			}
			ch.Release()
			next = last + 1
		}
	}
	for id, g := range c.groups {
		if g.storedMeta != nil {
			g.restore()
		}
		if g.storedConsumer[groupRecordID] != nil {
			if err := g.restoreConsumer(); err != nil {
				// Its records stay stored, so a deletion tombstones them.
				c.logger.Error("ignoring an unreadable consumer group", zap.String("group", id), zap.Error(err))
			}
		}
		if len(g.offsets) == 0 && g.storedMeta == nil && len(g.storedConsumer) == 0 {
			delete(c.groups, id)
		}
	}
	return n, nil
}

func releaseChunks(chunks []log.Chunk) {
	for _, ch := range chunks {
		ch.Release()
	}
}

// replayBatch applies one stored batch and returns its last offset; it
// fails only if the batch has no readable header to go past it with.
// Records that are neither offset commits nor group metadata were not
// written by a coordinator and are skipped.
func (c *Coordinator) replayBatch(batch []byte, n *int) (int64, error) {
	h, err := record.ParseHeader(batch)
	if err != nil {
		return 0, err
	}
	err = record.Records(batch, maxReplayBatch, func(r record.Record) bool {
		*n++
		if len(r.Key) < 2 {
			c.logger.Warn("skipping a record without a key version", zap.String("topic", OffsetsTopic), zap.Int64("offset", h.BaseOffset+int64(r.OffsetDelta)))
			return true
		}
		switch binary.BigEndian.Uint16(r.Key) {
		case 0, offsetKeyVersion:
			c.replayOffset(r, h.BaseOffset+int64(r.OffsetDelta))
		case groupKeyVersion:
			c.replayGroup(r, h.BaseOffset+int64(r.OffsetDelta))
		case consumerGroupKeyVersion, consumerMemberKeyVersion:
			c.replayConsumerRecord(r, h.BaseOffset+int64(r.OffsetDelta))
		default:
			c.logger.Warn("skipping a record of unknown key version", zap.String("topic", OffsetsTopic),
				zap.Int64("offset", h.BaseOffset+int64(r.OffsetDelta)), zap.Uint16("version", binary.BigEndian.Uint16(r.Key)))
		}
		return true
	})
	if err != nil {
		// The store checked the batch's CRC when it was appended; skip
		// rather than refuse to start over one batch.
		c.logger.Error("skipping an undecodable batch of the offsets topic", zap.Int64("offset", h.BaseOffset), zap.Error(err))
	}
	return h.LastOffset(), nil
}

// replayGroup keeps the latest membership record of a group for restore;
// a tombstone (the group was deleted) drops it.
func (c *Coordinator) replayGroup(r record.Record, at int64) {
	var k kmsg.GroupMetadataKey
	if err := k.ReadFrom(r.Key); err != nil {
		c.logger.Warn("skipping an undecodable group metadata key", zap.Int64("offset", at), zap.Error(err))
		return
	}
	g := c.groups[k.Group]
	if r.Value == nil {
		if g != nil {
			g.storedMeta = nil
		}
		return
	}
	if g == nil {
		g = newGroup(c, k.Group)
		c.groups[k.Group] = g
	}
	g.storedMeta = bytes.Clone(r.Value) // r.Value aliases the read buffer
}

// restore rebuilds g's membership from its stored metadata, as Kafka loads
// a group: Stable with the generation's members (each with only the
// selected protocol, the one whose metadata is kept), or Empty. Every
// member's session starts now.
func (g *group) restore() {
	var v kmsg.GroupMetadataValue
	if err := v.ReadFrom(g.storedMeta); err != nil {
		g.c.logger.Warn("ignoring undecodable group metadata", zap.String("group", g.id), zap.Error(err))
		g.storedMeta = nil
		return
	}
	g.protocolType, g.generation = v.ProtocolType, v.Generation
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	if v.CurrentStateTimestamp > 0 {
		g.stateSince = time.UnixMilli(v.CurrentStateTimestamp)
	}
	for _, vm := range v.Members {
		m := &member{
			id:               vm.MemberID,
			instanceID:       vm.InstanceID,
			clientID:         vm.ClientID,
			clientHost:       vm.ClientHost,
			sessionTimeout:   millis(vm.SessionTimeoutMillis),
			rebalanceTimeout: millis(vm.RebalanceTimeoutMillis),
			protocolType:     v.ProtocolType,
			protocols:        []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: vm.Subscription}},
			assignment:       vm.Assignment,
		}
		if vm.RebalanceTimeoutMillis < 0 { // v0 has none
			m.rebalanceTimeout = m.sessionTimeout
		}
		g.members[m.id] = m
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
		g.scheduleHeartbeat(m, m.sessionTimeout)
	}
	if len(g.members) == 0 {
		return
	}
	g.state = stable
	if v.Leader != nil && g.members[*v.Leader] != nil {
		g.leader = *v.Leader
	} else {
		g.leader = g.sortedMembers()[0].id
	}
}

func (c *Coordinator) replayOffset(r record.Record, at int64) {
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(r.Key); err != nil {
		c.logger.Warn("skipping an undecodable offset commit key", zap.Int64("offset", at), zap.Error(err))
		return
	}
	tp := topicPartition{k.Topic, k.Partition}
	g := c.groups[k.Group]
	if r.Value == nil {
		if g != nil {
			delete(g.offsets, tp)
		}
		return
	}
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(r.Value); err != nil {
		c.logger.Warn("skipping an undecodable offset commit value", zap.Int64("offset", at), zap.Error(err))
		return
	}
	if g == nil {
		g = newGroup(c, k.Group)
		c.groups[k.Group] = g
	}
	o := offset{offset: v.Offset, leaderEpoch: -1, metadata: v.Metadata, commitTime: v.CommitTimestamp, expireTime: -1}
	if v.Version >= 3 {
		o.leaderEpoch = v.LeaderEpoch
	}
	if v.Version == offsetValueExpireVersion {
		o.expireTime = v.ExpireTimestamp
	}
	g.offsets[tp] = o
}

// Bounds of one batch of writeBatches, keeping it well under the default
// max.message.bytes.
const (
	rewriteBatchRecords = 1000
	rewriteBatchBytes   = 256 << 10
)

// writeBatches writes recs in batches of at most rewriteBatchRecords
// records and about rewriteBatchBytes, each durable before the next.
func (c *Coordinator) writeBatches(recs []record.Record) error {
	for len(recs) > 0 {
		n, size := 0, 0
		for n < len(recs) && n < rewriteBatchRecords && (n == 0 || size+len(recs[n].Key)+len(recs[n].Value) <= rewriteBatchBytes) {
			size += len(recs[n].Key) + len(recs[n].Value)
			n++
		}
		if err := c.write(recs[:n]); err != nil {
			return err
		}
		recs = recs[n:]
	}
	return nil
}

// compact stands in for the log compaction the store does not do: when
// __consumer_offsets holds records that later ones supersede, or its live
// records lie more than a CommitLog file behind the end, it appends every
// group's live records again and then deletes everything before them
// (DeleteRecords). Without it the topic would keep every commit ever
// made, and with it the oldest CommitLog files, which retention could
// then never free. Each group is rewritten under its mutex, so a commit
// lands either before its rewrite (and is rewritten) or after it; a group
// created meanwhile has all its records after the cut.
func (c *Coordinator) compact() {
	p, err := c.store.Partition(OffsetsTopic, 0)
	if err != nil {
		c.logger.Error("compacting the offsets topic", zap.Error(err))
		return
	}
	cut := p.HighWatermark()
	groups := c.snapshot()
	live := 0
	for _, g := range groups {
		g.mu.Lock()
		live += len(g.offsets)
		if g.storedMeta != nil {
			live++
		}
		live += len(g.storedConsumer)
		g.mu.Unlock()
	}
	pinned, err := p.PinnedBytes()
	if err != nil {
		c.logger.Error("compacting the offsets topic", zap.Error(err))
		return
	}
	// Rewrite when records are superseded, or when live ones, however few,
	// hold a CommitLog file behind them that nothing else needs: a group
	// that committed once and never again would otherwise keep every file
	// from its commit on from being deleted.
	if cut-p.LogStartOffset() <= int64(live) && pinned <= c.store.SegmentBytes() {
		return
	}
	for _, g := range groups {
		if err := g.rewrite(); err != nil {
			c.logger.Error("compacting the offsets topic: rewriting a group failed", zap.String("group", g.id), zap.Error(err))
			return
		}
	}
	start, err := p.DeleteRecords(cut)
	if err != nil {
		c.logger.Error("compacting the offsets topic: deleting superseded records failed", zap.Error(err))
		return
	}
	c.logger.Info("compacted the offsets topic", zap.Int("live_offsets", live), zap.Int64("log_start_offset", start), zap.Int64("high_watermark", p.HighWatermark()))
}

// rewrite appends g's live offsets and stored membership again, as they
// are.
func (g *group) rewrite() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == dead {
		return nil
	}
	recs := make([]record.Record, 0, len(g.offsets)+len(g.storedConsumer)+1)
	if g.storedMeta != nil {
		recs = append(recs, record.Record{Key: groupKey(g.id), Value: g.storedMeta})
	}
	for id, value := range g.storedConsumer {
		recs = append(recs, record.Record{Key: consumerRecordKey(g.id, id), Value: value})
	}
	for tp, o := range g.offsets {
		recs = append(recs, commitRecord(g.id, tp, &o))
	}
	return g.c.writeBatches(recs)
}
