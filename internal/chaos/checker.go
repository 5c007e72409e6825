package chaos

import (
	"fmt"
	"sort"
	"strings"
)

// AnomalyKind names what the checker found wrong in a history.
type AnomalyKind string

// The anomalies. README's "Fault battery" section says what each means to a
// user.
const (
	// Lost: a write was acknowledged and a node's final read does not hold
	// its value anywhere.
	Lost AnomalyKind = "lost"
	// Duplicate: one write's value read at two offsets (one produce stored
	// twice).
	Duplicate AnomalyKind = "duplicate"
	// InconsistentOffset: one offset of a partition observed with two values
	// (acknowledged as one and read as another, read differently by two
	// consumers, or different on two replicas): an offset reused.
	InconsistentOffset AnomalyKind = "inconsistent-offset"
	// VanishedRead: a consumer read a record at an offset the final read
	// has nothing at: it was shown before it was safe (past what survives)
	// and then vanished.
	VanishedRead AnomalyKind = "vanished-read"
	// NonMonotonic: within one assignment a consumer got an offset not
	// above the one before it.
	NonMonotonic AnomalyKind = "non-monotonic"
	// OffsetSkip: within one assignment a consumer jumped over offsets, or
	// began an assignment past the group's committed offset: records the
	// group never saw.
	OffsetSkip AnomalyKind = "offset-skip"
	// CommitBackwards: a partition's committed offset went down between two
	// successful commits, or the offset fetched after healing is below the
	// last successful commit.
	CommitBackwards AnomalyKind = "commit-backwards"
	// OutOfOrder: one producer's records in a partition are not in the
	// order it produced them.
	OutOfOrder AnomalyKind = "out-of-order"
	// DivergentReplica: a node's copy of a partition, read from its data
	// dir after the run, lacks or holds otherwise an offset below the high
	// watermark the final read went to.
	DivergentReplica AnomalyKind = "divergent-replica"
	// LostMetadata: a topic whose creation was acknowledged is missing from
	// a node's Metadata after the heal, or one whose deletion was
	// acknowledged is still there.
	LostMetadata AnomalyKind = "lost-metadata"
	// DivergentImage: after the heal nodes disagree on a topic (its ID, its
	// partition count, whether it exists), or hold it otherwise than its
	// acknowledged creation said.
	DivergentImage AnomalyKind = "divergent-image"
	// SplitBrain: two nodes led (or were named leader of) the metadata
	// quorum in one epoch.
	SplitBrain AnomalyKind = "split-brain"
	// ProduceError: an error reached an idempotent acks=all producer's
	// application while a rolling restart with controlled shutdowns was
	// under way.
	ProduceError AnomalyKind = "produce-error"
	// Unconsumed: the group's committed offset after healing is past a
	// record no member of the group received: the group lost it.
	Unconsumed AnomalyKind = "unconsumed"
)

// AnomalyKinds lists every kind, in report order.
var AnomalyKinds = []AnomalyKind{Lost, Duplicate, InconsistentOffset, VanishedRead, NonMonotonic, OffsetSkip, CommitBackwards, Unconsumed, OutOfOrder,
	ProduceError, DivergentReplica, LostMetadata, DivergentImage, SplitBrain}

// Anomaly is one thing wrong, naming the records involved. Expected means
// the run's configuration does not promise otherwise (an acks=1 writer, a
// torn tail that destroyed acknowledged bytes on purpose); Why says which.
// Only unexpected anomalies fail a run.
type Anomaly struct {
	Kind      AnomalyKind `json:"kind"`
	Partition int32       `json:"p"`
	Detail    string      `json:"detail"`
	// Values are the records involved ("<writer>-<seq>").
	Values   []string `json:"values,omitempty"`
	Expected bool     `json:"expected,omitempty"`
	Why      string   `json:"why,omitempty"`
}

func (a Anomaly) String() string {
	s := fmt.Sprintf("%s p%d: %s", a.Kind, a.Partition, a.Detail)
	if a.Partition < 0 { // a metadata anomaly: no partition of the data topic
		s = fmt.Sprintf("%s: %s", a.Kind, a.Detail)
	}
	if a.Expected {
		s += " (expected: " + a.Why + ")"
	}
	return s
}

// pos is a partition and offset.
type pos struct {
	p int32
	o int64
}

func (p pos) String() string { return fmt.Sprintf("p%d@%d", p.p, p.o) }

