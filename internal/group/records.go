package group

// The records of __consumer_offsets. Kafka distinguishes record types by the
// int16 version that opens the key:
//
//	key version 0, 1  OffsetCommitKey{group, topic, partition}   value OffsetCommitValue (we write v3)
//	key version 2     GroupMetadataKey{group}                    value GroupMetadataValue (we write v3)
//	key version 3     ConsumerGroupMetadataKey{group}            value: see below
//	key version 5     ConsumerGroupMemberMetadataKey{group, member}
//
// The first two are encoded with kmsg exactly as Kafka does. kmsg has no types
// for the KIP-848 records, so for them we keep Kafka's key layout (int16 key
// version, then int16-length strings) and Kafka's record type numbers, but the
// value is our own: an int16 version 0 followed by a JSON document (see
// consumerGroupValue and consumerMemberValue). Kafka's tools cannot read those
// values; nothing but this coordinator reads them. We persist only what a
// restart needs to answer ListGroups/ConsumerGroupDescribe and to let members
// resume with their epochs: the group epoch, the assignor, and each member's
// subscription and current assignment. Target assignments are recomputed.
//
// A nil value is a tombstone: for an offset key the offset is gone, for a
// group key the group is gone, for a member key the member left.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	keyOffsetCommit        int16 = 1
	keyGroupMetadata       int16 = 2
	keyConsumerGroup       int16 = 3
	keyConsumerGroupMember int16 = 5
)

func offsetKey(group, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: keyOffsetCommit, Group: group, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

func offsetValue(o offsetCommit) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = 3
	v.Offset = o.offset
	v.LeaderEpoch = o.leaderEpoch
	v.Metadata = o.metadata
	v.CommitTimestamp = o.commitTime.UnixMilli()
	return v.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: keyGroupMetadata, Group: group}
	return k.AppendTo(nil)
}

// consumerGroupKey and consumerMemberKey follow Kafka's
// ConsumerGroupMetadataKey and ConsumerGroupMemberMetadataKey layouts.
func consumerGroupKey(group string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(keyConsumerGroup))
	return appendString(b, group)
}

func consumerMemberKey(group, member string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(keyConsumerGroupMember))
	b = appendString(b, group)
	return appendString(b, member)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func readString(b []byte) (string, []byte, error) {
	if len(b) < 2 {
		return "", nil, errors.New("short string length")
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < n {
		return "", nil, errors.New("short string")
	}
	return string(b[:n]), b[n:], nil
}

// consumerGroupValue is the value of a consumer group record (key version 3).
type consumerGroupValue struct {
	Epoch    int32  `json:"epoch"`
	Assignor string `json:"assignor,omitempty"`
}

// consumerMemberValue is the value of a consumer group member record (key
// version 5): the member's subscription and its current assignment.
type consumerMemberValue struct {
	InstanceID       *string            `json:"instance_id,omitempty"`
	RackID           *string            `json:"rack_id,omitempty"`
	ClientID         string             `json:"client_id"`
	ClientHost       string             `json:"client_host"`
	SubscribedTopics []string           `json:"subscribed_topics,omitempty"`
	SubscribedRegex  string             `json:"subscribed_regex,omitempty"`
	ServerAssignor   string             `json:"server_assignor,omitempty"`
	RebalanceTimeout int32              `json:"rebalance_timeout_ms"`
	MemberEpoch      int32              `json:"member_epoch"`
	PreviousEpoch    int32              `json:"previous_member_epoch"`
	State            uint8              `json:"state"`              // 0 stable, 1 unrevoked partitions, 2 unreleased partitions
	Assigned         map[string][]int32 `json:"assigned,omitempty"` // topic ID (hex) -> partitions
	Revoking         map[string][]int32 `json:"revoking,omitempty"` // owned, pending revocation
}

func encodeJSONValue(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain structs of strings, numbers and maps are encoded.
		panic(fmt.Sprintf("encode consumer group record: %v", err))
	}
	return append([]byte{0, 0}, b...)
}

func decodeJSONValue(b []byte, v any) error {
	if len(b) < 2 {
		return errors.New("short value")
	}
	if ver := int16(binary.BigEndian.Uint16(b)); ver != 0 {
		return fmt.Errorf("unknown value version %d", ver)
	}
	return json.Unmarshal(b[2:], v)
}

// replayRecord applies one record read from partition p at load. Records of
// types we do not know (e.g. share groups written by another broker version)
// are skipped with a warning rather than failing the load. mu is held.
func (c *Coordinator) replayRecord(p int32, r Record) error {
	if len(r.Key) < 2 {
		return fmt.Errorf("record key of %d bytes", len(r.Key))
	}
	switch ver := int16(binary.BigEndian.Uint16(r.Key)); ver {
	case 0, 1:
		return c.applyOffsetRecord(r)
	case keyGroupMetadata:
		return c.replayGroupMetadata(r)
	case keyConsumerGroup:
		return c.replayConsumerGroup(r)
	case keyConsumerGroupMember:
		return c.replayConsumerMember(r)
	default:
		c.cfg.Logger.Warn("skipping unknown __consumer_offsets record", "partition", p, "key_version", ver)
		return nil
	}
}

