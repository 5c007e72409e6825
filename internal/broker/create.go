package broker

// Creating topics and partitions. A request is one change, as in Kafka's controller:
// each topic is validated for its own reasons (a bad name or config, one that exists),
// bounded (Kafka's 10,000 records per change, vltava.max.broker.partitions), and the
// records of those accepted are committed together as one entry of the metadata log
// (writer.go). The change is answered once committed and applied here; the partitions
// are opened by the reconciliation (reconcile.go), which the answer waits for on this
// node, so a client of this node finds them served. A partition whose log cannot be
// created takes its log dir offline (Kafka's behaviour): the topic exists, and that
// partition answers KAFKA_STORAGE_ERROR.
//
// Placement is a single node's: every partition on the node that creates it, which
// leads it at epoch 0, so the replication factor is 1 (the controller will place
// replicas across brokers).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/metadata"
)

// TopicSpec is one topic to create. Partitions and ReplicationFactor of -1 take the
// broker defaults.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Configs           map[string]string
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

// CreateTopics implements MetadataWriter.
func (w *localWriter) CreateTopics(ctx context.Context, specs []TopicSpec, validateOnly bool) []TopicResult {
	b := w.b
	res := make([]TopicResult, len(specs))
	for i := range specs {
		res[i].Err = b.validateSpec(&specs[i])
	}
	build := func(im *metadata.Image) ([]metadata.Record, error) {
		// The topics to create, in request order, and the records they take.
		var todo []int
		records := 0
		for i, s := range specs {
			if res[i].Err != nil {
				continue
			}
			if err := nameFree(im, s.Name, specs, todo); err != nil {
				res[i].Err = err
				continue
			}
			todo = append(todo, i)
			records += 1 + int(s.Partitions) + len(s.Configs)
		}
		if records > maxRecordsPerChange {
			for i := range res {
				res[i] = TopicResult{Err: errExcessivelyLarge}
			}
			return nil, nil
		}
		var adding int64
		var rs []metadata.Record
		for _, i := range todo {
			s := specs[i]
			if err := b.checkPartitionBudget(im, adding, int64(s.Partitions)); err != nil {
				res[i].Err = err
				continue
			}
			adding += int64(s.Partitions)
			cfgs := maps.Clone(s.Configs)
			if cfgs == nil {
				cfgs = map[string]string{}
			}
			t := &TopicDesc{Name: s.Name, ID: uuid.New(), Partitions: s.Partitions, ReplicationFactor: s.ReplicationFactor, Configs: cfgs}
			res[i].Topic = t
			rs = append(rs, &metadata.TopicRecord{Name: t.Name, ID: t.ID})
			rs = b.appendPartitionRecords(rs, t.ID, 0, t.Partitions)
			for _, k := range slices.Sorted(maps.Keys(t.Configs)) {
				v := t.Configs[k]
				rs = append(rs, &metadata.ConfigRecord{ResourceType: metadata.ResourceTopic, ResourceName: t.Name, Name: k, Value: &v})
			}
		}
		if validateOnly {
			return nil, nil
		}
		return rs, nil
	}
	if _, err := w.write(ctx, build); err != nil {
		err = recordError(err)
		b.logger.Error("create topics: the change was not committed", "err", err)
		for i := range res {
			if res[i].Err == nil {
				res[i] = TopicResult{Err: err}
			}
		}
		return res
	}
	if !validateOnly {
		for _, r := range res {
			if r.Err == nil {
				b.logger.Info("created topic", "topic", r.Topic.Name, "topic_id", base64URL(r.Topic.ID[:]), "partitions", r.Topic.Partitions)
			}
		}
	}
	return res
}

