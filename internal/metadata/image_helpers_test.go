package metadata

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/google/uuid"
)

// imagesEqual returns the first difference between two images, or nil. Images equal in
// content may differ in the shape of their trees, so they are compared by walking.
func imagesEqual(a, b *Image) error {
	switch {
	case a.offset != b.offset:
		return fmt.Errorf("offset %+v vs %+v", a.offset, b.offset)
	case a.clusterID != b.clusterID:
		return fmt.Errorf("cluster ID %q vs %q", a.clusterID, b.clusterID)
	case !maps.Equal(a.features, b.features):
		return fmt.Errorf("features %v vs %v", a.features, b.features)
	case a.producerIDs != b.producerIDs:
		return fmt.Errorf("producer IDs %+v vs %+v", a.producerIDs, b.producerIDs)
	case a.partitions != b.partitions:
		return fmt.Errorf("%d partitions vs %d", a.partitions, b.partitions)
	case a.brokers.Len() != b.brokers.Len() || a.topics.Len() != b.topics.Len() || a.topicIDs.Len() != b.topicIDs.Len():
		return fmt.Errorf("%d/%d/%d brokers/topics/IDs vs %d/%d/%d", a.brokers.Len(), a.topics.Len(), a.topicIDs.Len(),
			b.brokers.Len(), b.topics.Len(), b.topicIDs.Len())
	case !maps.EqualFunc(a.configs, b.configs, func(x, y map[string]string) bool { return maps.Equal(x, y) }):
		return fmt.Errorf("broker configs %v vs %v", a.configs, b.configs)
	}
	var err error
	a.brokers.All(func(id int32, x *Broker) bool {
		if y := b.Broker(id); y == nil || !brokerEqual(x, y) {
			err = fmt.Errorf("broker %d: %+v vs %+v", id, x, y)
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	a.topics.All(func(name string, x *Topic) bool {
		err = topicsEqual(x, b.Topic(name))
		if err == nil && b.TopicByID(x.ID) != b.Topic(name) {
			err = fmt.Errorf("topic %s: its ID %s finds %v", name, x.ID, b.TopicByID(x.ID))
		}
		return err == nil
	})
	return err
}

func topicsEqual(x, y *Topic) error {
	switch {
	case y == nil:
		return fmt.Errorf("topic %s missing", x.Name)
	case x.Name != y.Name || x.ID != y.ID:
		return fmt.Errorf("topic %s %s vs %s %s", x.Name, x.ID, y.Name, y.ID)
	case !maps.Equal(x.Configs, y.Configs):
		return fmt.Errorf("topic %s configs %v vs %v", x.Name, x.Configs, y.Configs)
	case len(x.Partitions) != len(y.Partitions):
		return fmt.Errorf("topic %s: %d partitions vs %d", x.Name, len(x.Partitions), len(y.Partitions))
	}
	for i := range x.Partitions {
		if !partitionEqual(&x.Partitions[i], &y.Partitions[i]) {
			return fmt.Errorf("partition %s-%d: %s vs %s", x.Name, i, describe(&x.Partitions[i]), describe(&y.Partitions[i]))
		}
	}
	return nil
}

func describe(p *Partition) string {
	return fmt.Sprintf("{replicas %v isr %v removing %v adding %v elr %v lkelr %v leader %d epoch %d/%d}",
		p.Replicas(), p.ISR(), p.RemovingReplicas(), p.AddingReplicas(), p.ELR(), p.LastKnownELR(),
		p.Leader, p.LeaderEpoch, p.PartitionEpoch)
}

// mustApply applies rs as the next entry, failing the test on an error.
func mustApply(t testing.TB, im *Image, rs ...Record) (*Image, *Delta) {
	t.Helper()
	next, d, err := im.Apply(Offset{Index: im.offset.Index + 1, Term: max(im.offset.Term, 1)}, rs)
	if err != nil {
		t.Fatal(err)
	}
	return next, d
}

// topicID is a deterministic topic ID for tests.
func topicID(i int) uuid.UUID {
	var u uuid.UUID
	u[0], u[14], u[15] = 0x7, byte(i>>8), byte(i)
	return u
}

// testImage is a cluster of three brokers (one fenced, rack-aware) with topics of
// partitions spread over them (RF 3), configs of each kind and producer IDs handed out.
func testImage(t testing.TB, topics, partitions int) *Image {
	t.Helper()
	im := Empty()
	one := "1"
	var rs []Record
	rs = append(rs, &ClusterIDRecord{ID: "test-cluster"}, &FeatureLevelRecord{Name: "metadata.version", Level: 1})
	for id := int32(1); id <= 3; id++ {
		rs = append(rs, &RegisterBrokerRecord{BrokerID: id, IncarnationID: uuid.UUID{byte(id)}, BrokerEpoch: int64(10 + id),
			Listeners: []Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: uint16(9091 + id)}},
			Rack:      fmt.Sprintf("rack-%d", id%2), Fenced: id == 3, LogDirs: []uuid.UUID{{0xd, byte(id)}}})
	}
	rs = append(rs, &ConfigRecord{ResourceType: ResourceBroker, Name: "compression.type", Value: &one},
		&ConfigRecord{ResourceType: ResourceBroker, ResourceName: "2", Name: "log.cleaner.threads", Value: &one})
	im, _ = mustApply(t, im, rs...)
	for i := range topics {
		id := topicID(i)
		name := fmt.Sprintf("topic-%05d", i)
		rs := []Record{&TopicRecord{Name: name, ID: id}}
		for p := range int32(partitions) {
			r := []int32{p%3 + 1, (p+1)%3 + 1, (p+2)%3 + 1}
			rs = append(rs, &PartitionRecord{TopicID: id, Partition: p, Replicas: r, ISR: r[:2], Leader: r[0],
				LeaderEpoch: p % 4, PartitionEpoch: p % 5, ELR: r[2:], LastKnownELR: slices.Clone(r[2:])})
		}
		if i%3 == 0 {
			v := fmt.Sprint(i * 1000)
			rs = append(rs, &ConfigRecord{ResourceType: ResourceTopic, ResourceName: name, Name: "retention.ms", Value: &v})
		}
		im, _ = mustApply(t, im, rs...)
	}
	im, _ = mustApply(t, im, &ProducerIDsRecord{BrokerID: 2, BrokerEpoch: 12, FirstID: 5000, Size: 1000})
	return im
}

// checkImage checks an image's invariants: its trees, its indexes agreeing, the partition
// count and every partition's state.
func checkImage(t testing.TB, im *Image) {
	t.Helper()
	n := 0
	var err error
	im.topics.All(func(name string, tp *Topic) bool {
		if got, _ := im.topicIDs.Get(tp.ID); got != name || tp.Name != name {
			err = fmt.Errorf("topic %s (ID %s) is %q by its ID", name, tp.ID, got)
			return false
		}
		for i := range tp.Partitions {
			p := &tp.Partitions[i]
			if why := checkPartition(p.Replicas(), p.ISR(), p.RemovingReplicas(), p.AddingReplicas(), p.ELR(), p.LastKnownELR(), p.Leader); why != "" {
				err = fmt.Errorf("partition %s-%d: %s", name, i, why)
				return false
			}
		}
		if tp.Configs != nil && len(tp.Configs) == 0 {
			err = fmt.Errorf("topic %s: an empty config map, not nil", name)
			return false
		}
		n += len(tp.Partitions)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != im.partitions || im.topicIDs.Len() != im.topics.Len() {
		t.Fatalf("%d partitions counted, %d kept; %d IDs for %d topics", n, im.partitions, im.topicIDs.Len(), im.topics.Len())
	}
	im.brokers.All(func(id int32, b *Broker) bool {
		if b.ID != id {
			t.Fatalf("broker %d filed under %d", b.ID, id)
		}
		return true
	})
}
