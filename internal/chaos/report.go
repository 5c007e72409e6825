package chaos

import (
	"fmt"
	"strings"
	"time"
)

// FaultStats are the numbers of one fault kind over a run (or several).
type FaultStats struct {
	Kind    FaultKind
	Runs    int   // faults of this kind injected
	Failed  int   // of which the nemesis could not carry out
	Outages []Dur // the outage laid to each
	// PartitionOutages are the longest outage of one partition laid to
	// each.
	PartitionOutages []Dur
	// MetaOutages are the topic-creation outage laid to each (a cluster
	// run's metadata workload; empty without one).
	MetaOutages []Dur
}

// Stats groups a history's faults by kind, in the order kinds first appear.
func Stats(h History, av Availability) []FaultStats {
	var out []FaultStats
	idx := map[FaultKind]int{}
	for i, f := range h.Faults {
		j, ok := idx[f.Kind]
		if !ok {
			j = len(out)
			idx[f.Kind] = j
			out = append(out, FaultStats{Kind: f.Kind})
		}
		out[j].Runs++
		if f.Err != "" {
			out[j].Failed++
		}
		if i < len(av.FaultOutage) {
			out[j].Outages = append(out[j].Outages, av.FaultOutage[i])
		}
		if i < len(av.FaultPartitionOutage) {
			out[j].PartitionOutages = append(out[j].PartitionOutages, av.FaultPartitionOutage[i])
		}
		if len(h.MetaOps) > 0 && i < len(av.FaultMetaOutage) {
			out[j].MetaOutages = append(out[j].MetaOutages, av.FaultMetaOutage[i])
		}
	}
	return out
}

