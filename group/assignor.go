package group

import (
	"bytes"
	"cmp"
	"maps"
	"slices"

	"github.com/rocketkafka/broker/log"
)

// assignment is a member's partitions by topic ID, each list sorted
// ascending, with no duplicates and no empty lists.
type assignment map[log.TopicID][]int32

// assignMember is one member as the assignor sees it.
type assignMember struct {
	id string
	// topics are the subscribed topics that exist, sorted, no duplicates.
	topics []log.TopicID
	// current is the member's previous target assignment; it may name
	// topics and partitions that are gone or no longer subscribed.
	current assignment
}

// assignSpec is the input of an assignor.
type assignSpec struct {
	members    []assignMember        // sorted by id
	partitions map[log.TopicID]int32 // partition count of every subscribed topic
}

// assignor computes a target assignment: every member gets an entry,
// possibly an empty (non-nil) assignment.
type assignor interface {
	name() string
	assign(spec assignSpec) map[string]assignment
}

// defaultAssignor is Kafka's default server-side assignor.
const defaultAssignor = "uniform"

// assignors maps the names the broker serves to their assignor.
var assignors = map[string]assignor{
	"uniform": uniformAssignor{},
	"range":   rangeAssignor{},
}

func compareTopicID(a, b log.TopicID) int { return bytes.Compare(a[:], b[:]) }

// topicSubscribers returns, sorted, the topics with partitions that some
// member subscribes to, and for each the indices of its subscribers in
// member order.
func topicSubscribers(spec assignSpec) ([]log.TopicID, [][]int) {
	byTopic := make(map[log.TopicID][]int)
	for i, m := range spec.members {
		for _, topic := range m.topics {
			if spec.partitions[topic] > 0 {
				byTopic[topic] = append(byTopic[topic], i)
			}
		}
	}
	topics := slices.SortedFunc(maps.Keys(byTopic), compareTopicID)
	subs := make([][]int, len(topics))
	for t, topic := range topics {
		subs[t] = byTopic[topic]
	}
	return topics, subs
}

func emptyAssignments(members []assignMember) map[string]assignment {
	out := make(map[string]assignment, len(members))
	for _, m := range members {
		out[m.id] = assignment{}
	}
	return out
}

// rangeAssignor is Kafka's server-side RangeAssignor: each topic's
// partitions are split into contiguous ranges over its subscribers in id
// order, the first ones getting one more. Members with the same
// subscriptions thus get the same partition numbers of every topic
// (co-partitioning, which joins of same-keyed topics rely on).
type rangeAssignor struct{}

func (rangeAssignor) name() string { return "range" }

func (rangeAssignor) assign(spec assignSpec) map[string]assignment {
	out := emptyAssignments(spec.members)
	topics, subs := topicSubscribers(spec)
	for t, topic := range topics {
		count, n := spec.partitions[topic], int32(len(subs[t]))
		quota, extra := count/n, count%n
		var start int32
		for i, m := range subs[t] {
			size := quota
			if int32(i) < extra {
				size++
			}
			if size > 0 {
				out[spec.members[m].id][topic] = partitionRange(start, size)
			}
			start += size
		}
	}
	return out
}

// partitionRange returns the n partitions from start.
func partitionRange(start, n int32) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = start + int32(i)
	}
	return out
}

// uniformAssignor is Kafka's UniformAssignor: partitions are spread as
// evenly as the subscriptions allow, and members keep as many of their
// current partitions as that balance lets them, so that a rebalance
// revokes little.
type uniformAssignor struct{}

func (uniformAssignor) name() string { return "uniform" }

func (uniformAssignor) assign(spec assignSpec) map[string]assignment {
	if len(spec.members) == 0 { // nothing to assign, nor a first member to compare
		return map[string]assignment{}
	}
	s := newUniformState(spec)
	s.claimCurrent()
	if s.homogeneous() {
		s.assignHomogeneous()
	} else {
		s.assignHeterogeneous()
	}
	return s.result()
}

// uniformState is one uniform assignment in progress. Topics are indices
// into topics (as topicSubscribers returns them), members indices into
// spec.members.
type uniformState struct {
	spec   assignSpec
	topics []log.TopicID
	subs   [][]int
	owner  [][]int // member owning each partition, by topic; -1 for none
	load   []int   // partitions owned, by member
}

func newUniformState(spec assignSpec) *uniformState {
	s := &uniformState{spec: spec, load: make([]int, len(spec.members))}
	s.topics, s.subs = topicSubscribers(spec)
	total := 0
	for _, topic := range s.topics {
		total += int(spec.partitions[topic])
	}
	// One backing array: a single allocation however many topics.
	all := slices.Repeat([]int{-1}, total)
	s.owner = make([][]int, len(s.topics))
	for t, topic := range s.topics {
		n := int(spec.partitions[topic])
		s.owner[t], all = all[:n:n], all[n:]
	}
	return s
}

