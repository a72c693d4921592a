package group

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"

	"go.uber.org/zap"

	"github.com/rocketkafka/broker/log"
	"github.com/rocketkafka/broker/record"
)

// Key versions of this broker's own records of a consumer group in
// __consumer_offsets, versions Kafka does not use (so tools that read
// Kafka's records skip them), laid out as Kafka's keys: the version, then
// int16-length strings. Like Kafka, the group and each of its members are
// records of their own, so a member's step writes only that member.
const (
	consumerGroupKeyVersion  = 0x1848 // the group: epochs and assignor; key: group id
	consumerMemberKeyVersion = 0x1849 // one member: key: group id, member id
)

// consumerRecordVersion is the version of the records' JSON values.
const consumerRecordVersion = 1

// groupRecordID is the id the group's own record has among its members'
// in storedConsumer and dirty, which no member id can be: KIP-848 member
// ids are never empty.
const groupRecordID = ""

type groupRecord struct {
	Version         int    `json:"version"`
	Epoch           int32  `json:"epoch"`
	AssignmentEpoch int32  `json:"assignment_epoch"`
	Assignor        string `json:"assignor,omitempty"`
}

type memberRecord struct {
	Version            int             `json:"version"`
	InstanceID         *string         `json:"instance_id,omitempty"`
	RackID             *string         `json:"rack_id,omitempty"`
	ClientID           string          `json:"client_id"`
	ClientHost         string          `json:"client_host"`
	RebalanceTimeoutMs int64           `json:"rebalance_timeout_ms"`
	TopicNames         []string        `json:"topic_names,omitempty"`
	Regex              string          `json:"regex,omitempty"`
	ServerAssignor     string          `json:"server_assignor,omitempty"`
	Epoch              int32           `json:"epoch"`
	PreviousEpoch      int32           `json:"previous_epoch"`
	State              memberState     `json:"state"`
	Left               bool            `json:"left,omitempty"`
	Assigned           []topicSnapshot `json:"assigned"`
	Revoking           []topicSnapshot `json:"revoking,omitempty"`
	Target             []topicSnapshot `json:"target"`
}

// topicSnapshot is one topic's partitions, packed so that a member's
// record stays small with a large assignment (about 3 bytes a partition):
// Partitions is base64 of uvarints, the first partition and then each
// gap less one; Epochs, for assigned partitions, base64 of zigzag varints,
// the member epoch each partition came with as a difference from the one
// before.
type topicSnapshot struct {
	ID         string `json:"id"`
	Partitions string `json:"partitions"`
	Epochs     string `json:"epochs,omitempty"`
}

// maxMemberRecordBytes bounds a member's record, well under the default
// max.message.bytes of __consumer_offsets: a member whose record would be
// larger (some 150,000 partitions, or a subscription of that size) is
// removed from the group, since it could not be stored.
const maxMemberRecordBytes = 512 << 10

// consumerRecordKey is the key of the group's record (member
// groupRecordID) or of one member's.
func consumerRecordKey(group, member string) []byte {
	version := uint16(consumerMemberKeyVersion)
	if member == groupRecordID {
		version = consumerGroupKeyVersion
	}
	b := binary.BigEndian.AppendUint16(nil, version)
	b = appendKeyString(b, group)
	if member != groupRecordID {
		b = appendKeyString(b, member)
	}
	return b
}

func appendKeyString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// parseConsumerRecordKey is the group and member (groupRecordID for the
// group's own record) of a key.
func parseConsumerRecordKey(key []byte) (group, member string, err error) {
	version := binary.BigEndian.Uint16(key)
	rest := key[2:]
	group, rest, ok := readKeyString(rest)
	if ok && version == consumerMemberKeyVersion {
		member, rest, ok = readKeyString(rest)
		ok = ok && member != groupRecordID
	}
	if !ok || len(rest) != 0 {
		return "", "", fmt.Errorf("group: consumer group key of %d bytes is malformed", len(key))
	}
	return group, member, nil
}

