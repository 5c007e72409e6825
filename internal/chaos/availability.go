package chaos

import (
	"slices"
	"time"
)

// Bucket is one second of the run: writes acknowledged and failed in it,
// the latency of the acknowledged ones, and records the consumers polled.
type Bucket struct {
	Start         Dur `json:"start"`
	OK, Failed    int
	Polled        int
	P50, P99, Max Dur
}

// Outage is a stretch with no acknowledged write longer than the outage
// threshold; Fault is the index in History.Faults it is laid to (-1: none,
// the broker stalled by itself).
type Outage struct {
	Start, End Dur
	Fault      int
}

// Len is the outage's length.
func (o Outage) Len() Dur { return o.End - o.Start }

// Availability is what the run's clients could get done over time.
type Availability struct {
	Buckets []Bucket
	Outages []Outage
	// FaultOutage[i] is the total outage laid to History.Faults[i].
	FaultOutage []Dur
	// FaultPartitionOutage[i] is the longest stretch one partition went
	// without an acknowledged write laid to History.Faults[i]: on a
	// cluster a fault of one leader stops its partitions only, which the
	// run-wide outages do not show.
	FaultPartitionOutage []Dur
	// MetaOutages are the stretches longer than MetaOutageMin with no
	// topic creation acknowledged (a cluster run's metadata workload).
	MetaOutages []Outage
	// FaultMetaOutage[i] is the total topic-creation outage laid to
	// History.Faults[i].
	FaultMetaOutage []Dur
}

// MetaOutageMin is the shortest gap between acknowledged topic creations
// that counts as an outage of the metadata workload: it issues one change at
// a time, a few a second, a third of them deletions.
const MetaOutageMin = 3 * time.Second

// OutageMin is the default shortest gap between acknowledged writes that
// counts as an outage: the workload acknowledges tens of writes a second
// when the broker is up, so a second with none is the broker's doing.
const OutageMin = time.Second

// Measure computes availability from the writes: throughput and latency per
// second, and every gap between acknowledged writes longer than outageMin,
// each laid to the fault whose span (from its start to the next fault's
// start) it overlaps most. A gap begins at the last acknowledgement before
// it, so it usually starts just before the fault that caused it.
func Measure(h History, outageMin Dur) Availability {
	var av Availability
	n := int(h.End / time.Second) // whole seconds only: a last partial one would read as a drop
	av.Buckets = make([]Bucket, n)
	lat := make([][]Dur, n)
	var oks []Dur
	for _, w := range h.Writes {
		i := int(w.Complete / time.Second)
		if i < 0 || i >= n {
			continue
		}
		if w.OK() {
			av.Buckets[i].OK++
			lat[i] = append(lat[i], w.Complete-w.Invoke)
			oks = append(oks, w.Complete)
		} else {
			av.Buckets[i].Failed++
		}
	}
	for _, p := range h.Polls {
		if i := int(p.Time / time.Second); i >= 0 && i < n {
			av.Buckets[i].Polled += len(p.Records)
		}
	}
	for i := range av.Buckets {
		b := &av.Buckets[i]
		b.Start = Dur(i) * time.Second
		if l := lat[i]; len(l) > 0 {
			slices.Sort(l)
			b.P50, b.P99, b.Max = quantile(l, 0.5), quantile(l, 0.99), l[len(l)-1]
		}
	}
	av.Outages = outages(h, oks, outageMin)
	av.FaultOutage = make([]Dur, len(h.Faults))
	for _, o := range av.Outages {
		if o.Fault >= 0 {
			av.FaultOutage[o.Fault] += o.Len()
		}
	}
	av.FaultPartitionOutage = make([]Dur, len(h.Faults))
	byPart := map[int32][]Dur{}
	for _, w := range h.Writes {
		if w.OK() {
			byPart[w.Partition] = append(byPart[w.Partition], w.Complete)
		}
	}
	for _, ts := range byPart {
		for _, o := range outages(h, ts, outageMin) {
			if o.Fault >= 0 {
				av.FaultPartitionOutage[o.Fault] = max(av.FaultPartitionOutage[o.Fault], o.Len())
			}
		}
	}
	var creates []Dur
	for _, op := range h.MetaOps {
		if op.Op == "create" && op.OK() {
			creates = append(creates, op.Complete)
		}
	}
	av.FaultMetaOutage = make([]Dur, len(h.Faults))
	if len(h.MetaOps) > 0 {
		av.MetaOutages = outages(h, creates, MetaOutageMin)
		for _, o := range av.MetaOutages {
			if o.Fault >= 0 {
				av.FaultMetaOutage[o.Fault] += o.Len()
			}
		}
	}
	return av
}

// outages are the gaps longer than least between successes (times, in any
// order) and from the last to the end of the workload, each laid to the
// fault whose span (from its start to the next fault's start) it overlaps
// most.
func outages(h History, times []Dur, least Dur) []Outage {
	oks := slices.Clone(times)
	slices.Sort(oks)
	if len(oks) == 0 {
		return nil
	}
	var out []Outage
	gaps := func(s, e Dur) {
		if e-s <= least {
			return
		}
		o := Outage{Start: s, End: e, Fault: -1}
		var best Dur
		for i, f := range h.Faults {
			next := h.End
			if i+1 < len(h.Faults) {
				next = h.Faults[i+1].Start
			}
			if ov := min(o.End, next) - max(o.Start, f.Start); ov > best {
				o.Fault, best = i, ov
			}
		}
		out = append(out, o)
	}
	for i := 1; i < len(oks); i++ {
		gaps(oks[i-1], oks[i])
	}
	gaps(oks[len(oks)-1], h.End)
	return out
}

// quantile of sorted durations.
func quantile(sorted []Dur, q float64) Dur {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

// medianMax of durations (unsorted).
func medianMax(ds []Dur) (median, maximum Dur) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}
