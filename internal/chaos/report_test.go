package chaos

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// steadyHistory acknowledges a write every 100 ms for 20 s except from 5 s
// to 8 s (during a kill from 5 s to 7 s) and from 14 s to 15.5 s (no fault).
func steadyHistory() History {
	h := History{Seed: 3, Nodes: 1, Writers: []Writer{{"w1", -1, true}}, End: 20 * time.Second}
	h.Faults = []Fault{{Kind: Kill, Nodes: []int{1}, Start: 5 * time.Second, End: 7 * time.Second},
		{Kind: Pause, Nodes: []int{1}, Start: 10 * time.Second, End: 11 * time.Second}}
	seq := int64(0)
	for t := Dur(0); t < h.End; t += 100 * ms {
		if t > 5*time.Second && t < 8*time.Second || t > 14*time.Second && t < 15500*ms {
			continue
		}
		h.Writes = append(h.Writes, Write{Writer: "w1", Seq: seq, Value: "v", Invoke: t, Complete: t + 2*ms, Offset: seq})
		seq++
	}
	return h
}

func TestMeasureOutages(t *testing.T) {
	h := steadyHistory()
	av := Measure(h, OutageMin)
	if len(av.Outages) != 2 {
		t.Fatalf("outages %+v, want 2", av.Outages)
	}
	o := av.Outages[0]
	if o.Fault != 0 || o.Len() != 3*time.Second {
		t.Errorf("first outage %+v (%v), want 3s laid to the kill", o, o.Len())
	}
	if o := av.Outages[1]; o.Fault != 1 || o.Len() != 1500*ms {
		// The pause's span runs to the end of the run: the stall at 14 s
		// is laid to it, the last fault before it.
		t.Errorf("second outage %+v (%v), want 1.5s laid to the pause", o, o.Len())
	}
	if av.FaultOutage[0] != 3*time.Second {
		t.Errorf("kill's outage %v", av.FaultOutage[0])
	}
	if b := av.Buckets[2]; b.OK != 10 || b.P50 != 2*ms || b.Max != 2*ms {
		t.Errorf("bucket 2: %+v", b)
	}
	st := Stats(h, av)
	if len(st) != 2 || st[0].Kind != Kill || st[0].Runs != 1 || st[0].Outages[0] != 3*time.Second {
		t.Errorf("stats %+v", st)
	}
}

// TestMeasurePartitionOutages: one partition of two stops acknowledging
// during a leader's fault while the other goes on: no run-wide outage, and
// a partition outage laid to the fault.
func TestMeasurePartitionOutages(t *testing.T) {
	h := History{Seed: 4, Nodes: 3, Writers: []Writer{{"w1", -1, true}}, End: 20 * time.Second}
	h.Faults = []Fault{{Kind: LeaderKill, Nodes: []int{2}, Start: 5 * time.Second, End: 7 * time.Second}}
	seq := int64(0)
	for t := Dur(0); t < h.End; t += 100 * ms {
		for p := range int32(2) {
			if p == 1 && t > 5*time.Second && t < 9*time.Second {
				continue
			}
			h.Writes = append(h.Writes, Write{Writer: "w1", Seq: seq, Partition: p, Value: "v", Invoke: t, Complete: t + 2*ms, Offset: seq})
			seq++
		}
	}
	av := Measure(h, OutageMin)
	if len(av.Outages) != 0 || av.FaultOutage[0] != 0 {
		t.Errorf("run-wide outages %+v", av.Outages)
	}
	if av.FaultPartitionOutage[0] != 4*time.Second {
		t.Errorf("partition outage %v, want 4s", av.FaultPartitionOutage[0])
	}
	if st := Stats(h, av); len(st) != 1 || len(st[0].PartitionOutages) != 1 || st[0].PartitionOutages[0] != 4*time.Second {
		t.Errorf("stats %+v", st)
	}
}

