package controller

// Partition reassignment: AlterPartitionReassignments v0-1 and ListPartitionReassignments
// v0, as Kafka's ReplicationControlManager decides them (KIP-455), and the assignment
// part of every partition change (PartitionChangeBuilder, PartitionReassignmentReplicas,
// PartitionReassignmentRevert).
//
// A reassignment moves a partition from its replicas to target replicas in stages:
//
//  1. One change record sets Replicas to the target followed by the replicas being
//     removed, AddingReplicas to the target's new brokers and RemovingReplicas to the
//     current ones not in the target. Brokers host the adding replicas as followers.
//  2. Once the ISR holds every replica of the target (the leader's AlterPartition adds
//     the caught-up followers), the same change that expands the ISR completes the
//     reassignment: Replicas becomes the target, the ISR loses the removed replicas, the
//     adding and removing lists are cleared, and if the leader was removed the first
//     target replica in the ISR leads. The leader epoch rises whenever a replica leaves.
//     The removed brokers stop hosting the partition and delete it.
//
// A reassignment that needs no catching up (a reordering, or only removals from a full
// ISR) completes in its first record. A new target replaces an ongoing one (the current
// replicas are then the ongoing reassignment's union). A null target cancels: the
// replicas go back to the original ones (the adding ones leave, the ISR with them), an
// unclean election if no original replica is in the ISR, refused unless the topic allows
// unclean elections. Errors per partition as Kafka's: an unknown topic or partition
// UNKNOWN_TOPIC_OR_PARTITION; an empty target, a broker twice or one not registered
// INVALID_REPLICA_ASSIGNMENT (fenced brokers may be named, as in Kafka); a cancel with
// nothing to cancel NO_REASSIGNMENT_IN_PROGRESS; from v1 with
// allow_replication_factor_change false, a target of another size than the current
// replicas INVALID_REPLICATION_FACTOR (KIP-860). A partition named twice in one request
// is refused INVALID_REQUEST (its second change would be decided on a stale state).

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
)

// assignment is a partition's replica assignment: its replicas and, while a
// reassignment is under way, the replicas being added and removed (all within
// replicas).
type replicaAssignment struct {
	replicas, adding, removing []int32
}

// currentAssignment is p's assignment as the image has it.
func currentAssignment(p *metadata.Partition) replicaAssignment {
	return replicaAssignment{replicas: p.Replicas(), adding: p.AddingReplicas(), removing: p.RemovingReplicas()}
}

// reassigning reports whether p has a reassignment under way.
func reassigning(p *metadata.Partition) bool {
	return len(p.AddingReplicas()) > 0 || len(p.RemovingReplicas()) > 0
}

// reassignTo is the assignment that moves replicas current to target: the target
// followed by the replicas leaving, with the adding and removing sets in ID order.
func reassignTo(current, target []int32) replicaAssignment {
	a := replicaAssignment{replicas: slices.Clone(target)}
	for _, r := range current {
		if !slices.Contains(target, r) {
			a.removing = append(a.removing, r)
		}
	}
	for _, r := range target {
		if !slices.Contains(current, r) {
			a.adding = append(a.adding, r)
		}
	}
	slices.Sort(a.removing)
	slices.Sort(a.adding)
	a.replicas = append(a.replicas, a.removing...)
	return a
}

// original is the replicas before the reassignment: without the ones being added.
func (a replicaAssignment) original() []int32 {
	var out []int32
	for _, r := range a.replicas {
		if !slices.Contains(a.adding, r) {
			out = append(out, r)
		}
	}
	return out
}