// Report is the run's text summary: faults, operations, anomalies by kind,
// outages, and PASS or FAIL.
func (r *Result) Report() string {
	h, av := r.History, r.Availability
	var b strings.Builder
	c := r.Config
	fmt.Fprintf(&b, "Vltava fault battery: seed %d, %d node(s), %v workload, faults %v, flush.messages=%d\n",
		h.Seed, h.Nodes, c.Duration, c.Faults, h.FlushMessages)
	if h.Nodes > 1 {
		fmt.Fprintf(&b, "%d of the %d nodes were registered brokers when the workload's topic was created (its partitions live on those)\n", h.Brokers, h.Nodes)
	}
	if h.Replication > 1 {
		isr := "the broker's default"
		if h.MinInsync > 0 {
			isr = fmt.Sprint(h.MinInsync)
		}
		fmt.Fprintf(&b, "the workload's topic: replication factor %d, min.insync.replicas %s\n", h.Replication, isr)
	}
	if c.Command != "" {
		fmt.Fprintf(&b, "replay: %s\n", c.Command)
	}
	fmt.Fprintf(&b, "took %v; report, history.json and run.svg in %s\n\n", r.Elapsed.Round(time.Second), c.OutDir)

	fmt.Fprintf(&b, "faults injected: %d\n", len(h.Faults))
	for _, f := range h.Faults {
		fmt.Fprintf(&b, "  %8v +%-7v %-10s nodes %v %s", f.Start.Round(time.Millisecond), (f.End - f.Start).Round(time.Millisecond), f.Kind, f.Nodes, f.Detail)
		if f.Err != "" {
			fmt.Fprintf(&b, " FAILED: %s", f.Err)
		}
		b.WriteByte('\n')
	}

	fmt.Fprintf(&b, "\noperations:\n")
	for _, w := range h.Writers {
		ok, failed := 0, 0
		for _, x := range h.Writes {
			if x.Writer == w.ID {
				if x.OK() {
					ok++
				} else {
					failed++
				}
			}
		}
		fmt.Fprintf(&b, "  writer %-3s acks=%-2d idempotent=%-5v %6d acknowledged %5d failed or unknown\n", w.ID, w.Acks, w.Idempotent, ok, failed)
	}
	polled, commitsOK, commitsFailed := 0, 0, 0
	for _, p := range h.Polls {
		polled += len(p.Records)
	}
	for _, cm := range h.Commits {
		if cm.Err == "" {
			commitsOK++
		} else {
			commitsFailed++
		}
	}
	fmt.Fprintf(&b, "  consumers: %d records polled, %d assignment changes, %d commits ok, %d failed\n",
		polled, len(h.Assigns), commitsOK, commitsFailed)
	b.WriteString(produceErrors(h))
	perNode := map[int]int{}
	for _, rd := range h.Final {
		perNode[rd.Node]++
	}
	for _, e := range h.FinalEnds {
		if e.Partition == 0 {
			fmt.Fprintf(&b, "  final read of node %d: %d records\n", e.Node, perNode[e.Node])
		}
	}
	if h.Nodes > 1 {
		fmt.Fprintf(&b, "  (a client asking a node is sent on to each partition's leader: the final reads are of the leaders' copies)\n")
		copies := map[int][]string{}
		for _, l := range h.Replicas {
			s := fmt.Sprintf("p%d %d-%d", l.Partition, l.Start, l.End)
			if l.Err != "" {
				s += " (unreadable after: " + l.Err + ")"
			}
			copies[l.Node] = append(copies[l.Node], s)
		}
		for _, id := range sortedKeys(copies) {
			fmt.Fprintf(&b, "  copies on node %d's disk after the stop: %s\n", id, strings.Join(copies[id], ", "))
		}
	}

	if len(h.MetaOps) > 0 {
		b.WriteString(metaSummary(h))
	}

	fmt.Fprintf(&b, "\nanomalies:\n")
	byKind := map[AnomalyKind][2]int{}
	for _, a := range r.Anomalies {
		n := byKind[a.Kind]
		if a.Expected {
			n[1]++
		} else {
			n[0]++
		}
		byKind[a.Kind] = n
	}
	for _, k := range AnomalyKinds {
		if h.Nodes <= 1 && (k == DivergentReplica || k == LostMetadata || k == DivergentImage || k == SplitBrain) {
			continue
		}
		n := byKind[k]
		fmt.Fprintf(&b, "  %-20s %5d unexpected %5d expected\n", k, n[0], n[1])
	}
	shown := map[AnomalyKind]int{}
	for _, a := range r.Anomalies {
		if shown[a.Kind]++; shown[a.Kind] <= 10 {
			fmt.Fprintf(&b, "    %s\n", a)
		} else if shown[a.Kind] == 11 {
			fmt.Fprintf(&b, "    ... (all in history.json; `vltava-chaos check` lists them)\n")
		}
	}

	var outs []Dur
	for _, o := range av.Outages {
		outs = append(outs, o.Len())
	}
	med, mx := medianMax(outs)
	fmt.Fprintf(&b, "\noutages (no write acknowledged for over %v): %d, median %v, max %v\n", OutageMin, len(outs), med.Round(time.Millisecond), mx.Round(time.Millisecond))
	for _, o := range av.Outages {
		cause := "no fault"
		if o.Fault >= 0 {
			cause = string(h.Faults[o.Fault].Kind)
		}
		fmt.Fprintf(&b, "  %8v to %8v  %8v  %s\n", o.Start.Round(time.Millisecond), o.End.Round(time.Millisecond), o.Len().Round(time.Millisecond), cause)
	}
	if len(h.MetaOps) > 0 {
		var mo []Dur
		for _, o := range av.MetaOutages {
			mo = append(mo, o.Len())
		}
		med, mx := medianMax(mo)
		fmt.Fprintf(&b, "\ntopic-creation outages (none acknowledged for over %v): %d, median %v, max %v\n", MetaOutageMin, len(mo), med.Round(time.Millisecond), mx.Round(time.Millisecond))
		for _, o := range av.MetaOutages {
			cause := "no fault"
			if o.Fault >= 0 {
				cause = string(h.Faults[o.Fault].Kind)
			}
			fmt.Fprintf(&b, "  %8v to %8v  %8v  %s\n", o.Start.Round(time.Millisecond), o.End.Round(time.Millisecond), o.Len().Round(time.Millisecond), cause)
		}
	}
	fmt.Fprintf(&b, "\nper fault kind (a partition's outage: the longest stretch one partition went without an acknowledged write):\n  %-12s %5s %8s %12s %12s %14s %14s\n",
		"kind", "runs", "failed", "outage med", "outage max", "partition med", "partition max")
	for _, s := range Stats(h, av) {
		m, x := medianMax(s.Outages)
		pm, px := medianMax(s.PartitionOutages)
		fmt.Fprintf(&b, "  %-12s %5d %8d %12v %12v %14v %14v\n", s.Kind, s.Runs, s.Failed, m.Round(time.Millisecond), x.Round(time.Millisecond),
			pm.Round(time.Millisecond), px.Round(time.Millisecond))
	}

	if len(r.Notes) > 0 {
		fmt.Fprintf(&b, "\nnotes (the run itself):\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "  %s\n", n)
		}
	}
	if u := len(r.Unexpected()); u > 0 {
		fmt.Fprintf(&b, "\nFAIL: %d anomalies the configuration promises cannot happen\n", u)
	} else {
		fmt.Fprintf(&b, "\nPASS: no anomaly the configuration promises cannot happen\n")
	}
	return b.String()
}

