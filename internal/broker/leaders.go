package broker

// Which partitions this node serves to clients: those it leads and has open. For any
// other partition of the image a client is told NOT_LEADER_OR_FOLLOWER with the leader
// the image names (KIP-951 lets Produce and Fetch responses carry it, and its endpoint,
// so the client need not refresh its metadata first).

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/partition"
)

// NotLeaderError is a partition this node does not lead, or has not opened yet:
// NOT_LEADER_OR_FOLLOWER. LeaderID is the leader the image names (-1 if none).
type NotLeaderError struct {
	Topic       string
	Partition   int32
	LeaderID    int32
	LeaderEpoch int32
}

func (e *NotLeaderError) Error() string {
	return fmt.Sprintf("%v: %s-%d is led by node %d (leader epoch %d)", kerr.NotLeaderForPartition, e.Topic, e.Partition, e.LeaderID, e.LeaderEpoch)
}

func (e *NotLeaderError) Unwrap() error { return kerr.NotLeaderForPartition }

// LeaderPartition returns the partition if this node leads it and has it open. The
// error is UNKNOWN_TOPIC_OR_PARTITION for a partition the image does not have,
// KAFKA_STORAGE_ERROR for one this node could not open (its log dir is offline), and a
// *NotLeaderError otherwise.
func (b *Broker) LeaderPartition(topic string, index int32) (*partition.Partition, error) {
	h := b.hosted.Load()
	key := partKey{topic, index}
	if p, _, leading := h.get(key); p != nil && leading {
		return p, nil
	}
	mp := imagePartition(b.Image(), topic, index)
	if mp == nil {
		return nil, kerr.UnknownTopicOrPartition
	}
	if err, failed := h.failed[key]; failed && mp.HasReplica(b.cfg.NodeID) {
		return nil, storageError(err)
	}
	return nil, &NotLeaderError{Topic: topic, Partition: index, LeaderID: mp.Leader, LeaderEpoch: mp.LeaderEpoch}
}

// ReplicaPartition returns the partition if this node hosts it, as leader or follower
// (Kafka's ReplicaManager.getPartitionOrError: DescribeProducers may ask any replica).
// The error is UNKNOWN_TOPIC_OR_PARTITION for a partition the image does not have,
// KAFKA_STORAGE_ERROR for one this node could not open or whose log dir failed, and a
// *NotLeaderError (NOT_LEADER_OR_FOLLOWER) for one this node does not host.
func (b *Broker) ReplicaPartition(topic string, index int32) (*partition.Partition, error) {
	if p := b.Partition(topic, index); p != nil {
		if err := p.Log().Err(); err != nil {
			return nil, storageError(err)
		}
		return p, nil
	}
	_, err := b.LeaderPartition(topic, index)
	return nil, err
}

// LeadsUnopened reports whether the image makes this node the leader of a partition it
// has not opened yet (Metadata answers LEADER_NOT_AVAILABLE for it).
func (b *Broker) LeadsUnopened(im *metadata.Image, topic string, index int32) bool {
	mp := imagePartition(im, topic, index)
	if mp == nil || mp.Leader != b.cfg.NodeID || !b.cfg.IsBroker() {
		return false
	}
	p, id, leading := b.hosted.Load().get(partKey{topic, index})
	return p == nil || !leading || id != im.Topic(topic).ID
}

// QuorumLeader is the metadata quorum's leader, the active controller, or -1 while there
// is none known. Metadata and DescribeCluster derive the controller they name from it.
func (b *Broker) QuorumLeader() int32 {
	if l, _ := b.quorum.Leader(); l.LeaderID != 0 {
		return int32(l.LeaderID)
	}
	return -1
}

// imagePartition returns a partition of im, or nil.
func imagePartition(im *metadata.Image, topic string, index int32) *metadata.Partition {
	t := im.Topic(topic)
	if t == nil {
		return nil
	}
	return t.Partition(index)
}