// complete returns the assignment and ISR once a reassignment completes with target
// ISR isr: the replicas and ISR without the removed ones, if the ISR then holds every
// replica. ok is false if there is no reassignment, or it cannot complete yet.
func (a replicaAssignment) complete(isr []int32) (done replicaAssignment, newISR []int32, ok bool) {
	if len(a.adding) == 0 && len(a.removing) == 0 {
		return a, isr, false
	}
	keep := func(l []int32) []int32 {
		var out []int32
		for _, r := range l {
			if !slices.Contains(a.removing, r) {
				out = append(out, r)
			}
		}
		return out
	}
	newISR, replicas := keep(isr), keep(a.replicas)
	if len(newISR) == 0 || len(replicas) == 0 {
		return a, isr, false
	}
	for _, r := range replicas {
		if !slices.Contains(newISR, r) {
			return a, isr, false
		}
	}
	return replicaAssignment{replicas: replicas}, newISR, true
}

// revert is a cancel's outcome: the original replicas, the ISR without the adding ones,
// and whether that ISR had to be made up (unclean: none of the ISR was original).
func (a replicaAssignment) revert(isr []int32) (replicas, newISR []int32, unclean bool) {
	replicas = a.original()
	for _, r := range isr {
		if !slices.Contains(a.adding, r) {
			newISR = append(newISR, r)
		}
	}
	if len(newISR) == 0 && len(replicas) > 0 {
		return replicas, []int32{replicas[0]}, true
	}
	return replicas, newISR, false
}

// setChanges records in rec the fields of a that differ from p's.
func (a replicaAssignment) setChanges(rec *metadata.PartitionChangeRecord, p *metadata.Partition) {
	if !slices.Equal(a.replicas, p.Replicas()) {
		rec.Set |= metadata.SetReplicas
		rec.Replicas = slices.Clone(a.replicas)
	}
	if !slices.Equal(a.adding, p.AddingReplicas()) {
		rec.Set |= metadata.SetAddingReplicas
		rec.AddingReplicas = nonNil(a.adding)
	}
	if !slices.Equal(a.removing, p.RemovingReplicas()) {
		rec.Set |= metadata.SetRemovingReplicas
		rec.RemovingReplicas = nonNil(a.removing)
	}
}

func nonNil(l []int32) []int32 {
	if l == nil {
		return []int32{}
	}
	return slices.Clone(l)
}

// containsAll reports whether l holds every member of sub.
func containsAll(l, sub []int32) bool {
	for _, r := range sub {
		if !slices.Contains(l, r) {
			return false
		}
	}
	return true
}

// keepReplicas returns the members of l that are in replicas.
func keepReplicas(l, replicas []int32) []int32 {
	var out []int32
	for _, r := range l {
		if slices.Contains(replicas, r) {
			out = append(out, r)
		}
	}
	return out
}

