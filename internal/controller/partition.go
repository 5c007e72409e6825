package controller

// Leader election and ISR changes of one partition, as Kafka's PartitionChangeBuilder
// decides them, and the changes a broker's fencing, unfencing or controlled shutdown asks
// of every partition (ReplicationControlManager.generateLeaderAndIsrUpdates).
//
// The rules, for a partition and a target ISR (the ISR without the broker that leaves):
//   - The leader stays if it is in the target ISR and acceptable (active: unfenced, not
//     shutting down, and not the broker that leaves). Otherwise the first replica, in
//     replica order, that is in the target ISR and acceptable leads. With KIP-966's
//     eligible leader replicas (ELR) and an empty ISR, an acceptable ELR member may lead,
//     and becomes the ISR. With unclean.leader.election.enable, any acceptable replica
//     may lead as a last resort; the ISR becomes that replica alone (data may be lost).
//     Otherwise the partition has no leader (-1).
//   - The ISR becomes the target ISR, except that it never becomes empty (KIP-841): the
//     last member stays, so the partition knows which replica has its data when it
//     comes back. With ELR the ISR may become empty: the members that left while the ISR
//     was below min.insync.replicas are kept as the ELR instead, and the last leader as
//     the last known ELR.
//   - Without ELR, any ELR a partition carries is cleared, as Kafka does.
//
// Everything here is a pure function of the image and its arguments.

import (
	"slices"

	"github.com/google/uuid"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/metadata"
)

// partitionChange is one partition's change being decided.
type partitionChange struct {
	topicID   uuid.UUID
	index     int32
	p         *metadata.Partition
	targetISR []int32
	// acceptable reports whether a replica may lead.
	acceptable func(int32) bool
	// unclean: an unclean election is allowed as a last resort (the topic's
	// unclean.leader.election.enable, or ElectLeaders' UNCLEAN).
	unclean bool
	// preferred: the first replica leads if it may (ElectLeaders' PREFERRED, the
	// leader rebalance), rather than the current leader staying.
	preferred bool
	// uncleanShutdown is a broker that restarted after an unclean shutdown (KIP-966):
	// it leaves the ISR and the ELR and may not lead (nil: none).
	uncleanShutdown []int32
	// elr: KIP-966's eligible leader replicas are kept; minISR is the topic's
	// min.insync.replicas.
	elr    bool
	minISR int
	// target: the assignment to move to (reassign.go); nil keeps the partition's.
	target *replicaAssignment
}

// build returns the change record, or nil if nothing changes.
func (c *partitionChange) build() *metadata.PartitionChangeRecord {
	p := c.p
	rec := &metadata.PartitionChangeRecord{TopicID: c.topicID, Partition: c.index, PartitionEpoch: p.PartitionEpoch}
	asg := currentAssignment(p)
	if c.target != nil {
		asg = *c.target
	}
	targetISR := c.targetISR
	if done, isr, ok := asg.complete(targetISR); ok {
		asg, targetISR = done, isr
	}
	targetELR := p.ELR()
	if c.elr {
		targetELR = c.populateELR(targetISR)
	} else {
		targetELR = nil
	}
	targetELR = keepReplicas(targetELR, asg.replicas)

	// Election.
	valid := func(r int32) bool {
		return r != metadata.NoLeader && (slices.Contains(targetISR, r) || (len(targetISR) == 0 && slices.Contains(targetELR, r))) && c.acceptable(r)
	}
	leader, unclean := metadata.NoLeader, false
	if c.preferred && len(p.Replicas()) > 0 && valid(p.Replicas()[0]) {
		leader = p.Replicas()[0]
	} else if valid(p.Leader) {
		leader = p.Leader
	} else if i := slices.IndexFunc(asg.replicas, valid); i >= 0 {
		leader = asg.replicas[i]
	} else if c.elr && len(targetISR) == 0 && len(targetELR) == 0 && len(p.LastKnownELR()) == 1 && c.acceptable(p.LastKnownELR()[0]) {
		// KIP-966's last resort: the last leader known, an election Kafka counts
		// as unclean.
		leader, unclean = p.LastKnownELR()[0], true
	} else if c.unclean {
		if i := slices.IndexFunc(asg.replicas, c.acceptable); i >= 0 {
			leader, unclean = asg.replicas[i], true
		}
	}
	if leader != p.Leader {
		rec.Set |= metadata.SetLeader
		rec.Leader = leader
		if slices.Contains(targetELR, leader) {
			targetISR = []int32{leader}
			targetELR = without(targetELR, leader)
		}
		if unclean {
			rec.Set |= metadata.SetISR
			rec.ISR = []int32{leader}
			targetELR = nil
		}
	} else if !containsAll(asg.replicas, p.Replicas()) {
		// A replica leaves: a new leader epoch, as Kafka forces one.
		rec.Set |= metadata.SetLeader
		rec.Leader = leader
	}

	// ISR.
	if rec.Set&metadata.SetISR == 0 && (len(targetISR) > 0 || c.elr) && !slices.Equal(targetISR, p.ISR()) {
		rec.Set |= metadata.SetISR
		rec.ISR = targetISR
	}
	newISR := p.ISR()
	if rec.Set&metadata.SetISR != 0 {
		newISR = rec.ISR
	}
	// The ELR never overlaps the ISR.
	for _, r := range newISR {
		targetELR = without(targetELR, r)
	}
	if !slices.Equal(targetELR, p.ELR()) {
		rec.Set |= metadata.SetELR
		rec.ELR = targetELR
	}

	// The last known leader (KIP-966, with ELR): recorded when the ISR first becomes
	// empty, cleared once the partition has a leader again.
	newLeader := p.Leader
	if rec.Set&metadata.SetLeader != 0 {
		newLeader = leader
	}
	switch {
	case c.elr && rec.Set&metadata.SetISR != 0 && len(rec.ISR) == 0 && p.Leader != metadata.NoLeader &&
		!slices.Equal(p.LastKnownELR(), []int32{p.Leader}):
		rec.Set |= metadata.SetLastKnownELR
		rec.LastKnownELR = []int32{p.Leader}
	case len(p.LastKnownELR()) > 0 && (newLeader != metadata.NoLeader || !c.elr || !containsAll(asg.replicas, p.LastKnownELR())):
		rec.Set |= metadata.SetLastKnownELR
		rec.LastKnownELR = []int32{}
	}
	asg.setChanges(rec, p)
	if rec.Set == 0 {
		return nil
	}
	return rec
}