// checker holds the indexes the checks share.
type checker struct {
	h       *History
	writers map[string]Writer
	byValue map[string]Write // every write, by its unique value
	out     []Anomaly
}

// Check finds every anomaly in a history. It is a pure function of it.
func Check(h History) []Anomaly {
	c := &checker{h: &h, writers: map[string]Writer{}, byValue: map[string]Write{}}
	for _, w := range h.Writers {
		c.writers[w.ID] = w
	}
	for _, w := range h.Writes {
		c.byValue[w.Value] = w
	}
	c.checkOffsets()
	c.checkDuplicates()
	c.checkLost()
	c.checkVanished()
	c.checkOrder()
	c.checkConsumers()
	c.checkCommits()
	c.checkUnconsumed()
	c.checkProduceErrors()
	c.checkReplicas()
	c.checkReplicaBatches()
	c.checkMetadata()
	c.checkLeaders()
	sort.SliceStable(c.out, func(i, j int) bool {
		if c.out[i].Kind != c.out[j].Kind {
			return kindIndex(c.out[i].Kind) < kindIndex(c.out[j].Kind)
		}
		return c.out[i].Partition < c.out[j].Partition
	})
	return c.out
}

func kindIndex(k AnomalyKind) int {
	for i, x := range AnomalyKinds {
		if x == k {
			return i
		}
	}
	return len(AnomalyKinds)
}

func (c *checker) add(a Anomaly) { c.out = append(c.out, a) }

// tornBefore returns the torn-tail fault that destroyed position p for an
// observation made at time t, before the node came back, if any. A torn-acked
// fault destroys observed records on purpose; a plain torn tail tears only
// after the last offset observed when the node was down, but an
// acknowledgement or a fetched record can reach a client after the kill,
// so it may have taken one too. Either way the records from FromOffset on
// are gone because the battery cut them, not because the broker lost them,
// and their offsets are reused after the restart.
func (c *checker) tornBefore(p pos, t Dur) *Fault {
	for i := range c.h.Faults {
		f := &c.h.Faults[i]
		if f.Torn != nil && f.Torn.Partition == p.p && f.Torn.FromOffset >= 0 &&
			p.o >= f.Torn.FromOffset && t <= f.End {
			return f
		}
	}
	return nil
}

// tornBetween returns a torn-tail fault of partition p that started in
// (from, to] and took records a client had observed: a consumer's position
// or a committed offset may move arbitrarily across it.
func (c *checker) tornBetween(p int32, from, to Dur) *Fault {
	for i := range c.h.Faults {
		f := &c.h.Faults[i]
		if f.Torn != nil && f.Torn.Partition == p && f.Start > from && f.Start <= to && c.tookObserved(f) {
			return f
		}
	}
	return nil
}

// tookObserved reports whether a torn-tail fault destroyed a record that a
// client had seen acknowledged or read before the node came back.
func (c *checker) tookObserved(f *Fault) bool {
	t := f.Torn
	if t.FromOffset < 0 {
		return false
	}
	if t.Acked {
		return true
	}
	for _, w := range c.h.Writes {
		if w.OK() && w.Partition == t.Partition && w.Offset >= t.FromOffset && w.Complete <= f.End {
			return true
		}
	}
	for _, pl := range c.h.Polls {
		if pl.Partition == t.Partition && pl.Time <= f.End {
			for _, r := range pl.Records {
				if r.Offset >= t.FromOffset {
					return true
				}
			}
		}
	}
	return false
}

func tornWhy(f *Fault) string {
	what := "a torn tail (bytes observed by a client after the kill)"
	if f.Torn.Acked {
		what = "the torn-acked fault"
	}
	return fmt.Sprintf("%s at %v destroyed p%d from offset %d", what, f.Start.Round(1e6), f.Torn.Partition, f.Torn.FromOffset)
}

// obs is one observation of a value at a position.
type obs struct {
	value string
	t     Dur
	what  string // "ack by w1", "poll by c1", "final read of node 1"
	// weak: an acknowledgement to a writer whose losses are allowed (an
	// acks=1 record lost in a failover leaves its offset to another).
	weak bool
}

// finalAt indexes each node's final read by position.
func (c *checker) finalAt() map[int]map[pos]string {
	m := map[int]map[pos]string{}
	for _, r := range c.h.Final {
		if m[r.Node] == nil {
			m[r.Node] = map[pos]string{}
		}
		m[r.Node][pos{r.Partition, r.Offset}] = r.Value
	}
	return m
}