func (c *core) alterPartitionReassignments(r *kmsg.AlterPartitionAssignmentsRequest) decision {
	im := c.spec
	es := c.electionSettings()
	type key struct {
		topic     string
		partition int32
	}
	count := map[key]int{}
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			count[key{rt.Topic, rp.Partition}]++
		}
	}
	var rs []metadata.Record
	errs := make([][]error, len(r.Topics))
	for ti, rt := range r.Topics {
		t := im.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			var err error
			if count[key{rt.Topic, rp.Partition}] > 1 {
				err = errorf(kerr.InvalidRequest, "Partition %s:%d appears more than once in the request.", rt.Topic, rp.Partition)
			} else {
				var rec *metadata.PartitionChangeRecord
				rec, err = reassignPartition(im, es, t, rt.Topic, rp, r.Version < 1 || r.AllowReplicationFactorChange)
				if rec != nil {
					rs = append(rs, rec)
				}
			}
			errs[ti] = append(errs[ti], err)
		}
	}
	if len(rs) > metadata.MaxBatchRecords {
		return failed(r, errExcessivelyLarge)
	}
	return decision{records: rs, finish: func(uint64) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
		resp.AllowReplicationFactorChange = r.Version < 1 || r.AllowReplicationFactorChange
		for ti, rt := range r.Topics {
			st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			st.Topic = rt.Topic
			for pi, rp := range rt.Partitions {
				sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
				sp.Partition = rp.Partition
				if err := errs[ti][pi]; err != nil {
					sp.ErrorCode, sp.ErrorMessage = codeOf(err), errMsg(err)
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}}
}

// reassignPartition decides one partition of an AlterPartitionReassignments: its change
// record (nil: nothing to change) or why not.
func reassignPartition(im *metadata.Image, es electionSettings, t *metadata.Topic, name string,
	rp kmsg.AlterPartitionAssignmentsRequestTopicPartition, allowRFChange bool) (*metadata.PartitionChangeRecord, error) {
	if t == nil {
		return nil, errorf(kerr.UnknownTopicOrPartition, "Unable to find a topic named %s.", name)
	}
	p := t.Partition(rp.Partition)
	if p == nil {
		return nil, errorf(kerr.UnknownTopicOrPartition, "Unable to find partition %s:%d.", name, rp.Partition)
	}
	tc := es.broker.ResolveTopic(t.Configs)
	ch := partitionChange{topicID: t.ID, index: rp.Partition, p: p, targetISR: p.ISR(),
		acceptable: func(r int32) bool { return isActive(im.Broker(r)) },
		unclean:    tc.UncleanLeaderElection, elr: es.elr, minISR: int(tc.MinInsyncReplicas)}
	if rp.Replicas == nil { // cancel
		if !reassigning(p) {
			return nil, errorf(kerr.NoReassignmentInProgress, "%s", kerr.NoReassignmentInProgress.Message)
		}
		replicas, isr, unclean := currentAssignment(p).revert(p.ISR())
		if unclean && !tc.UncleanLeaderElection {
			return nil, errorf(kerr.InvalidReplicaAssignment, "Unable to revert partition assignment for %s:%d because it would require an unclean leader election.", name, rp.Partition)
		}
		ch.targetISR, ch.target = isr, &replicaAssignment{replicas: replicas}
		return ch.build(), nil
	}
	if err := checkAssignment(im, rp.Replicas, -1); err != nil {
		return nil, err
	}
	if cur := currentAssignment(p).original(); !allowRFChange && len(rp.Replicas) != len(cur) {
		return nil, errorf(kerr.InvalidReplicationFactor, "The replication factor is changed from %d to %d", len(cur), len(rp.Replicas))
	}
	a := reassignTo(p.Replicas(), rp.Replicas)
	ch.target = &a
	return ch.build(), nil
}

func (c *core) listPartitionReassignments(r *kmsg.ListPartitionReassignmentsRequest) decision {
	im := c.spec
	resp := r.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	add := func(t *metadata.Topic, partitions []int32) {
		st := kmsg.NewListPartitionReassignmentsResponseTopic()
		st.Topic = t.Name
		for _, i := range partitions {
			p := t.Partition(i)
			if p == nil || !reassigning(p) {
				continue
			}
			sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			sp.Partition = i
			sp.Replicas = slices.Clone(p.Replicas())
			sp.AddingReplicas = nonNil(p.AddingReplicas())
			sp.RemovingReplicas = nonNil(p.RemovingReplicas())
			st.Partitions = append(st.Partitions, sp)
		}
		if len(st.Partitions) > 0 {
			resp.Topics = append(resp.Topics, st)
		}
	}
	if r.Topics == nil {
		for t := range im.Topics() {
			all := make([]int32, t.NumPartitions())
			for i := range all {
				all[i] = int32(i)
			}
			add(t, all)
		}
	} else {
		for _, rt := range r.Topics {
			if t := im.Topic(rt.Topic); t != nil {
				add(t, rt.Partitions)
			}
		}
	}
	return decision{finish: func(uint64) kmsg.Response { return resp }}
}

// decideReassignment decides AlterPartitionReassignments and ListPartitionReassignments.
func (c *core) decideReassignment(req kmsg.Request) decision {
	if r, ok := req.(*kmsg.AlterPartitionAssignmentsRequest); ok {
		return c.alterPartitionReassignments(r)
	}
	return c.listPartitionReassignments(req.(*kmsg.ListPartitionReassignmentsRequest))
}
