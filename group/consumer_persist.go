package group

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"go.uber.org/zap"

	"github.com/rocketkafka/broker/log"
	"github.com/rocketkafka/broker/record"
)

// consumerGroupKeyVersion marks this broker's own record of a consumer
// group's state in __consumer_offsets: one snapshot of the whole group,
// where Kafka writes a record per member and per part of the group. Its
// key is laid out as GroupMetadataKey's, with a version Kafka does not use,
// so tools that read Kafka's records skip it.
const consumerGroupKeyVersion = 0x1848

// consumerSnapshotVersion is the version of the JSON snapshot.
const consumerSnapshotVersion = 1

type consumerSnapshot struct {
	Version         int              `json:"version"`
	Epoch           int32            `json:"epoch"`
	AssignmentEpoch int32            `json:"assignment_epoch"`
	Assignor        string           `json:"assignor,omitempty"`
	Members         []memberSnapshot `json:"members"`
}

type memberSnapshot struct {
	ID                 string          `json:"id"`
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

// topicSnapshot is one topic's partitions; Epochs, for assigned
// partitions, gives the member epoch each came with.
type topicSnapshot struct {
	ID         string  `json:"id"`
	Partitions []int32 `json:"partitions"`
	Epochs     []int32 `json:"epochs,omitempty"`
}

func consumerGroupKey(group string) []byte {
	b := binary.BigEndian.AppendUint16(nil, consumerGroupKeyVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(group)))
	return append(b, group...)
}

func parseConsumerGroupKey(key []byte) (string, error) {
	if len(key) < 4 || int(binary.BigEndian.Uint16(key[2:])) != len(key)-4 {
		return "", fmt.Errorf("group: consumer group key of %d bytes is malformed", len(key))
	}
	return string(key[4:]), nil
}

// groupTombstone deletes a classic group's stored membership.
func groupTombstone(group string) []record.Record {
	return []record.Record{{Key: groupKey(group)}}
}

func snapshotTopics(a assignment, at map[topicIDPartition]int32) []topicSnapshot {
	out := []topicSnapshot{}
	for _, id := range slices.SortedFunc(maps.Keys(a), compareTopicID) {
		ts := topicSnapshot{ID: hex.EncodeToString(id[:]), Partitions: a[id]}
		if at != nil {
			for _, p := range a[id] {
				ts.Epochs = append(ts.Epochs, at[topicIDPartition{id, p}])
			}
		}
		out = append(out, ts)
	}
	return out
}

func restoreTopics(ts []topicSnapshot, at map[topicIDPartition]int32) (assignment, error) {
	a := assignment{}
	for _, t := range ts {
		raw, err := hex.DecodeString(t.ID)
		if err != nil || len(raw) != len(log.TopicID{}) {
			return nil, fmt.Errorf("group: topic id %q in a consumer group snapshot", t.ID)
		}
		id := log.TopicID(raw)
		for i, p := range t.Partitions {
			a.add(id, p)
			if at != nil && i < len(t.Epochs) {
				at[topicIDPartition{id, p}] = t.Epochs[i]
			}
		}
	}
	return a, nil
}

func (g *group) consumerSnapshot() []byte {
	cg := g.consumer
	s := consumerSnapshot{Version: consumerSnapshotVersion, Epoch: cg.epoch, AssignmentEpoch: cg.assignmentEpoch, Assignor: cg.assignor, Members: []memberSnapshot{}}
	for _, m := range cg.sortedMembers() {
		s.Members = append(s.Members, memberSnapshot{
			ID: m.id, InstanceID: m.instanceID, RackID: m.rackID, ClientID: m.clientID, ClientHost: m.clientHost,
			RebalanceTimeoutMs: m.rebalanceTimeout.Milliseconds(), TopicNames: m.topicNames, Regex: m.regex, ServerAssignor: m.serverAssignor,
			Epoch: m.epoch, PreviousEpoch: m.previousEpoch, State: m.state, Left: m.left,
			Assigned: snapshotTopics(m.assigned, m.assignedAt), Revoking: snapshotTopics(m.revoking, nil), Target: snapshotTopics(cg.target[m.id], nil),
		})
	}
	b, _ := json.Marshal(s) // plain types: cannot fail
	return b
}

// storeConsumer writes the consumer group's state, as Kafka writes each
// change of a consumer group before it answers, so a restarted broker
// takes the members back at their epochs.
func (g *group) storeConsumer() error {
	value := g.consumerSnapshot()
	if err := g.c.write([]record.Record{{Key: consumerGroupKey(g.id), Value: value}}); err != nil {
		return err
	}
	g.storedConsumer = value
	return nil
}

// storeConsumerError stores the group for a heartbeat, whose client gets
// the error if the write fails. The change stays in memory: the next one
// stores it, and the client's retry finds it made.
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

// replayConsumerGroup keeps a consumer group's latest snapshot for
// restore; a tombstone drops it.
func (c *Coordinator) replayConsumerGroup(r record.Record, at int64) {
	id, err := parseConsumerGroupKey(r.Key)
	if err != nil {
		c.logger.Warn("skipping an undecodable consumer group key", zap.Int64("offset", at), zap.Error(err))
		return
	}
	g := c.groups[id]
	if r.Value == nil {
		if g != nil {
			g.storedConsumer = nil
		}
		return
	}
	if g == nil {
		g = newGroup(c, id)
		c.groups[id] = g
	}
	g.storedConsumer = bytes.Clone(r.Value)
}

// restoreConsumer rebuilds a consumer group from its stored snapshot:
// members at their epochs with their assignments and targets, each
// session starting now.
func (g *group) restoreConsumer() error {
	var s consumerSnapshot
	if err := json.Unmarshal(g.storedConsumer, &s); err != nil {
		return fmt.Errorf("group: consumer group snapshot: %w", err)
	}
	if s.Version != consumerSnapshotVersion {
		return fmt.Errorf("group: consumer group snapshot version %d", s.Version)
	}
	cg := newConsumerGroup()
	cg.epoch, cg.assignmentEpoch, cg.assignor = s.Epoch, s.AssignmentEpoch, s.Assignor
	for _, ms := range s.Members {
		m := &consumerMember{
			id: ms.ID, instanceID: ms.InstanceID, rackID: ms.RackID, clientID: ms.ClientID, clientHost: ms.ClientHost,
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
		if m.instanceID != nil {
			cg.static[*m.instanceID] = m.id
		}
		for _, a := range []assignment{m.assigned, m.revoking} {
			for id, ps := range a {
				for _, p := range ps {
					cg.owners[topicIDPartition{id, p}] = m.id
				}
			}
		}
	}
	g.consumer = cg
	g.protocolType = consumerProtocolType
	g.refreshSubscriptions(true)
	if !cg.targetCovers() {
		// Topics were created, grown or deleted after the snapshot was
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
