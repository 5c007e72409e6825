package metadata

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestApplyRefusesInvalidBatches: every record that does not fit the image refuses its
// whole batch, with a reason, and leaves the image as it was.
func TestApplyRefusesInvalidBatches(t *testing.T) {
	base := testImage(t, 2, 3) // topic-00000 and topic-00001, brokers 1-3 (3 fenced)
	t0 := base.Topic("topic-00000")
	p0 := t0.Partition(0) // replicas [1 2 3], ISR [1 2], leader 1, epochs 0/0, ELR [3]
	v := "x"
	ok := &NoOpRecord{}
	for _, tc := range []struct {
		name string
		r    Record
		want string
	}{
		{"nil record", nil, "a nil record"},
		{"empty cluster ID", &ClusterIDRecord{}, "empty cluster ID"},
		{"another cluster ID", &ClusterIDRecord{ID: "other"}, "cannot become"},
		{"feature without name", &FeatureLevelRecord{Level: 1}, "feature"},
		{"negative feature level", &FeatureLevelRecord{Name: "f", Level: -1}, "level -1"},
		{"negative broker ID", &RegisterBrokerRecord{BrokerID: -1}, "broker ID -1"},
		{"stale registration", &RegisterBrokerRecord{BrokerID: 1, BrokerEpoch: 11}, "not above its registration's 11"},
		{"listener without port", &RegisterBrokerRecord{BrokerID: 9, Listeners: []Listener{{Name: "A", Host: "h"}}}, "port 0"},
		{"listener twice", &RegisterBrokerRecord{BrokerID: 9, Listeners: []Listener{{Name: "A", Host: "h", Port: 1}, {Name: "A", Host: "i", Port: 2}}}, "twice"},
		{"unknown protocol", &RegisterBrokerRecord{BrokerID: 9, Listeners: []Listener{{Name: "A", Host: "h", Port: 1, SecurityProtocol: 4}}}, "security protocol 4"},
		{"change of unknown broker", &BrokerRegistrationChangeRecord{BrokerID: 9}, "broker 9 is not registered"},
		{"change at another epoch", &BrokerRegistrationChangeRecord{BrokerID: 1, BrokerEpoch: 10, Fenced: FenceFence}, "has epoch 11, not 10"},
		{"bad fencing change", &BrokerRegistrationChangeRecord{BrokerID: 1, BrokerEpoch: 11, Fenced: 2}, "fencing change 2"},
		{"unregister at another epoch", &UnregisterBrokerRecord{BrokerID: 2, BrokerEpoch: 1}, "has epoch 12, not 1"},
		{"topic name taken", &TopicRecord{Name: "topic-00000", ID: uuid.New()}, "exists"},
		{"topic ID taken", &TopicRecord{Name: "new", ID: t0.ID}, "is taken"},
		{"illegal topic name", &TopicRecord{Name: "a/b", ID: uuid.New()}, "illegal topic name"},
		{"topic name too long", &TopicRecord{Name: strings.Repeat("a", 250), ID: uuid.New()}, "illegal topic name"},
		{"zero topic ID", &TopicRecord{Name: "new"}, "topic ID is zero"},
		{"partition of unknown topic", &PartitionRecord{TopicID: uuid.New(), Replicas: []int32{1}, Leader: -1}, "no topic with ID"},
		{"partition out of order", &PartitionRecord{TopicID: t0.ID, Partition: 4, Replicas: []int32{1}, Leader: -1}, "partitions are added in order"},
		{"partition again", &PartitionRecord{TopicID: t0.ID, Partition: 2, Replicas: []int32{1}, Leader: -1}, "partitions are added in order"},
		{"no replicas", &PartitionRecord{TopicID: t0.ID, Partition: 3, Leader: -1}, "no replicas"},
		{"replica twice", &PartitionRecord{TopicID: t0.ID, Partition: 3, Replicas: []int32{1, 1}, Leader: -1}, "negative or repeated"},
		{"ISR outside replicas", &PartitionRecord{TopicID: t0.ID, Partition: 3, Replicas: []int32{1}, ISR: []int32{2}, Leader: -1}, "ISR [2]: not a set"},
		{"leader outside ISR", &PartitionRecord{TopicID: t0.ID, Partition: 3, Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 1}, "leader 1 is not in the ISR"},
		{"ELR in the ISR", &PartitionRecord{TopicID: t0.ID, Partition: 3, Replicas: []int32{1, 2}, ISR: []int32{2}, ELR: []int32{2}, Leader: 2}, "both the ISR and the ELR"},
		{"adding and removing", &PartitionRecord{TopicID: t0.ID, Partition: 3, Replicas: []int32{1, 2}, ISR: []int32{1}, AddingReplicas: []int32{2}, RemovingReplicas: []int32{2}, Leader: 1}, "both being added and removed"},
		{"negative epoch", &PartitionRecord{TopicID: t0.ID, Partition: 3, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: -1}, "leader epoch -1"},
		{"change of unknown topic", &PartitionChangeRecord{TopicID: uuid.New()}, "no topic with ID"},
		{"change of unknown partition", &PartitionChangeRecord{TopicID: t0.ID, Partition: 3}, "has no partition 3"},
		{"stale partition epoch", &PartitionChangeRecord{TopicID: t0.ID, Partition: 1, PartitionEpoch: 0, Set: SetLeader, Leader: 3}, "decided at partition epoch 0, the partition is at 2"}, // the change before it in the batch moved it
		{"leader outside the new ISR", &PartitionChangeRecord{TopicID: t0.ID, Set: SetISR, ISR: []int32{2}}, "leader 1 is not in the ISR [2]"},
		{"replicas that drop the ISR", &PartitionChangeRecord{TopicID: t0.ID, Set: SetReplicas, Replicas: []int32{1, 3}}, "ISR [1 2]: not a set of the replicas [1 3]"},
		{"remove unknown topic", &RemoveTopicRecord{ID: uuid.New()}, "no topic with ID"},
		{"config of unknown topic", &ConfigRecord{ResourceType: ResourceTopic, ResourceName: "nope", Name: "k", Value: &v}, "unknown topic"},
		{"config without name", &ConfigRecord{ResourceType: ResourceTopic, ResourceName: "topic-00000", Value: &v}, "empty config name"},
		{"config of a bad broker resource", &ConfigRecord{ResourceType: ResourceBroker, ResourceName: "01", Name: "k", Value: &v}, "neither"},
		{"config of an unknown resource type", &ConfigRecord{ResourceType: 8, Name: "k"}, "resource type 8"},
		{"producer IDs reused", &ProducerIDsRecord{BrokerID: 1, FirstID: 5999, Size: 10}, "below the next free one (6000)"},
		{"empty producer ID block", &ProducerIDsRecord{BrokerID: 1, FirstID: 6000}, "a block of 0"},
		{"producer ID block overflowing", &ProducerIDsRecord{BrokerID: 1, FirstID: 1<<63 - 5, Size: 10}, "overflows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The bad record comes after good ones that change the image: they must not
			// apply either.
			x := "1"
			rs := []Record{ok, &TopicRecord{Name: "fresh", ID: uuid.New()},
				&ConfigRecord{ResourceType: ResourceTopic, ResourceName: "topic-00001", Name: "a", Value: &x},
				&PartitionChangeRecord{TopicID: t0.ID, Partition: 1, PartitionEpoch: 1, Set: SetISR, ISR: []int32{2}},
				tc.r}
			next, d, err := base.Apply(Offset{Index: base.offset.Index + 1, Term: 1}, rs)
			var ae *ApplyError
			if !errors.As(err, &ae) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("applied (%v): %v", next != nil, err)
			}
			if ae.Record != 4 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q (record %d), want record 4 and %q", err, ae.Record, tc.want)
			}
			if next != nil || d != nil {
				t.Fatal("a refused batch returned an image or a delta")
			}
			if err := imagesEqual(base, testImage(t, 2, 3)); err != nil {
				t.Fatalf("a refused batch changed the image: %v", err)
			}
		})
	}
	if p0.LeaderEpoch != 0 || base.Topic("topic-00000").Partition(1).PartitionEpoch != 1 {
		t.Fatal("test image changed shape")
	}
}

