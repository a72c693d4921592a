package group

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rocketkafka/broker/log"
)

// asgTopic returns a topic ID whose byte order is the order of i.
func asgTopic(i int) log.TopicID {
	var id log.TopicID
	binary.BigEndian.PutUint32(id[12:], uint32(i))
	return id
}

// asgSpec returns a spec of n members ("m0001", "m0002", ...) all subscribing
// to topics 0.. with the given partition counts, with no current
// assignment.
func asgSpec(n int, counts ...int32) assignSpec {
	spec := assignSpec{partitions: map[log.TopicID]int32{}}
	var topics []log.TopicID
	for t, c := range counts {
		topics = append(topics, asgTopic(t))
		spec.partitions[asgTopic(t)] = c
	}
	for i := range n {
		spec.members = append(spec.members, assignMember{id: fmt.Sprintf("m%04d", i+1), topics: topics})
	}
	return spec
}

// withCurrent returns spec with each member's current assignment taken
// from prev, as the coordinator does between rebalances.
func withCurrent(spec assignSpec, prev map[string]assignment) assignSpec {
	spec.members = slices.Clone(spec.members)
	for i := range spec.members {
		spec.members[i].current = prev[spec.members[i].id]
	}
	return spec
}

// withMember returns spec with m added in id order.
func withMember(spec assignSpec, m assignMember) assignSpec {
	spec.members = slices.Clone(spec.members)
	i, _ := slices.BinarySearchFunc(spec.members, m.id, func(a assignMember, id string) int { return strings.Compare(a.id, id) })
	spec.members = slices.Insert(spec.members, i, m)
	return spec
}

type asgPartition struct {
	topic     log.TopicID
	partition int32
}

// owners maps every assigned partition to its member.
func owners(got map[string]assignment) map[asgPartition]string {
	out := map[asgPartition]string{}
	for id, a := range got {
		for topic, parts := range a {
			for _, p := range parts {
				out[asgPartition{topic, p}] = id
			}
		}
	}
	return out
}

func loads(got map[string]assignment) map[string]int {
	out := map[string]int{}
	for id, a := range got {
		for _, parts := range a {
			out[id] += len(parts)
		}
	}
	return out
}

// claims returns the partitions of the members' current assignments that
// are still valid, each with the first member by id that claims it.
func claims(spec assignSpec) map[asgPartition]string {
	out := map[asgPartition]string{}
	for _, m := range spec.members {
		for topic, parts := range m.current {
			if !slices.Contains(m.topics, topic) {
				continue
			}
			for _, p := range parts {
				k := asgPartition{topic, p}
				if _, taken := out[k]; !taken && p >= 0 && p < spec.partitions[topic] {
					out[k] = m.id
				}
			}
		}
	}
	return out
}

// checkValid checks what both assignors promise: every partition of a
// subscribed topic is assigned once, to a subscriber, in sorted lists
// without empty entries, and every member has an entry.
func checkValid(t *testing.T, spec assignSpec, got map[string]assignment) {
	t.Helper()
	if len(got) != len(spec.members) {
		t.Fatalf("%d members in the result, want %d", len(got), len(spec.members))
	}
	seen := map[asgPartition]string{}
	for _, m := range spec.members {
		a, ok := got[m.id]
		if !ok || a == nil {
			t.Fatalf("member %s: no assignment", m.id)
		}
		for topic, parts := range a {
			if !slices.Contains(m.topics, topic) {
				t.Fatalf("member %s: assigned unsubscribed topic %v", m.id, topic)
			}
			if len(parts) == 0 || !slices.IsSorted(parts) || len(slices.Compact(slices.Clone(parts))) != len(parts) {
				t.Fatalf("member %s: topic %v: partitions %v not sorted, unique and non-empty", m.id, topic, parts)
			}
			for _, p := range parts {
				if p < 0 || p >= spec.partitions[topic] {
					t.Fatalf("member %s: topic %v: partition %d out of range", m.id, topic, p)
				}
				k := asgPartition{topic, p}
				if other, dup := seen[k]; dup {
					t.Fatalf("partition %v assigned to %s and %s", k, other, m.id)
				}
				seen[k] = m.id
			}
		}
	}
	subscribed := map[log.TopicID]bool{}
	for _, m := range spec.members {
		for _, topic := range m.topics {
			subscribed[topic] = true
		}
	}
	for topic := range subscribed {
		for p := range spec.partitions[topic] {
			if _, ok := seen[asgPartition{topic, p}]; !ok {
				t.Fatalf("partition %d of topic %v not assigned", p, topic)
			}
		}
	}
}

