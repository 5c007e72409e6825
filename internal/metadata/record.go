package metadata

import (
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
)

// Record is one metadata change. Exactly one field is set. Records are encoded as JSON
// inside the framing described in store.go: the metadata log is small and rarely
// written, and a readable format is worth more here than compactness.
type Record struct {
	// Batch is a change made of several records, applied together or not at all (one
	// frame in the log). Its records are not batches themselves.
	Batch           []Record               `json:"batch,omitempty"`
	ClusterID       *ClusterIDRecord       `json:"cluster_id,omitempty"`
	Topic           *TopicRecord           `json:"topic,omitempty"`
	RemoveTopic     *RemoveTopicRecord     `json:"remove_topic,omitempty"`
	Partitions      *PartitionsRecord      `json:"partitions,omitempty"`
	TopicConfig     *TopicConfigRecord     `json:"topic_config,omitempty"`
	BrokerConfig    *BrokerConfigRecord    `json:"broker_config,omitempty"`
	ProducerIDBlock *ProducerIDBlockRecord `json:"producer_ids,omitempty"`
}

type ClusterIDRecord struct {
	ID string `json:"id"`
}

type TopicRecord struct {
	Name              string            `json:"name"`
	ID                uuid.UUID         `json:"id"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Configs           map[string]string `json:"configs,omitempty"`
}

type RemoveTopicRecord struct {
	ID uuid.UUID `json:"id"`
}

// PartitionsRecord raises a topic's partition count.
type PartitionsRecord struct {
	ID         uuid.UUID `json:"id"`
	Partitions int32     `json:"partitions"`
}

// TopicConfigRecord sets (Value non-nil) or removes (nil) one topic override.
type TopicConfigRecord struct {
	ID    uuid.UUID `json:"id"`
	Key   string    `json:"key"`
	Value *string   `json:"value"`
}

// BrokerConfigRecord sets or removes one dynamic broker config.
type BrokerConfigRecord struct {
	Key   string  `json:"key"`
	Value *string `json:"value"`
}

// ProducerIDBlockRecord moves the producer ID allocator: IDs below Next are handed out.
type ProducerIDBlockRecord struct {
	Next int64 `json:"next"`
}

// apply returns the image after rs, applied in order; it never modifies im.
func (im *Image) apply(rs ...Record) (*Image, error) {
	n := im.clone()
	for _, r := range rs {
		if err := n.mutate(r); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// mutate applies r to n in place. n must not have been published: its maps are its own,
// but the topics in them may be shared with other images, so a changed topic is copied.
func (n *Image) mutate(r Record) error {
	switch {
	case r.Batch != nil:
		for _, br := range r.Batch {
			if br.Batch != nil {
				return fmt.Errorf("nested metadata batch")
			}
			if err := n.mutate(br); err != nil {
				return err
			}
		}
	case r.ClusterID != nil:
		n.ClusterID = r.ClusterID.ID
	case r.Topic != nil:
		t := &Topic{Name: r.Topic.Name, ID: r.Topic.ID, Partitions: r.Topic.Partitions,
			ReplicationFactor: r.Topic.ReplicationFactor, Configs: map[string]string{}}
		for k, v := range r.Topic.Configs {
			t.Configs[k] = v
		}
		if old := n.Topics[t.Name]; old != nil {
			delete(n.TopicIDs, old.ID)
		}
		n.Topics[t.Name] = t
		n.TopicIDs[t.ID] = t
	case r.RemoveTopic != nil:
		t := n.TopicIDs[r.RemoveTopic.ID]
		if t == nil {
			return fmt.Errorf("remove unknown topic id %s", r.RemoveTopic.ID)
		}
		delete(n.TopicIDs, t.ID)
		delete(n.Topics, t.Name)
	case r.Partitions != nil:
		t := n.TopicIDs[r.Partitions.ID]
		if t == nil {
			return fmt.Errorf("partitions for unknown topic id %s", r.Partitions.ID)
		}
		t = t.clone()
		t.Partitions = r.Partitions.Partitions
		n.Topics[t.Name], n.TopicIDs[t.ID] = t, t
	case r.TopicConfig != nil:
		t := n.TopicIDs[r.TopicConfig.ID]
		if t == nil {
			return fmt.Errorf("config for unknown topic id %s", r.TopicConfig.ID)
		}
		t = t.clone()
		if r.TopicConfig.Value == nil {
			delete(t.Configs, r.TopicConfig.Key)
		} else {
			t.Configs[r.TopicConfig.Key] = *r.TopicConfig.Value
		}
		n.Topics[t.Name], n.TopicIDs[t.ID] = t, t
	case r.BrokerConfig != nil:
		if r.BrokerConfig.Value == nil {
			delete(n.BrokerConfigs, r.BrokerConfig.Key)
		} else {
			n.BrokerConfigs[r.BrokerConfig.Key] = *r.BrokerConfig.Value
		}
	case r.ProducerIDBlock != nil:
		if r.ProducerIDBlock.Next < n.NextProducerID {
			return fmt.Errorf("producer id allocator moving backwards: %d < %d", r.ProducerIDBlock.Next, n.NextProducerID)
		}
		n.NextProducerID = r.ProducerIDBlock.Next
	default:
		return fmt.Errorf("empty metadata record")
	}
	return nil
}

// snapshot returns records that rebuild im from an empty image.
func (im *Image) snapshot() []Record {
	var rs []Record
	if im.ClusterID != "" {
		rs = append(rs, Record{ClusterID: &ClusterIDRecord{ID: im.ClusterID}})
	}
	for _, name := range im.TopicNames() {
		t := im.Topics[name]
		rs = append(rs, Record{Topic: &TopicRecord{Name: t.Name, ID: t.ID, Partitions: t.Partitions,
			ReplicationFactor: t.ReplicationFactor, Configs: t.Configs}})
	}
	for k, v := range im.BrokerConfigs {
		v := v
		rs = append(rs, Record{BrokerConfig: &BrokerConfigRecord{Key: k, Value: &v}})
	}
	if im.NextProducerID > 0 {
		rs = append(rs, Record{ProducerIDBlock: &ProducerIDBlockRecord{Next: im.NextProducerID}})
	}
	return rs
}

func encodeRecord(r Record) ([]byte, error) { return json.Marshal(r) }

func decodeRecord(b []byte) (Record, error) {
	var r Record
	err := json.Unmarshal(b, &r)
	return r, err
}
