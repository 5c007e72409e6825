package chaos

import (
	"fmt"
	"sort"
	"strings"
)

// The metadata checks of a cluster run: what the metadata workload was
// acknowledged must be in every node's image after the heal, the nodes'
// images must agree, and one epoch of the metadata quorum has one leader.

// checkMetadata: lost metadata (an acknowledged creation missing from a
// node, or an acknowledged deletion still on one) and divergent images
// (nodes disagreeing on a topic's ID or partition count, or on whether it
// exists, or a node's topic differing from what its creation answered).
func (c *checker) checkMetadata() {
	if len(c.h.MetaViewNodes) == 0 {
		return
	}
	nodes := append([]int(nil), c.h.MetaViewNodes...)
	sort.Ints(nodes)
	views := map[string]map[int]TopicView{}
	for _, v := range c.h.MetaViews {
		if views[v.Topic] == nil {
			views[v.Topic] = map[int]TopicView{}
		}
		views[v.Topic][v.Node] = v
	}
	acked := map[string]MetaOp{}
	for _, op := range c.h.MetaOps {
		if op.Op == "create" && op.OK() {
			acked[op.Topic] = op
		}
	}
	want := expectedTopics(c.h.MetaOps)
	lost := map[string]bool{}
	for _, t := range sortedKeys(want) {
		var wrong []int
		for _, n := range nodes {
			if _, has := views[t][n]; has != want[t] {
				wrong = append(wrong, n)
			}
		}
		if len(wrong) == 0 {
			continue
		}
		lost[t] = true
		what := fmt.Sprintf("creation of %s (id %s, %d partitions) acknowledged at %v, missing from nodes %v",
			t, acked[t].TopicID, acked[t].Partitions, acked[t].Complete.Round(1e6), wrong)
		if !want[t] {
			what = fmt.Sprintf("deletion of %s acknowledged, still on nodes %v", t, wrong)
		}
		c.add(Anomaly{Kind: LostMetadata, Partition: -1, Detail: what, Values: []string{t}})
	}
	for _, t := range sortedKeys(views) {
		if lost[t] {
			continue
		}
		byNode := views[t]
		var parts []string
		distinct := map[string]bool{}
		for _, n := range nodes {
			v, ok := byNode[n]
			s := "absent"
			if ok {
				s = fmt.Sprintf("id %s, %d partitions", v.TopicID, v.Partitions)
			}
			distinct[s] = true
			parts = append(parts, fmt.Sprintf("node %d: %s", n, s))
		}
		a, ok := acked[t]
		if ok && !distinct[fmt.Sprintf("id %s, %d partitions", a.TopicID, a.Partitions)] {
			distinct["acknowledged"] = true
		}
		if len(distinct) < 2 {
			continue
		}
		if ok {
			parts = append(parts, fmt.Sprintf("acknowledged: id %s, %d partitions", a.TopicID, a.Partitions))
		}
		c.add(Anomaly{Kind: DivergentImage, Partition: -1, Detail: t + ": " + strings.Join(parts, "; "), Values: []string{t}})
	}
}

// checkLeaders: no two nodes claimed (or were named) the metadata quorum's
// leader in one epoch.
func (c *checker) checkLeaders() {
	by := map[int64]map[int][]LeaderClaim{}
	for _, l := range c.h.Leaders {
		if by[l.Epoch] == nil {
			by[l.Epoch] = map[int][]LeaderClaim{}
		}
		by[l.Epoch][l.Leader] = append(by[l.Epoch][l.Leader], l)
	}
	for _, e := range sortedKeys(by) {
		if len(by[e]) < 2 {
			continue
		}
		var parts []string
		for _, id := range sortedKeys(by[e]) {
			l := by[e][id][0]
			parts = append(parts, fmt.Sprintf("node %d (%s of node %d at %v)", id, l.Source, l.Node, l.Time.Round(1e6)))
		}
		c.add(Anomaly{Kind: SplitBrain, Partition: -1, Detail: fmt.Sprintf("epoch %d led by %s", e, strings.Join(parts, " and "))})
	}
}

func sortedKeys[K int | int32 | int64 | string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
