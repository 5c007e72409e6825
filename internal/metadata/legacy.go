package metadata

// The metadata log's first format, JSON records, read once to upgrade a log written
// before the binary records (store.go rewrites it as a binary snapshot at once). Those
// logs were written by a single node, with no broker registrations or partition records:
// every partition is converted with this node as its only replica, its ISR and its
// leader, at epoch 0, as that node served it.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/google/uuid"
)

// legacyRecord is one JSON record: exactly one field set.
type legacyRecord struct {
	Batch       []legacyRecord       `json:"batch,omitempty"`
	ClusterID   *struct{ ID string } `json:"cluster_id,omitempty"`
	Topic       *legacyTopic         `json:"topic,omitempty"`
	RemoveTopic *struct {
		ID uuid.UUID `json:"id"`
	} `json:"remove_topic,omitempty"`
	Partitions *struct {
		ID         uuid.UUID `json:"id"`
		Partitions int32     `json:"partitions"`
	} `json:"partitions,omitempty"`
	TopicConfig *struct {
		ID    uuid.UUID `json:"id"`
		Key   string    `json:"key"`
		Value *string   `json:"value"`
	} `json:"topic_config,omitempty"`
	BrokerConfig *struct {
		Key   string  `json:"key"`
		Value *string `json:"value"`
	} `json:"broker_config,omitempty"`
	ProducerIDBlock *struct {
		Next int64 `json:"next"`
	} `json:"producer_ids,omitempty"`
}

type legacyTopic struct {
	Name              string            `json:"name"`
	ID                uuid.UUID         `json:"id"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Configs           map[string]string `json:"configs,omitempty"`
}

func decodeLegacy(b []byte) (legacyRecord, error) {
	var r legacyRecord
	err := json.Unmarshal(b, &r)
	return r, err
}

// legacyReplayer applies JSON records to an image, converting each to binary records.
type legacyReplayer struct {
	im   *Image
	node int32
}

// apply applies one JSON frame.
func (l *legacyReplayer) apply(r legacyRecord) error {
	if r.Batch != nil {
		for _, br := range r.Batch {
			if br.Batch != nil {
				return errors.New("nested metadata batch")
			}
			if err := l.apply(br); err != nil {
				return err
			}
		}
		return nil
	}
	rs, err := l.convert(r)
	if err != nil || len(rs) == 0 {
		return err
	}
	next, _, err := l.im.Apply(Offset{Index: l.im.offset.Index + 1, Term: localTerm}, rs)
	if err != nil {
		return err
	}
	l.im = next
	return nil
}

func (l *legacyReplayer) convert(r legacyRecord) ([]Record, error) {
	self := []int32{l.node}
	partition := func(id uuid.UUID, i int32) Record {
		return &PartitionRecord{TopicID: id, Partition: i, Replicas: self, ISR: self, Leader: l.node}
	}
	switch {
	case r.ClusterID != nil:
		return []Record{&ClusterIDRecord{ID: r.ClusterID.ID}}, nil
	case r.Topic != nil:
		t := r.Topic
		var rs []Record
		if old := l.im.Topic(t.Name); old != nil {
			rs = append(rs, &RemoveTopicRecord{ID: old.ID}) // the old format replaced a topic of the same name
		}
		rs = append(rs, &TopicRecord{Name: t.Name, ID: t.ID})
		for i := range t.Partitions {
			rs = append(rs, partition(t.ID, i))
		}
		for _, k := range sortedKeys(t.Configs) {
			v := t.Configs[k]
			rs = append(rs, &ConfigRecord{ResourceType: ResourceTopic, ResourceName: t.Name, Name: k, Value: &v})
		}
		return rs, nil
	case r.RemoveTopic != nil:
		return []Record{&RemoveTopicRecord{ID: r.RemoveTopic.ID}}, nil
	case r.Partitions != nil:
		t := l.im.TopicByID(r.Partitions.ID)
		if t == nil {
			return nil, fmt.Errorf("partitions for unknown topic id %s", r.Partitions.ID)
		}
		if r.Partitions.Partitions < t.NumPartitions() {
			return nil, fmt.Errorf("topic %s going from %d partitions down to %d", t.Name, t.NumPartitions(), r.Partitions.Partitions)
		}
		var rs []Record
		for i := t.NumPartitions(); i < r.Partitions.Partitions; i++ {
			rs = append(rs, partition(t.ID, i))
		}
		return rs, nil
	case r.TopicConfig != nil:
		t := l.im.TopicByID(r.TopicConfig.ID)
		if t == nil {
			return nil, fmt.Errorf("config for unknown topic id %s", r.TopicConfig.ID)
		}
		return []Record{&ConfigRecord{ResourceType: ResourceTopic, ResourceName: t.Name, Name: r.TopicConfig.Key, Value: r.TopicConfig.Value}}, nil
	case r.BrokerConfig != nil:
		return []Record{&ConfigRecord{ResourceType: ResourceBroker, Name: r.BrokerConfig.Key, Value: r.BrokerConfig.Value}}, nil
	case r.ProducerIDBlock != nil:
		next, to := l.im.NextProducerID(), r.ProducerIDBlock.Next
		if to < next {
			return nil, fmt.Errorf("producer id allocator moving backwards: %d < %d", to, next)
		}
		var rs []Record
		for next < to {
			size := int32(min(to-next, math.MaxInt32))
			rs = append(rs, &ProducerIDsRecord{BrokerID: l.node, BrokerEpoch: -1, FirstID: next, Size: size})
			next += int64(size)
		}
		return rs, nil
	}
	return nil, errors.New("empty metadata record")
}