// TestSVGIsWellFormed: the picture parses as XML and shades every fault.
func TestSVGIsWellFormed(t *testing.T) {
	h := steadyHistory()
	faults, outages, meta := svgRects(t, SVG(h, Measure(h, OutageMin)))
	if faults != 2 || outages != 2 || meta != 0 {
		t.Fatalf("%d fault windows, %d outages and %d topic-creation outages drawn, want 2, 2 and 0", faults, outages, meta)
	}
	// A cluster run's topic creations, none acknowledged from 4 s to 9 s.
	for at := Dur(0); at < h.End; at += 500 * ms {
		if at < 4*time.Second || at > 9*time.Second {
			h.MetaOps = append(h.MetaOps, MetaOp{Op: "create", Topic: fmt.Sprint(at), Invoke: at, Complete: at + ms})
		}
	}
	if _, _, meta := svgRects(t, SVG(h, Measure(h, OutageMin))); meta != 1 {
		t.Fatalf("%d topic-creation outages drawn, want 1", meta)
	}
}

// svgRects parses an SVG and counts its fault, outage and topic-creation
// outage rectangles.
func svgRects(t *testing.T, s string) (faults, outages, meta int) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG does not parse: %v\n%s", err, s)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			for _, a := range se.Attr {
				if a.Name.Local == "class" && a.Value == "fault" {
					faults++
				}
				if a.Name.Local == "class" && a.Value == "outage" {
					outages++
				}
				if a.Name.Local == "class" && a.Value == "meta-outage" {
					meta++
				}
			}
		}
	}
	return faults, outages, meta
}

// TestSummarize: per fault kind across runs, with a run that mixed kinds
// counted under each.
func TestSummarize(t *testing.T) {
	a := steadyHistory()
	b := steadyHistory()
	b.Faults = b.Faults[:1]
	ss := Summarize([]History{a, b})
	if len(ss) != 2 {
		t.Fatalf("%+v", ss)
	}
	k, p := ss[0], ss[1]
	if k.Kind != Kill || k.Runs != 2 || k.Faults != 2 || k.Acked != 2*len(a.Writes) || len(k.Outages) != 2 || k.Outages[0] != 3*time.Second {
		t.Errorf("kill: %+v", k)
	}
	if p.Kind != Pause || p.Runs != 1 || p.Unexpected != 0 {
		t.Errorf("pause: %+v", p)
	}
	if tb := SummaryTable(ss); !strings.Contains(tb, "| kill | 2 | 2 (0) |") || strings.Contains(tb, "topic") {
		t.Errorf("table:\n%s", tb)
	}
}

// TestSummarizeMetadata: a run with a metadata workload counts its topic
// changes and lays a gap in acknowledged creations to the fault under it.
func TestSummarizeMetadata(t *testing.T) {
	h := steadyHistory()
	h.Faults = h.Faults[:1] // the kill only
	f := h.Faults[0]
	for at := Dur(0); at < h.End; at += 500 * time.Millisecond {
		if at > f.Start-time.Second && at < f.End+time.Second {
			continue // no creation acknowledged around the fault
		}
		h.MetaOps = append(h.MetaOps, MetaOp{Op: "create", Topic: fmt.Sprintf("meta-%d", at), Invoke: at, Complete: at + 10*time.Millisecond})
	}
	h.MetaOps = append(h.MetaOps, MetaOp{Op: "create", Topic: "meta-x", Invoke: f.Start, Complete: f.End, Err: "timeout"})
	ss := Summarize([]History{h})
	if len(ss) != 1 || ss[0].TopicOps != len(h.MetaOps) || ss[0].TopicAcked != len(h.MetaOps)-1 || len(ss[0].MetaOutages) != 1 || ss[0].MetaOutages[0] <= MetaOutageMin {
		t.Fatalf("%+v", ss)
	}
	if tb := SummaryTable(ss); !strings.Contains(tb, "topic-creation outage") {
		t.Errorf("table:\n%s", tb)
	}
}
