package group

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/rocketkafka/broker/record"
)

// OffsetCommit serves OffsetCommit v0-v9. Partitions the store does not
// have get UNKNOWN_TOPIC_OR_PARTITION whatever else is wrong, as in
// Kafka, where the request handler filters them before the coordinator
// sees the request; the group's verdict (generation, member) applies to
// all the others. The commit is answered once it is durable.
func (c *Coordinator) OffsetCommit(req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	codes := make([][]int16, len(req.Topics))
	defer func() {
		for i, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for j, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, codes[i][j]
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
	}()
	for i, rt := range req.Topics {
		codes[i] = make([]int16, len(rt.Partitions))
	}
	setAll := func(err *kerr.Error) {
		for i := range codes {
			for j := range codes[i] {
				if codes[i][j] == 0 {
					codes[i][j] = err.Code
				}
			}
		}
	}

	if req.Group == "" {
		setAll(kerr.InvalidGroupID)
		return resp
	}
	// A commit without a generation from outside the group protocol (an
	// admin client, a consumer that assigns itself) creates the group.
	g := c.lockGroup(req.Group, req.Generation < 0)
	if g == nil {
		// From v9 the error says what is wrong; before, Kafka keeps the
		// answer older clients know.
		if req.Version >= 9 {
			setAll(kerr.GroupIDNotFound)
		} else {
			setAll(kerr.IllegalGeneration)
		}
		return resp
	}
	defer g.mu.Unlock()
	// Checked under the group's mutex: a topic deleted after this check
	// has its offsets tombstoned after this commit (TopicDeleted takes the
	// mutex too), so none outlive the topic.
	for i, rt := range req.Topics {
		for j, rp := range rt.Partitions {
			if _, err := c.store.Partition(rt.Topic, rp.Partition); err != nil {
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			}
		}
	}
	var err *kerr.Error
	if g.consumer != nil {
		var tps []topicPartition
		for _, rt := range req.Topics {
			for _, rp := range rt.Partitions {
				tps = append(tps, topicPartition{rt.Topic, rp.Partition})
			}
		}
		err = g.validateConsumerCommit(req.MemberID, req.Generation, req.Version, tps)
	} else {
		err = g.validateCommit(req.MemberID, req.InstanceID, req.Generation)
	}
	if err != nil {
		setAll(err)
		return resp
	}

	now := c.now().UnixMilli()
	var recs []record.Record
	var tps []topicPartition
	var commits []offset
	var slots [][2]int
	for i, rt := range req.Topics {
		for j, rp := range rt.Partitions {
			if codes[i][j] != 0 {
				continue
			}
			o := offset{offset: rp.Offset, leaderEpoch: rp.LeaderEpoch, commitTime: now, expireTime: -1}
			if rp.Metadata != nil {
				o.metadata = *rp.Metadata
			}
			if len(o.metadata) > maxMetadataBytes {
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			if req.Version == 1 && rp.Timestamp != -1 {
				o.commitTime = rp.Timestamp
			}
			if req.RetentionTimeMillis != -1 {
				o.expireTime = now + req.RetentionTimeMillis
			}
			tp := topicPartition{rt.Topic, rp.Partition}
			recs = append(recs, commitRecord(g.id, tp, &o))
			tps, commits, slots = append(tps, tp), append(commits, o), append(slots, [2]int{i, j})
		}
	}
	if len(recs) > 0 {
		if err := c.write(recs); err != nil {
			c.logger.Warn("writing an offset commit failed", zap.String("group", g.id), zap.Error(err))
			code := writeError(err).Code
			for _, s := range slots {
				codes[s[0]][s[1]] = code
			}
			return resp
		}
		for k, tp := range tps {
			g.offsets[tp] = commits[k]
		}
	}
	// A member's commit keeps its session alive, as a heartbeat would.
	if m := g.members[req.MemberID]; m != nil && (g.state == stable || g.state == preparingRebalance) {
		g.scheduleHeartbeat(m, m.sessionTimeout)
	}
	return resp
}

// validateCommit is Kafka's check of a commit's generation and member.
// A commit with no generation, member id or instance id is a simple
// consumer's, allowed only while the group has no members. Members commit
// with the current generation, also during a rebalance (as eager
// consumers do before they rejoin), except while the leader is assigning.
func (g *group) validateCommit(memberID string, instanceID *string, generation int32) *kerr.Error {
	if generation < 0 && g.state == empty {
		return nil
	}
	if generation >= 0 || memberID != "" || instanceID != nil {
		if err := g.validateMember(memberID, instanceID); err != nil {
			return err
		}
		if generation != g.generation {
			return kerr.IllegalGeneration
		}
	} else if g.state != empty {
		return kerr.UnknownMemberID
	}
	if g.state == completingRebalance {
		return kerr.RebalanceInProgress
	}
	return nil
}

// OffsetFetch serves OffsetFetch in its v8+ form (the protocol layer
// turns older requests into one group). A group that does not exist has
// no offsets: -1 for each partition asked for, nothing when all are asked
// for (Topics null). Offsets of topics that no longer exist are never
// returned. Nothing is ever unstable (no transactions), so RequireStable
// changes nothing; MemberID and MemberEpoch (v9) concern KIP-848 groups
// only.
func (c *Coordinator) OffsetFetch(req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	for _, rg := range req.Groups {
		sg := kmsg.NewOffsetFetchResponseGroup()
		sg.Group = rg.Group
		if rg.Group == "" {
			sg.ErrorCode = kerr.InvalidGroupID.Code
		} else if topics, err := c.fetchOffsets(rg); err != nil {
			sg.ErrorCode = err.Code
		} else {
			sg.Topics = topics
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp
}

func (c *Coordinator) fetchOffsets(rg kmsg.OffsetFetchRequestGroup) ([]kmsg.OffsetFetchResponseGroupTopic, *kerr.Error) {
	offsets := map[topicPartition]offset{}
	if g := c.lockGroup(rg.Group, false); g != nil {
		if g.consumer != nil {
			if err := g.validateConsumerFetch(rg.MemberID, rg.MemberEpoch); err != nil {
				g.mu.Unlock()
				return nil, err
			}
		}
		for tp, o := range g.offsets {
			offsets[tp] = o
		}
		g.mu.Unlock()
	}
	exists := map[string]bool{}
	topicExists := func(topic string) bool {
		ok, seen := exists[topic]
		if !seen {
			_, ok = c.store.Topic(topic)
			exists[topic] = ok
		}
		return ok
	}
	partition := func(p int32, o offset, ok bool) kmsg.OffsetFetchResponseGroupTopicPartition {
		sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata = p, -1, -1, kmsg.StringPtr("")
		if ok {
			sp.Offset, sp.LeaderEpoch, sp.Metadata = o.offset, o.leaderEpoch, kmsg.StringPtr(o.metadata)
		}
		return sp
	}

	var out []kmsg.OffsetFetchResponseGroupTopic
	if rg.Topics == nil {
		byTopic := map[string][]int32{}
		for tp := range offsets {
			if topicExists(tp.topic) {
				byTopic[tp.topic] = append(byTopic[tp.topic], tp.partition)
			}
		}
		topics := make([]string, 0, len(byTopic))
		for t := range byTopic {
			topics = append(topics, t)
		}
		slices.Sort(topics)
		for _, t := range topics {
			st := kmsg.NewOffsetFetchResponseGroupTopic()
			st.Topic = t
			parts := byTopic[t]
			slices.Sort(parts)
			for _, p := range parts {
				st.Partitions = append(st.Partitions, partition(p, offsets[topicPartition{t, p}], true))
			}
			out = append(out, st)
		}
		return out, nil
	}
	for _, rt := range rg.Topics {
		st := kmsg.NewOffsetFetchResponseGroupTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			o, ok := offsets[topicPartition{rt.Topic, p}]
			st.Partitions = append(st.Partitions, partition(p, o, ok && topicExists(rt.Topic)))
		}
		out = append(out, st)
	}
	return out, nil
}

// OffsetDelete serves OffsetDelete v0: the offsets of an Empty group, or
// of a consumer group's topics that no member subscribes to.
func (c *Coordinator) OffsetDelete(req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g := c.lockGroup(req.Group, false)
	if g == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	}
	defer g.mu.Unlock()
	var subscribed map[string]bool
	if g.state != empty {
		if g.protocolType != consumerProtocolType {
			resp.ErrorCode = kerr.NonEmptyGroup.Code
			return resp
		}
		var ok bool
		if subscribed, ok = g.subscribedTopics(); !ok {
			subscribed = nil // unreadable subscriptions: treat every topic as subscribed
		}
	}
	isSubscribed := func(topic string) bool {
		return g.state != empty && (subscribed == nil || subscribed[topic])
	}

	var recs []record.Record
	var doomed []topicPartition
	var written []*kmsg.OffsetDeleteResponseTopicPartition
	resp.Topics = make([]kmsg.OffsetDeleteResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		*st = kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetDeleteResponseTopicPartition, len(rt.Partitions))
		_, known := c.store.Topic(rt.Topic)
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			*sp = kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			tp := topicPartition{rt.Topic, rp.Partition}
			switch _, committed := g.offsets[tp]; {
			case !known:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case isSubscribed(rt.Topic):
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			case committed:
				recs = append(recs, commitRecord(g.id, tp, nil))
				doomed = append(doomed, tp)
				written = append(written, sp)
			}
		}
	}
	if len(recs) == 0 {
		return resp
	}
	if err := c.write(recs); err != nil {
		c.logger.Warn("writing offset tombstones failed", zap.String("group", g.id), zap.Error(err))
		for _, sp := range written {
			sp.ErrorCode = writeError(err).Code
		}
		return resp
	}
	for _, tp := range doomed {
		delete(g.offsets, tp)
	}
	return resp
}