// applyOffsetRecord applies an offset commit or its tombstone. It is used
// both at replay and after a live commit's append, so that memory after a
// restart equals memory before it. A commit for an unknown group creates it
// as an empty classic group, as Kafka does for simple consumers.
func (c *Coordinator) applyOffsetRecord(r Record) error {
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(r.Key); err != nil {
		return fmt.Errorf("decode offset commit key: %w", err)
	}
	g := c.groups[k.Group]
	if r.Value == nil {
		if g != nil {
			g.deleteOffset(k.Topic, k.Partition)
		}
		return nil
	}
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(r.Value); err != nil {
		return fmt.Errorf("decode offset commit value for group %q: %w", k.Group, err)
	}
	if g == nil {
		g = c.newClassicGroup(k.Group)
	}
	leaderEpoch := int32(-1)
	if v.Version >= 3 {
		leaderEpoch = v.LeaderEpoch
	}
	g.setOffset(k.Topic, k.Partition, offsetCommit{
		offset:      v.Offset,
		leaderEpoch: leaderEpoch,
		metadata:    v.Metadata,
		commitTime:  msTime(v.CommitTimestamp),
	})
	return nil
}

func (c *Coordinator) replayGroupMetadata(r Record) error {
	var k kmsg.GroupMetadataKey
	if err := k.ReadFrom(r.Key); err != nil {
		return fmt.Errorf("decode group metadata key: %w", err)
	}
	if r.Value == nil {
		if g := c.groups[k.Group]; g != nil && g.typ == typeClassic {
			delete(c.groups, k.Group)
		}
		return nil
	}
	var v kmsg.GroupMetadataValue
	if err := v.ReadFrom(r.Value); err != nil {
		return fmt.Errorf("decode group metadata of %q: %w", k.Group, err)
	}
	g := c.groups[k.Group]
	if g == nil || g.typ != typeClassic {
		// A classic record after consumer records means the group was
		// converted; the last record wins, offsets stay.
		offsets := map[string]map[int32]offsetCommit(nil)
		if g != nil {
			offsets = g.offsets
		}
		g = c.newClassicGroup(k.Group)
		if offsets != nil {
			g.offsets = offsets
		}
	}
	g.protocolType = v.ProtocolType
	g.generation = v.Generation
	g.protocol = deref(v.Protocol)
	g.leader = deref(v.Leader)
	g.stateTime = msTime(v.CurrentStateTimestamp)
	g.members = make(map[string]*member)
	g.static = make(map[string]string)
	g.joinOrder = nil
	for _, vm := range v.Members {
		m := &member{
			id:               vm.MemberID,
			instanceID:       vm.InstanceID,
			clientID:         vm.ClientID,
			clientHost:       vm.ClientHost,
			sessionTimeout:   msDuration(vm.SessionTimeoutMillis),
			rebalanceTimeout: msDuration(vm.RebalanceTimeoutMillis),
			protocolType:     v.ProtocolType,
			protocols:        []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: vm.Subscription}},
			assignment:       vm.Assignment,
		}
		if m.rebalanceTimeout <= 0 {
			m.rebalanceTimeout = m.sessionTimeout
		}
		g.addMember(m)
	}
	if len(g.members) == 0 {
		g.state = stateEmpty
	} else {
		g.state = stateStable
	}
	return nil
}

// classicGroupRecord snapshots a classic group as Kafka's GroupMetadataValue
// v3. Members' subscriptions are their metadata for the selected protocol.
func (g *group) classicGroupRecord() Record {
	v := kmsg.NewGroupMetadataValue()
	v.Version = 3
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		v.Protocol = kmsg.StringPtr(g.protocol)
	}
	if g.leader != "" && len(g.members) > 0 {
		v.Leader = kmsg.StringPtr(g.leader)
	}
	v.CurrentStateTimestamp = g.stateTime.UnixMilli()
	for _, id := range g.joinOrder {
		m := g.members[id]
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		vm.InstanceID = m.instanceID
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout.Milliseconds())
		vm.SessionTimeoutMillis = int32(m.sessionTimeout.Milliseconds())
		vm.Subscription = m.metadataFor(g.protocol)
		vm.Assignment = m.assignment
		v.Members = append(v.Members, vm)
	}
	return Record{Key: groupKey(g.id), Value: v.AppendTo(nil)}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