// KindSummary sums the runs that injected one fault kind: the numbers
// docs/ keeps. A run that mixed kinds counts under each of them.
type KindSummary struct {
	Kind                 FaultKind
	Runs, Faults, Failed int
	Writes, Acked        int // writes attempted, acknowledged
	Polled               int // records the consumers received
	Unexpected, Expected int // anomalies
	Outages              []Dur
	PartitionOutages     []Dur // the longest outage of one partition laid to each fault
	// TopicOps and TopicAcked count the metadata workload's creations and
	// deletions, attempted and acknowledged; MetaOutages are the
	// topic-creation outages laid to the faults.
	TopicOps, TopicAcked int
	MetaOutages          []Dur
}

// Summarize groups histories by the fault kinds they injected.
func Summarize(hs []History) []KindSummary {
	var out []KindSummary
	idx := map[FaultKind]int{}
	for _, h := range hs {
		av := Measure(h, OutageMin)
		as := Check(h)
		acked, polled := 0, 0
		for _, w := range h.Writes {
			if w.OK() {
				acked++
			}
		}
		for _, p := range h.Polls {
			polled += len(p.Records)
		}
		topicAcked := 0
		for _, op := range h.MetaOps {
			if op.OK() {
				topicAcked++
			}
		}
		for _, st := range Stats(h, av) {
			j, ok := idx[st.Kind]
			if !ok {
				j = len(out)
				idx[st.Kind] = j
				out = append(out, KindSummary{Kind: st.Kind})
			}
			s := &out[j]
			s.Runs++
			s.Faults += st.Runs
			s.Failed += st.Failed
			s.Writes += len(h.Writes)
			s.Acked += acked
			s.Polled += polled
			s.Outages = append(s.Outages, st.Outages...)
			s.PartitionOutages = append(s.PartitionOutages, st.PartitionOutages...)
			s.TopicOps += len(h.MetaOps)
			s.TopicAcked += topicAcked
			s.MetaOutages = append(s.MetaOutages, st.MetaOutages...)
			for _, a := range as {
				if a.Expected {
					s.Expected++
				} else {
					s.Unexpected++
				}
			}
		}
	}
	return out
}

