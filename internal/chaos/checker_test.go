package chaos

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

const ms = time.Millisecond

// cleanHistory is a run with nothing wrong: two promised writers and an
// acks=1 one writing 12 records each over 2 partitions, a failed write that
// never landed and one that did, a consumer that read all of partition 0
// and partition 1 up to 3 records before its end, committing after each
// poll, and a kill fault in the middle.
func cleanHistory() History {
	h := History{Seed: 1, Topic: "t", Group: "g", Nodes: 1,
		Writers: []Writer{{"w1", -1, true}, {"w2", -1, true}, {"a1", 1, false}}}
	next := map[int32]int64{}
	var t Dur
	for seq := int64(0); seq < 12; seq++ {
		for _, w := range h.Writers {
			t += 10 * ms
			p := int32(seq % 2)
			v := fmt.Sprintf("%s-%d", w.ID, seq)
			h.Writes = append(h.Writes, Write{Writer: w.ID, Seq: seq, Partition: p, Value: v,
				Invoke: t, Complete: t + 5*ms, Offset: next[p]})
			h.Final = append(h.Final, Read{Node: 1, Partition: p, Record: Record{next[p], v}})
			next[p]++
		}
	}
	// Failed writes: one never stored, one stored though its ack was lost.
	t += 10 * ms
	h.Writes = append(h.Writes, Write{Writer: "w1", Seq: 12, Partition: 0, Value: "w1-12", Invoke: t, Complete: t + 5*ms, Offset: -1, Err: "timeout"})
	t += 10 * ms
	h.Writes = append(h.Writes, Write{Writer: "w2", Seq: 12, Partition: 0, Value: "w2-12", Invoke: t, Complete: t + 5*ms, Offset: -1, Err: "timeout"})
	h.Final = append(h.Final, Read{Node: 1, Partition: 0, Record: Record{next[0], "w2-12"}})
	next[0]++
	for p := range int32(2) {
		h.FinalEnds = append(h.FinalEnds, FinalEnd{Node: 1, Partition: p, Start: 0, End: next[p]})
	}
	h.Faults = []Fault{{Kind: Kill, Nodes: []int{1}, Start: 150 * ms, End: 200 * ms}}

	// The consumer: assigned both partitions, polls 4 records at a time.
	h.Assigns = []Assign{{Consumer: "c1", Time: 1 * ms, Assigned: true, Partitions: []int32{0, 1}}}
	pt := 400 * ms
	for p := range int32(2) {
		upTo := next[p]
		if p == 1 {
			upTo -= 3
		}
		var recs []Record
		for _, r := range h.Final {
			if r.Partition == p && r.Offset < upTo {
				recs = append(recs, r.Record)
			}
		}
		for len(recs) > 0 {
			n := min(4, len(recs))
			pt += 10 * ms
			h.Polls = append(h.Polls, Poll{Consumer: "c1", Time: pt, Partition: p, Records: slices.Clone(recs[:n])})
			h.Commits = append(h.Commits, Commit{Consumer: "c1", Partition: p, Offset: recs[n-1].Offset + 1, Invoke: pt + ms, Complete: pt + 2*ms})
			recs = recs[n:]
		}
	}
	for p := range int32(2) {
		var last int64
		for _, c := range h.Commits {
			if c.Partition == p {
				last = c.Offset
			}
		}
		h.Committed = append(h.Committed, Committed{Partition: p, Offset: last})
	}
	h.End = pt + 100*ms
	h.sort()
	return h
}

// finalIndex returns the index in h.Final of value v.
func finalIndex(t *testing.T, h *History, v string) int {
	for i, r := range h.Final {
		if r.Value == v {
			return i
		}
	}
	t.Fatalf("%s not in the final read", v)
	return -1
}

func TestCheckCleanHistory(t *testing.T) {
	if as := Check(cleanHistory()); len(as) != 0 {
		t.Fatalf("clean history: %v", as)
	}
}