// give makes member i the owner of partition p of topic t.
func (s *uniformState) give(t, p, i int) {
	if o := s.owner[t][p]; o >= 0 {
		s.load[o]--
	}
	s.owner[t][p] = i
	s.load[i]++
}

// claimCurrent gives each member those of its current partitions that are
// still valid; one that two members claim goes to the first by id.
func (s *uniformState) claimCurrent() {
	index := make(map[log.TopicID]int, len(s.topics))
	for t, topic := range s.topics {
		index[topic] = t
	}
	for i, m := range s.spec.members {
		for _, topic := range m.topics {
			t, ok := index[topic]
			if !ok {
				continue
			}
			for _, p := range m.current[topic] {
				if p >= 0 && int(p) < len(s.owner[t]) && s.owner[t][p] < 0 {
					s.give(t, int(p), i)
				}
			}
		}
	}
}

// homogeneous reports whether all members subscribe to the same topics.
func (s *uniformState) homogeneous() bool {
	first := s.spec.members[0].topics
	for _, m := range s.spec.members[1:] {
		if !slices.Equal(m.topics, first) {
			return false
		}
	}
	return true
}

// assignHomogeneous gives every member total/n partitions and total%n of
// them one more. The extra slots go first to members holding more than
// total/n, as each keeps one partition it would otherwise lose: that makes
// the number of moved partitions the minimum.
func (s *uniformState) assignHomogeneous() {
	n, total := len(s.load), 0
	for _, owners := range s.owner {
		total += len(owners)
	}
	quota, extra := total/n, total%n
	target := make([]int, n)
	for i := range target {
		target[i] = quota
		if s.load[i] > quota && extra > 0 {
			target[i]++
			extra--
		}
	}
	for i := 0; extra > 0; i++ {
		if target[i] == quota {
			target[i]++
			extra--
		}
	}
	s.revokeOver(target)
	s.dealRoundRobin(target)
}

// revokeOver unassigns the partitions of each member beyond its target,
// its last ones in topic and partition order.
func (s *uniformState) revokeOver(target []int) {
	for t := len(s.owner) - 1; t >= 0; t-- {
		owners := s.owner[t]
		for p := len(owners) - 1; p >= 0; p-- {
			if i := owners[p]; i >= 0 && s.load[i] > target[i] {
				owners[p] = -1
				s.load[i]--
			}
		}
	}
}

// dealRoundRobin deals the unassigned partitions in turn to the members
// under their target, which spreads each topic over the members. The
// targets must add up to the partitions.
func (s *uniformState) dealRoundRobin(target []int) {
	var needy []int
	for i, l := range s.load {
		if l < target[i] {
			needy = append(needy, i)
		}
	}
	next := 0
	for t, owners := range s.owner {
		for p, o := range owners {
			if o >= 0 {
				continue
			}
			i := needy[next]
			s.give(t, p, i)
			if s.load[i] == target[i] {
				needy = slices.Delete(needy, next, next+1)
			} else {
				next++
			}
			if next == len(needy) {
				next = 0
			}
		}
	}
}

// assignHeterogeneous keeps the members' current partitions, gives each
// unassigned one to the least loaded subscriber of its topic, then moves
// partitions to less loaded subscribers until no owner has two more than
// one of its topic's subscribers. Topics with fewer subscribers go first:
// their partitions have fewer places to go.
func (s *uniformState) assignHeterogeneous() {
	order := make([]int, len(s.topics))
	for t := range order {
		order[t] = t
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(s.subs[a]), len(s.subs[b])) })
	for _, t := range order {
		for p, o := range s.owner[t] {
			if o < 0 {
				s.give(t, p, s.leastLoaded(t))
			}
		}
	}
	for s.balance(order) {
	}
}

// leastLoaded returns the subscriber of topic t with the fewest partitions,
// the first by id on ties.
func (s *uniformState) leastLoaded(t int) int {
	best := s.subs[t][0]
	for _, i := range s.subs[t][1:] {
		if s.load[i] < s.load[best] {
			best = i
		}
	}
	return best
}

// balance makes one pass over the topics, moving each partition whose
// owner has two more than the least loaded subscriber to that subscriber,
// and reports whether it moved any. Every move lowers the sum of the
// squared loads, so repeated passes end.
func (s *uniformState) balance(order []int) bool {
	moved := false
	for _, t := range order {
		least := s.leastLoaded(t)
		for p, o := range s.owner[t] {
			if s.load[o]-s.load[least] > 1 {
				s.give(t, p, least)
				least = s.leastLoaded(t)
				moved = true
			}
		}
	}
	return moved
}

func (s *uniformState) result() map[string]assignment {
	out := emptyAssignments(s.spec.members)
	// By index, to spare a lookup by id for every partition.
	byMember := make([]assignment, len(s.spec.members))
	for i, m := range s.spec.members {
		byMember[i] = out[m.id]
	}
	for t, owners := range s.owner {
		topic := s.topics[t]
		for p, i := range owners {
			byMember[i][topic] = append(byMember[i][topic], int32(p))
		}
	}
	return out
}