// checkLocallyBalanced checks that no member owns a partition of a topic
// that a member with two partitions fewer subscribes to.
func checkLocallyBalanced(t *testing.T, spec assignSpec, got map[string]assignment) {
	t.Helper()
	load := loads(got)
	for _, u := range spec.members {
		for topic := range got[u.id] {
			for _, v := range spec.members {
				if slices.Contains(v.topics, topic) && load[u.id]-load[v.id] > 1 {
					t.Fatalf("%s owns %d partitions, with topic %v, which %s, owning %d, subscribes to", u.id, load[u.id], topic, v.id, load[v.id])
				}
			}
		}
	}
}

func checkBalanced(t *testing.T, got map[string]assignment) {
	t.Helper()
	lo, hi := -1, 0
	for _, l := range loads(got) {
		hi = max(hi, l)
		if lo < 0 || l < lo {
			lo = l
		}
	}
	if len(got) > 0 && hi-lo > 1 {
		t.Fatalf("loads from %d to %d: %v", lo, hi, loads(got))
	}
}

// randomSpec returns up to 8 members over up to 6 topics, 2 more deleted
// ones, with random subscriptions (the same for all members if
// homogeneous) and random current assignments naming deleted and
// unsubscribed topics, partitions out of range, and partitions of other
// members.
func randomSpec(r *rand.Rand, homogeneous bool) assignSpec {
	nTopics := r.IntN(7)
	spec := assignSpec{partitions: map[log.TopicID]int32{}}
	for t := range nTopics {
		spec.partitions[asgTopic(t)] = 1 + r.Int32N(12)
	}
	subscribe := func() []log.TopicID {
		var topics []log.TopicID
		for t := range nTopics {
			if r.IntN(3) > 0 {
				topics = append(topics, asgTopic(t))
			}
		}
		return topics
	}
	shared := subscribe()
	for i := range r.IntN(9) {
		m := assignMember{id: fmt.Sprintf("m%02d", i), topics: shared, current: assignment{}}
		if !homogeneous {
			m.topics = subscribe()
		}
		for t := range nTopics + 2 {
			var parts []int32
			for p := int32(-1); p < spec.partitions[asgTopic(t)]+2; p++ {
				if r.IntN(4) == 0 {
					parts = append(parts, p)
				}
			}
			if len(parts) > 0 {
				m.current[asgTopic(t)] = parts
			}
		}
		spec.members = append(spec.members, m)
	}
	return spec
}

func TestAssignorsRegistry(t *testing.T) {
	if _, ok := assignors[defaultAssignor]; !ok {
		t.Fatalf("default assignor %q not served", defaultAssignor)
	}
	for name, a := range assignors {
		if a.name() != name {
			t.Errorf("assignor served as %q names itself %q", name, a.name())
		}
	}
}

// TestAssignRandom checks both assignors on random specs: validity,
// determinism, and each one's own layout.
func TestAssignRandom(t *testing.T) {
	for name, a := range assignors {
		t.Run(name, func(t *testing.T) {
			for seed := range uint64(2000) {
				r := rand.New(rand.NewPCG(seed, 0))
				spec := randomSpec(r, r.IntN(2) == 0)
				got := a.assign(spec)
				checkValid(t, spec, got)
				if again := a.assign(spec); !reflect.DeepEqual(got, again) {
					t.Fatalf("seed %d: not deterministic:\n%v\n%v", seed, got, again)
				}
				switch a.(type) {
				case uniformAssignor:
					checkLocallyBalanced(t, spec, got)
				case rangeAssignor:
					if want := rangeLayout(spec); !reflect.DeepEqual(got, want) {
						t.Fatalf("seed %d: got %v, want %v", seed, got, want)
					}
				}
			}
		})
	}
}

// rangeLayout is the range assignment as Kafka describes it: per topic,
// P partitions over M subscribers in id order, the first P%M getting
// P/M+1 contiguous partitions, the others P/M.
func rangeLayout(spec assignSpec) map[string]assignment {
	out := map[string]assignment{}
	subs := map[log.TopicID][]string{}
	for _, m := range spec.members {
		out[m.id] = assignment{}
		for _, topic := range m.topics {
			subs[topic] = append(subs[topic], m.id)
		}
	}
	for topic, ids := range subs {
		count, n := spec.partitions[topic], int32(len(ids))
		var start int32
		for i, id := range ids {
			size := count / n
			if int32(i) < count%n {
				size++
			}
			for p := start; p < start+size; p++ {
				out[id][topic] = append(out[id][topic], p)
			}
			start += size
		}
	}
	return out
}