// CreatePartitions implements MetadataWriter.
func (w *localWriter) CreatePartitions(ctx context.Context, specs []PartitionsSpec, validateOnly bool) []error {
	b := w.b
	errs := make([]error, len(specs))
	was := make([]int32, len(specs))     // for the log line: the count before
	ids := make([]uuid.UUID, len(specs)) // and the topic's ID
	build := func(im *metadata.Image) ([]metadata.Record, error) {
		type grow struct {
			i    int
			id   uuid.UUID
			from int32
		}
		var todo []grow
		records := 0
		for i, s := range specs {
			t := im.Topic(s.Topic)
			switch {
			case t == nil:
				errs[i] = kafkaErr(kerr.UnknownTopicOrPartition, "topic %q does not exist", s.Topic)
			case s.Count < t.NumPartitions():
				errs[i] = kafkaErr(kerr.InvalidPartitions, "topic currently has %d partitions, which is higher than the requested %d", t.NumPartitions(), s.Count)
			case s.Count == t.NumPartitions():
				errs[i] = kafkaErr(kerr.InvalidPartitions, "topic already has %d partitions", t.NumPartitions())
			default:
				todo = append(todo, grow{i: i, id: t.ID, from: t.NumPartitions()})
				was[i], ids[i] = t.NumPartitions(), t.ID
				records += int(s.Count - t.NumPartitions())
			}
		}
		if records > maxRecordsPerChange {
			for i := range errs {
				errs[i] = errExcessivelyLarge
			}
			return nil, nil
		}
		var adding int64
		var rs []metadata.Record
		for _, g := range todo {
			more := int64(specs[g.i].Count - g.from)
			if err := b.checkPartitionBudget(im, adding, more); err != nil {
				errs[g.i] = err
				continue
			}
			adding += more
			rs = b.appendPartitionRecords(rs, g.id, g.from, specs[g.i].Count)
		}
		if validateOnly {
			return nil, nil
		}
		return rs, nil
	}
	if _, err := w.write(ctx, build); err != nil {
		err = recordError(err)
		b.logger.Error("create partitions: the change was not committed", "err", err)
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs
	}
	if !validateOnly {
		for i, s := range specs {
			if errs[i] == nil {
				b.logger.Info("created partitions", "topic", s.Topic, "topic_id", base64URL(ids[i][:]), "partitions", s.Count, "was", was[i])
			}
		}
	}
	return errs
}

// recordError is what a change that could not be committed answers: POLICY_VIOLATION if
// it is past what metadata records hold (a config value over 1 MiB, say); other errors
// (not the quorum's leader, its storage failed, a timeout) go to the handler's table.
func recordError(err error) error {
	if errors.Is(err, metadata.ErrTooLarge) {
		return kafkaErr(kerr.PolicyViolation, "%v", err)
	}
	return err
}

// validateSpec resolves a spec's defaults and checks what needs no image.
func (b *Broker) validateSpec(s *TopicSpec) error {
	if err := ValidateTopicName(s.Name); err != nil {
		return err
	}
	if s.Partitions == -1 {
		s.Partitions = b.cfg.NumPartitions
	}
	if s.ReplicationFactor == -1 {
		s.ReplicationFactor = b.cfg.DefaultReplicationFactor
	}
	if s.Partitions <= 0 {
		return kafkaErr(kerr.InvalidPartitions, "number of partitions must be larger than 0")
	}
	if s.ReplicationFactor <= 0 {
		return kafkaErr(kerr.InvalidReplicationFactor, "replication factor must be larger than 0")
	}
	// A topic is placed on the node that creates it alone (see the top of the file).
	if live := int16(1); s.ReplicationFactor > live {
		return kafkaErr(kerr.InvalidReplicationFactor, "replication factor: %d larger than available brokers: %d", s.ReplicationFactor, live)
	}
	if err := b.effective().ValidateTopic(s.Configs); err != nil {
		return fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	return nil
}

// nameFree checks that a new topic's name is taken neither by a topic, nor (once '.' and
// '_' are equated) by another topic or another of the request's topics.
func nameFree(im *metadata.Image, name string, specs []TopicSpec, accepted []int) error {
	if im.Topic(name) != nil {
		return kafkaErr(kerr.TopicAlreadyExists, "topic %q already exists", name)
	}
	for _, other := range im.TopicNames() {
		if collides(name, other) {
			return kafkaErr(kerr.InvalidTopicException, "topic %q collides with existing topic %q", name, other)
		}
	}
	for _, i := range accepted {
		if collides(name, specs[i].Name) {
			return kafkaErr(kerr.InvalidTopicException, "topic %q collides with topic %q of the same request", name, specs[i].Name)
		}
	}
	return nil
}

// appendPartitionRecords appends the records of partitions [from, to) of a topic, as a
// single node places them: on this node alone, which leads them, at epoch 0.
func (b *Broker) appendPartitionRecords(rs []metadata.Record, id uuid.UUID, from, to int32) []metadata.Record {
	self := []int32{b.cfg.NodeID}
	for i := from; i < to; i++ {
		rs = append(rs, &metadata.PartitionRecord{TopicID: id, Partition: i, Replicas: self, ISR: self, Leader: b.cfg.NodeID})
	}
	return rs
}

// describeTopic describes an existing topic.
func describeTopic(t *metadata.Topic) *TopicDesc {
	return &TopicDesc{Name: t.Name, ID: t.ID, Partitions: t.NumPartitions(), ReplicationFactor: t.ReplicationFactor(), Configs: t.Configs}
}