// TopicDeleted drops every group's offsets of a deleted topic, writing
// their tombstones, so a topic created later under the same name starts
// without them.
func (c *Coordinator) TopicDeleted(topic string) {
	for _, g := range c.snapshot() {
		g.mu.Lock()
		if g.state != dead {
			g.dropOffsets(func(tp topicPartition, _ offset) bool { return tp.topic == topic }, "topic "+topic+" deleted")
		}
		g.mu.Unlock()
	}
}

// dropOffsets tombstones the offsets doomed selects; g.mu must be held.
func (g *group) dropOffsets(doomed func(topicPartition, offset) bool, why string) {
	var tps []topicPartition
	for tp, o := range g.offsets {
		if doomed(tp, o) {
			tps = append(tps, tp)
		}
	}
	if len(tps) == 0 {
		return
	}
	recs := make([]record.Record, len(tps))
	for i, tp := range tps {
		recs[i] = commitRecord(g.id, tp, nil)
	}
	if err := g.c.write(recs); err != nil {
		g.c.logger.Error("writing offset tombstones failed", zap.String("group", g.id), zap.String("why", why), zap.Error(err))
		return
	}
	for _, tp := range tps {
		delete(g.offsets, tp)
	}
	g.c.logger.Info("removed committed offsets", zap.String("group", g.id), zap.Int("partitions", len(tps)), zap.String("why", why))
}

