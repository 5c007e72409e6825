package broker

// Creating topics and partitions: whole or not at all, bounded, and without holding up
// other changes.
//
// A creation goes in three steps. Under changeMu (briefly): validate against the image,
// bound the change (Kafka's 10,000 records per change, vltava.max.broker.partitions) and
// reserve the topic names. Without the lock: create and open the new partitions (host.go),
// the slow part. Under changeMu again: record the whole change in the metadata log as one
// change and publish the new partitions. If storage fails in the second step, what was
// created is removed and nothing was recorded; if the record fails, the same. Either way
// the answer is KAFKA_STORAGE_ERROR and the topic does not exist, so a retry creates it.
//
// A crash between the steps leaves directories of a topic the metadata does not know:
// the next start sets them aside (stray.go). A reserved name makes any other change of
// that topic wait until the creation is decided; other topics are not held up.

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/partition"
)

// pendingChange is a topic name with a change under way outside changeMu.
type pendingChange struct {
	done       chan struct{} // closed when the change is decided
	partitions int64         // partitions it adds (counted against the broker's bound)
}

// waitFreeLocked returns, with changeMu held as on entry, once none of names has a
// change under way.
func (b *Broker) waitFreeLocked(names ...string) {
	for {
		var ch chan struct{}
		for _, n := range names {
			if p := b.pending[n]; p != nil {
				ch = p.done
				break
			}
		}
		if ch == nil {
			return
		}
		b.changeMu.Unlock()
		<-ch
		b.changeMu.Lock()
	}
}

// reserveLocked marks name as changing; the caller releases it with releaseLocked.
func (b *Broker) reserveLocked(name string, partitions int64) {
	b.pending[name] = &pendingChange{done: make(chan struct{}), partitions: partitions}
	b.pendingPartitions += partitions
	b.changes.Add(1)
}

func (b *Broker) releaseLocked(name string) {
	p := b.pending[name]
	delete(b.pending, name)
	b.pendingPartitions -= p.partitions
	close(p.done)
	b.changes.Done()
}

// release is releaseLocked for every name, taking changeMu.
func (b *Broker) release(names ...string) {
	b.changeMu.Lock()
	defer b.changeMu.Unlock()
	for _, n := range names {
		b.releaseLocked(n)
	}
}

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

// CreateTopic creates one topic (see CreateTopics).
func (b *Broker) CreateTopic(name string, partitions int32, replicationFactor int16, configs map[string]string, validateOnly bool) (*TopicDesc, error) {
	r := b.CreateTopics([]TopicSpec{{Name: name, Partitions: partitions, ReplicationFactor: replicationFactor, Configs: configs}}, validateOnly)[0]
	return r.Topic, r.Err
}

