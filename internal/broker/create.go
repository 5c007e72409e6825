package broker

// Creating topics and partitions. A request is one change, decided by the active
// controller (internal/controller: names, configs, placement over the unfenced brokers,
// Kafka's 10,000 records per change) and sent to it through the metadata writer
// (writer.go); vltava.max.broker.partitions, this broker's own bound, is checked here.
// The change is answered once committed and applied here; the partitions this node
// hosts are opened by the reconciliation (reconcile.go), which the answer waits for on
// this node, so a client of this node finds them served. A partition whose log cannot be
// created takes its log dir offline (Kafka's behaviour): the topic exists, and that
// partition answers KAFKA_STORAGE_ERROR.

import (
	"context"

	"github.com/google/uuid"

	"github.com/vltava/vltava/internal/metadata"
)

// TopicSpec is one topic to create. Partitions and ReplicationFactor of -1 take the
// broker defaults.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Configs           map[string]string
	// Assignment, if any, names each partition's replicas (Partitions and
	// ReplicationFactor are then -1).
	Assignment [][]int32
}

// TopicDesc describes a topic a change creates.
type TopicDesc struct {
	Name              string
	ID                uuid.UUID
	Partitions        int32
	ReplicationFactor int16
	Configs           map[string]string
}

// TopicResult is what became of one TopicSpec: the topic, or why not.
type TopicResult struct {
	Topic *TopicDesc
	Err   error
}

// PartitionsSpec raises a topic's partition count to Count.
type PartitionsSpec struct {
	Topic string
	Count int32
	// Assignment, if any, names the replicas of each new partition.
	Assignment [][]int32
}

// CreateTopic creates one topic (see CreateTopics).
func (b *Broker) CreateTopic(name string, partitions int32, replicationFactor int16, configs map[string]string, validateOnly bool) (*TopicDesc, error) {
	r := b.CreateTopics([]TopicSpec{{Name: name, Partitions: partitions, ReplicationFactor: replicationFactor, Configs: configs}}, validateOnly)[0]
	return r.Topic, r.Err
}

// CreateTopics creates topics as one change; each result says what became of its spec.
// With validateOnly nothing changes.
func (b *Broker) CreateTopics(specs []TopicSpec, validateOnly bool) []TopicResult {
	ctx, done, err := b.beginChange()
	if err != nil {
		res := make([]TopicResult, len(specs))
		for i := range res {
			res[i].Err = err
		}
		return res
	}
	defer done()
	res := b.writer.CreateTopics(ctx, specs, validateOnly)
	var created []string
	for _, r := range res {
		if r.Err == nil && r.Topic != nil {
			created = append(created, r.Topic.Name)
		}
	}
	if !validateOnly && len(created) > 0 {
		b.awaitHosted(ctx, b.Image().Offset().Index, created...)
	}
	return res
}

// CreatePartitions raises partition counts as one change (like CreateTopics); the result
// holds one error (or nil) per spec. With validateOnly nothing changes.
func (b *Broker) CreatePartitions(specs []PartitionsSpec, validateOnly bool) []error {
	ctx, done, err := b.beginChange()
	if err != nil {
		errs := make([]error, len(specs))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	defer done()
	errs := b.writer.CreatePartitions(ctx, specs, validateOnly)
	var grown []string
	for i, err := range errs {
		if err == nil {
			grown = append(grown, specs[i].Topic)
		}
	}
	if !validateOnly && len(grown) > 0 {
		b.awaitHosted(ctx, b.Image().Offset().Index, grown...)
	}
	return errs
}

// beginChange starts a metadata change made for a request: its context and the function
// that ends it; ErrShuttingDown once Close has begun.
func (b *Broker) beginChange() (context.Context, func(), error) {
	b.changes.Add(1)
	if b.closing.Load() {
		b.changes.Done()
		return nil, nil, ErrShuttingDown
	}
	ctx, cancel := b.changeContext()
	return ctx, func() { cancel(); b.changes.Done() }, nil
}

// describeTopic describes an existing topic.
func describeTopic(t *metadata.Topic) *TopicDesc {
	return &TopicDesc{Name: t.Name, ID: t.ID, Partitions: t.NumPartitions(), ReplicationFactor: t.ReplicationFactor(), Configs: t.Configs}
}
