package metadata

// The metadata records: every change to the cluster's metadata is a batch of these,
// applied whole or not at all (apply.go). They are modelled on Kafka's KRaft metadata
// records (metadata/src/main/resources/common/metadata/*.json in apache/kafka) and keep
// their type numbers, with the fields Vltava uses; codec.go is their binary layout.
//
// Differences from Kafka's records, on purpose:
//   - ClusterIDRecord is Vltava's own (Kafka keeps the cluster ID only in meta.properties):
//     the image carries it, so a node joining from a snapshot learns it.
//   - PartitionChangeRecord names the partition epoch it was decided against; replay
//     refuses it on any other epoch, so a change decided on a stale image can never apply.
//     Which fields it changes is an explicit set (Set) rather than Kafka's null/-2 markers.
//   - ProducerIDsRecord names the block (first ID and size) rather than the next ID.
//   - ConfigRecord's broker resource name "" is the cluster-wide default, as in Kafka.

import (
	"fmt"
	"reflect"

	"github.com/google/uuid"
)

// RecordType is a record's type number (Kafka's apiKey where Kafka has the record).
type RecordType uint16

const (
	TypeRegisterBroker           RecordType = 0
	TypeUnregisterBroker         RecordType = 1
	TypeTopic                    RecordType = 2
	TypePartition                RecordType = 3
	TypeConfig                   RecordType = 4
	TypePartitionChange          RecordType = 5
	TypeRemoveTopic              RecordType = 9
	TypeFeatureLevel             RecordType = 12
	TypeProducerIDs              RecordType = 15
	TypeBrokerRegistrationChange RecordType = 17
	TypeNoOp                     RecordType = 20
	// Vltava's own types start at 0x4000, clear of Kafka's.
	TypeClusterID RecordType = 0x4000
)

var typeNames = map[RecordType]string{
	TypeRegisterBroker: "RegisterBroker", TypeUnregisterBroker: "UnregisterBroker", TypeTopic: "Topic",
	TypePartition: "Partition", TypeConfig: "Config", TypePartitionChange: "PartitionChange",
	TypeRemoveTopic: "RemoveTopic", TypeFeatureLevel: "FeatureLevel", TypeProducerIDs: "ProducerIDs",
	TypeBrokerRegistrationChange: "BrokerRegistrationChange", TypeNoOp: "NoOp", TypeClusterID: "ClusterID",
}

func (t RecordType) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("record type %d", uint16(t))
}

// Record is one metadata record: a pointer to one of the *Record types below.
type Record interface {
	Type() RecordType
	// encode appends the record's fields (at its current version) to w.
	encode(w *writer)
	// decode reads the fields of version from r.
	decode(r *reader, version uint8)
}

// currentVersion is the version each record type is written at; a reader refuses a
// higher one (UnsupportedError). Every type is at version 0.
func currentVersion(RecordType) uint8 { return 0 }

// ClusterIDRecord sets the cluster ID. Once set it never changes.
type ClusterIDRecord struct {
	ID string
}

// FeatureLevelRecord sets a feature's finalized level (metadata.version, ...). Level 0
// removes the feature, as in Kafka.
type FeatureLevelRecord struct {
	Name  string
	Level int16
}

// Security protocol IDs, as Kafka's SecurityProtocol.
const (
	ProtocolPlaintext     int16 = 0
	ProtocolSSL           int16 = 1
	ProtocolSASLPlaintext int16 = 2
	ProtocolSASLSSL       int16 = 3
)

// Listener is one endpoint of a broker.
type Listener struct {
	Name             string // PLAINTEXT, INTERNAL, ...
	Host             string
	Port             uint16
	SecurityProtocol int16
}

// RegisterBrokerRecord registers a broker, or replaces its registration (a restart: a
// new incarnation and a higher epoch). Kafka's broker epoch is the offset of this record
// in the metadata log.
type RegisterBrokerRecord struct {
	BrokerID             int32
	IncarnationID        uuid.UUID
	BrokerEpoch          int64
	Listeners            []Listener
	Rack                 string // "" for none
	Fenced               bool
	InControlledShutdown bool
	LogDirs              []uuid.UUID
}

// Fencing changes of BrokerRegistrationChangeRecord (Kafka's values).
const (
	FenceNone    int8 = 0
	FenceFence   int8 = 1
	FenceUnfence int8 = -1
)

// BrokerRegistrationChangeRecord fences, unfences or marks a broker in controlled
// shutdown. BrokerEpoch must be the registration's.
type BrokerRegistrationChangeRecord struct {
	BrokerID             int32
	BrokerEpoch          int64
	Fenced               int8 // FenceNone, FenceFence or FenceUnfence
	InControlledShutdown bool // true: the broker is now in controlled shutdown
}

// UnregisterBrokerRecord removes a broker's registration. BrokerEpoch must be its.
type UnregisterBrokerRecord struct {
	BrokerID    int32
	BrokerEpoch int64
}

// TopicRecord creates a topic; its partitions follow as PartitionRecords.
type TopicRecord struct {
	Name string
	ID   uuid.UUID
}

