package metadata

// The image at the size issue 9 names: 100,000 partitions in 10,000 topics. How much
// memory it takes, and what applying a change to it costs.

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/google/uuid"
)

// bigImage is 10,000 topics of 10 partitions each with rf replicas out of 5 brokers
// (a single node's today: rf 1, every partition on node 1), and a config on every tenth
// topic.
func bigImage(t testing.TB, rf int) *Image {
	im := Empty()
	for id := int32(1); id <= 5; id++ {
		im, _ = mustApply(t, im, &RegisterBrokerRecord{BrokerID: id, BrokerEpoch: 1,
			Listeners: []Listener{{Name: "PLAINTEXT", Host: "broker.example.com", Port: 9092}}})
	}
	for i := range 10000 {
		id := topicID(i)
		name := fmt.Sprintf("service-%04d.events", i)
		rs := []Record{&TopicRecord{Name: name, ID: id}}
		for p := range int32(10) {
			r := make([]int32, rf)
			for k := range r {
				r[k] = (int32(i)+p+int32(k))%5 + 1
			}
			rs = append(rs, &PartitionRecord{TopicID: id, Partition: p, Replicas: r, ISR: r, Leader: r[0]})
		}
		if i%10 == 0 {
			v := "604800000"
			rs = append(rs, &ConfigRecord{ResourceType: ResourceTopic, ResourceName: name, Name: "retention.ms", Value: &v})
		}
		im, _ = mustApply(t, im, rs...)
	}
	return im
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// imageBytes is the heap an image holds (nothing else is allocated meanwhile).
func imageBytes(t testing.TB, rf int) (uint64, *Image) {
	before := heapInUse()
	im := bigImage(t, rf)
	after := heapInUse()
	runtime.KeepAlive(im)
	return after - before, im
}

// TestImageMemoryAt100kPartitions measures the image and bounds it, so a change that
// makes it much bigger fails here.
func TestImageMemoryAt100kPartitions(t *testing.T) {
	for _, rf := range []int{1, 3} {
		n, im := imageBytes(t, rf)
		if im.NumPartitions() != 100000 || im.NumTopics() != 10000 {
			t.Fatalf("%d partitions in %d topics", im.NumPartitions(), im.NumTopics())
		}
		snap, err := AppendSnapshot(nil, im)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("image of 100,000 partitions in 10,000 topics, replication factor %d: %.1f MiB (%d bytes a partition); snapshot %.1f MiB",
			rf, float64(n)/(1<<20), n/100000, float64(len(snap))/(1<<20))
		if limit := uint64(24 << 20); n > limit {
			t.Fatalf("image of %d bytes, more than %d", n, limit)
		}
	}
}

// BenchmarkApplyAt100kPartitions: a change of one topic, a new topic, in an image of
// 100,000 partitions. Their cost must not grow with the image (compare -benchmem at
// smaller sizes: bytes and allocations per change stay put).
func BenchmarkApplyAt100kPartitions(b *testing.B) {
	im := bigImage(b, 3)
	id := topicID(5000)
	name := im.TopicByID(id).Name
	b.Run("leader change", func(b *testing.B) {
		p := im.TopicByID(id).Partition(3)
		rs := []Record{&PartitionChangeRecord{TopicID: id, Partition: 3, PartitionEpoch: p.PartitionEpoch, Set: SetLeader, Leader: p.ISR()[1]}}
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := im.Apply(Offset{Index: im.offset.Index + 1, Term: 1}, rs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("topic config", func(b *testing.B) {
		v := "1"
		rs := []Record{&ConfigRecord{ResourceType: ResourceTopic, ResourceName: name, Name: "segment.ms", Value: &v}}
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := im.Apply(Offset{Index: im.offset.Index + 1, Term: 1}, rs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("create topic of 10 partitions", func(b *testing.B) {
		id := uuid.UUID{0xfe}
		rs := []Record{&TopicRecord{Name: "new-topic", ID: id}}
		for p := range int32(10) {
			rs = append(rs, &PartitionRecord{TopicID: id, Partition: p, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1})
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := im.Apply(Offset{Index: im.offset.Index + 1, Term: 1}, rs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("snapshot encode", func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			s, err := AppendSnapshot(nil, im)
			if err != nil {
				b.Fatal(err)
			}
			n = len(s)
		}
		b.ReportMetric(float64(n), "snapshot-bytes")
	})
	b.Run("snapshot decode", func(b *testing.B) {
		s, _ := AppendSnapshot(nil, im)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeSnapshot(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
