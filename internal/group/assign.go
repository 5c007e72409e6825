package group

// Server-side assignors of KIP-848 consumer groups. Both are pure functions
// of the members' subscriptions, the topics' partition counts and, for
// stickiness, the previous target assignment.

import (
	"bytes"
	"slices"
	"sort"
)

const (
	assignorUniform = "uniform"
	assignorRange   = "range"
)

// assignment is a set of partitions by topic ID; partition lists are sorted.
type assignment map[[16]byte][]int32

func (a assignment) has(t [16]byte, p int32) bool {
	_, ok := slices.BinarySearch(a[t], p)
	return ok
}

func (a assignment) add(t [16]byte, p int32) {
	ps := a[t]
	i, ok := slices.BinarySearch(ps, p)
	if !ok {
		a[t] = slices.Insert(ps, i, p)
	}
}

func (a assignment) size() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

func (a assignment) clone() assignment {
	c := make(assignment, len(a))
	for t, ps := range a {
		c[t] = slices.Clone(ps)
	}
	return c
}

func (a assignment) equal(b assignment) bool {
	if a.size() != b.size() {
		return false
	}
	for t, ps := range a {
		if !slices.Equal(ps, b[t]) {
			return false
		}
	}
	return true
}

// topicIDs returns a's topics in a stable order.
func (a assignment) topicIDs() [][16]byte {
	ids := make([][16]byte, 0, len(a))
	for t, ps := range a {
		if len(ps) > 0 {
			ids = append(ids, t)
		}
	}
	slices.SortFunc(ids, func(x, y [16]byte) int { return bytes.Compare(x[:], y[:]) })
	return ids
}

// assignSpec is the input of an assignor.
type assignSpec struct {
	members []assignMember        // sorted by id
	topics  map[[16]byte]int32    // partition count by topic ID, for every subscribed topic
	prev    map[string]assignment // previous target, by member id
}

type assignMember struct {
	id     string
	topics map[[16]byte]bool
}

type topicPartition struct {
	topic     [16]byte
	partition int32
}

func sortedTopics(topics map[[16]byte]int32) [][16]byte {
	ids := make([][16]byte, 0, len(topics))
	for t := range topics {
		ids = append(ids, t)
	}
	slices.SortFunc(ids, func(x, y [16]byte) int { return bytes.Compare(x[:], y[:]) })
	return ids
}

// assignRange gives each subscriber of a topic a contiguous range of its
// partitions, members in id order, the first ones one more when the count
// does not divide evenly: Kafka's range assignor per topic.
func assignRange(spec assignSpec) map[string]assignment {
	out := make(map[string]assignment, len(spec.members))
	for _, m := range spec.members {
		out[m.id] = make(assignment)
	}
	for _, t := range sortedTopics(spec.topics) {
		var subs []string
		for _, m := range spec.members {
			if m.topics[t] {
				subs = append(subs, m.id)
			}
		}
		if len(subs) == 0 {
			continue
		}
		n := spec.topics[t]
		per, extra := n/int32(len(subs)), n%int32(len(subs))
		next := int32(0)
		for i, id := range subs {
			count := per
			if int32(i) < extra {
				count++
			}
			for p := next; p < next+count; p++ {
				out[id].add(t, p)
			}
			next += count
		}
	}
	return out
}

// assignUniform spreads partitions as evenly as the subscriptions allow
// while keeping partitions where they were: first every partition stays with
// its previous owner if that member still subscribes, then unowned
// partitions go to the least loaded subscriber, then partitions move from
// the most to the least loaded eligible member until no move makes the
// spread narrower.
func assignUniform(spec assignSpec) map[string]assignment {
	out := make(map[string]assignment, len(spec.members))
	count := make(map[string]int, len(spec.members))
	byID := make(map[string]assignMember, len(spec.members))
	for _, m := range spec.members {
		out[m.id] = make(assignment)
		byID[m.id] = m
	}
	owner := make(map[topicPartition]string)
	var all []topicPartition
	for _, t := range sortedTopics(spec.topics) {
		for p := int32(0); p < spec.topics[t]; p++ {
			all = append(all, topicPartition{t, p})
		}
	}
	for _, m := range spec.members {
		for t, ps := range spec.prev[m.id] {
			if !m.topics[t] {
				continue
			}
			for _, p := range ps {
				tp := topicPartition{t, p}
				if p < spec.topics[t] && owner[tp] == "" {
					owner[tp] = m.id
					count[m.id]++
				}
			}
		}
	}
	leastLoaded := func(tp topicPartition, exclude string) string {
		best := ""
		for _, m := range spec.members {
			if m.id == exclude || !m.topics[tp.topic] {
				continue
			}
			if best == "" || count[m.id] < count[best] {
				best = m.id
			}
		}
		return best
	}
	for _, tp := range all {
		if owner[tp] != "" {
			continue
		}
		if id := leastLoaded(tp, ""); id != "" {
			owner[tp] = id
			count[id]++
		}
	}
	// Balance: move one partition at a time from a member to an eligible
	// one holding at least two fewer. Each move strictly lowers the sum of
	// squared counts, so this ends.
	for moved := true; moved; {
		moved = false
		members := slices.Clone(spec.members)
		sort.SliceStable(members, func(i, j int) bool { return count[members[i].id] > count[members[j].id] })
		for _, from := range members {
			for _, tp := range all {
				if owner[tp] != from.id {
					continue
				}
				to := leastLoaded(tp, from.id)
				if to != "" && count[to]+1 < count[from.id] {
					owner[tp] = to
					count[to]++
					count[from.id]--
					moved = true
					break
				}
			}
			if moved {
				break
			}
		}
	}
	for tp, id := range owner {
		if _, ok := byID[id]; ok {
			out[id].add(tp.topic, tp.partition)
		}
	}
	return out
}
