package chaos

import (
	"fmt"
	"sort"
)

// checkConsumers walks each consumer's polls and assignments in time order.
// Within one assignment of a partition the offsets a consumer receives must
// go up by exactly one (no compaction and no transaction markers in the
// battery's topic, so the log has no holes). An assignment must begin at or
// below the highest offset any member had tried to commit before it (at or
// below 0 when nothing was committed): beginning above it skips records the
// group never saw. Beginning below it is a redelivery, which at-least-once
// consumption allows.
func (c *checker) checkConsumers() {
	type event struct {
		t      Dur
		assign *Assign
		poll   *Poll
	}
	byConsumer := map[string][]event{}
	var consumers []string
	add := func(name string, e event) {
		if _, ok := byConsumer[name]; !ok {
			consumers = append(consumers, name)
		}
		byConsumer[name] = append(byConsumer[name], e)
	}
	for i := range c.h.Assigns {
		a := &c.h.Assigns[i]
		add(a.Consumer, event{t: a.Time, assign: a})
	}
	for i := range c.h.Polls {
		p := &c.h.Polls[i]
		add(p.Consumer, event{t: p.Time, poll: p})
	}
	sort.Strings(consumers)

	type state struct {
		fresh   bool // no record since the assignment began
		assignT Dur
		last    int64
		lastT   Dur
	}
	for _, name := range consumers {
		evs := byConsumer[name]
		// Assignments sort before polls at the same instant.
		sort.SliceStable(evs, func(i, j int) bool {
			if evs[i].t != evs[j].t {
				return evs[i].t < evs[j].t
			}
			return evs[i].assign != nil && evs[j].assign == nil
		})
		st := map[int32]*state{}
		for _, e := range evs {
			if a := e.assign; a != nil {
				if a.Assigned {
					for _, p := range a.Partitions {
						st[p] = &state{fresh: true, assignT: a.Time}
					}
				}
				// A revocation leaves the state: records the client
				// still hands out belong to the assignment that ended.
				continue
			}
			pl := e.poll
			s := st[pl.Partition]
			if s == nil { // polled without an assignment on record
				s = &state{fresh: true, assignT: pl.Time}
				st[pl.Partition] = s
			}
			for _, r := range pl.Records {
				if s.fresh {
					s.fresh = false
					if want := c.commitBound(pl.Partition, s.assignT); r.Offset > want {
						a := Anomaly{Kind: OffsetSkip, Partition: pl.Partition,
							Detail: fmt.Sprintf("%s began its assignment of p%d (at %v) at offset %d; the group had committed at most %d",
								name, pl.Partition, s.assignT.Round(1e6), r.Offset, want)}
						if f := c.tornBetween(pl.Partition, 0, pl.Time); f != nil {
							a.Expected, a.Why = true, tornWhy(f)
						}
						c.add(a)
					}
				} else if r.Offset != s.last+1 {
					kind, what := OffsetSkip, "skipping"
					if r.Offset <= s.last {
						kind, what = NonMonotonic, "after"
					}
					a := Anomaly{Kind: kind, Partition: pl.Partition,
						Detail: fmt.Sprintf("%s got p%d@%d (%q) at %v %s @%d (at %v) in one assignment",
							name, pl.Partition, r.Offset, r.Value, pl.Time.Round(1e6), what, s.last, s.lastT.Round(1e6))}
					if f := c.tornBetween(pl.Partition, s.lastT, pl.Time); f != nil {
						a.Expected, a.Why = true, tornWhy(f)
					}
					c.add(a)
				}
				s.last, s.lastT = r.Offset, pl.Time
			}
		}
	}
}

// commitBound is the highest offset any commit of partition p invoked
// before t tried to store (0 when none): the group's committed offset at t
// cannot be above it.
func (c *checker) commitBound(p int32, t Dur) int64 {
	var bound int64
	for _, cm := range c.h.Commits {
		if cm.Partition == p && cm.Invoke < t {
			bound = max(bound, cm.Offset)
		}
	}
	return bound
}

// checkCommits: successful commits of a partition, in the order they
// completed, never go down; the offset fetched after healing is not below
// the last successful commit.
func (c *checker) checkCommits() {
	last := map[int32]Commit{}
	for _, cm := range c.h.Commits { // sorted by completion
		if cm.Err != "" {
			continue
		}
		prev, ok := last[cm.Partition]
		last[cm.Partition] = cm
		if !ok || cm.Offset >= prev.Offset {
			continue
		}
		a := Anomaly{Kind: CommitBackwards, Partition: cm.Partition,
			Detail: fmt.Sprintf("%s committed p%d=%d at %v after %s committed %d at %v",
				cm.Consumer, cm.Partition, cm.Offset, cm.Complete.Round(1e6), prev.Consumer, prev.Offset, prev.Complete.Round(1e6))}
		if f := c.tornBetween(cm.Partition, prev.Complete, cm.Complete); f != nil {
			a.Expected, a.Why = true, tornWhy(f)
		}
		c.add(a)
	}
	for _, fc := range c.h.Committed {
		prev, ok := last[fc.Partition]
		if !ok || fc.Offset >= prev.Offset {
			continue
		}
		c.add(Anomaly{Kind: CommitBackwards, Partition: fc.Partition,
			Detail: fmt.Sprintf("after healing the group's offset of p%d is %d, below %d committed by %s at %v",
				fc.Partition, fc.Offset, prev.Offset, prev.Consumer, prev.Complete.Round(1e6))})
	}
}