// TestCheckPlanted plants each anomaly in a clean history and requires
// that the checker reports exactly that one, expected or not as planted.
func TestCheckPlanted(t *testing.T) {
	cases := []struct {
		name     string
		plant    func(t *testing.T, h *History)
		kind     AnomalyKind
		expected bool
	}{
		{"lost", func(t *testing.T, h *History) {
			// w1-11 is p1's last record, which no consumer read.
			i := finalIndex(t, h, "w1-11")
			h.Final = slices.Delete(h.Final, i, i+1)
		}, Lost, false},
		{"lost acks=1 is allowed", func(t *testing.T, h *History) {
			i := finalIndex(t, h, "a1-11")
			h.Final = slices.Delete(h.Final, i, i+1)
		}, Lost, true},
		{"lost to a torn-acked fault is expected", func(t *testing.T, h *History) {
			i := finalIndex(t, h, "w1-11")
			off := h.Final[i].Offset
			h.Final = slices.Delete(h.Final, i, i+1)
			h.Faults = append(h.Faults, Fault{Kind: TornAcked, Nodes: []int{1}, Start: 390 * ms, End: 395 * ms,
				Torn: &Torn{Node: 1, Partition: 1, FromOffset: off, Acked: true}})
		}, Lost, true},
		{"duplicate", func(t *testing.T, h *History) {
			r := h.Final[finalIndex(t, h, "w1-4")]
			r.Offset = 1000
			h.Final = append(h.Final, r)
		}, Duplicate, false},
		{"duplicate of a non-idempotent writer is allowed", func(t *testing.T, h *History) {
			r := h.Final[finalIndex(t, h, "a1-4")]
			r.Offset = 1000
			h.Final = append(h.Final, r)
		}, Duplicate, true},
		{"inconsistent offset", func(t *testing.T, h *History) {
			h.Polls[1].Records[2].Value = "stranger-1"
		}, InconsistentOffset, false},
		{"inconsistent offset across replicas", func(t *testing.T, h *History) {
			// Node 2 holds what node 1 does, except a stranger where node
			// 1 has w2-12 (whose ack was lost, so it is no loss).
			for _, r := range slices.Clone(h.Final) {
				r.Node = 2
				if r.Value == "w2-12" {
					r.Value = "stranger-2"
				}
				h.Final = append(h.Final, r)
			}
			for p := range int32(2) {
				e := h.FinalEnds[p]
				e.Node = 2
				h.FinalEnds = append(h.FinalEnds, e)
			}
		}, InconsistentOffset, false},
		{"inconsistent offset from an acks=1 ack is allowed", func(t *testing.T, h *History) {
			// a1-5 was acknowledged at w1-5's offset but stored at its own.
			for i := range h.Writes {
				if h.Writes[i].Value == "a1-5" {
					h.Writes[i].Offset = h.Final[finalIndex(t, h, "w1-5")].Offset
				}
			}
		}, InconsistentOffset, true},
		{"vanished read", func(t *testing.T, h *History) {
			// c1 read the last record of p0 and then one more, which the
			// final read does not have: w1-12, whose write failed.
			last := h.Polls[len(h.Polls)-1]
			for _, p := range h.Polls {
				if p.Partition == 0 {
					last = p
				}
			}
			o := last.Records[len(last.Records)-1].Offset + 1
			h.Polls = append(h.Polls, Poll{Consumer: "c1", Time: h.End - 10*ms, Partition: 0, Records: []Record{{o, "w1-12"}}})
		}, VanishedRead, false},
		{"non-monotonic", func(t *testing.T, h *History) {
			last := h.Polls[len(h.Polls)-1]
			r := last.Records[len(last.Records)-2]
			h.Polls = append(h.Polls, Poll{Consumer: "c1", Time: h.End - 10*ms, Partition: last.Partition, Records: []Record{r}})
		}, NonMonotonic, false},
		{"offset skip inside an assignment", func(t *testing.T, h *History) {
			// The skipped record is below the committed offset: the
			// group lost it.
			h.Polls[1].Records = slices.Delete(h.Polls[1].Records, 1, 2)
		}, OffsetSkip, false},
		{"offset skip at an assignment's start", func(t *testing.T, h *History) {
			// A second consumer takes p1 over after c1's last commit
			// and starts 2 past it.
			var lastC Commit
			for _, c := range h.Commits {
				if c.Partition == 1 {
					lastC = c
				}
			}
			h.Assigns = append(h.Assigns, Assign{Consumer: "c2", Time: h.End - 20*ms, Assigned: true, Partitions: []int32{1}})
			var r Record
			for _, f := range h.Final {
				if f.Partition == 1 && f.Offset == lastC.Offset+1 {
					r = f.Record
				}
			}
			h.Polls = append(h.Polls, Poll{Consumer: "c2", Time: h.End - 10*ms, Partition: 1, Records: []Record{r}})
		}, OffsetSkip, false},
		{"commit backwards", func(t *testing.T, h *History) {
			c := h.Commits[len(h.Commits)-1]
			c.Offset--
			c.Invoke, c.Complete = h.End-20*ms, h.End-10*ms
			h.Commits = append(h.Commits, c)
		}, CommitBackwards, false},
		{"committed offset lost after healing", func(t *testing.T, h *History) {
			h.Committed[0].Offset -= 4
		}, CommitBackwards, false},
		{"out of producer order", func(t *testing.T, h *History) {
			// w1-2 and w1-4 (both p0) trade offsets everywhere: each ack
			// and read agrees, but w1-4 comes first.
			a, b := finalIndex(t, h, "w1-2"), finalIndex(t, h, "w1-4")
			oa, ob := h.Final[a].Offset, h.Final[b].Offset
			swap := func(o *int64) {
				switch *o {
				case oa:
					*o = ob
				case ob:
					*o = oa
				}
			}
			for i := range h.Writes {
				if h.Writes[i].Value == "w1-2" || h.Writes[i].Value == "w1-4" {
					swap(&h.Writes[i].Offset)
				}
			}
			h.Final[a].Offset, h.Final[b].Offset = ob, oa
			for _, p := range h.Polls {
				for i, r := range p.Records {
					switch {
					case p.Partition == 0 && r.Offset == oa:
						p.Records[i].Value = "w1-4"
					case p.Partition == 0 && r.Offset == ob:
						p.Records[i].Value = "w1-2"
					}
				}
			}
		}, OutOfOrder, false},
		{"unconsumed: the committed offset passed a record no member received", func(t *testing.T, h *History) {
			// p1's last 3 records were never polled; the group's
			// offset after healing says they were.
			h.Committed[1].Offset += 2
		}, Unconsumed, false},
		{"produce error during a rolling restart", func(t *testing.T, h *History) {
			// w1-12 failed at 375 ms, inside the window; w2-12's
			// failure is moved before it.
			h.Faults = append(h.Faults, Fault{Kind: Rolling, Nodes: []int{1}, Start: 360 * ms, End: 380 * ms})
			for i := range h.Writes {
				if h.Writes[i].Value == "w2-12" {
					h.Writes[i].Invoke, h.Writes[i].Complete = 200*ms, 300*ms
				}
			}
		}, ProduceError, false},
		{"an acks=1 writer's error during a rolling restart is allowed", func(t *testing.T, h *History) {
			h.Faults = append(h.Faults, Fault{Kind: Rolling, Nodes: []int{1}, Start: 20 * ms, End: 60 * ms})
			for i := range h.Writes {
				if h.Writes[i].Value == "a1-1" {
					h.Writes[i].Err, h.Writes[i].Offset = "NOT_LEADER_FOR_PARTITION", -1
				}
			}
		}, ProduceError, true},
	}
	// also names a second anomaly a plant causes, reported after the first.
	also := map[string]AnomalyKind{"offset skip inside an assignment": Unconsumed}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := cleanHistory()
			tc.plant(t, &h)
			h.sort()
			as := Check(h)
			if k, ok := also[tc.name]; ok {
				if len(as) != 2 || as[1].Kind != k || as[1].Expected != tc.expected {
					t.Fatalf("want one %s and one %s, got %d: %v", tc.kind, k, len(as), as)
				}
				as = as[:1]
			}
			if len(as) != 1 {
				t.Fatalf("want exactly one %s, got %d: %v", tc.kind, len(as), as)
			}
			if as[0].Kind != tc.kind || as[0].Expected != tc.expected {
				t.Fatalf("want %s (expected %v), got %v", tc.kind, tc.expected, as[0])
			}
			t.Log(as[0])
		})
	}
}