// CreateTopics creates topics as one change, as Kafka's controller does for one request:
// each topic is refused for its own reasons (a bad name or config, one that exists), the
// others are created together. With validateOnly nothing changes.
func (b *Broker) CreateTopics(specs []TopicSpec, validateOnly bool) []TopicResult {
	res := make([]TopicResult, len(specs))
	for i := range specs {
		res[i].Err = b.validateSpec(&specs[i])
	}
	var names []string
	for i, s := range specs {
		if res[i].Err == nil {
			names = append(names, s.Name)
		}
	}
	b.changeMu.Lock()
	b.waitFreeLocked(names...)
	if b.closing {
		b.changeMu.Unlock()
		for i := range res {
			res[i].Err = ErrShuttingDown
		}
		return res
	}
	im := b.meta.Image()

	// The topics to create, in request order, and the records they take.
	var todo []int
	records := 0
	for i, s := range specs {
		if res[i].Err != nil {
			continue
		}
		if err := b.nameFreeLocked(im, s.Name, specs, todo); err != nil {
			res[i].Err = err
			continue
		}
		todo = append(todo, i)
		records += 1 + int(s.Partitions) + len(s.Configs)
	}
	if records > maxRecordsPerChange {
		b.changeMu.Unlock()
		for i := range res {
			res[i] = TopicResult{Err: errExcessivelyLarge}
		}
		return res
	}
	var adding int64
	kept := todo[:0]
	for _, i := range todo {
		s := specs[i]
		if err := b.checkPartitionBudget(im, b.pendingPartitions+adding, int64(s.Partitions)); err != nil {
			res[i].Err = err
			continue
		}
		adding += int64(s.Partitions)
		cfgs := maps.Clone(s.Configs)
		if cfgs == nil {
			cfgs = map[string]string{}
		}
		res[i].Topic = &TopicDesc{Name: s.Name, ID: uuid.New(), Partitions: s.Partitions, ReplicationFactor: s.ReplicationFactor, Configs: cfgs}
		kept = append(kept, i)
	}
	todo = kept
	if validateOnly || len(todo) == 0 {
		b.changeMu.Unlock()
		return res
	}
	names = names[:0]
	for _, i := range todo {
		b.reserveLocked(specs[i].Name, int64(specs[i].Partitions))
		names = append(names, specs[i].Name)
	}
	b.changeMu.Unlock()
	defer b.release(names...)

	// Create the partitions, topic by topic, outside the lock.
	pl, err := b.newPlacer()
	hosted := make(map[int][]*partition.Partition, len(todo))
	for _, i := range todo {
		t := res[i].Topic
		if err != nil {
			res[i] = TopicResult{Err: storageError(err)}
			continue
		}
		jobs := make([]hostJob, t.Partitions)
		for k := range jobs {
			jobs[k] = hostJob{t: t, idx: int32(k)}
		}
		ps, herr := b.host(jobs, pl, true)
		if herr != nil {
			b.logger.Error("create topic: its partitions could not be created; nothing was recorded", "topic", t.Name, "err", herr)
			res[i] = TopicResult{Err: storageError(herr)}
			continue
		}
		hosted[i] = ps
	}
	if len(hosted) == 0 {
		return res
	}

	// Record the topics whose partitions exist, as one change, and publish them.
	b.changeMu.Lock()
	_, err = b.meta.Apply(func(im *metadata.Image) ([]metadata.Record, error) {
		var rs []metadata.Record
		for _, i := range todo {
			t := res[i].Topic
			if hosted[i] == nil {
				continue
			}
			if im.Topic(t.Name) != nil {
				return nil, fmt.Errorf("topic %s appeared while reserved", t.Name) // cannot happen
			}
			rs = append(rs, &metadata.TopicRecord{Name: t.Name, ID: t.ID})
			rs = b.appendPartitionRecords(rs, t.ID, 0, t.Partitions)
			for _, k := range slices.Sorted(maps.Keys(t.Configs)) {
				v := t.Configs[k]
				rs = append(rs, &metadata.ConfigRecord{ResourceType: metadata.ResourceTopic, ResourceName: t.Name, Name: k, Value: &v})
			}
		}
		return rs, nil
	})
	if err == nil {
		for _, i := range todo {
			if ps := hosted[i]; ps != nil {
				t := res[i].Topic
				b.swapTopic(t.Name, &Topic{Name: t.Name, ID: t.ID, Partitions: ps, Internal: IsInternal(t.Name)})
				b.logger.Info("created topic", "topic", t.Name, "topic_id", base64URL(t.ID[:]), "partitions", t.Partitions)
			}
		}
	}
	b.changeMu.Unlock()
	if err != nil {
		b.logger.Error("create topics: the metadata change could not be recorded; their partitions are removed", "err", err)
		for _, i := range todo {
			if ps := hosted[i]; ps != nil {
				b.unhost(ps, true)
				res[i] = TopicResult{Err: recordError(err)}
			}
		}
	}
	return res
}