func readKeyString(b []byte) (string, []byte, bool) {
	if len(b) < 2 || int(binary.BigEndian.Uint16(b)) > len(b)-2 {
		return "", nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	return string(b[2 : 2+n]), b[2+n:], true
}

// consumerTombstones delete every stored record of a consumer group.
func (g *group) consumerTombstones() []record.Record {
	recs := make([]record.Record, 0, len(g.storedConsumer))
	for _, id := range slices.Sorted(maps.Keys(g.storedConsumer)) {
		recs = append(recs, record.Record{Key: consumerRecordKey(g.id, id)})
	}
	return recs
}

// groupTombstone deletes a classic group's stored membership.
func groupTombstone(group string) []record.Record {
	return []record.Record{{Key: groupKey(group)}}
}

func snapshotTopics(a assignment, at map[topicIDPartition]int32) []topicSnapshot {
	out := []topicSnapshot{}
	for _, id := range slices.SortedFunc(maps.Keys(a), compareTopicID) {
		var parts, epochs []byte
		prevPartition, prevEpoch := int32(-1), int32(0)
		for _, p := range a[id] {
			parts = binary.AppendUvarint(parts, uint64(p-prevPartition-1))
			prevPartition = p
			if at != nil {
				e := at[topicIDPartition{id, p}]
				epochs = binary.AppendVarint(epochs, int64(e-prevEpoch))
				prevEpoch = e
			}
		}
		ts := topicSnapshot{ID: hex.EncodeToString(id[:]), Partitions: base64.StdEncoding.EncodeToString(parts)}
		if at != nil {
			ts.Epochs = base64.StdEncoding.EncodeToString(epochs)
		}
		out = append(out, ts)
	}
	return out
}

// restoreTopics unpacks snapshotTopics' topics, and the epochs into at
// when it is not nil.
func restoreTopics(ts []topicSnapshot, at map[topicIDPartition]int32) (assignment, error) {
	a := assignment{}
	for _, t := range ts {
		raw, err := hex.DecodeString(t.ID)
		if err != nil || len(raw) != len(log.TopicID{}) {
			return nil, fmt.Errorf("group: topic id %q in a consumer group record", t.ID)
		}
		id := log.TopicID(raw)
		parts, err := base64.StdEncoding.DecodeString(t.Partitions)
		if err != nil {
			return nil, fmt.Errorf("group: partitions of topic %s: %w", t.ID, err)
		}
		epochs, err := base64.StdEncoding.DecodeString(t.Epochs)
		if err != nil {
			return nil, fmt.Errorf("group: epochs of topic %s: %w", t.ID, err)
		}
		p, e := int64(-1), int64(0)
		for len(parts) > 0 {
			gap, n := binary.Uvarint(parts)
			if n <= 0 || p+1+int64(gap) > math.MaxInt32 {
				return nil, fmt.Errorf("group: partitions of topic %s are malformed", t.ID)
			}
			parts, p = parts[n:], p+1+int64(gap)
			a.add(id, int32(p))
			if at == nil || len(epochs) == 0 {
				continue
			}
			d, n := binary.Varint(epochs)
			if n <= 0 {
				return nil, fmt.Errorf("group: epochs of topic %s are malformed", t.ID)
			}
			epochs, e = epochs[n:], e+d
			at[topicIDPartition{id, int32(p)}] = int32(e)
		}
	}
	return a, nil
}

// touch marks the stored record of member id (groupRecordID: the
// group's) out of date; a touched member no longer in the group gets a
// tombstone.
func (cg *consumerGroup) touch(id string) {
	cg.dirty[id] = true
}

// recordValue is the value of the group's record or of member id's, nil
// (a tombstone) for a member that is gone.
func (g *group) recordValue(id string) []byte {
	cg := g.consumer
	var v any = groupRecord{Version: consumerRecordVersion, Epoch: cg.epoch, AssignmentEpoch: cg.assignmentEpoch, Assignor: cg.assignor}
	if id != groupRecordID {
		m := cg.members[id]
		if m == nil {
			return nil
		}
		v = memberRecord{
			Version: consumerRecordVersion, InstanceID: m.instanceID, RackID: m.rackID, ClientID: m.clientID, ClientHost: m.clientHost,
			RebalanceTimeoutMs: m.rebalanceTimeout.Milliseconds(), TopicNames: m.topicNames, Regex: m.regex, ServerAssignor: m.serverAssignor,
			Epoch: m.epoch, PreviousEpoch: m.previousEpoch, State: m.state, Left: m.left,
			Assigned: snapshotTopics(m.assigned, m.assignedAt), Revoking: snapshotTopics(m.revoking, nil), Target: snapshotTopics(cg.target[id], nil),
		}
	}
	b, _ := json.Marshal(v) // plain types: cannot fail
	return b
}

// storeConsumer writes the records of the group and the members it
// touched, as Kafka writes each change of a consumer group before it
// answers, so a restarted broker takes the members back at their epochs.
// A failed write leaves them touched, for the next store.
func (g *group) storeConsumer() error {
	cg := g.consumer
	if len(cg.dirty) == 0 {
		return nil
	}
	ids, values := g.dirtyRecords()
	// Tombstones first: a crash between two batches then loses a new
	// record (its member rejoins) rather than keeps an old one beside it.
	recs := make([]record.Record, 0, len(ids))
	for _, tombstones := range []bool{true, false} {
		for i, id := range ids {
			if (values[i] == nil) == tombstones && (values[i] != nil || g.storedConsumer[id] != nil) {
				recs = append(recs, record.Record{Key: consumerRecordKey(g.id, id), Value: values[i]})
			}
		}
	}
	if err := g.c.writeBatches(recs); err != nil {
		return err
	}
	if g.storedConsumer == nil {
		g.storedConsumer = map[string][]byte{}
	}
	for i, id := range ids {
		if values[i] != nil {
			g.storedConsumer[id] = values[i]
		} else {
			delete(g.storedConsumer, id)
		}
	}
	clear(cg.dirty)
	return nil
}

// dirtyRecords encodes the touched records (nil for a tombstone). A
// member whose record would be too large to store is removed first, which
// touches others, so it encodes until no record is too large.
func (g *group) dirtyRecords() ([]string, [][]byte) {
	cg := g.consumer
	for {
		ids := slices.Sorted(maps.Keys(cg.dirty))
		values := make([][]byte, len(ids))
		var oversized *consumerMember
		for i, id := range ids {
			values[i] = g.recordValue(id)
			if len(values[i]) > maxMemberRecordBytes {
				oversized = cg.members[id]
				break
			}
		}
		if oversized == nil {
			return ids, values
		}
		g.c.logger.Error("removing a consumer group member whose record is too large to store",
			zap.String("group", g.id), zap.String("member", oversized.id), zap.Int("limit", maxMemberRecordBytes))
		g.removeConsumerMember(oversized, "its record is too large to store")
	}
}

// storeConsumerError stores the group for a heartbeat, whose client gets
// the error if the write fails. The change stays in memory: the next
// store writes it, and the client's retry finds it made.
func (g *group) storeConsumerError() *heartbeatError {
	if err := g.storeConsumer(); err != nil {
		g.c.logger.Warn("storing a consumer group failed", zap.String("group", g.id), zap.Error(err))
		return &heartbeatError{err: writeError(err)}
	}
	return nil
}

// storeConsumerLogged stores the group after a timer's change, which has
// no client to tell.
func (g *group) storeConsumerLogged() {
	if err := g.storeConsumer(); err != nil {
		g.c.logger.Warn("storing a consumer group failed", zap.String("group", g.id), zap.Error(err))
	}
}

// replayConsumerRecord keeps a consumer group's latest record of itself
// or of a member, for restore; a tombstone drops it.
func (c *Coordinator) replayConsumerRecord(r record.Record, at int64) {
	id, member, err := parseConsumerRecordKey(r.Key)
	if err != nil {
		c.logger.Warn("skipping an undecodable consumer group key", zap.Int64("offset", at), zap.Error(err))
		return
	}
	g := c.groups[id]
	if r.Value == nil {
		if g != nil {
			delete(g.storedConsumer, member)
		}
		return
	}
	if g == nil {
		g = newGroup(c, id)
		c.groups[id] = g
	}
	if g.storedConsumer == nil {
		g.storedConsumer = map[string][]byte{}
	}
	g.storedConsumer[member] = bytes.Clone(r.Value) // r.Value aliases the read buffer
}

// restoreConsumer rebuilds a consumer group from its stored records:
// members at their epochs with their assignments and targets, each
// session starting now.
func (g *group) restoreConsumer() error {
	var gr groupRecord
	if err := json.Unmarshal(g.storedConsumer[groupRecordID], &gr); err != nil {
		return fmt.Errorf("group: consumer group record: %w", err)
	}
	if gr.Version != consumerRecordVersion {
		return fmt.Errorf("group: consumer group record version %d", gr.Version)
	}
	cg := newConsumerGroup()
	cg.epoch, cg.assignmentEpoch, cg.assignor = gr.Epoch, gr.AssignmentEpoch, gr.Assignor
	for _, id := range slices.Sorted(maps.Keys(g.storedConsumer)) {
		value := g.storedConsumer[id]
		if id == groupRecordID {
			continue
		}
		var ms memberRecord
		if err := json.Unmarshal(value, &ms); err != nil {
			return fmt.Errorf("group: member %s's record: %w", id, err)
		}
		if ms.Version != consumerRecordVersion {
			return fmt.Errorf("group: member %s's record version %d", id, ms.Version)
		}
		m := &consumerMember{
			id: id, instanceID: ms.InstanceID, rackID: ms.RackID, clientID: ms.ClientID, clientHost: ms.ClientHost,
			rebalanceTimeout: millis(int32(ms.RebalanceTimeoutMs)), topicNames: ms.TopicNames, regex: ms.Regex, serverAssignor: ms.ServerAssignor,
			epoch: ms.Epoch, previousEpoch: ms.PreviousEpoch, state: ms.State, left: ms.Left,
			assignedAt: map[topicIDPartition]int32{},
		}
		if m.regex != "" {
			re, err := compileSubscription(m.regex)
			if err != nil {
				return fmt.Errorf("group: member %s's regex: %w", m.id, err)
			}
			m.re = re
		}
		var err error
		if m.assigned, err = restoreTopics(ms.Assigned, m.assignedAt); err != nil {
			return err
		}
		if m.revoking, err = restoreTopics(ms.Revoking, nil); err != nil {
			return err
		}
		if cg.target[m.id], err = restoreTopics(ms.Target, nil); err != nil {
			return err
		}
		cg.members[m.id] = m
		cg.restoreHolds(m)
	}
	g.consumer = cg
	g.protocolType = consumerProtocolType
	g.refreshSubscriptions(true)
	if !cg.targetCovers() {
		// Topics were created, grown or deleted after the group was
		// stored: the next heartbeat would not see the catalogue move.
		g.bumpEpoch("subscribed topics changed since the group was stored")
	}
	if len(cg.members) > 0 {
		g.state = stable
	}
	for _, m := range cg.members {
		g.scheduleConsumerSession(m)
		if m.state == memberUnrevokedPartitions {
			g.scheduleRevocation(m)
		}
	}
	return nil
}

// restoreHolds takes a restored member's instance id and partitions into
// the group's maps. Records written in more than one batch can, after a
// crash between them, leave an instance id or a partition with two
// members; the first member (by id) keeps it, the other is touched so it
// is stored without it.
func (cg *consumerGroup) restoreHolds(m *consumerMember) {
	if m.instanceID != nil {
		if _, taken := cg.static[*m.instanceID]; !taken {
			cg.static[*m.instanceID] = m.id
		}
	}
	for _, a := range []assignment{m.assigned, m.revoking} {
		for tid, ps := range a {
			kept := ps[:0]
			for _, p := range ps {
				tp := topicIDPartition{tid, p}
				if owner, held := cg.owners[tp]; held && owner != m.id {
					delete(m.assignedAt, tp)
					cg.touch(m.id)
					continue
				}
				cg.owners[tp] = m.id
				kept = append(kept, p)
			}
			if len(kept) == 0 {
				delete(a, tid)
			} else {
				a[tid] = kept
			}
		}
	}
}

// targetCovers reports whether the target assignment holds every partition
// of the subscribed topics once and nothing else, as every target the
// assignors compute does; one that does not was computed before topics
// were created, grown or deleted.
func (cg *consumerGroup) targetCovers() bool {
	covered := map[log.TopicID]map[int32]bool{}
	for _, a := range cg.target {
		for id, ps := range a {
			if covered[id] == nil {
				covered[id] = map[int32]bool{}
			}
			for _, p := range ps {
				if covered[id][p] {
					return false
				}
				covered[id][p] = true
			}
		}
	}
	if len(covered) != len(cg.partitions) {
		return false
	}
	for id, n := range cg.partitions {
		ps := covered[id]
		if len(ps) != int(n) {
			return false
		}
		for p := range ps {
			if p < 0 || p >= n {
				return false
			}
		}
	}
	return true
}
