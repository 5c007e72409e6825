package group

// Persistence and description of KIP-848 consumer groups: the records a
// heartbeat writes, their replay at load, and ConsumerGroupDescribe.

import (
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memberView is what of a member is persisted, to tell whether a heartbeat
// changed it.
type memberView struct {
	epoch    int32
	state    memberState
	assigned assignment
	revoking assignment
}

func memberSnapshot(m *consumerMember) memberView {
	return memberView{m.epoch, m.state, m.assigned.clone(), m.revoking.clone()}
}

func (v memberView) equal(o memberView) bool {
	return v.epoch == o.epoch && v.state == o.state && v.assigned.equal(o.assigned) && v.revoking.equal(o.revoking)
}

func (c *Coordinator) consumerGroupRecord(g *group) Record {
	return Record{
		Key:   consumerGroupKey(g.id),
		Value: encodeJSONValue(consumerGroupValue{Epoch: g.cg.epoch, Assignor: g.cg.assignor}),
	}
}

func (c *Coordinator) consumerMemberRecord(g *group, m *consumerMember) Record {
	v := consumerMemberValue{
		InstanceID:       m.instanceID,
		RackID:           m.rackID,
		ClientID:         m.clientID,
		ClientHost:       m.clientHost,
		SubscribedTopics: m.topicNames,
		SubscribedRegex:  m.regexSource,
		ServerAssignor:   m.serverAssignor,
		RebalanceTimeout: int32(m.rebalanceTimeout.Milliseconds()),
		MemberEpoch:      m.epoch,
		PreviousEpoch:    m.previousEpoch,
		State:            uint8(m.state),
		Assigned:         hexAssignment(m.assigned),
		Revoking:         hexAssignment(m.revoking),
	}
	return Record{Key: consumerMemberKey(g.id, m.id), Value: encodeJSONValue(v)}
}

func hexAssignment(a assignment) map[string][]int32 {
	if len(a) == 0 {
		return nil
	}
	out := make(map[string][]int32, len(a))
	for t, ps := range a {
		if len(ps) > 0 {
			out[hex.EncodeToString(t[:])] = ps
		}
	}
	return out
}

func unhexAssignment(m map[string][]int32) (assignment, error) {
	a := make(assignment, len(m))
	for s, ps := range m {
		var t [16]byte
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != 16 {
			return nil, fmt.Errorf("bad topic ID %q", s)
		}
		copy(t[:], b)
		for _, p := range ps {
			a.add(t, p)
		}
	}
	return a, nil
}

func (c *Coordinator) replayConsumerGroup(r Record) error {
	id, _, err := readString(r.Key[2:])
	if err != nil {
		return fmt.Errorf("decode consumer group key: %w", err)
	}
	g := c.groups[id]
	if r.Value == nil {
		if g != nil && g.typ == typeConsumer {
			delete(c.groups, id)
		}
		return nil
	}
	var v consumerGroupValue
	if err := decodeJSONValue(r.Value, &v); err != nil {
		return fmt.Errorf("decode consumer group %q: %w", id, err)
	}
	switch {
	case g == nil:
		g = c.newConsumerGroup(id)
	case g.typ == typeClassic:
		c.convertToConsumerLocked(g)
	}
	g.cg.epoch = v.Epoch
	g.cg.assignmentEpoch = v.Epoch
	g.cg.assignor = v.Assignor
	return nil
}

func (c *Coordinator) replayConsumerMember(r Record) error {
	groupID, rest, err := readString(r.Key[2:])
	if err != nil {
		return fmt.Errorf("decode consumer member key: %w", err)
	}
	memberID, _, err := readString(rest)
	if err != nil {
		return fmt.Errorf("decode consumer member key: %w", err)
	}
	g := c.groups[groupID]
	if r.Value == nil {
		if g != nil && g.typ == typeConsumer {
			delete(g.cg.members, memberID)
			delete(g.cg.target, memberID)
		}
		return nil
	}
	var v consumerMemberValue
	if err := decodeJSONValue(r.Value, &v); err != nil {
		return fmt.Errorf("decode consumer member %q of %q: %w", memberID, groupID, err)
	}
	switch {
	case g == nil:
		g = c.newConsumerGroup(groupID)
	case g.typ == typeClassic:
		c.convertToConsumerLocked(g)
	}
	assigned, err := unhexAssignment(v.Assigned)
	if err != nil {
		return fmt.Errorf("consumer member %q of %q: %w", memberID, groupID, err)
	}
	revoking, err := unhexAssignment(v.Revoking)
	if err != nil {
		return fmt.Errorf("consumer member %q of %q: %w", memberID, groupID, err)
	}
	m := &consumerMember{
		id:               memberID,
		instanceID:       v.InstanceID,
		rackID:           v.RackID,
		clientID:         v.ClientID,
		clientHost:       v.ClientHost,
		topicNames:       v.SubscribedTopics,
		regexSource:      v.SubscribedRegex,
		serverAssignor:   v.ServerAssignor,
		rebalanceTimeout: msDuration(v.RebalanceTimeout),
		epoch:            v.MemberEpoch,
		previousEpoch:    v.PreviousEpoch,
		state:            memberState(v.State),
		assigned:         assigned,
		revoking:         revoking,
	}
	if m.regexSource != "" {
		if m.regex, err = compileTopicRegex(m.regexSource); err != nil {
			return fmt.Errorf("consumer member %q of %q: %w", memberID, groupID, err)
		}
	}
	g.cg.members[memberID] = m
	if m.instanceID != nil {
		g.cg.static[*m.instanceID] = memberID
	}
	// The target is not persisted: start from what members have, which
	// the first heartbeat after the restart recomputes stickily.
	g.cg.target[memberID] = assigned.clone()
	return nil
}

// ConsumerGroupDescribe handles ConsumerGroupDescribe v0+.
func (c *Coordinator) ConsumerGroupDescribe(req *kmsg.ConsumerGroupDescribeRequest) *kmsg.ConsumerGroupDescribeResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	names := make(map[[16]byte]string)
	for name, t := range c.topics() {
		names[t.ID] = name
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range req.Groups {
		rg := kmsg.NewConsumerGroupDescribeResponseGroup()
		rg.Group = id
		g := c.groups[id]
		switch unavailable := c.unavailableLocked(id); {
		case unavailable != nil:
			rg.ErrorCode = unavailable.Code
		case g == nil:
			rg.ErrorCode = kerr.GroupIDNotFound.Code
			rg.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("Group %s not found.", id))
		case g.typ != typeConsumer:
			rg.ErrorCode = kerr.GroupIDNotFound.Code
			rg.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("Group %s is not a consumer group.", id))
		default:
			cg := g.cg
			rg.State = cg.state().String()
			rg.Epoch = cg.epoch
			rg.AssignmentEpoch = cg.assignmentEpoch
			rg.AssignorName = cg.assignor
			ids := make([]string, 0, len(cg.members))
			for mid := range cg.members {
				ids = append(ids, mid)
			}
			slices.Sort(ids)
			for _, mid := range ids {
				m := cg.members[mid]
				rm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
				rm.MemberID = m.id
				rm.InstanceID = m.instanceID
				rm.RackID = m.rackID
				rm.MemberEpoch = m.epoch
				rm.ClientID = m.clientID
				rm.ClientHost = m.clientHost
				rm.SubscribedTopics = slices.Clone(m.topicNames)
				if m.regexSource != "" {
					rm.SubscribedTopicRegex = kmsg.StringPtr(m.regexSource)
				}
				rm.Assignment = describeAssignment(m.assigned, names)
				rm.TargetAssignment = describeAssignment(cg.target[m.id], names)
				rm.MemberType = 1 // KIP-1099: a consumer protocol member
				rg.Members = append(rg.Members, rm)
			}
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

func describeAssignment(a assignment, names map[[16]byte]string) kmsg.Assignment {
	out := kmsg.NewAssignment()
	for _, t := range a.topicIDs() {
		tp := kmsg.NewAssignmentTopicPartition()
		tp.TopicID = t
		tp.Topic = names[t]
		tp.Partitions = slices.Clone(a[t])
		out.TopicPartitions = append(out.TopicPartitions, tp)
	}
	return out
}