// expireOffsets applies offsets.retention.minutes to every group and
// removes the Empty groups left with nothing.
func (c *Coordinator) expireOffsets() {
	now := c.now()
	for _, g := range c.snapshot() {
		g.mu.Lock()
		if g.state != dead {
			g.expire(now)
		}
		g.mu.Unlock()
	}
}

// expire removes g's expired offsets, as Kafka decides them: all of an
// Empty group's once the retention has passed since it became Empty
// (since each commit for a group that has had no members, whose offsets
// are its consumers' own business), and those of a Stable classic
// consumer group's topics that no member subscribes to any more, by commit
// time; a KIP-848 group's offsets of topics no member subscribes to
// expire by commit time too, whether it has members or not. An offset
// committed with a retention time expires at that time instead.
func (g *group) expire(now time.Time) {
	nowMs, retention := now.UnixMilli(), g.c.opts.OffsetsRetention.Milliseconds()
	expired := func(base int64, o offset) bool {
		if o.expireTime >= 0 {
			return nowMs >= o.expireTime
		}
		return nowMs-base >= retention
	}
	switch {
	case g.consumer != nil:
		// A consumer group's offsets expire by commit time, whatever
		// its state, unless a member subscribes to their topic, as in
		// Kafka.
		subscribed, _ := g.subscribedTopics()
		g.dropOffsets(func(tp topicPartition, o offset) bool {
			return !subscribed[tp.topic] && expired(o.commitTime, o)
		}, "offsets expired")
	case g.state == empty && g.protocolType != "":
		since := g.stateSince.UnixMilli()
		g.dropOffsets(func(_ topicPartition, o offset) bool { return expired(since, o) }, "offsets expired")
	case g.state == empty:
		g.dropOffsets(func(_ topicPartition, o offset) bool { return expired(o.commitTime, o) }, "offsets expired")
	case g.state == stable:
		if subscribed, ok := g.subscribedTopics(); ok {
			g.dropOffsets(func(tp topicPartition, o offset) bool {
				return !subscribed[tp.topic] && expired(o.commitTime, o)
			}, "offsets of unsubscribed topics expired")
		}
	}
	if g.state == empty && len(g.offsets) == 0 && len(g.pending) == 0 {
		if recs := g.tombstones(); len(recs) > 0 {
			if err := g.c.write(recs); err != nil {
				g.c.logger.Warn("writing the tombstone of an empty group failed", zap.String("group", g.id), zap.Error(err))
				return
			}
		}
		g.c.logger.Info("removing empty group", zap.String("group", g.id))
		g.c.removeGroup(g)
	}
}

