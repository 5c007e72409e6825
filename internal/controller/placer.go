package controller

// Replica placement: where the replicas of new partitions go, as Kafka's
// StripedReplicaPlacer does it, over the brokers that can take them now.
//
// Goals, in order: replicas of a partition on distinct racks as far as the racks allow
// (broker.rack), replicas spread over the brokers, and leaders (the first replica)
// balanced. The brokers are grouped by rack; racks are visited round robin and, inside a
// rack, brokers are too. Each partition starts one rack further than the last, and inside
// each rack one broker further, which gives the "striped" pattern:
//
//	racks A, B, C with brokers A0 A1, B0 B1, C0 C1, replication factor 3:
//	partition 0: A0 B0 C0
//	partition 1: B1 C1 A1
//	partition 2: C0 A0 B0
//
// The starting rack and broker are random (from the controller's seeded source), so
// topic after topic the leaders do not all start on the same broker; once as many
// partitions were placed as there are brokers, the order of racks and of the brokers
// inside them is shuffled, so large topics do not repeat one pattern.
//
// One difference from Kafka on purpose: Kafka places replicas on fenced brokers too
// (only the leader must be unfenced), so a replication factor up to the number of
// registered brokers is accepted. Here only usable brokers (unfenced, not in controlled
// shutdown) are candidates, and a larger replication factor is INVALID_REPLICATION_FACTOR:
// a new partition starts with every replica in its ISR.

import (
	"cmp"
	"math/rand/v2"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/metadata"
)

// usableBroker is a broker new replicas may go to.
type usableBroker struct {
	id   int32
	rack string
}

// usableBrokers returns the brokers that are unfenced and not in controlled shutdown,
// by ID.
func usableBrokers(im *metadata.Image) []usableBroker {
	var out []usableBroker
	for b := range im.Brokers() {
		if isActive(b) {
			out = append(out, usableBroker{id: b.ID, rack: b.Rack})
		}
	}
	return out
}

// isActive reports whether a broker may lead and join ISRs: registered, unfenced and not
// shutting down (Kafka's ClusterControlManager.isActive).
func isActive(b *metadata.Broker) bool { return b != nil && !b.Fenced && !b.InControlledShutdown }

// rackBrokers is one rack's brokers, visited round robin.
type rackBrokers struct {
	name    string
	brokers []int32
	offset  int // where this rack's round starts, moved by one each partition
	taken   int // brokers handed out in the current partition
	round   int // the partition the counters are for
}

// next returns the rack's next broker for partition round, or -1 once every broker of
// the rack holds a replica of that partition.
func (r *rackBrokers) next(round int) int32 {
	if r.round != round {
		r.round, r.taken = round, 0
		r.offset = (r.offset + 1) % len(r.brokers)
	}
	if r.taken >= len(r.brokers) {
		return -1
	}
	b := r.brokers[(r.offset+r.taken)%len(r.brokers)]
	r.taken++
	return b
}

// placer places the partitions of one change. It is not safe for concurrent use.
type placer struct {
	rnd     *rand.Rand
	racks   []*rackBrokers
	brokers int
	offset  int // the rack the next partition starts at
	round   int // the partition being placed, counted from 1 (never reset)
	placed  int // partitions placed since the last shuffle
}

// newPlacer returns a placer over brokers, with random starting points from rnd.
func newPlacer(brokers []usableBroker, rnd *rand.Rand) *placer {
	p := &placer{rnd: rnd, brokers: len(brokers)}
	byRack := map[string]*rackBrokers{}
	for _, b := range brokers {
		r := byRack[b.rack]
		if r == nil {
			r = &rackBrokers{name: b.rack}
			byRack[b.rack] = r
			p.racks = append(p.racks, r)
		}
		r.brokers = append(r.brokers, b.id)
	}
	slices.SortFunc(p.racks, func(a, b *rackBrokers) int { return cmp.Compare(a.name, b.name) })
	for _, r := range p.racks {
		slices.Sort(r.brokers)
		r.offset = rnd.IntN(len(r.brokers))
	}
	if len(p.racks) > 0 {
		p.offset = rnd.IntN(len(p.racks))
	}
	return p
}

// place returns the replicas of the next partition, the leader first.
func (p *placer) place(replicationFactor int) ([]int32, error) {
	switch {
	case replicationFactor <= 0:
		return nil, errorf(kerr.InvalidReplicationFactor, "Replication factor must be larger than 0.")
	case p.brokers == 0:
		return nil, errorf(kerr.InvalidReplicationFactor, "Unable to replicate the partition %d time(s): All brokers are currently fenced.", replicationFactor)
	case replicationFactor > p.brokers:
		return nil, errorf(kerr.InvalidReplicationFactor, "Unable to replicate the partition %d time(s): The target replication factor of %d cannot be reached because only %d broker(s) are unfenced.",
			replicationFactor, replicationFactor, p.brokers)
	}
	if p.placed == p.brokers && p.brokers > 1 {
		p.shuffle()
	}
	p.round++
	out := make([]int32, 0, replicationFactor)
	for r := p.offset % len(p.racks); len(out) < replicationFactor; r = (r + 1) % len(p.racks) {
		// replicationFactor <= brokers, so the racks run out of brokers only after
		// the partition has them all.
		if b := p.racks[r].next(p.round); b >= 0 {
			out = append(out, b)
		}
	}
	p.offset = (p.offset + 1) % len(p.racks)
	p.placed++
	return out, nil
}

// shuffle mixes the order of racks and of brokers inside them, so the next partitions
// take other combinations.
func (p *placer) shuffle() {
	p.rnd.Shuffle(len(p.racks), func(i, j int) { p.racks[i], p.racks[j] = p.racks[j], p.racks[i] })
	for _, r := range p.racks {
		p.rnd.Shuffle(len(r.brokers), func(i, j int) { r.brokers[i], r.brokers[j] = r.brokers[j], r.brokers[i] })
	}
	p.placed = 0
}
