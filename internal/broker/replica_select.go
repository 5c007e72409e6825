package broker

// Fetch from the closest replica (KIP-392). With replica.selector.class set to Kafka's
// rack-aware selector, a partition's leader answers a consumer's fetch that names its
// rack (client.rack) with a preferred read replica: an in-sync replica on a broker of
// that rack, registered, unfenced and reachable on the consumer's listener; the
// consumer then fetches from it. The leader itself is preferred when its own rack
// matches, or no replica does. Followers serve consumers' fetches (Fetch v11+) up to
// their high watermark either way, as Kafka's do.

import (
	"slices"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/partition"
)

// RackAwareReplicaSelector is the replica.selector.class value that turns KIP-392 on.
const RackAwareReplicaSelector = "org.apache.kafka.common.replica.RackAwareReplicaSelector"

// PreferredReadReplica returns the replica a consumer in clientRack, on listener,
// should read partition idx of topic from, or -1 for this node (the leader) or when
// the rack-aware selector is off.
func (b *Broker) PreferredReadReplica(topic string, idx int32, clientRack, listener string) int32 {
	if clientRack == "" || b.cfg.Values["replica.selector.class"] != RackAwareReplicaSelector {
		return -1
	}
	im := b.Image()
	mp := imagePartition(im, topic, idx)
	if mp == nil || mp.Leader != b.cfg.NodeID || len(mp.Replicas()) < 2 {
		return -1
	}
	if me := im.Broker(b.cfg.NodeID); me != nil && me.Rack == clientRack {
		return -1
	}
	p := b.Partition(topic, idx)
	if p == nil || !p.Replicated() {
		return -1
	}
	// The leader's committed ISR: each member has at least the high watermark, all a
	// consumer may read.
	isr := p.ISR()
	for _, id := range mp.Replicas() {
		if id == b.cfg.NodeID || !slices.Contains(isr, id) {
			continue
		}
		if br := im.Broker(id); usable(br, listener) && br.Rack == clientRack {
			return id
		}
	}
	return -1
}

func usable(br *metadata.Broker, listener string) bool {
	return br != nil && !br.Fenced && !br.InControlledShutdown && br.Listener(listener) != nil
}

// FollowerPartition returns the partition if this node hosts it as a follower (a
// consumer may read from it, KIP-392), else nil.
func (b *Broker) FollowerPartition(topic string, idx int32) *partition.Partition {
	p := b.Partition(topic, idx)
	if p == nil || !p.Replicated() || p.Role() != partition.RoleFollower {
		return nil
	}
	return p
}
