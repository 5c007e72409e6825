package controller

// AlterPartition v0-3: a partition's leader asks to change its ISR, as Kafka's
// ReplicationControlManager.alterPartition decides it. The request's broker epoch must
// be the leader's (STALE_BROKER_EPOCH for the whole request); per partition: the topic
// (by ID from v2, by name before) and partition must exist (UNKNOWN_TOPIC_ID,
// UNKNOWN_TOPIC_OR_PARTITION), the sender must be the leader (INVALID_REQUEST) at the
// current leader epoch (FENCED_LEADER_EPOCH) and partition epoch (INVALID_UPDATE_VERSION,
// so a stale change is refused); the new ISR must be replicas, hold the leader
// (INVALID_REQUEST), and name only active brokers, each with its current broker epoch
// when v3 gives one (INELIGIBLE_REPLICA, KIP-841). Accepted changes are one entry; each
// partition is answered with its state after it (a new partition epoch).

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
)

func (c *core) alterPartition(r *kmsg.AlterPartitionRequest) decision {
	im := c.spec
	if _, err := staleEpoch(im, r.BrokerID, r.BrokerEpoch); err != nil {
		return failed(r, err)
	}
	es := c.electionSettings()
	var rs []metadata.Record
	type answer struct {
		code int16
		p    kmsg.AlterPartitionResponseTopicPartition
	}
	answers := make([][]answer, len(r.Topics))
	for ti, rt := range r.Topics {
		var t *metadata.Topic
		if r.Version >= 2 {
			t = im.TopicByID(rt.TopicID)
		} else {
			t = im.Topic(rt.Topic)
		}
		for _, rp := range rt.Partitions {
			a := answer{p: kmsg.NewAlterPartitionResponseTopicPartition()}
			a.p.Partition = rp.Partition
			var p *metadata.Partition
			if t != nil {
				p = t.Partition(rp.Partition)
			}
			isr := rp.NewISR
			if r.Version >= 3 {
				isr = nil
				for _, e := range rp.NewEpochISR {
					isr = append(isr, e.BrokerID)
				}
			}
			switch {
			case t == nil && r.Version >= 2:
				a.code = kerr.UnknownTopicID.Code
			case p == nil:
				a.code = kerr.UnknownTopicOrPartition.Code
			case r.BrokerID != p.Leader:
				a.code = kerr.InvalidRequest.Code
			case rp.LeaderEpoch != p.LeaderEpoch:
				a.code = kerr.FencedLeaderEpoch.Code
			case rp.PartitionEpoch != p.PartitionEpoch:
				a.code = kerr.InvalidUpdateVersion.Code
			case !slices.Contains(isr, p.Leader) || slices.ContainsFunc(isr, func(b int32) bool { return !p.HasReplica(b) }) || hasDuplicates(isr):
				a.code = kerr.InvalidRequest.Code
			case !eligible(im, rp, r.Version):
				a.code = kerr.IneligibleReplica.Code
			default:
				state := func(isr []int32, epoch int32) {
					a.p.LeaderID, a.p.LeaderEpoch, a.p.ISR, a.p.PartitionEpoch = p.Leader, p.LeaderEpoch, isr, epoch
				}
				if slices.Equal(isr, p.ISR()) {
					state(p.ISR(), p.PartitionEpoch)
					break
				}
				// Decided as every partition change is (partition.go), so that members
				// leaving an ISR below min.insync.replicas become eligible leaders
				// (KIP-966), as Kafka's alterPartition does.
				ch := es.topic(t).change(t, int(rp.Partition), func(r int32) bool { return isActive(im.Broker(r)) }, es.elr)
				ch.targetISR = slices.Clone(isr)
				rec := ch.build()
				if rec == nil { // cannot be: the ISR differs
					state(p.ISR(), p.PartitionEpoch)
					break
				}
				rs = append(rs, rec)
				if rec.Set&metadata.SetLeader != 0 && rec.Leader != p.Leader {
					// The change completed a reassignment that moved the leader (Kafka
					// answers so, and the sender learns the rest from the metadata).
					a.code = kerr.NewLeaderElected.Code
					if r.Version <= 1 {
						a.code = kerr.FencedLeaderEpoch.Code
					}
					break
				}
				newISR := p.ISR()
				if rec.Set&metadata.SetISR != 0 {
					newISR = rec.ISR
				}
				state(slices.Clone(newISR), p.PartitionEpoch+1)
				if rec.Set&metadata.SetLeader != 0 {
					a.p.LeaderID, a.p.LeaderEpoch = rec.Leader, p.LeaderEpoch+1
				}
			}
			a.p.ErrorCode = a.code
			answers[ti] = append(answers[ti], a)
		}
	}
	return decision{records: rs, finish: func(uint64) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.AlterPartitionResponse)
		for ti, rt := range r.Topics {
			st := kmsg.NewAlterPartitionResponseTopic()
			st.Topic, st.TopidID = rt.Topic, rt.TopicID // kmsg spells it TopidID
			for _, a := range answers[ti] {
				st.Partitions = append(st.Partitions, a.p)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}}
}

// eligible reports whether every member of a requested ISR may be in it: active, and
// from v3 at the broker epoch the leader saw it with (-1: not checked).
func eligible(im *metadata.Image, rp kmsg.AlterPartitionRequestTopicPartition, version int16) bool {
	if version >= 3 {
		for _, e := range rp.NewEpochISR {
			b := im.Broker(e.BrokerID)
			if !isActive(b) || (e.BrokerEpoch != -1 && e.BrokerEpoch != b.Epoch) {
				return false
			}
		}
		return true
	}
	for _, id := range rp.NewISR {
		if !isActive(im.Broker(id)) {
			return false
		}
	}
	return true
}

func hasDuplicates(l []int32) bool {
	seen := map[int32]bool{}
	for _, v := range l {
		if seen[v] {
			return true
		}
		seen[v] = true
	}
	return false
}
