package controller

// ElectLeaders v0-2 (KIP-183, KIP-460), as Kafka's ReplicationControlManager.electLeaders
// decides it:
//   - PREFERRED (0; v0 knows no other): the first replica leads if it is in the ISR (or,
//     with the ISR empty, in the ELR) and active. A partition already led by it answers
//     ELECTION_NOT_NEEDED; one where nothing can change answers
//     PREFERRED_LEADER_NOT_AVAILABLE. If the preferred replica may not lead but the
//     partition's leader may not either, the election still moves the leadership to
//     another ISR member, as Kafka's does.
//   - UNCLEAN (1): only for a partition with no leader (else ELECTION_NOT_NEEDED): an ISR
//     or ELR member if one is active, else any active replica, whose ISR then is itself
//     alone (data may be lost); none: ELIGIBLE_LEADERS_NOT_AVAILABLE.
//   - Any other type: INVALID_REQUEST for the whole request.
//   - Null topics elect for every partition of every topic and leave out the partitions
//     that answer ELECTION_NOT_NEEDED. A topic or partition that does not exist answers
//     UNKNOWN_TOPIC_OR_PARTITION.
// Every change is one entry; the answer goes out once it is committed.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
)

// Election types of ElectLeaders (Kafka's ElectionType).
const (
	electionPreferred int8 = 0
	electionUnclean   int8 = 1
)

// electLeader decides one partition's election of type typ on im: the change record
// (nil: none) and the error to answer (nil: none).
func electLeader(im *metadata.Image, es electionSettings, topic string, partition int32, typ int8) (*metadata.PartitionChangeRecord, *kerr.Error, string) {
	t := im.Topic(topic)
	if t == nil {
		return nil, kerr.UnknownTopicOrPartition, "No such topic as " + topic
	}
	p := t.Partition(partition)
	if p == nil {
		return nil, kerr.UnknownTopicOrPartition, fmt.Sprintf("No such partition as %s-%d", topic, partition)
	}
	if (typ == electionPreferred && len(p.Replicas()) > 0 && p.Leader == p.Replicas()[0]) ||
		(typ == electionUnclean && p.Leader != metadata.NoLeader) {
		return nil, kerr.ElectionNotNeeded, ""
	}
	acceptable := func(r int32) bool { return isActive(im.Broker(r)) }
	ch := es.topic(t).change(t, int(partition), acceptable, es.elr)
	ch.preferred = typ == electionPreferred
	ch.unclean = typ == electionUnclean
	rec := ch.build()
	if rec == nil {
		if typ == electionPreferred {
			return nil, kerr.PreferredLeaderNotAvailable, fmt.Sprintf("Failed to elect leader for partition %s-%d under strategy PreferredReplicaPartitionLeaderElectionStrategy", topic, partition)
		}
		return nil, kerr.EligibleLeadersNotAvailable, fmt.Sprintf("Failed to elect leader for partition %s-%d under strategy UncleanPartitionLeaderElectionStrategy", topic, partition)
	}
	return rec, nil, ""
}

func (c *core) electLeaders(r *kmsg.ElectLeadersRequest) decision {
	typ := electionPreferred
	if r.Version >= 1 {
		typ = r.ElectionType
	}
	if typ != electionPreferred && typ != electionUnclean {
		return failed(r, errorf(kerr.InvalidRequest, "Unknown election type %d", typ))
	}
	im, es := c.spec, c.electionSettings()
	type tp struct {
		topic     string
		partition int32
	}
	type result struct {
		code *kerr.Error
		msg  string
	}
	results := map[tp]result{}
	var rs []metadata.Record
	elect := func(topic string, partition int32) result {
		k := tp{topic, partition}
		if res, ok := results[k]; ok { // a partition named twice is elected once
			return res
		}
		rec, code, msg := electLeader(im, es, topic, partition, typ)
		if rec != nil {
			rs = append(rs, rec)
		}
		results[k] = result{code, msg}
		return results[k]
	}
	resp := r.ResponseKind().(*kmsg.ElectLeadersResponse)
	add := func(st *kmsg.ElectLeadersResponseTopic, partition int32, res result) {
		sp := kmsg.NewElectLeadersResponseTopicPartition()
		sp.Partition = partition
		if res.code != nil {
			sp.ErrorCode = res.code.Code
			msg := res.msg
			if msg == "" {
				msg = res.code.Description
			}
			sp.ErrorMessage = &msg
		}
		st.Partitions = append(st.Partitions, sp)
	}
	if r.Topics == nil {
		for t := range im.Topics() {
			st := kmsg.NewElectLeadersResponseTopic()
			st.Topic = t.Name
			for i := range t.Partitions {
				if res := elect(t.Name, int32(i)); res.code != kerr.ElectionNotNeeded {
					add(&st, int32(i), res)
				}
			}
			resp.Topics = append(resp.Topics, st)
		}
	} else {
		for _, rt := range r.Topics {
			st := kmsg.NewElectLeadersResponseTopic()
			st.Topic = rt.Topic
			for _, p := range rt.Partitions {
				add(&st, p, elect(rt.Topic, p))
			}
			resp.Topics = append(resp.Topics, st)
		}
	}
	if n := len(rs); n > 0 {
		c.logger.Info("controller: electing leaders", "type", electionName(typ), "partitions", n)
	}
	return decision{records: rs, finish: func(uint64) kmsg.Response { return resp }}
}

func electionName(typ int8) string {
	if typ == electionUnclean {
		return "unclean"
	}
	return "preferred"
}

// clearELRRecords returns the records that clear the ELR and last known ELR of every
// partition whose topic's effective min.insync.replicas differs between the speculative
// image and next, the image with a config change applied (KIP-966, Kafka's
// ClearElrRecord): the ELR's promise, that its members hold every committed record,
// rests on the high watermark not moving while the ISR is below min.insync.replicas,
// and a new value breaks it.
func (c *core) clearELRRecords(next *metadata.Image) []metadata.Record {
	if c.spec.FeatureLevel(ELRFeature) < 1 {
		return nil
	}
	before := electionSettings{broker: c.cfg.Broker.WithDynamicDefaults(c.spec.BrokerConfigs(""))}
	after := electionSettings{broker: c.cfg.Broker.WithDynamicDefaults(next.BrokerConfigs(""))}
	var out []metadata.Record
	for t := range next.Topics() {
		old := c.spec.TopicByID(t.ID)
		if old == nil || before.topic(old).minISR == after.topic(t).minISR {
			continue
		}
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if len(p.ELR()) == 0 && len(p.LastKnownELR()) == 0 {
				continue
			}
			out = append(out, &metadata.PartitionChangeRecord{TopicID: t.ID, Partition: int32(i), PartitionEpoch: p.PartitionEpoch,
				Set: metadata.SetELR | metadata.SetLastKnownELR, ELR: []int32{}, LastKnownELR: []int32{}})
		}
	}
	return out
}
