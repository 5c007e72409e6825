package chaos

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// cleanMetaHistory is a clean data history with a clean metadata workload on
// 3 nodes: three acknowledged creations (one later deleted, acknowledged),
// a failed creation that did happen, a failed deletion that did not, every
// node's view agreeing, and one leader per epoch.
func cleanMetaHistory() History {
	h := cleanHistory()
	h.Nodes = 3
	h.MetaOps = []MetaOp{
		{Op: "create", Topic: "meta-0", Node: 1, Partitions: 1, TopicID: "A", Invoke: 10 * ms, Complete: 20 * ms},
		{Op: "create", Topic: "meta-1", Node: 2, Partitions: 3, TopicID: "B", Invoke: 30 * ms, Complete: 40 * ms},
		{Op: "create", Topic: "meta-2", Node: 3, Partitions: 2, TopicID: "C", Invoke: 50 * ms, Complete: 60 * ms},
		{Op: "delete", Topic: "meta-2", Node: 1, Invoke: 70 * ms, Complete: 80 * ms},
		{Op: "create", Topic: "meta-3", Node: 2, Partitions: 2, Invoke: 90 * ms, Complete: 100 * ms, Err: "timeout"},
		{Op: "delete", Topic: "meta-1", Node: 3, Invoke: 110 * ms, Complete: 120 * ms, Err: "NOT_CONTROLLER"},
	}
	h.MetaViewNodes = []int{1, 2, 3}
	for n := 1; n <= 3; n++ {
		h.MetaViews = append(h.MetaViews,
			TopicView{Node: n, Topic: "meta-0", TopicID: "A", Partitions: 1},
			TopicView{Node: n, Topic: "meta-1", TopicID: "B", Partitions: 3},
			TopicView{Node: n, Topic: "meta-3", TopicID: "D", Partitions: 2})
	}
	h.Leaders = []LeaderClaim{
		{Node: 1, Leader: 1, Epoch: 2, Time: 1 * ms, Source: "log"},
		{Node: 2, Leader: 2, Epoch: 3, Time: 50 * ms, Source: "log"},
		{Node: 3, Leader: 2, Epoch: 3, Time: 60 * ms, Source: "describe-quorum"},
	}
	return h
}

func TestCheckCleanMetaHistory(t *testing.T) {
	if as := Check(cleanMetaHistory()); len(as) != 0 {
		t.Fatalf("clean history: %v", as)
	}
}

// dropView removes topic's view on node.
func dropView(h *History, node int, topic string) {
	var out []TopicView
	for _, v := range h.MetaViews {
		if v.Node != node || v.Topic != topic {
			out = append(out, v)
		}
	}
	h.MetaViews = out
}

// TestCheckPlantedMetadata plants each metadata anomaly in a clean history
// and requires exactly that one, naming the topic or epoch involved.
func TestCheckPlantedMetadata(t *testing.T) {
	cases := []struct {
		name  string
		plant func(h *History)
		kind  AnomalyKind
		want  string // in the detail
	}{
		{"acknowledged creation missing on a node", func(h *History) { dropView(h, 2, "meta-0") }, LostMetadata, "meta-0 (id A, 1 partitions) acknowledged"},
		{"acknowledged deletion still on a node", func(h *History) {
			h.MetaViews = append(h.MetaViews, TopicView{Node: 3, Topic: "meta-2", TopicID: "C", Partitions: 2})
		}, LostMetadata, "deletion of meta-2 acknowledged, still on nodes [3]"},
		{"nodes disagree on a topic ID", func(h *History) {
			for i := range h.MetaViews {
				if h.MetaViews[i].Node == 3 && h.MetaViews[i].Topic == "meta-3" {
					h.MetaViews[i].TopicID = "E"
				}
			}
		}, DivergentImage, "node 3: id E"},
		{"nodes disagree on a partition count", func(h *History) {
			for i := range h.MetaViews {
				if h.MetaViews[i].Node == 1 && h.MetaViews[i].Topic == "meta-1" {
					h.MetaViews[i].Partitions = 4
				}
			}
		}, DivergentImage, "node 1: id B, 4 partitions"},
		{"all nodes differ from the acknowledged creation", func(h *History) {
			for i := range h.MetaViews {
				if h.MetaViews[i].Topic == "meta-0" {
					h.MetaViews[i].TopicID = "Z"
				}
			}
		}, DivergentImage, "acknowledged: id A"},
		{"an unacknowledged topic on some nodes only", func(h *History) { dropView(h, 1, "meta-3") }, DivergentImage, "node 1: absent"},
		{"two leaders in one epoch", func(h *History) {
			h.Leaders = append(h.Leaders, LeaderClaim{Node: 1, Leader: 1, Epoch: 3, Time: 55 * ms, Source: "log"})
		}, SplitBrain, "epoch 3 led by node 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := cleanMetaHistory()
			tc.plant(&h)
			as := Check(h)
			if len(as) != 1 || as[0].Kind != tc.kind || as[0].Expected || !strings.Contains(as[0].Detail, tc.want) {
				t.Fatalf("got %v, want exactly one unexpected %s naming %q", as, tc.kind, tc.want)
			}
		})
	}
}

// TestExpectedTopics: a topic with an unacknowledged deletion may or may not
// exist; an acknowledged deletion wins over the creation.
func TestExpectedTopics(t *testing.T) {
	got := expectedTopics(cleanMetaHistory().MetaOps)
	want := map[string]bool{"meta-0": true, "meta-2": false}
	if len(got) != len(want) || got["meta-0"] != true || got["meta-2"] != false {
		t.Fatalf("expectedTopics = %v, want %v", got, want)
	}
}