// TestCheckDuplicateAcrossTornTail: a consumer read w1-12 at the end of p0;
// a torn tail then destroyed that offset and the producer, whose ack the
// kill swallowed, sent it again to the next offset. Both the duplicate and
// the vanished read are the tear's doing; without the tear both are
// violations.
func TestCheckDuplicateAcrossTornTail(t *testing.T) {
	build := func(torn bool) []Anomaly {
		h := cleanHistory()
		var end int64
		for _, e := range h.FinalEnds {
			if e.Partition == 0 {
				end = e.End
			}
		}
		h.Polls = append(h.Polls, Poll{Consumer: "c1", Time: h.End - 10*ms, Partition: 0, Records: []Record{{end, "w1-12"}}})
		h.Final = append(h.Final, Read{Node: 1, Partition: 0, Record: Record{end + 1, "w1-12"}})
		if torn {
			h.Faults = append(h.Faults, Fault{Kind: TornTail, Nodes: []int{1}, Start: h.End - 8*ms, End: h.End - 5*ms,
				Torn: &Torn{Node: 1, Partition: 0, FromOffset: end}})
		}
		h.sort()
		return Check(h)
	}
	got := map[AnomalyKind]bool{}
	for _, a := range build(true) {
		if !a.Expected {
			t.Errorf("with the tear: %v", a)
		}
		got[a.Kind] = true
	}
	if !got[Duplicate] || !got[VanishedRead] || len(got) != 2 {
		t.Errorf("with the tear: kinds %v, want duplicate and vanished-read", got)
	}
	unexpected := 0
	for _, a := range build(false) {
		if !a.Expected {
			unexpected++
		}
	}
	if unexpected != 2 {
		t.Errorf("without the tear: %d unexpected, want the duplicate and the vanished read", unexpected)
	}
}
