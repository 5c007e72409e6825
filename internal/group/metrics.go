package group

// What the broker's metrics read of the coordinator at scrape time: the committed
// offsets (for consumer lag) and how many groups and offsets it holds. Copies are
// taken under mu, bounded by the caller, and nothing else is done under it.

import (
	"cmp"
	"slices"
)

// Committed is one committed offset.
type Committed struct {
	Group     string
	Topic     string
	Partition int32
	Offset    int64
}

// CommittedOffsets returns at most max committed offsets, ordered by group, topic and
// partition, and how many there are in all.
func (c *Coordinator) CommittedOffsets(max int) (out []Committed, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.groups))
	for id, g := range c.groups {
		if len(g.offsets) > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var scratch []Committed
	for _, id := range ids {
		g := c.groups[id]
		n := 0
		for _, ps := range g.offsets {
			n += len(ps)
		}
		total += n
		if len(out) >= max {
			continue
		}
		// Sorted whole, then cut, so the entries kept past max are always the same.
		scratch = scratch[:0]
		for t, ps := range g.offsets {
			for p, o := range ps {
				scratch = append(scratch, Committed{Group: id, Topic: t, Partition: p, Offset: o.offset})
			}
		}
		slices.SortFunc(scratch, func(a, b Committed) int {
			return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
		})
		out = append(out, scratch[:min(len(scratch), max-len(out))]...)
	}
	return out, total
}

// Counts returns how many groups and committed offsets the coordinator holds.
func (c *Coordinator) Counts() (groups, offsets int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.groups {
		for _, ps := range g.offsets {
			offsets += len(ps)
		}
	}
	return len(c.groups), offsets
}
