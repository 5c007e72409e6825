package metadata

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// localString renders LocalChanges as "L t-0* | F t-1 | C t-2 | D t-3" (* = elected).
func localString(lc LocalChanges) string {
	var parts []string
	for _, l := range lc.Leaders {
		s := fmt.Sprintf("L %s-%d", l.Topic, l.Partition)
		if l.Elected {
			s += "*"
		}
		parts = append(parts, s)
	}
	for _, f := range lc.Followers {
		parts = append(parts, fmt.Sprintf("F %s-%d", f.Topic, f.Partition))
	}
	for _, c := range lc.Close {
		parts = append(parts, fmt.Sprintf("C %s-%d", c.Topic, c.Partition))
	}
	for _, d := range lc.Delete {
		parts = append(parts, fmt.Sprintf("D %s-%d", d.Topic, d.Partition))
	}
	return strings.Join(parts, " | ")
}

// TestForNode walks one node (2) through a topic's life: what each change asks of it.
func TestForNode(t *testing.T) {
	const node = 2
	id := uuid.UUID{1}
	part := func(i int32, replicas, isr []int32, leader int32) *PartitionRecord {
		return &PartitionRecord{TopicID: id, Partition: i, Replicas: replicas, ISR: isr, Leader: leader}
	}
	epoch := func(im *Image, i int32) int32 { return im.Topic("t").Partition(i).PartitionEpoch }
	v := "1"
	steps := []struct {
		name string
		rs   func(im *Image) []Record
		want string
	}{
		{"create: a leader, a follower, a partition elsewhere", func(*Image) []Record {
			return []Record{&TopicRecord{Name: "t", ID: id},
				part(0, []int32{2, 1}, []int32{2, 1}, 2), part(1, []int32{1, 2}, []int32{1, 2}, 1), part(2, []int32{1, 3}, []int32{1, 3}, 1)}
		}, "L t-0* | F t-1"},
		{"a config changes nothing here", func(*Image) []Record {
			return []Record{&ConfigRecord{ResourceType: ResourceTopic, ResourceName: "t", Name: "k", Value: &v}}
		}, ""},
		{"the ISR of a partition it leads shrinks: an update, not an election", func(im *Image) []Record {
			return []Record{&PartitionChangeRecord{TopicID: id, Partition: 0, PartitionEpoch: epoch(im, 0), Set: SetISR, ISR: []int32{2}}}
		}, "L t-0"},
		{"the ISR of a partition it follows shrinks", func(im *Image) []Record {
			return []Record{&PartitionChangeRecord{TopicID: id, Partition: 1, PartitionEpoch: epoch(im, 1), Set: SetISR, ISR: []int32{1}}}
		}, "F t-1"},
		{"a change of a partition elsewhere", func(im *Image) []Record {
			return []Record{&PartitionChangeRecord{TopicID: id, Partition: 2, PartitionEpoch: epoch(im, 2), Set: SetLeader, Leader: 3}}
		}, ""},
		{"it becomes leader of the one it followed; leadership of the other moves away", func(im *Image) []Record {
			return []Record{
				&PartitionChangeRecord{TopicID: id, Partition: 1, PartitionEpoch: epoch(im, 1), Set: SetISR | SetLeader, ISR: []int32{1, 2}, Leader: 2},
				&PartitionChangeRecord{TopicID: id, Partition: 0, PartitionEpoch: epoch(im, 0), Set: SetISR | SetLeader, ISR: []int32{2, 1}, Leader: 1}}
		}, "L t-1* | F t-0"},
		{"the same leader with a new leader epoch is a new election", func(im *Image) []Record {
			return []Record{&PartitionChangeRecord{TopicID: id, Partition: 1, PartitionEpoch: epoch(im, 1), Set: SetLeader, Leader: 2}}
		}, "L t-1*"},
		{"no leader: it follows nobody, still hosting", func(im *Image) []Record {
			return []Record{&PartitionChangeRecord{TopicID: id, Partition: 1, PartitionEpoch: epoch(im, 1), Set: SetLeader | SetISR, Leader: NoLeader, ISR: []int32{}}}
		}, "F t-1"},
		{"reassigned away from it, and onto it", func(im *Image) []Record {
			return []Record{
				&PartitionChangeRecord{TopicID: id, Partition: 0, PartitionEpoch: epoch(im, 0), Set: SetReplicas | SetISR, Replicas: []int32{1, 3}, ISR: []int32{1}},
				&PartitionChangeRecord{TopicID: id, Partition: 2, PartitionEpoch: epoch(im, 2), Set: SetReplicas, Replicas: []int32{1, 3, 2}}}
		}, "F t-2 | C t-0"},
		{"a partition added on it", func(*Image) []Record { return []Record{part(3, []int32{3, 2}, []int32{3}, 3)} }, "F t-3"},
		{"the topic deleted and created again under its name", func(*Image) []Record {
			return []Record{&RemoveTopicRecord{ID: id}, &TopicRecord{Name: "t", ID: uuid.UUID{2}},
				&PartitionRecord{TopicID: uuid.UUID{2}, Replicas: []int32{2}, ISR: []int32{2}, Leader: 2}}
		}, "L t-0* | D t-1 | D t-2 | D t-3"},
	}
	im := Empty()
	for _, s := range steps {
		var d *Delta
		im, d = mustApply(t, im, s.rs(im)...)
		if got := localString(ForNode(d, im, node)); got != s.want {
			t.Fatalf("%s:\n got %q\nwant %q", s.name, got, s.want)
		}
	}
	// A node that hosts nothing of it is asked nothing.
	if _, d := mustApply(t, Empty(), steps[0].rs(Empty())...); localString(ForNode(d, im, 7)) != "" {
		t.Fatal("node 7 asked to host something")
	}
}