// tombstones delete g's stored membership, classic or consumer.
func (g *group) tombstones() []record.Record {
	var recs []record.Record
	if g.storedMeta != nil {
		recs = append(recs, groupTombstone(g.id)...)
	}
	return append(recs, g.consumerTombstones()...)
}

// DeleteGroups serves DeleteGroups v0-v2: an Empty group is removed with
// its offsets (their tombstones written); one with members gets
// NON_EMPTY_GROUP.
func (c *Coordinator) DeleteGroups(req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = id
		if err := c.deleteGroup(id); err != nil {
			dg.ErrorCode = err.Code
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (c *Coordinator) deleteGroup(id string) *kerr.Error {
	if id == "" {
		return kerr.InvalidGroupID
	}
	g := c.lockGroup(id, false)
	if g == nil {
		return kerr.GroupIDNotFound
	}
	defer g.mu.Unlock()
	if g.state != empty {
		return kerr.NonEmptyGroup
	}
	recs := g.tombstones()
	for tp := range g.offsets {
		recs = append(recs, commitRecord(g.id, tp, nil))
	}
	if len(recs) > 0 {
		if err := c.write(recs); err != nil {
			c.logger.Warn("writing the tombstones of a deleted group failed", zap.String("group", id), zap.Error(err))
			return writeError(err)
		}
	}
	for pid, t := range g.pending {
		t.Stop()
		delete(g.pending, pid)
	}
	c.removeGroup(g)
	c.logger.Info("deleted group", zap.String("group", id), zap.Int("offsets", len(g.offsets)))
	return nil
}

// ListGroups serves ListGroups v0-v5: classic groups, and consumer
// groups (type "consumer", with their own state names); the states and
// types filters match case-insensitively, as in Kafka.
func (c *Coordinator) ListGroups(req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	matches := func(filter []string, v string) bool {
		return len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, v) })
	}
	for _, g := range c.snapshot() {
		g.mu.Lock()
		st, stateName, protocolType, groupType := g.state, g.state.String(), g.protocolType, "classic"
		if g.consumer != nil {
			stateName, groupType = g.consumer.stateName(), consumerProtocolType
		}
		g.mu.Unlock()
		if st == dead || !matches(req.StatesFilter, stateName) || !matches(req.TypesFilter, groupType) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.id, protocolType, stateName, groupType
		resp.Groups = append(resp.Groups, lg)
	}
	return resp
}

// DescribeGroups serves DescribeGroups v0-v6. Member metadata and
// assignments are shown only when the group is Stable, as in Kafka. A
// group that does not exist, or is a consumer group (ConsumerGroupDescribe
// describes those), is Dead, and from v6 also GROUP_ID_NOT_FOUND.
func (c *Coordinator) DescribeGroups(req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		if id == "" {
			dg.ErrorCode = kerr.InvalidGroupID.Code
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		g := c.lockGroup(id, false)
		switch {
		case g != nil && g.consumer == nil:
			g.describe(&dg)
			g.mu.Unlock()
		default:
			msg := fmt.Sprintf("Group %s not found.", id)
			if g != nil {
				g.mu.Unlock()
				msg = fmt.Sprintf("Group %s is not a classic group.", id)
			}
			dg.State = dead.String()
			if req.Version >= 6 {
				dg.ErrorCode = kerr.GroupIDNotFound.Code
				dg.ErrorMessage = kmsg.StringPtr(msg)
			}
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (g *group) describe(dg *kmsg.DescribeGroupsResponseGroup) {
	dg.State, dg.ProtocolType = g.state.String(), g.protocolType
	if g.state == stable {
		dg.Protocol = g.protocol
	}
	for _, m := range g.sortedMembers() {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		if g.state == stable {
			dm.ProtocolMetadata, dm.MemberAssignment = m.metadata(g.protocol), m.assignment
		}
		dg.Members = append(dg.Members, dm)
	}
}
