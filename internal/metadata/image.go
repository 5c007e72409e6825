// Package metadata is the cluster's metadata: the records every change is made of
// (record.go, their binary layout codec.go), the image they build (this file), the delta
// between two images and what it means to one node (delta.go), and snapshots, the
// records that rebuild an image (snapshot.go).
//
// The image is immutable and shared: applying a batch of records (apply.go) returns a
// new image that shares everything the batch did not touch with the old one, through
// persistent trees (ptree.go), so publishing an image is cheap and readers never lock.
// An image is the result of applying, in order, the entries of a metadata log; the
// offset of the last one (Offset) is the "metadata offset" brokers report.
//
// Today the log is a local file on a single node (store.go). With the metadata quorum
// (internal/quorum) the entries come from the replicated log (StateMachine); the records
// and the image stay the same.
package metadata

import (
	"bytes"
	"iter"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// Offset is the position of an entry in the metadata log: its index and the quorum term
// it was written in.
type Offset struct {
	Index uint64
	Term  uint64
}

// Image is the cluster's metadata as of one offset of the metadata log. Never modify
// it or anything it returns: images share their parts.
type Image struct {
	offset      Offset
	clusterID   string
	features    map[string]int16 // small: copied when it changes
	brokers     ptree[int32, *Broker]
	topics      ptree[string, *Topic]
	topicIDs    ptree[uuid.UUID, string]
	partitions  int                          // of every topic
	configs     map[string]map[string]string // broker resources: "" (cluster default) or a broker ID
	producerIDs ProducerIDsRecord            // the last block handed out (Size 0: none yet)
}

// Empty returns the image of an empty metadata log.
func Empty() *Image {
	return &Image{
		brokers:  newPtree[int32, *Broker](cmpInt32),
		topics:   newPtree[string, *Topic](strings.Compare),
		topicIDs: newPtree[uuid.UUID, string](cmpUUID),
	}
}

func cmpInt32(a, b int32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpUUID(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }

// Broker is a broker's registration.
type Broker struct {
	ID                   int32
	IncarnationID        uuid.UUID
	Epoch                int64
	Listeners            []Listener
	Rack                 string
	Fenced               bool
	InControlledShutdown bool
	LogDirs              []uuid.UUID
}

// Listener returns the broker's listener of that name, or nil.
func (b *Broker) Listener(name string) *Listener {
	for i := range b.Listeners {
		if b.Listeners[i].Name == name {
			return &b.Listeners[i]
		}
	}
	return nil
}

// Topic is a topic: its partitions (Partitions[i] is partition i) and its config
// overrides.
type Topic struct {
	Name       string
	ID         uuid.UUID
	Partitions []Partition
	Configs    map[string]string // explicit overrides only; nil when none
}

// NumPartitions returns the number of partitions.
func (t *Topic) NumPartitions() int32 { return int32(len(t.Partitions)) }

// Partition returns partition i, or nil.
func (t *Topic) Partition(i int32) *Partition {
	if i < 0 || int(i) >= len(t.Partitions) {
		return nil
	}
	return &t.Partitions[i]
}

// ReplicationFactor is the number of replicas of partition 0 (Kafka's answer too).
func (t *Topic) ReplicationFactor() int16 {
	if len(t.Partitions) == 0 {
		return 0
	}
	return int16(len(t.Partitions[0].Replicas()))
}

// Partition is one partition's replicas, leader and epochs. Its replica lists are kept
// end to end in one slice, which keeps an image of 100,000 partitions small; read them
// through the methods.
type Partition struct {
	lists          []int32   // replicas, ISR, removing, adding, ELR, last known ELR
	ends           [5]uint16 // where each of the first five lists ends
	Leader         int32     // NoLeader if none
	LeaderEpoch    int32
	PartitionEpoch int32
}

// maxPartitionLists bounds the replica lists of one partition together (ends is uint16).
const maxPartitionLists = 1<<16 - 1

func makePartition(replicas, isr, removing, adding, elr, lastKnownELR []int32, leader, leaderEpoch, partitionEpoch int32) Partition {
	p := Partition{Leader: leader, LeaderEpoch: leaderEpoch, PartitionEpoch: partitionEpoch}
	n := len(replicas) + len(isr) + len(removing) + len(adding) + len(elr) + len(lastKnownELR)
	p.lists = make([]int32, 0, n)
	for i, l := range [][]int32{replicas, isr, removing, adding, elr} {
		p.lists = append(p.lists, l...)
		p.ends[i] = uint16(len(p.lists))
	}
	p.lists = append(p.lists, lastKnownELR...)
	return p
}

func (p *Partition) list(i int) []int32 {
	var from uint16
	if i > 0 {
		from = p.ends[i-1]
	}
	to := uint16(len(p.lists))
	if i < len(p.ends) {
		to = p.ends[i]
	}
	return p.lists[from:to:to]
}

func (p *Partition) Replicas() []int32         { return p.list(0) }
func (p *Partition) ISR() []int32              { return p.list(1) }
func (p *Partition) RemovingReplicas() []int32 { return p.list(2) }
func (p *Partition) AddingReplicas() []int32   { return p.list(3) }
func (p *Partition) ELR() []int32              { return p.list(4) }
func (p *Partition) LastKnownELR() []int32     { return p.list(5) }

// HasReplica reports whether node is one of the partition's replicas.
func (p *Partition) HasReplica(node int32) bool { return slices.Contains(p.Replicas(), node) }

// Offset returns the offset of the last entry applied.
func (im *Image) Offset() Offset { return im.offset }

// ClusterID returns the cluster ID ("" before it is set).
func (im *Image) ClusterID() string { return im.clusterID }

// FeatureLevel returns a feature's finalized level (0 if not set).
func (im *Image) FeatureLevel(name string) int16 { return im.features[name] }

// Features returns every feature and its level, by name.
func (im *Image) Features() iter.Seq2[string, int16] {
	return func(yield func(string, int16) bool) {
		for _, n := range sortedKeys(im.features) {
			if !yield(n, im.features[n]) {
				return
			}
		}
	}
}

// Broker returns a broker's registration, or nil.
func (im *Image) Broker(id int32) *Broker {
	b, _ := im.brokers.Get(id)
	return b
}

// Brokers returns every registered broker, by ID.
func (im *Image) Brokers() iter.Seq[*Broker] {
	return func(yield func(*Broker) bool) {
		im.brokers.All(func(_ int32, b *Broker) bool { return yield(b) })
	}
}

// NumBrokers returns the number of registered brokers.
func (im *Image) NumBrokers() int { return im.brokers.Len() }

// Topic returns the topic by name, or nil.
func (im *Image) Topic(name string) *Topic {
	t, _ := im.topics.Get(name)
	return t
}

// TopicByID returns the topic by ID, or nil.
func (im *Image) TopicByID(id uuid.UUID) *Topic {
	name, ok := im.topicIDs.Get(id)
	if !ok {
		return nil
	}
	return im.Topic(name)
}

// Topics returns every topic, by name.
func (im *Image) Topics() iter.Seq[*Topic] {
	return func(yield func(*Topic) bool) {
		im.topics.All(func(_ string, t *Topic) bool { return yield(t) })
	}
}

// TopicNames returns every topic name, sorted.
func (im *Image) TopicNames() []string {
	names := make([]string, 0, im.topics.Len())
	im.topics.All(func(n string, _ *Topic) bool { names = append(names, n); return true })
	return names
}

// NumTopics returns the number of topics.
func (im *Image) NumTopics() int { return im.topics.Len() }

// NumPartitions returns the number of partitions of every topic together.
func (im *Image) NumPartitions() int { return im.partitions }

// BrokerConfigs returns the dynamic configs of a broker resource: "" for the
// cluster-wide default, a broker ID in decimal for one broker. Never modify it.
func (im *Image) BrokerConfigs(resource string) map[string]string { return im.configs[resource] }

// ConfigResources returns the broker resources that have configs, sorted.
func (im *Image) ConfigResources() []string { return sortedKeys(im.configs) }

// NextProducerID returns the first producer ID no block holds yet.
func (im *Image) NextProducerID() int64 {
	return im.producerIDs.FirstID + int64(im.producerIDs.Size)
}

// LastProducerIDs returns the last block of producer IDs handed out (Size 0 if none).
func (im *Image) LastProducerIDs() ProducerIDsRecord { return im.producerIDs }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