// NoLeader is the leader of a partition that has none.
const NoLeader int32 = -1

// PartitionRecord creates partition Partition of a topic, the next one: partitions are
// numbered 0, 1, ... in the order of their records.
type PartitionRecord struct {
	TopicID          uuid.UUID
	Partition        int32
	Replicas         []int32
	ISR              []int32
	RemovingReplicas []int32
	AddingReplicas   []int32
	Leader           int32 // NoLeader if none
	LeaderEpoch      int32
	PartitionEpoch   int32
	// KIP-966: replicas that may lead although out of the ISR, and the last ones known.
	ELR          []int32
	LastKnownELR []int32
}

// PartitionFields says which fields of a PartitionChangeRecord are set.
type PartitionFields uint8

const (
	SetReplicas PartitionFields = 1 << iota
	SetISR
	SetLeader
	SetRemovingReplicas
	SetAddingReplicas
	SetELR
	SetLastKnownELR
	allPartitionFields = SetLastKnownELR<<1 - 1
)

// PartitionChangeRecord changes the fields of a partition named in Set. As in Kafka,
// the partition epoch moves up by one on every change, and the leader epoch by one
// whenever Leader is set, even to the same leader (that is how the controller forces a
// new leader epoch). PartitionEpoch is the epoch the change was decided against.
type PartitionChangeRecord struct {
	TopicID          uuid.UUID
	Partition        int32
	PartitionEpoch   int32
	Set              PartitionFields
	Replicas         []int32
	ISR              []int32
	Leader           int32
	RemovingReplicas []int32
	AddingReplicas   []int32
	ELR              []int32
	LastKnownELR     []int32
}

// RemoveTopicRecord deletes a topic, its partitions and its configs.
type RemoveTopicRecord struct {
	ID uuid.UUID
}

// Config resource types (Kafka's ConfigResource.Type).
const (
	ResourceTopic  int8 = 2
	ResourceBroker int8 = 4
)

// ConfigRecord sets (Value non-nil) or removes one config of a resource: a topic by name,
// or a broker by its ID in decimal ("" for the cluster-wide default).
type ConfigRecord struct {
	ResourceType int8
	ResourceName string
	Name         string
	Value        *string
}

// ProducerIDsRecord hands the block [FirstID, FirstID+Size) of producer IDs to a broker.
// Blocks never overlap: FirstID is at least the end of every earlier block.
type ProducerIDsRecord struct {
	BrokerID    int32
	BrokerEpoch int64
	FirstID     int64
	Size        int32
}

// NoOpRecord changes nothing; a new quorum leader writes one to commit an entry of its
// term (as KRaft does).
type NoOpRecord struct{}

func (*ClusterIDRecord) Type() RecordType                { return TypeClusterID }
func (*FeatureLevelRecord) Type() RecordType             { return TypeFeatureLevel }
func (*RegisterBrokerRecord) Type() RecordType           { return TypeRegisterBroker }
func (*BrokerRegistrationChangeRecord) Type() RecordType { return TypeBrokerRegistrationChange }
func (*UnregisterBrokerRecord) Type() RecordType         { return TypeUnregisterBroker }
func (*TopicRecord) Type() RecordType                    { return TypeTopic }
func (*PartitionRecord) Type() RecordType                { return TypePartition }
func (*PartitionChangeRecord) Type() RecordType          { return TypePartitionChange }
func (*RemoveTopicRecord) Type() RecordType              { return TypeRemoveTopic }
func (*ConfigRecord) Type() RecordType                   { return TypeConfig }
func (*ProducerIDsRecord) Type() RecordType              { return TypeProducerIDs }
func (*NoOpRecord) Type() RecordType                     { return TypeNoOp }

// isNil reports whether r is nil or a nil pointer.
func isNil(r Record) bool { return r == nil || reflect.ValueOf(r).IsNil() }

// typeOf is r's type, for errors about r (0xffff for nil).
func typeOf(r Record) RecordType {
	if isNil(r) {
		return 0xffff
	}
	return r.Type()
}

// newRecord returns an empty record of type t, or nil for a type this version does not
// know.
func newRecord(t RecordType) Record {
	switch t {
	case TypeClusterID:
		return &ClusterIDRecord{}
	case TypeFeatureLevel:
		return &FeatureLevelRecord{}
	case TypeRegisterBroker:
		return &RegisterBrokerRecord{}
	case TypeBrokerRegistrationChange:
		return &BrokerRegistrationChangeRecord{}
	case TypeUnregisterBroker:
		return &UnregisterBrokerRecord{}
	case TypeTopic:
		return &TopicRecord{}
	case TypePartition:
		return &PartitionRecord{}
	case TypePartitionChange:
		return &PartitionChangeRecord{}
	case TypeRemoveTopic:
		return &RemoveTopicRecord{}
	case TypeConfig:
		return &ConfigRecord{}
	case TypeProducerIDs:
		return &ProducerIDsRecord{}
	case TypeNoOp:
		return &NoOpRecord{}
	}
	return nil
}
