package chaos

import (
	"fmt"
	"sort"
)

// The checks a replicated cluster adds: no error reaches an idempotent
// producer during a rolling restart with controlled shutdowns, the group
// never commits past a record none of its members received, and every
// replica's batches below the high watermark are the same batches.

// checkProduceErrors: a promised writer's write that failed while a rolling
// restart was under way (its invoke-to-outcome span overlaps the fault's
// window). A controlled shutdown moves leadership before the node stops,
// so the client's internal retries must hide it; an error that reaches the
// application is a failure of the controlled shutdown. Writes that failed
// once the next fault had begun, or the run's own stop (End), are not
// counted; an acks=1 writer's errors are reported as expected.
func (c *checker) checkProduceErrors() {
	for i, f := range c.h.Faults {
		if f.Kind != Rolling {
			continue
		}
		// A write that failed after the window is laid to the restart
		// only if no other fault had begun by then.
		next := c.h.End
		if i+1 < len(c.h.Faults) {
			next = min(next, c.h.Faults[i+1].Start)
		}
		for _, w := range c.h.Writes {
			if w.OK() || w.Complete >= next || w.Complete < f.Start || w.Invoke > f.End {
				continue
			}
			a := Anomaly{Kind: ProduceError, Partition: w.Partition, Values: []string{w.Value},
				Detail: fmt.Sprintf("%q to p%d invoked at %v failed at %v during the rolling restart (%v to %v): %s",
					w.Value, w.Partition, w.Invoke.Round(1e6), w.Complete.Round(1e6), f.Start.Round(1e6), f.End.Round(1e6), w.Err)}
			if wr := c.writers[w.Writer]; !wr.Promised() {
				a.Expected, a.Why = true, fmt.Sprintf("writer %s has acks=%d without idempotence", w.Writer, wr.Acks)
			}
			c.add(a)
		}
	}
}

// checkUnconsumed: every record the final read holds below the group's
// committed offset after healing was received by some member of the group.
// A committed offset past a record nobody received means the group lost it
// (a coordinator that answered a wrong offset, a consumer that skipped). A
// torn tail at or below the offset reuses it for a record nobody polled, as
// expected.
func (c *checker) checkUnconsumed() {
	polled := map[pos]bool{}
	for _, pl := range c.h.Polls {
		for _, r := range pl.Records {
			polled[pos{pl.Partition, r.Offset}] = true
		}
	}
	committed := map[int32]int64{}
	for _, fc := range c.h.Committed {
		committed[fc.Partition] = fc.Offset
	}
	missed := map[int32][]int64{}
	seen := map[pos]bool{}
	for _, r := range c.h.Final {
		p := pos{r.Partition, r.Offset}
		if seen[p] || r.Offset >= committed[r.Partition] || polled[p] {
			continue
		}
		seen[p] = true
		missed[r.Partition] = append(missed[r.Partition], r.Offset)
	}
	for _, p := range sortedKeys(missed) {
		offs := missed[p]
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		var shown []string
		for _, o := range offs {
			shown = append(shown, fmt.Sprint(o))
		}
		a := Anomaly{Kind: Unconsumed, Partition: p,
			Detail: fmt.Sprintf("the group's offset of p%d after healing is %d, but no member received the %d records at offsets %s",
				p, committed[p], len(offs), firstFew(shown))}
		if f := c.tornBelow(p, committed[p]); f != nil {
			a.Expected, a.Why = true, tornWhy(f)
		}
		c.add(a)
	}
}

// tornBelow returns a torn-tail fault of partition p that destroyed offsets
// below off (which were then reused), if any.
func (c *checker) tornBelow(p int32, off int64) *Fault {
	for i := range c.h.Faults {
		f := &c.h.Faults[i]
		if f.Torn != nil && f.Torn.Partition == p && f.Torn.FromOffset >= 0 && f.Torn.FromOffset < off {
			return f
		}
	}
	return nil
}

// BatchSum identifies one record batch of a replica read from disk: its
// offsets, the leader epoch it was written in, and its CRC (which covers
// everything after the epoch). Two copies with equal sums hold the same
// bytes, up to the base offset and epoch, which are compared as well.
type BatchSum struct {
	Node      int    `json:"node"`
	Partition int32  `json:"p"`
	Base      int64  `json:"base"`
	Last      int64  `json:"last"`
	Epoch     int32  `json:"epoch"`
	CRC       uint32 `json:"crc"`
}

// checkReplicaBatches: below the high watermark every replica holds the
// same batches. For each batch a replica holds, every replica of a lower
// node id whose copy spans its base offset must hold a batch starting there
// with the same last offset, leader epoch and CRC (otherwise a copy has the
// same records cut or written differently: not byte-identical). One
// anomaly per copy that differs from a lower one (so two copies that
// differ are reported once, and with three the odd one out's peers name
// it).
func (c *checker) checkReplicaBatches() {
	if len(c.h.ReplicaBatches) == 0 {
		return
	}
	hw := map[int32]int64{}
	for _, e := range c.h.FinalEnds {
		hw[e.Partition] = max(hw[e.Partition], e.End)
	}
	type key struct {
		node int
		p    int32
	}
	span := map[key]ReplicaLog{}
	for _, l := range c.h.Replicas {
		span[key{l.Node, l.Partition}] = l
	}
	at := map[key]map[int64]BatchSum{}
	for _, b := range c.h.ReplicaBatches {
		k := key{b.Node, b.Partition}
		if at[k] == nil {
			at[k] = map[int64]BatchSum{}
		}
		at[k][b.Base] = b
	}
	for _, l := range c.h.Replicas {
		k := key{l.Node, l.Partition}
		var differ []string
		for _, b := range c.h.ReplicaBatches {
			if b.Node != l.Node || b.Partition != l.Partition || b.Last >= hw[l.Partition] {
				continue
			}
			for _, o := range c.h.Replicas {
				if o.Partition != l.Partition || o.Node >= l.Node || b.Base < o.Start || b.Base >= o.End {
					continue
				}
				ob, ok := at[key{o.Node, o.Partition}][b.Base]
				switch {
				case !ok:
					differ = append(differ, fmt.Sprintf("@%d: node %d has no batch starting there", b.Base, o.Node))
				case ob.Last != b.Last || ob.Epoch != b.Epoch || ob.CRC != b.CRC:
					differ = append(differ, fmt.Sprintf("@%d: last %d epoch %d crc %08x, node %d's last %d epoch %d crc %08x",
						b.Base, b.Last, b.Epoch, b.CRC, o.Node, ob.Last, ob.Epoch, ob.CRC))
				default:
					continue
				}
				break
			}
		}
		if len(differ) == 0 {
			continue
		}
		c.add(Anomaly{Kind: DivergentReplica, Partition: l.Partition,
			Detail: fmt.Sprintf("node %d's copy of p%d: %d batches below the high watermark %d differ from another copy's %s",
				k.node, l.Partition, len(differ), hw[l.Partition], firstFew(differ))})
	}
}