// TestUniformHomogeneousRandom checks that with the same subscriptions the
// uniform assignor balances to within one and moves the fewest partitions:
// the claimed ones over the quota total/n, less one for each member over
// it that can keep one of the total%n extra slots.
func TestUniformHomogeneousRandom(t *testing.T) {
	for seed := range uint64(2000) {
		r := rand.New(rand.NewPCG(seed, 1))
		spec := randomSpec(r, true)
		got := uniformAssignor{}.assign(spec)
		checkValid(t, spec, got)
		checkBalanced(t, got)
		if len(spec.members) == 0 {
			continue
		}
		total := 0
		for _, topic := range spec.members[0].topics {
			total += int(spec.partitions[topic])
		}
		quota, extra := total/len(spec.members), total%len(spec.members)
		held := map[string]int{}
		prev := claims(spec)
		for _, id := range prev {
			held[id]++
		}
		want, over := 0, 0
		for _, h := range held {
			if h > quota {
				want += h - quota
				over++
			}
		}
		want -= min(extra, over)
		if moved := movedCount(prev, got); moved != want {
			t.Fatalf("seed %d: %d partitions moved, want %d", seed, moved, want)
		}
	}
}

// movedCount counts the partitions of prev that got gives another owner.
func movedCount(prev map[asgPartition]string, got map[string]assignment) int {
	now, moved := owners(got), 0
	for k, id := range prev {
		if now[k] != id {
			moved++
		}
	}
	return moved
}

func TestUniformMemberJoins(t *testing.T) {
	tests := []struct {
		name    string
		members int
		counts  []int32
		joiner  string
		moved   int
	}{
		{"3 members 10 partitions", 3, []int32{10}, "m9999", 2},
		{"joiner sorts first", 3, []int32{10}, "m0000", 2},
		{"2 topics of 3", 2, []int32{3, 3}, "m9999", 2},
		{"10 members 200 partitions", 10, []int32{100, 100}, "m0005a", 18},
		{"fewer partitions than members", 4, []int32{1}, "m9999", 0},
		{"one member", 1, []int32{5, 4}, "m9999", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := asgSpec(tt.members, tt.counts...)
			first := uniformAssignor{}.assign(spec)
			spec = withMember(withCurrent(spec, first), assignMember{id: tt.joiner, topics: spec.members[0].topics})
			got := uniformAssignor{}.assign(spec)
			checkValid(t, spec, got)
			checkBalanced(t, got)
			if moved := movedCount(owners(first), got); moved != tt.moved {
				t.Errorf("%d partitions moved, want %d", moved, tt.moved)
			}
		})
	}
}

func TestUniformMemberLeaves(t *testing.T) {
	tests := []struct {
		name    string
		members int
		counts  []int32
		leaver  int
	}{
		{"first of 3", 3, []int32{10}, 0},
		{"last of 3", 3, []int32{10}, 2},
		{"middle of 5", 5, []int32{7, 7, 7}, 2},
		{"fewer partitions than members", 4, []int32{2}, 1},
		{"last but one", 2, []int32{3}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := asgSpec(tt.members, tt.counts...)
			first := uniformAssignor{}.assign(spec)
			spec = withCurrent(spec, first)
			spec.members = slices.Delete(spec.members, tt.leaver, tt.leaver+1)
			got := uniformAssignor{}.assign(spec)
			checkValid(t, spec, got)
			checkBalanced(t, got)
			for _, m := range spec.members {
				for topic, parts := range first[m.id] {
					for _, p := range parts {
						if !slices.Contains(got[m.id][topic], p) {
							t.Errorf("%s lost partition %d of topic %v", m.id, p, topic)
						}
					}
				}
			}
		})
	}
}