// TestLogLeaderClaims reads etcd raft's election lines from a node's log.
func TestLogLeaderClaims(t *testing.T) {
	path := t.TempDir() + "/node2.log"
	log := `=== run 1 at 2026-12-04T22:08:50.000Z: vltava server
time=2026-12-04T22:08:52.338Z level=INFO msg="raft: 2 became leader at term 2" node=2
time=2026-12-04T22:08:52.342Z level=INFO msg="registered broker" node.id=2 epoch=2
time=2026-12-04T22:09:05.835Z level=INFO msg="raft: 2 became leader at term 4" node=2
`
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	start, _ := time.Parse(time.RFC3339, "2026-12-04T22:08:50Z")
	got, err := logLeaderClaims(path, start)
	if err != nil {
		t.Fatal(err)
	}
	want := []LeaderClaim{{Node: 2, Leader: 2, Epoch: 2, Time: 2338 * ms, Source: "log"}, {Node: 2, Leader: 2, Epoch: 4, Time: 15835 * ms, Source: "log"}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// withReplicas gives a clean history two nodes' copies on disk, node 1
// holding all of both partitions and node 2 partition 0 and one offset
// past the high watermark (not yet acknowledged by all: no anomaly), in
// batches of two offsets.
func withReplicas(h History) History {
	h.Nodes = 2
	ends := map[int32]int64{}
	for _, e := range h.FinalEnds {
		ends[e.Partition] = e.End
	}
	for _, n := range []int{1, 2} {
		for p := range int32(2) {
			if n == 2 && p == 1 {
				continue
			}
			end := ends[p]
			for _, r := range h.Final {
				if r.Partition == p {
					h.ReplicaReads = append(h.ReplicaReads, Read{Node: n, Partition: p, Record: r.Record})
				}
			}
			if n == 2 {
				h.ReplicaReads = append(h.ReplicaReads, Read{Node: n, Partition: p, Record: Record{end, "w1-99"}})
				end++
			}
			h.Replicas = append(h.Replicas, ReplicaLog{Node: n, Partition: p, Start: 0, End: end})
			for base := int64(0); base < end; base += 2 {
				h.ReplicaBatches = append(h.ReplicaBatches, BatchSum{Node: n, Partition: p, Base: base,
					Last: min(base+1, end-1), Epoch: 1, CRC: uint32(1000*p) + uint32(base)})
			}
		}
	}
	return h
}

// TestCheckPlantedReplicas: a replica missing an offset below the high
// watermark, or holding another value there, is divergent-replica, and
// nothing else.
func TestCheckPlantedReplicas(t *testing.T) {
	if as := Check(withReplicas(cleanHistory())); len(as) != 0 {
		t.Fatalf("clean history with replicas: %v", as)
	}
	for _, tc := range []struct {
		name  string
		plant func(h *History)
		want  string
	}{
		{"an offset missing", func(h *History) {
			for i, r := range h.ReplicaReads {
				if r.Node == 2 && r.Partition == 0 && r.Offset == 3 {
					h.ReplicaReads = append(h.ReplicaReads[:i], h.ReplicaReads[i+1:]...)
					return
				}
			}
		}, "node 2's copy of p0 (offsets 0 to 20, high watermark 19) lacks 1 offsets [3] and holds 0 others"},
		{"another value", func(h *History) {
			for i, r := range h.ReplicaReads {
				if r.Node == 1 && r.Partition == 1 && r.Offset == 5 {
					h.ReplicaReads[i].Value = "w2-77"
				}
			}
		}, `node 1's copy of p1 (offsets 0 to 18, high watermark 18) lacks 0 offsets [] and holds 1 others otherwise [@5 "w2-77"`},
		{"a batch written otherwise", func(h *History) {
			for i, b := range h.ReplicaBatches {
				if b.Node == 2 && b.Partition == 0 && b.Base == 4 {
					h.ReplicaBatches[i].CRC++
				}
			}
		}, "node 2's copy of p0: 1 batches below the high watermark 19 differ from another copy's [@4: last 5 epoch 1 crc 00000005, node 1's last 5 epoch 1 crc 00000004]"},
		{"a batch of another leader epoch", func(h *History) {
			for i, b := range h.ReplicaBatches {
				if b.Node == 2 && b.Partition == 0 && b.Base == 6 {
					h.ReplicaBatches[i].Epoch = 2
				}
			}
		}, "@6: last 7 epoch 2"},
		{"batches cut otherwise", func(h *History) {
			// Node 2 holds offsets 8-11 as one batch.
			var keep []BatchSum
			for _, b := range h.ReplicaBatches {
				switch {
				case b.Node == 2 && b.Partition == 0 && b.Base == 8:
					b.Last = 11
				case b.Node == 2 && b.Partition == 0 && b.Base == 10:
					continue
				}
				keep = append(keep, b)
			}
			h.ReplicaBatches = keep
		}, "@8: last 11 epoch 1 crc 00000008, node 1's last 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := withReplicas(cleanHistory())
			tc.plant(&h)
			as := Check(h)
			if len(as) != 1 || as[0].Kind != DivergentReplica || as[0].Expected || !strings.Contains(as[0].Detail, tc.want) {
				t.Fatalf("got %v, want exactly one divergent-replica naming %q", as, tc.want)
			}
		})
	}
}