// TestMergeAndDiffAgree: over random histories, for every node, the merged deltas of a
// run of batches, the delta of the same records as one batch and the Diff of the images
// at either end ask the same of it.
func TestMergeAndDiffAgree(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		g := newGen(seed)
		im := Empty()
		for range 10 {
			im, _ = mustApply(t, im, g.batch(im)...)
		}
		start := im
		var merged *Delta
		var all []Record
		for range 1 + g.rng.IntN(8) {
			rs := g.batch(im)
			all = append(all, rs...)
			var d *Delta
			im, d = mustApply(t, im, rs...)
			if merged == nil {
				merged = d
			} else {
				var err error
				if merged, err = Merge(merged, d); err != nil {
					t.Fatal(err)
				}
			}
		}
		one, oneDelta := mustApply(t, start, all...)
		if err := imagesEqual(one.WithOffset(im.offset), im); err != nil {
			t.Fatalf("seed %d: one batch and many differ: %v", seed, err)
		}
		diff := Diff(start, im)
		if merged.From != start.offset || merged.To != im.offset || diff.From != merged.From || diff.To != merged.To {
			t.Fatalf("seed %d: offsets %+v-%+v, diff %+v-%+v", seed, merged.From, merged.To, diff.From, diff.To)
		}
		for node := int32(1); node <= genBrokers; node++ {
			m, o, df := ForNode(merged, im, node), ForNode(oneDelta, one, node), ForNode(diff, im, node)
			if !reflect.DeepEqual(m, o) || !reflect.DeepEqual(m, df) {
				t.Fatalf("seed %d node %d:\nmerged %s\n   one %s\n  diff %s", seed, node, localString(m), localString(o), localString(df))
			}
		}
		if len(merged.DeletedTopics(im)) != len(diff.DeletedTopics(im)) || len(merged.CreatedTopics(im)) != len(diff.CreatedTopics(im)) ||
			len(merged.BrokerChanges(im)) < len(diff.BrokerChanges(im)) {
			t.Fatalf("seed %d: merged and diff disagree on topics or brokers", seed)
		}
	}
	if _, err := Merge(&Delta{To: Offset{Index: 2}}, &Delta{From: Offset{Index: 3}}); err == nil {
		t.Fatal("merged deltas that do not meet")
	}
}

func TestDiffFromEmptyHostsEverything(t *testing.T) {
	im := testImage(t, 2, 3)
	d := Diff(Empty(), im)
	if !d.ClusterID || !d.ProducerIDs || len(d.Brokers) != 3 || len(d.Topics) != 2 || len(d.BrokerConfigs) != 2 || len(d.Features) != 1 {
		t.Fatalf("diff from empty: %+v", d)
	}
	// Partitions p have replicas [p%3+1, ...], led by the first: node 1 leads t-0 and
	// follows t-1 and t-2, of each topic.
	if got := localString(ForNode(d, im, 1)); got != "L topic-00000-0* | L topic-00001-0* | F topic-00000-1 | F topic-00000-2 | F topic-00001-1 | F topic-00001-2" {
		t.Fatalf("node 1 at start: %s", got)
	}
	if !Diff(im, im).Empty() {
		t.Fatal("an image differs from itself")
	}
}