// populateELR returns the ELR for the target ISR (KIP-966): empty while the ISR holds at
// least min.insync.replicas members; otherwise the ELR so far and the members leaving
// the ISR, in replica order.
func (c *partitionChange) populateELR(targetISR []int32) []int32 {
	if len(targetISR) >= c.minISR {
		return nil
	}
	p := c.p
	var elr []int32
	for _, r := range p.Replicas() {
		if slices.Contains(targetISR, r) || slices.Contains(c.uncleanShutdown, r) {
			continue
		}
		if slices.Contains(p.ELR(), r) || slices.Contains(p.ISR(), r) {
			elr = append(elr, r)
		}
	}
	return elr
}

func without(l []int32, r int32) []int32 {
	if !slices.Contains(l, r) {
		return l
	}
	out := make([]int32, 0, len(l)-1)
	for _, x := range l {
		if x != r {
			out = append(out, x)
		}
	}
	return out
}

// brokerEvent is what happens to one broker, for generateUpdates: remove leaves every
// ISR and leadership (fencing, controlled shutdown, a new incarnation over a live one;
// with unclean, a restart after an unclean shutdown, KIP-966: it leaves every ELR too);
// add may lead although the image still shows it fenced (unfencing). Either may be
// metadata.NoLeader.
type brokerEvent struct {
	remove, add int32
	unclean     bool
}

// brokerUncleanShutdown is the event of a broker restarted after an unclean shutdown.
func brokerUncleanShutdown(id int32) brokerEvent {
	return brokerEvent{remove: id, add: metadata.NoLeader, unclean: true}
}

// electionSettings are the settings that shape elections: the broker configuration (with
// the cluster's dynamic defaults) for each topic's unclean.leader.election.enable and
// min.insync.replicas, and whether ELR is kept.
type electionSettings struct {
	broker config.Broker
	elr    bool
}

// topicElection is one topic's settings, resolved once per topic.
type topicElection struct {
	unclean bool
	minISR  int
}

func (es electionSettings) topic(t *metadata.Topic) topicElection {
	tc := es.broker.ResolveTopic(t.Configs)
	return topicElection{unclean: tc.UncleanLeaderElection, minISR: int(tc.MinInsyncReplicas)}
}

// change starts the change of partition i of t with acceptable deciding who may lead;
// the target ISR is the current one. min.insync.replicas counts at most the replicas
// (Kafka's effective min ISR).
func (te topicElection) change(t *metadata.Topic, i int, acceptable func(int32) bool, elr bool) partitionChange {
	p := &t.Partitions[i]
	return partitionChange{topicID: t.ID, index: int32(i), p: p, targetISR: p.ISR(), acceptable: acceptable,
		unclean: te.unclean, elr: elr, minISR: min(te.minISR, len(p.Replicas()))}
}

// generateUpdates returns the partition changes ev asks of the partitions it concerns:
// with remove, those that have it in their ISR (with unclean, or their ELR); with add,
// those without a leader. It walks every partition, in topic name order.
func generateUpdates(im *metadata.Image, ev brokerEvent, es electionSettings) []metadata.Record {
	acceptable := func(r int32) bool {
		return r != ev.remove && (r == ev.add || isActive(im.Broker(r)))
	}
	var out []metadata.Record
	for t := range im.Topics() {
		var te *topicElection // resolved on first need: most topics are untouched
		for i := range t.Partitions {
			p := &t.Partitions[i]
			concerned := (ev.remove != metadata.NoLeader && (slices.Contains(p.ISR(), ev.remove) || (ev.unclean && slices.Contains(p.ELR(), ev.remove)))) ||
				(ev.add != metadata.NoLeader && p.Leader == metadata.NoLeader)
			if !concerned {
				continue
			}
			if te == nil {
				r := es.topic(t)
				te = &r
			}
			ch := te.change(t, i, acceptable, es.elr)
			ch.targetISR = without(p.ISR(), ev.remove)
			if ev.unclean {
				ch.uncleanShutdown = []int32{ev.remove}
			}
			if rec := ch.build(); rec != nil {
				out = append(out, rec)
			}
		}
	}
	return out
}

// leadsAny reports whether broker id leads any partition.
func leadsAny(im *metadata.Image, id int32) bool {
	for t := range im.Topics() {
		for i := range t.Partitions {
			if t.Partitions[i].Leader == id {
				return true
			}
		}
	}
	return false
}