func TestAssignLayout(t *testing.T) {
	a, b, c := asgTopic(0), asgTopic(1), asgTopic(2)
	three := map[log.TopicID]int32{a: 3, b: 3, c: 4}
	tests := []struct {
		name     string
		assignor assignor
		members  []assignMember
		want     map[string]assignment
	}{
		{
			"range co-partitions", rangeAssignor{},
			[]assignMember{{id: "m1", topics: []log.TopicID{a, b}}, {id: "m2", topics: []log.TopicID{a, b}}},
			map[string]assignment{"m1": {a: {0, 1}, b: {0, 1}}, "m2": {a: {2}, b: {2}}},
		},
		{
			"range per topic subscribers", rangeAssignor{},
			[]assignMember{{id: "m1", topics: []log.TopicID{a, c}}, {id: "m2", topics: []log.TopicID{c}}, {id: "m3", topics: []log.TopicID{a, c}}},
			map[string]assignment{"m1": {a: {0, 1}, c: {0, 1}}, "m2": {c: {2}}, "m3": {a: {2}, c: {3}}},
		},
		{
			"range more members than partitions", rangeAssignor{},
			[]assignMember{{id: "m1", topics: []log.TopicID{a}}, {id: "m2", topics: []log.TopicID{a}}, {id: "m3", topics: []log.TopicID{a}}, {id: "m4", topics: []log.TopicID{a}}},
			map[string]assignment{"m1": {a: {0}}, "m2": {a: {1}}, "m3": {a: {2}}, "m4": {}},
		},
		{
			"uniform spreads topics", uniformAssignor{},
			[]assignMember{{id: "m1", topics: []log.TopicID{a, b}}, {id: "m2", topics: []log.TopicID{a, b}}, {id: "m3", topics: []log.TopicID{a, b}}},
			map[string]assignment{"m1": {a: {0}, b: {0}}, "m2": {a: {1}, b: {1}}, "m3": {a: {2}, b: {2}}},
		},
		{
			// c has one subscriber, so it goes first; a then balances.
			"uniform heterogeneous", uniformAssignor{},
			[]assignMember{{id: "m1", topics: []log.TopicID{a}}, {id: "m2", topics: []log.TopicID{a, c}}},
			map[string]assignment{"m1": {a: {0, 1, 2}}, "m2": {c: {0, 1, 2, 3}}},
		},
		{
			"uniform drops stale partitions", uniformAssignor{},
			[]assignMember{
				{id: "m1", topics: []log.TopicID{a}, current: assignment{a: {0, 1, 7}, b: {0}, asgTopic(9): {0}}},
				{id: "m2", topics: []log.TopicID{a}, current: assignment{a: {1}}},
			},
			map[string]assignment{"m1": {a: {0, 1}}, "m2": {a: {2}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := assignSpec{members: tt.members, partitions: three}
			if got := tt.assignor.assign(spec); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAssignEmpty(t *testing.T) {
	a := asgTopic(0)
	tests := []struct {
		name string
		spec assignSpec
		want map[string]assignment
	}{
		{"no members", assignSpec{partitions: map[log.TopicID]int32{a: 3}}, map[string]assignment{}},
		{
			"no subscriptions",
			assignSpec{members: []assignMember{{id: "m1", current: assignment{a: {0}}}}, partitions: map[log.TopicID]int32{a: 3}},
			map[string]assignment{"m1": {}},
		},
		{
			"one member subscribed to nothing",
			assignSpec{members: []assignMember{{id: "m1"}, {id: "m2", topics: []log.TopicID{a}}}, partitions: map[log.TopicID]int32{a: 2}},
			map[string]assignment{"m1": {}, "m2": {a: {0, 1}}},
		},
		{
			"subscribed topic without partitions",
			assignSpec{members: []assignMember{{id: "m1", topics: []log.TopicID{a, asgTopic(1)}}}, partitions: map[log.TopicID]int32{a: 1}},
			map[string]assignment{"m1": {a: {0}}},
		},
	}
	for name, a := range assignors {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				if got := a.assign(tt.spec); !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			})
		}
	}
}

// TestUniformLargeGroup checks the size the broker must handle: 1000
// members over 10000 partitions, fresh and after a member joins.
func TestUniformLargeGroup(t *testing.T) {
	spec := asgSpec(1000, slices.Repeat([]int32{100}, 100)...)
	first := uniformAssignor{}.assign(spec)
	checkValid(t, spec, first)
	checkBalanced(t, first)
	spec = withMember(withCurrent(spec, first), assignMember{id: "m0000", topics: spec.members[0].topics})
	got := uniformAssignor{}.assign(spec)
	checkValid(t, spec, got)
	checkBalanced(t, got)
}

func BenchmarkUniformAssign(b *testing.B) {
	for _, bc := range []struct{ members, topics int }{{100, 100}, {1000, 100}} {
		b.Run(fmt.Sprintf("%dmembers-%dx100partitions", bc.members, bc.topics), func(b *testing.B) {
			spec := asgSpec(bc.members, slices.Repeat([]int32{100}, bc.topics)...)
			spec = withCurrent(spec, uniformAssignor{}.assign(spec))
			spec = withMember(spec, assignMember{id: "m0000", topics: spec.members[0].topics})
			b.ReportAllocs()
			for b.Loop() {
				uniformAssignor{}.assign(spec)
			}
		})
	}
}