// SummaryTable is Summarize as a Markdown table; with a metadata workload
// (cluster runs) it adds the topic changes and the topic-creation outages.
func SummaryTable(ss []KindSummary) string {
	var b strings.Builder
	meta := false
	for _, s := range ss {
		meta = meta || s.TopicOps > 0
	}
	if meta {
		b.WriteString("| fault | runs | faults (failed) | writes (acknowledged) | records polled | topic changes (acknowledged) | anomalies unexpected / expected | outage median | outage max | partition outage median | max | topic-creation outage median | max |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range ss {
			m, x := medianMax(s.Outages)
			pm, px := medianMax(s.PartitionOutages)
			mm, mx := medianMax(s.MetaOutages)
			fmt.Fprintf(&b, "| %s | %d | %d (%d) | %d (%d) | %d | %d (%d) | %d / %d | %v | %v | %v | %v | %v | %v |\n", s.Kind, s.Runs, s.Faults, s.Failed,
				s.Writes, s.Acked, s.Polled, s.TopicOps, s.TopicAcked, s.Unexpected, s.Expected,
				m.Round(10*time.Millisecond), x.Round(10*time.Millisecond), pm.Round(10*time.Millisecond), px.Round(10*time.Millisecond),
				mm.Round(10*time.Millisecond), mx.Round(10*time.Millisecond))
		}
		return b.String()
	}
	b.WriteString("| fault | runs | faults (failed) | writes (acknowledged) | records polled | anomalies unexpected / expected | outage median | outage max |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, s := range ss {
		m, x := medianMax(s.Outages)
		fmt.Fprintf(&b, "| %s | %d | %d (%d) | %d (%d) | %d | %d / %d | %v | %v |\n", s.Kind, s.Runs, s.Faults, s.Failed,
			s.Writes, s.Acked, s.Polled, s.Unexpected, s.Expected, m.Round(10*time.Millisecond), x.Round(10*time.Millisecond))
	}
	return b.String()
}

// metaSummary is the metadata workload's part of the operations: changes
// acknowledged and failed, the nodes' views after the heal, and the quorum's
// leaders by epoch.
func metaSummary(h History) string {
	var b strings.Builder
	n := map[string][2]int{}
	for _, op := range h.MetaOps {
		c := n[op.Op]
		if op.OK() {
			c[0]++
		} else {
			c[1]++
		}
		n[op.Op] = c
	}
	fmt.Fprintf(&b, "  topics: %d creations acknowledged, %d failed or unknown; %d deletions acknowledged, %d failed or unknown\n",
		n["create"][0], n["create"][1], n["delete"][0], n["delete"][1])
	per := map[int]int{}
	for _, v := range h.MetaViews {
		per[v.Node]++
	}
	for _, id := range h.MetaViewNodes {
		fmt.Fprintf(&b, "  metadata of node %d after the heal: %d of the workload's topics\n", id, per[id])
	}
	leaders := map[int64]map[int]bool{}
	for _, l := range h.Leaders {
		if leaders[l.Epoch] == nil {
			leaders[l.Epoch] = map[int]bool{}
		}
		leaders[l.Epoch][l.Leader] = true
	}
	var parts []string
	for _, e := range sortedKeys(leaders) {
		parts = append(parts, fmt.Sprintf("%d:%v", e, sortedKeys(leaders[e])))
	}
	fmt.Fprintf(&b, "  quorum leaders by epoch (epoch:[leader]): %s\n", strings.Join(parts, " "))
	return b.String()
}

// produceErrors lists the errors the writers' applications got, by writer
// and message, with the first and last time each was returned; the
// run's own stop (at or after End) fails what is still buffered, and is
// left out.
func produceErrors(h History) string {
	type key struct{ writer, err string }
	type seen struct {
		n           int
		first, last Dur
	}
	m := map[key]*seen{}
	var order []key
	for _, w := range h.Writes {
		if w.OK() || w.Complete >= h.End {
			continue
		}
		k := key{w.Writer, w.Err}
		s := m[k]
		if s == nil {
			s = &seen{first: w.Complete}
			m[k] = s
			order = append(order, k)
		}
		s.n++
		s.first, s.last = min(s.first, w.Complete), max(s.last, w.Complete)
	}
	var b strings.Builder
	for _, k := range order {
		s := m[k]
		fmt.Fprintf(&b, "  writer %s got %d errors (%v to %v): %s\n", k.writer, s.n, s.first.Round(time.Millisecond), s.last.Round(time.Millisecond), k.err)
	}
	return b.String()
}