func TestApplyRefusesOffsetsThatDoNotFollow(t *testing.T) {
	im, _ := mustApply(t, Empty(), &NoOpRecord{}) // at index 1, term 1
	im, _, err := im.Apply(Offset{Index: 5, Term: 3}, []Record{&NoOpRecord{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []Offset{{Index: 5, Term: 3}, {Index: 4, Term: 3}, {Index: 6, Term: 2}} {
		if _, _, err := im.Apply(off, []Record{&NoOpRecord{}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("entry at %+v after %+v: %v", off, im.Offset(), err)
		}
	}
	if _, _, err := im.Apply(Offset{Index: 6, Term: 3}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty batch: %v", err)
	}
}

// TestPartitionChangeEpochs: the partition epoch moves on every change; the leader epoch
// only when the leader is set, even to the same leader (Kafka's PartitionRegistration.merge).
func TestPartitionChangeEpochs(t *testing.T) {
	im := testImage(t, 1, 1)
	id := im.Topic("topic-00000").ID
	type want struct {
		leader, leaderEpoch, partitionEpoch int32
		isr                                 []int32
	}
	steps := []struct {
		r    *PartitionChangeRecord
		want want
	}{
		{&PartitionChangeRecord{Set: SetISR, ISR: []int32{1}}, want{1, 0, 1, []int32{1}}},
		{&PartitionChangeRecord{Set: SetISR, ISR: []int32{1, 2}}, want{1, 0, 2, []int32{1, 2}}},
		{&PartitionChangeRecord{Set: SetLeader, Leader: 2}, want{2, 1, 3, []int32{1, 2}}},
		{&PartitionChangeRecord{Set: SetLeader, Leader: 2}, want{2, 2, 4, []int32{1, 2}}}, // same leader, new epoch
		{&PartitionChangeRecord{Set: SetLeader | SetISR, Leader: NoLeader, ISR: []int32{}}, want{NoLeader, 3, 5, nil}},
		{&PartitionChangeRecord{}, want{NoLeader, 3, 6, nil}},
		{&PartitionChangeRecord{Set: SetLeader | SetISR | SetELR, Leader: 3, ISR: []int32{3}, ELR: []int32{1}}, want{3, 4, 7, []int32{3}}},
	}
	for i, s := range steps {
		s.r.TopicID = id
		s.r.PartitionEpoch = im.Topic("topic-00000").Partition(0).PartitionEpoch
		var d *Delta
		im, d = mustApply(t, im, s.r)
		p := im.Topic("topic-00000").Partition(0)
		got := want{p.Leader, p.LeaderEpoch, p.PartitionEpoch, p.ISR()}
		if got.leader != s.want.leader || got.leaderEpoch != s.want.leaderEpoch || got.partitionEpoch != s.want.partitionEpoch || !slices.Equal(got.isr, s.want.isr) {
			t.Fatalf("step %d: %+v, want %+v", i, got, s.want)
		}
		if td := d.Topics[id]; td == nil || !td.Partitions[0] || td.Old == nil {
			t.Fatalf("step %d: delta %+v", i, d.Topics)
		}
		checkImage(t, im)
	}
}

// TestApplySharesWhatItDoesNotChange: at 10,000 topics, a change of one topic copies
// that topic and the paths to it, never the others: every other topic is the same
// pointer in both images, and the old image is untouched.
func TestApplySharesWhatItDoesNotChange(t *testing.T) {
	im := testImage(t, 10000, 2)
	id := topicID(4242)
	name := im.TopicByID(id).Name
	v := "1"
	next, d := mustApply(t, im,
		&ConfigRecord{ResourceType: ResourceTopic, ResourceName: name, Name: "segment.ms", Value: &v},
		&PartitionChangeRecord{TopicID: id, Partition: 1, PartitionEpoch: 1, Set: SetISR | SetELR, ISR: []int32{2, 3, 1}})
	if len(d.Topics) != 1 || d.Topics[id] == nil || !d.Topics[id].Configs["segment.ms"] || !d.Topics[id].Partitions[1] {
		t.Fatalf("delta: %+v", d.Topics)
	}
	same := 0
	im.topics.All(func(n string, old *Topic) bool {
		if nt := next.Topic(n); nt == old {
			same++
		} else if n != name {
			t.Fatalf("topic %s was copied by a change of %s", n, name)
		}
		return true
	})
	if same != 9999 {
		t.Fatalf("%d topics shared, want 9999", same)
	}
	if old := im.Topic(name); old.Configs["segment.ms"] != "" || !slices.Equal(old.Partition(1).ISR(), []int32{2, 3}) {
		t.Fatalf("the old image changed: %v %v", old.Configs, old.Partition(1).ISR())
	}
	if got := next.Topic(name); got.Configs["segment.ms"] != "1" || !slices.Equal(got.Partition(1).ISR(), []int32{2, 3, 1}) ||
		got.Partition(1).PartitionEpoch != 2 || &got.Partitions[0] == &im.Topic(name).Partitions[0] {
		t.Fatalf("the new image: %v %s", got.Configs, describe(got.Partition(1)))
	}
	checkImage(t, next)
}

func TestBrokerLifecycle(t *testing.T) {
	im := Empty()
	reg := &RegisterBrokerRecord{BrokerID: 4, IncarnationID: uuid.New(), BrokerEpoch: 100, Fenced: true,
		Listeners: []Listener{{Name: "PLAINTEXT", Host: "h", Port: 9092}}, Rack: "r1"}
	im, d := mustApply(t, im, reg)
	if c := d.BrokerChanges(im); len(c) != 1 || !c[0].Registered() || !c[0].Fenced() || c[0].Unfenced() {
		t.Fatalf("registration: %+v", c)
	}
	im, d = mustApply(t, im, &BrokerRegistrationChangeRecord{BrokerID: 4, BrokerEpoch: 100, Fenced: FenceUnfence})
	if c := d.BrokerChanges(im); len(c) != 1 || c[0].Registered() || !c[0].Unfenced() || im.Broker(4).Fenced {
		t.Fatalf("unfence: %+v", c)
	}
	im, _ = mustApply(t, im, &BrokerRegistrationChangeRecord{BrokerID: 4, BrokerEpoch: 100, InControlledShutdown: true})
	if b := im.Broker(4); !b.InControlledShutdown || b.Fenced || b.Rack != "r1" || b.Listener("PLAINTEXT").Port != 9092 {
		t.Fatalf("controlled shutdown: %+v", b)
	}
	// A restart registers again with a higher epoch: a new registration, state reset.
	im, d = mustApply(t, im, &RegisterBrokerRecord{BrokerID: 4, IncarnationID: uuid.New(), BrokerEpoch: 200, Fenced: true})
	if c := d.BrokerChanges(im); len(c) != 1 || !c[0].Registered() || !c[0].Fenced() || im.Broker(4).InControlledShutdown {
		t.Fatalf("re-registration: %+v %+v", c, im.Broker(4))
	}
	im, d = mustApply(t, im, &UnregisterBrokerRecord{BrokerID: 4, BrokerEpoch: 200})
	if c := d.BrokerChanges(im); len(c) != 1 || !c[0].Unregistered() || im.Broker(4) != nil || im.NumBrokers() != 0 {
		t.Fatalf("unregistration: %+v", c)
	}
}

func TestConfigsAndFeatures(t *testing.T) {
	im := testImage(t, 1, 1)
	a, b := "a", "b"
	im, d := mustApply(t, im,
		&ConfigRecord{ResourceType: ResourceBroker, Name: "compression.type", Value: &a},
		&ConfigRecord{ResourceType: ResourceBroker, ResourceName: "2", Name: "log.cleaner.threads"},
		&ConfigRecord{ResourceType: ResourceBroker, ResourceName: "3", Name: "k", Value: &b},
		&ConfigRecord{ResourceType: ResourceTopic, ResourceName: "topic-00000", Name: "retention.ms"},
		&FeatureLevelRecord{Name: "metadata.version", Level: 0},
		&FeatureLevelRecord{Name: "group.version", Level: 1})
	if got := im.BrokerConfigs(""); got["compression.type"] != "a" {
		t.Fatalf("cluster default: %v", got)
	}
	if im.BrokerConfigs("2") != nil || im.BrokerConfigs("3")["k"] != "b" || !slices.Equal(im.ConfigResources(), []string{"", "3"}) {
		t.Fatalf("broker configs: %v", im.configs)
	}
	if im.Topic("topic-00000").Configs != nil {
		t.Fatalf("topic configs after removing the last: %v", im.Topic("topic-00000").Configs)
	}
	if im.FeatureLevel("metadata.version") != 0 || im.FeatureLevel("group.version") != 1 {
		t.Fatalf("features: %v", im.features)
	}
	if d.Features["metadata.version"] != 1 || d.Features["group.version"] != 0 || len(d.Features) != 2 {
		t.Fatalf("feature delta: %v", d.Features)
	}
	if !d.BrokerConfigs[""]["compression.type"] || !d.BrokerConfigs["2"]["log.cleaner.threads"] || !d.BrokerConfigs["3"]["k"] ||
		!d.Topics[topicID(0)].Configs["retention.ms"] {
		t.Fatalf("config delta: %v %+v", d.BrokerConfigs, d.Topics[topicID(0)])
	}
	// Setting a config to its value changes nothing and copies nothing.
	next, d := mustApply(t, im, &ConfigRecord{ResourceType: ResourceBroker, Name: "compression.type", Value: &a})
	if !d.Empty() || next.Topic("topic-00000") != im.Topic("topic-00000") ||
		reflect.ValueOf(next.configs).Pointer() != reflect.ValueOf(im.configs).Pointer() {
		t.Fatalf("no-op config: %+v", d)
	}
	checkImage(t, next)
}

func TestRemoveTopicFreesNameAndPartitions(t *testing.T) {
	im := testImage(t, 3, 4)
	old := im.Topic("topic-00001")
	im, d := mustApply(t, im, &RemoveTopicRecord{ID: old.ID}, &TopicRecord{Name: "topic-00001", ID: uuid.UUID{9}},
		&PartitionRecord{TopicID: uuid.UUID{9}, Replicas: []int32{2}, ISR: []int32{2}, Leader: 2})
	if im.NumPartitions() != 9 || im.TopicByID(old.ID) != nil || im.Topic("topic-00001").ID != (uuid.UUID{9}) {
		t.Fatalf("after delete and create: %d partitions, %v", im.NumPartitions(), im.TopicNames())
	}
	if del := d.DeletedTopics(im); len(del) != 1 || del[0] != old {
		t.Fatalf("deleted: %v", del)
	}
	if cr := d.CreatedTopics(im); len(cr) != 1 || cr[0].ID != (uuid.UUID{9}) {
		t.Fatalf("created: %v", cr)
	}
	checkImage(t, im)
}