// checkOffsets: every source that names a position (acks, polls, each node's
// final read) must name the same value there.
func (c *checker) checkOffsets() {
	seen := map[pos][]obs{}
	var order []pos
	note := func(p pos, o obs) {
		if _, ok := seen[p]; !ok {
			order = append(order, p)
		}
		seen[p] = append(seen[p], o)
	}
	for _, w := range c.h.Writes {
		if w.OK() {
			note(pos{w.Partition, w.Offset}, obs{w.Value, w.Complete, "ack to " + w.Writer, !c.writers[w.Writer].Promised()})
		}
	}
	for _, pl := range c.h.Polls {
		for _, r := range pl.Records {
			note(pos{pl.Partition, r.Offset}, obs{r.Value, pl.Time, "poll by " + pl.Consumer, false})
		}
	}
	for _, r := range c.h.Final {
		note(pos{r.Partition, r.Offset}, obs{r.Value, c.h.End + 1, fmt.Sprintf("final read of node %d", r.Node), false})
	}
	for _, p := range order {
		os := seen[p]
		var values, strong, detail []string
		var weakBy string
		for _, o := range os {
			if !contains(values, o.value) {
				values = append(values, o.value)
				detail = append(detail, fmt.Sprintf("%q (%s at %v)", o.value, o.what, o.t.Round(1e6)))
			}
			if o.weak {
				weakBy = o.what
			} else if !contains(strong, o.value) {
				strong = append(strong, o.value)
			}
		}
		if len(values) < 2 {
			continue
		}
		a := Anomaly{Kind: InconsistentOffset, Partition: p.p,
			Detail: fmt.Sprintf("%v holds %s", p, strings.Join(detail, " and ")), Values: values}
		earliest := os[0].t
		for _, o := range os {
			earliest = min(earliest, o.t)
		}
		if f := c.tornBefore(p, earliest); f != nil {
			// The position was destroyed by a torn tail after it was
			// first seen, and reused.
			a.Expected, a.Why = true, tornWhy(f)
		} else if len(strong) <= 1 {
			// Only an acks=1 acknowledgement disagrees.
			a.Expected, a.Why = true, weakBy+", whose writer's records may be lost and their offsets reused"
		}
		c.add(a)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// checkDuplicates: a value read (by a consumer or a final read) at two
// different positions was stored twice. It is expected when all its
// positions but one were destroyed by a torn tail before they were read
// again: a producer whose acknowledgement the kill swallowed sends the
// record again, and the copy a consumer saw is gone.
func (c *checker) checkDuplicates() {
	type seen struct {
		p pos
		t Dur // first observation
	}
	at := map[string][]seen{}
	var order []string
	note := func(v string, p pos, t Dur) {
		ss, ok := at[v]
		if !ok {
			order = append(order, v)
		}
		for i, x := range ss {
			if x.p == p {
				ss[i].t = min(x.t, t)
				return
			}
		}
		at[v] = append(ss, seen{p, t})
	}
	for _, pl := range c.h.Polls {
		for _, r := range pl.Records {
			note(r.Value, pos{pl.Partition, r.Offset}, pl.Time)
		}
	}
	for _, r := range c.h.Final {
		note(r.Value, pos{r.Partition, r.Offset}, c.h.End+1)
	}
	for _, v := range order {
		ss := at[v]
		if len(ss) < 2 {
			continue
		}
		ps := make([]pos, len(ss))
		live := 0
		var torn *Fault
		for i, x := range ss {
			ps[i] = x.p
			if f := c.tornBefore(x.p, x.t); f != nil {
				torn = f
			} else {
				live++
			}
		}
		a := Anomaly{Kind: Duplicate, Partition: ps[0].p, Detail: fmt.Sprintf("%q at %v", v, ps), Values: []string{v}}
		if w, ok := c.byValue[v]; ok && !c.writers[w.Writer].Idempotent {
			a.Expected, a.Why = true, fmt.Sprintf("writer %s is not idempotent (retries may store a batch twice)", w.Writer)
		} else if live <= 1 && torn != nil {
			a.Expected, a.Why = true, tornWhy(torn)+"; the producer sent it again"
		}
		c.add(a)
	}
}

// checkLost: every acknowledged value is in every node's final read.
func (c *checker) checkLost() {
	have := map[int]map[string]bool{}
	nodes := map[int]bool{}
	for _, e := range c.h.FinalEnds {
		nodes[e.Node] = true
	}
	for _, r := range c.h.Final {
		nodes[r.Node] = true
		if have[r.Node] == nil {
			have[r.Node] = map[string]bool{}
		}
		have[r.Node][r.Value] = true
	}
	nodeList := make([]int, 0, len(nodes))
	for n := range nodes {
		nodeList = append(nodeList, n)
	}
	sort.Ints(nodeList)
	for _, w := range c.h.Writes {
		if !w.OK() {
			continue
		}
		var missing []int
		for _, n := range nodeList {
			if !have[n][w.Value] {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 {
			continue
		}
		a := Anomaly{Kind: Lost, Partition: w.Partition,
			Detail: fmt.Sprintf("%q acknowledged at p%d@%d at %v, missing from the final read of nodes %v",
				w.Value, w.Partition, w.Offset, w.Complete.Round(1e6), missing), Values: []string{w.Value}}
		if f := c.tornBefore(pos{w.Partition, w.Offset}, w.Complete); f != nil {
			a.Expected, a.Why = true, tornWhy(f)
		} else if wr := c.writers[w.Writer]; !wr.Promised() {
			a.Expected, a.Why = true, fmt.Sprintf("writer %s has acks=%d", w.Writer, wr.Acks)
		}
		c.add(a)
	}
}

// checkVanished: every offset a consumer read is still there in the final
// read (its value is checkOffsets' business).
func (c *checker) checkVanished() {
	final := c.finalAt()
	starts := map[int]map[int32]int64{}
	for _, e := range c.h.FinalEnds {
		if starts[e.Node] == nil {
			starts[e.Node] = map[int32]int64{}
		}
		starts[e.Node][e.Partition] = e.Start
	}
	for _, pl := range c.h.Polls {
		for _, r := range pl.Records {
			p := pos{pl.Partition, r.Offset}
			var gone []int
			for n, at := range final {
				if _, ok := at[p]; !ok && r.Offset >= starts[n][p.p] {
					gone = append(gone, n)
				}
			}
			if len(gone) == 0 {
				continue
			}
			sort.Ints(gone)
			a := Anomaly{Kind: VanishedRead, Partition: p.p,
				Detail: fmt.Sprintf("%s read %q at %v at %v; the final read of nodes %v has nothing there",
					pl.Consumer, r.Value, p, pl.Time.Round(1e6), gone)}
			if f := c.tornBefore(p, pl.Time); f != nil {
				a.Expected, a.Why = true, tornWhy(f)
			}
			c.add(a)
		}
	}
}

// checkOrder: in each node's final read, each writer's records in a
// partition appear in the order it produced them.
func (c *checker) checkOrder() {
	type key struct {
		node   int
		p      int32
		writer string
	}
	reads := append([]Read(nil), c.h.Final...)
	sort.SliceStable(reads, func(i, j int) bool {
		if reads[i].Node != reads[j].Node {
			return reads[i].Node < reads[j].Node
		}
		if reads[i].Partition != reads[j].Partition {
			return reads[i].Partition < reads[j].Partition
		}
		return reads[i].Offset < reads[j].Offset
	})
	// The second copy of a duplicate is reported as a Duplicate, not also
	// as out of order.
	copies := map[Read]int{}
	for _, r := range reads {
		copies[Read{Node: r.Node, Record: Record{Value: r.Value}}]++
	}
	last := map[key]Read{}
	for _, r := range reads {
		w, ok := c.byValue[r.Value]
		if !ok || copies[Read{Node: r.Node, Record: Record{Value: r.Value}}] > 1 {
			continue
		}
		k := key{r.Node, r.Partition, w.Writer}
		prev, had := last[k]
		last[k] = r
		if !had {
			continue
		}
		pw := c.byValue[prev.Value]
		if w.Seq >= pw.Seq { // equal: one record twice, a Duplicate
			continue
		}
		a := Anomaly{Kind: OutOfOrder, Partition: r.Partition,
			Detail: fmt.Sprintf("node %d: %q (seq %d) at p%d@%d after %q (seq %d) at @%d",
				r.Node, r.Value, w.Seq, r.Partition, r.Offset, prev.Value, pw.Seq, prev.Offset)}
		if wr := c.writers[w.Writer]; !wr.Idempotent {
			a.Expected, a.Why = true, fmt.Sprintf("writer %s is not idempotent (a retried batch may land after a later one)", w.Writer)
		} else if f := c.tornBefore(pos{r.Partition, min(r.Offset, prev.Offset)}, w.Complete); f != nil {
			a.Expected, a.Why = true, tornWhy(f)
		}
		c.add(a)
	}
}