// recordError is what a failed metadata append answers: KAFKA_STORAGE_ERROR if the
// log could not store it, POLICY_VIOLATION if it is past what metadata records hold (a
// config value over 1 MiB, say).
func recordError(err error) error {
	switch {
	case errors.Is(err, metadata.ErrStorage):
		return storageError(err)
	case errors.Is(err, metadata.ErrTooLarge):
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
	if live := int16(1); s.ReplicationFactor > live {
		return kafkaErr(kerr.InvalidReplicationFactor, "replication factor: %d larger than available brokers: %d", s.ReplicationFactor, live)
	}
	if err := b.effective().ValidateTopic(s.Configs); err != nil {
		return fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	return nil
}

// nameFreeLocked checks that a new topic's name is taken neither by a topic, nor by one
// being created, nor (once '.' and '_' are equated) by another of the request's topics.
func (b *Broker) nameFreeLocked(im *metadata.Image, name string, specs []TopicSpec, accepted []int) error {
	if im.Topic(name) != nil {
		return kafkaErr(kerr.TopicAlreadyExists, "topic %q already exists", name)
	}
	for _, other := range im.TopicNames() {
		if collides(name, other) {
			return kafkaErr(kerr.InvalidTopicException, "topic %q collides with existing topic %q", name, other)
		}
	}
	for other := range b.pending {
		if collides(name, other) {
			return kafkaErr(kerr.InvalidTopicException, "topic %q collides with topic %q, being created", name, other)
		}
	}
	for _, i := range accepted {
		if collides(name, specs[i].Name) {
			return kafkaErr(kerr.InvalidTopicException, "topic %q collides with topic %q of the same request", name, specs[i].Name)
		}
	}
	return nil
}

// PartitionsSpec raises a topic's partition count to Count.
type PartitionsSpec struct {
	Topic string
	Count int32
}

// CreatePartitions raises partition counts as one change (like CreateTopics); the result
// holds one error (or nil) per spec. With validateOnly nothing changes.
func (b *Broker) CreatePartitions(specs []PartitionsSpec, validateOnly bool) []error {
	errs := make([]error, len(specs))
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Topic
	}
	b.changeMu.Lock()
	b.waitFreeLocked(names...)
	if b.closing {
		b.changeMu.Unlock()
		for i := range errs {
			errs[i] = ErrShuttingDown
		}
		return errs
	}
	im := b.meta.Image()
	type grow struct {
		i    int
		t    *TopicDesc
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
			todo = append(todo, grow{i: i, t: describeTopic(t), from: t.NumPartitions()})
			records += int(s.Count - t.NumPartitions())
		}
	}
	if records > maxRecordsPerChange {
		b.changeMu.Unlock()
		for i := range errs {
			errs[i] = errExcessivelyLarge
		}
		return errs
	}
	var adding int64
	kept := todo[:0]
	for _, g := range todo {
		more := int64(specs[g.i].Count - g.from)
		if err := b.checkPartitionBudget(im, b.pendingPartitions+adding, more); err != nil {
			errs[g.i] = err
			continue
		}
		adding += more
		kept = append(kept, g)
	}
	todo = kept
	if validateOnly || len(todo) == 0 {
		b.changeMu.Unlock()
		return errs
	}
	names = names[:0]
	for _, g := range todo {
		b.reserveLocked(g.t.Name, int64(specs[g.i].Count-g.from))
		names = append(names, g.t.Name)
	}
	b.changeMu.Unlock()
	defer b.release(names...)

	pl, err := b.newPlacer()
	hosted := make(map[int][]*partition.Partition, len(todo))
	for _, g := range todo {
		if err != nil {
			errs[g.i] = storageError(err)
			continue
		}
		grown := *g.t
		grown.Partitions = specs[g.i].Count
		var jobs []hostJob
		for k := g.from; k < grown.Partitions; k++ {
			jobs = append(jobs, hostJob{t: &grown, idx: k})
		}
		ps, herr := b.host(jobs, pl, true)
		if herr != nil {
			b.logger.Error("create partitions: they could not be created; nothing was recorded", "topic", g.t.Name, "err", herr)
			errs[g.i] = storageError(herr)
			continue
		}
		hosted[g.i] = ps
	}
	if len(hosted) == 0 {
		return errs
	}

	b.changeMu.Lock()
	_, err = b.meta.Apply(func(im *metadata.Image) ([]metadata.Record, error) {
		var rs []metadata.Record
		for _, g := range todo {
			if hosted[g.i] == nil {
				continue
			}
			if t := im.Topic(g.t.Name); t == nil || t.ID != g.t.ID || t.NumPartitions() != g.from {
				return nil, fmt.Errorf("topic %s changed while reserved", g.t.Name) // cannot happen
			}
			rs = b.appendPartitionRecords(rs, g.t.ID, g.from, specs[g.i].Count)
		}
		return rs, nil
	})
	if err == nil {
		for _, g := range todo {
			if ps := hosted[g.i]; ps != nil {
				prev := b.Topic(g.t.Name)
				ht := &Topic{Name: prev.Name, ID: prev.ID, Internal: prev.Internal}
				ht.Partitions = append(append(ht.Partitions, prev.Partitions...), ps...)
				b.swapTopic(g.t.Name, ht)
				b.logger.Info("created partitions", "topic", g.t.Name, "topic_id", base64URL(g.t.ID[:]), "partitions", specs[g.i].Count, "was", g.from)
			}
		}
	}
	b.changeMu.Unlock()
	if err != nil {
		b.logger.Error("create partitions: the metadata change could not be recorded; the new partitions are removed", "err", err)
		for _, g := range todo {
			if ps := hosted[g.i]; ps != nil {
				b.unhost(ps, true)
				errs[g.i] = recordError(err)
			}
		}
	}
	return errs
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
