package controller

// Topics: CreateTopics v0-7, DeleteTopics v0-6 and CreatePartitions v0-3, as Kafka's
// ControllerApis and ReplicationControlManager decide them. Each request is one change
// (one entry): every topic is refused for its own reasons or created with the others.
//
// CreateTopics: names as Kafka checks them (INVALID_TOPIC_EXCEPTION, also for a name
// that differs from another only by '.' against '_'), a name twice in the request
// (INVALID_REQUEST), an existing topic (TOPIC_ALREADY_EXISTS), configs (INVALID_CONFIG;
// null values are refused), then either an explicit assignment (replication factor and
// partitions must be -1: INVALID_REQUEST; partitions numbered 0..n-1, each a non-empty
// set of registered brokers of one size, with at least one active:
// INVALID_REPLICA_ASSIGNMENT) or partitions and a replication factor (-1: the broker
// defaults; 0 or below -1: INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR) placed over
// the unfenced brokers (placer.go; more replicas than unfenced brokers:
// INVALID_REPLICATION_FACTOR). A partition's ISR is its active replicas and its leader
// the first of them. A request that would take more than 10,000 records (one per topic,
// partition and config) is refused whole with POLICY_VIOLATION, as Kafka's
// BoundedList makes it.
//
// DeleteTopics: by name, or from v6 by ID (one of the two: INVALID_REQUEST; a name or ID
// twice: INVALID_REQUEST); unknown names UNKNOWN_TOPIC_OR_PARTITION, unknown IDs
// UNKNOWN_TOPIC_ID; delete.topic.enable=false refuses the request (INVALID_REQUEST
// before v3, TOPIC_DELETION_DISABLED after). Vltava keeps refusing to delete the
// internal topics (__consumer_offsets, __transaction_state) with INVALID_TOPIC_EXCEPTION.
//
// CreatePartitions: the count must grow (INVALID_PARTITIONS); an assignment names
// exactly the new partitions (INVALID_REPLICA_ASSIGNMENT), with the replication factor of
// the topic's partitions; without one, the new partitions are placed like a new topic's.

import (
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/metadata"
)

const maxTopicNameLen = 249

var legalTopicName = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// Kafka's internal topics.
const (
	consumerOffsetsTopic  = "__consumer_offsets"
	transactionStateTopic = "__transaction_state"
)

// checkTopicName checks a topic name as Kafka's Topic.validate does.
func checkTopicName(name string) error {
	switch {
	case name == "":
		return errorf(kerr.InvalidTopicException, "Topic name is illegal, it can't be empty")
	case name == "." || name == "..":
		return errorf(kerr.InvalidTopicException, "Topic name cannot be \".\" or \"..\"")
	case len(name) > maxTopicNameLen:
		return errorf(kerr.InvalidTopicException, "Topic name is illegal, it can't be longer than %d characters, topic name: %s", maxTopicNameLen, name)
	case !legalTopicName.MatchString(name):
		return errorf(kerr.InvalidTopicException, "Topic name %q is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'", name)
	}
	return nil
}

// collides reports whether two names are the same once '.' and '_' are equated.
func collides(a, b string) bool {
	return a != b && strings.ReplaceAll(a, ".", "_") == strings.ReplaceAll(b, ".", "_")
}

// newTopicID returns a random topic ID no topic of im has.
func (c *core) newTopicID(im *metadata.Image) uuid.UUID {
	for {
		id, err := uuid.NewRandomFromReader(c.ids)
		if err == nil && id != uuid.Nil && im.TopicByID(id) == nil {
			return id
		}
	}
}

// partitionRecord is a new partition on replicas, led by its first active replica.
func partitionRecord(im *metadata.Image, id uuid.UUID, index int32, replicas []int32) (*metadata.PartitionRecord, bool) {
	var isr []int32
	for _, r := range replicas {
		if isActive(im.Broker(r)) {
			isr = append(isr, r)
		}
	}
	if len(isr) == 0 {
		return nil, false
	}
	return &metadata.PartitionRecord{TopicID: id, Partition: index, Replicas: replicas, ISR: isr, Leader: isr[0]}, true
}

// checkAssignment checks one partition's explicit replicas (Kafka's
// validateManualPartitionAssignment); rf is the size every partition must have (-1:
// any).
func checkAssignment(im *metadata.Image, replicas []int32, rf int) error {
	if len(replicas) == 0 {
		return errorf(kerr.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list.")
	}
	seen := map[int32]bool{}
	for _, r := range replicas {
		if im.Broker(r) == nil {
			return errorf(kerr.InvalidReplicaAssignment, "The manual partition assignment includes broker %d, but no such broker is registered.", r)
		}
		if seen[r] {
			return errorf(kerr.InvalidReplicaAssignment, "The manual partition assignment includes the broker %d more than once.", r)
		}
		seen[r] = true
	}
	if rf >= 0 && len(replicas) != rf {
		return errorf(kerr.InvalidReplicaAssignment, "The manual partition assignment includes a partition with %d replica(s), but this is not consistent with previous partitions, which have %d replica(s).",
			len(replicas), rf)
	}
	return nil
}

// createdTopic is a topic a CreateTopics decision creates.
type createdTopic struct {
	id         uuid.UUID
	partitions int32
	rf         int16
	configs    map[string]string
}

func (c *core) createTopics(r *kmsg.CreateTopicsRequest) decision {
	im := c.spec
	eff := c.cfg.Broker.WithDynamicDefaults(im.BrokerConfigs(""))
	count := map[string]int{}
	for _, t := range r.Topics {
		count[t.Topic]++
	}
	errs := make([]error, len(r.Topics))
	created := make([]*createdTopic, len(r.Topics))
	var rs []metadata.Record
	var accepted []string
	pl := newPlacer(usableBrokers(im), c.rnd)
	for i, t := range r.Topics {
		ct, trs, err := c.createTopic(im, eff, t, count[t.Topic], accepted, pl)
		if err != nil {
			errs[i] = err
			continue
		}
		created[i] = ct
		accepted = append(accepted, t.Topic)
		if rs = append(rs, trs...); len(rs) > metadata.MaxBatchRecords {
			return failed(r, errExcessivelyLarge)
		}
	}
	if r.ValidateOnly {
		rs = nil
	}
	return decision{records: rs, finish: func(uint64) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
		for i, t := range r.Topics {
			st := kmsg.NewCreateTopicsResponseTopic()
			st.Topic, st.NumPartitions, st.ReplicationFactor = t.Topic, -1, -1
			if err := errs[i]; err != nil {
				st.ErrorCode, st.ErrorMessage = codeOf(err), errMsg(err)
			} else {
				ct := created[i]
				st.TopicID, st.NumPartitions, st.ReplicationFactor = ct.id, ct.partitions, ct.rf
				if r.Version < 5 {
					resp.Topics = append(resp.Topics, st)
					continue
				}
				for _, e := range eff.DescribeTopic(ct.configs, nil, false) {
					ce := kmsg.NewCreateTopicsResponseTopicConfig()
					ce.Name, ce.Value, ce.ReadOnly, ce.Source, ce.IsSensitive = e.Name, e.Value, e.ReadOnly, e.Source, e.Sensitive
					if e.Sensitive {
						ce.Value = nil
					}
					st.Configs = append(st.Configs, ce)
				}
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}}
}

// createTopic decides one topic of a CreateTopics request: its description and records.
func (c *core) createTopic(im *metadata.Image, eff config.Broker, t kmsg.CreateTopicsRequestTopic, count int, accepted []string, pl *placer) (*createdTopic, []metadata.Record, error) {
	if count > 1 {
		return nil, nil, errorf(kerr.InvalidRequest, "Duplicate topic name.")
	}
	if err := checkTopicName(t.Topic); err != nil {
		return nil, nil, err
	}
	if im.Topic(t.Topic) != nil {
		return nil, nil, errorf(kerr.TopicAlreadyExists, "Topic '%s' already exists.", t.Topic)
	}
	for _, other := range slices.Concat(im.TopicNames(), accepted) {
		if collides(t.Topic, other) {
			return nil, nil, errorf(kerr.InvalidTopicException, "Topic '%s' collides with existing topic: %s", t.Topic, other)
		}
	}
	configs := map[string]string{}
	var nulls []string
	for _, cf := range t.Configs {
		if cf.Value == nil {
			nulls = append(nulls, cf.Name)
			continue
		}
		configs[cf.Name] = *cf.Value
	}
	if len(nulls) > 0 {
		return nil, nil, errorf(kerr.InvalidConfig, "Null value not supported for topic configs: %s", strings.Join(nulls, ","))
	}
	if err := eff.ValidateTopic(configs); err != nil {
		return nil, nil, errorf(kerr.InvalidConfig, "%v", err)
	}
	id := c.newTopicID(im)
	var parts []*metadata.PartitionRecord
	if len(t.ReplicaAssignment) > 0 {
		if t.ReplicationFactor != -1 {
			return nil, nil, errorf(kerr.InvalidRequest, "A manual partition assignment was specified, but replication factor was not set to -1.")
		}
		if t.NumPartitions != -1 {
			return nil, nil, errorf(kerr.InvalidRequest, "A manual partition assignment was specified, but numPartitions was not set to -1.")
		}
		if len(t.ReplicaAssignment) > metadata.MaxBatchRecords {
			return nil, nil, errExcessivelyLarge
		}
		byIndex := map[int32][]int32{}
		rf := -1
		for _, a := range t.ReplicaAssignment {
			if _, dup := byIndex[a.Partition]; dup {
				return nil, nil, errorf(kerr.InvalidReplicaAssignment, "Found multiple manual partition assignments for partition %d", a.Partition)
			}
			if err := checkAssignment(im, a.Replicas, rf); err != nil {
				return nil, nil, err
			}
			rf = len(a.Replicas)
			byIndex[a.Partition] = a.Replicas
		}
		for i := range int32(len(byIndex)) {
			replicas, ok := byIndex[i]
			if !ok {
				return nil, nil, errorf(kerr.InvalidReplicaAssignment, "partitions should be a consecutive 0-based integer sequence")
			}
			p, ok := partitionRecord(im, id, i, slices.Clone(replicas))
			if !ok {
				return nil, nil, errorf(kerr.InvalidReplicaAssignment, "All brokers specified in the manual partition assignment for partition %d are fenced or in controlled shutdown.", i)
			}
			parts = append(parts, p)
		}
	} else {
		n, rf := t.NumPartitions, t.ReplicationFactor
		switch {
		case rf < -1 || rf == 0:
			return nil, nil, errorf(kerr.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value.")
		case n < -1 || n == 0:
			return nil, nil, errorf(kerr.InvalidPartitions, "Number of partitions was set to an invalid non-positive value.")
		}
		if n == -1 {
			n = eff.NumPartitions
		}
		if rf == -1 {
			rf = eff.DefaultReplicationFactor
		}
		if n > metadata.MaxBatchRecords {
			return nil, nil, errExcessivelyLarge
		}
		for i := range n {
			replicas, err := pl.place(int(rf))
			if err != nil {
				return nil, nil, err
			}
			p, _ := partitionRecord(im, id, i, replicas) // placed on active brokers only
			parts = append(parts, p)
		}
	}
	rs := make([]metadata.Record, 0, 1+len(configs)+len(parts))
	rs = append(rs, &metadata.TopicRecord{Name: t.Topic, ID: id})
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		rs = append(rs, &metadata.ConfigRecord{ResourceType: metadata.ResourceTopic, ResourceName: t.Topic, Name: k, Value: new(configs[k])})
	}
	for _, p := range parts {
		rs = append(rs, p)
	}
	return &createdTopic{id: id, partitions: int32(len(parts)), rf: int16(len(parts[0].Replicas)), configs: configs}, rs, nil
}

func (c *core) deleteTopics(r *kmsg.DeleteTopicsRequest) decision {
	im := c.spec
	if !c.cfg.Broker.DeleteTopicEnable {
		if r.Version < 3 {
			return failed(r, errorf(kerr.InvalidRequest, "Topic deletion is disabled."))
		}
		return failed(r, errorf(kerr.TopicDeletionDisabled, "Topic deletion is disabled."))
	}
	type target struct {
		name *string
		id   uuid.UUID
		err  error
	}
	var targets []target
	names, ids := map[string]int{}, map[uuid.UUID]int{}
	for _, n := range r.TopicNames {
		targets = append(targets, target{name: new(n)})
		names[n]++
	}
	for _, t := range r.Topics {
		tg := target{name: t.Topic, id: t.TopicID}
		switch {
		case t.Topic != nil && tg.id != uuid.Nil:
			tg.err = errorf(kerr.InvalidRequest, "You may not specify both topic name and topic id.")
		case t.Topic == nil && tg.id == uuid.Nil:
			tg.err = errorf(kerr.InvalidRequest, "Neither topic name nor id were specified.")
		case t.Topic != nil:
			names[*t.Topic]++
		default:
			ids[tg.id]++
		}
		targets = append(targets, tg)
	}
	var rs []metadata.Record
	for i := range targets {
		tg := &targets[i]
		if tg.err != nil {
			continue
		}
		var t *metadata.Topic
		switch {
		case tg.name != nil && names[*tg.name] > 1:
			tg.err = errorf(kerr.InvalidRequest, "Duplicate topic name.")
		case tg.name == nil && ids[tg.id] > 1:
			tg.err = errorf(kerr.InvalidRequest, "Duplicate topic id.")
		case tg.name != nil:
			if t = im.Topic(*tg.name); t == nil {
				tg.err = errorf(kerr.UnknownTopicOrPartition, "This server does not host this topic-partition.")
			}
		default:
			if t = im.TopicByID(tg.id); t == nil {
				tg.err = errorf(kerr.UnknownTopicID, "This server does not host this topic ID.")
			}
		}
		if tg.err != nil {
			continue
		}
		if t.Name == consumerOffsetsTopic || t.Name == transactionStateTopic {
			tg.err = errorf(kerr.InvalidTopicException, "The internal topic %s cannot be deleted", t.Name)
			continue
		}
		tg.name, tg.id = new(t.Name), t.ID
		rs = append(rs, &metadata.RemoveTopicRecord{ID: t.ID})
	}
	if len(rs) > metadata.MaxBatchRecords {
		return failed(r, errExcessivelyLarge)
	}
	return decision{records: rs, finish: func(uint64) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
		for _, tg := range targets {
			st := kmsg.NewDeleteTopicsResponseTopic()
			st.Topic, st.TopicID = tg.name, tg.id
			if tg.err != nil {
				st.ErrorCode, st.ErrorMessage = codeOf(tg.err), errMsg(tg.err)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}}
}

func (c *core) createPartitions(r *kmsg.CreatePartitionsRequest) decision {
	im := c.spec
	count := map[string]int{}
	for _, t := range r.Topics {
		count[t.Topic]++
	}
	errs := make([]error, len(r.Topics))
	var rs []metadata.Record
	pl := newPlacer(usableBrokers(im), c.rnd)
	for i, t := range r.Topics {
		trs, err := createPartitions(im, t, count[t.Topic], pl)
		if err != nil {
			errs[i] = err
			continue
		}
		rs = append(rs, trs...)
		if len(rs) > metadata.MaxBatchRecords {
			return failed(r, errExcessivelyLarge)
		}
	}
	if r.ValidateOnly {
		rs = nil
	}
	return decision{records: rs, finish: func(uint64) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
		for i, t := range r.Topics {
			st := kmsg.NewCreatePartitionsResponseTopic()
			st.Topic = t.Topic
			if err := errs[i]; err != nil {
				st.ErrorCode, st.ErrorMessage = codeOf(err), errMsg(err)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}}
}

// createPartitions decides one topic of a CreatePartitions request.
func createPartitions(im *metadata.Image, t kmsg.CreatePartitionsRequestTopic, count int, pl *placer) ([]metadata.Record, error) {
	if count > 1 {
		return nil, errorf(kerr.InvalidRequest, "Duplicate topic name.")
	}
	topic := im.Topic(t.Topic)
	switch {
	case topic == nil:
		return nil, errorf(kerr.UnknownTopicOrPartition, "This server does not host this topic-partition.")
	case t.Count == topic.NumPartitions():
		return nil, errorf(kerr.InvalidPartitions, "Topic already has %d partition(s).", topic.NumPartitions())
	case t.Count < topic.NumPartitions():
		return nil, errorf(kerr.InvalidPartitions, "The topic %s currently has %d partition(s); %d would not be an increase.", t.Topic, topic.NumPartitions(), t.Count)
	}
	additional := int(t.Count - topic.NumPartitions())
	if t.Assignment != nil && len(t.Assignment) != additional {
		return nil, errorf(kerr.InvalidReplicaAssignment, "Attempted to add %d additional partition(s), but only %d assignment(s) were specified.", additional, len(t.Assignment))
	}
	if additional > metadata.MaxBatchRecords {
		return nil, errExcessivelyLarge
	}
	rf := int(topic.ReplicationFactor())
	rs := make([]metadata.Record, 0, additional)
	for i := range additional {
		index := topic.NumPartitions() + int32(i)
		var replicas []int32
		if t.Assignment != nil {
			replicas = slices.Clone(t.Assignment[i].Replicas)
			if err := checkAssignment(im, replicas, rf); err != nil {
				return nil, err
			}
		} else {
			var err error
			if replicas, err = pl.place(rf); err != nil {
				return nil, err
			}
		}
		p, ok := partitionRecord(im, topic.ID, index, replicas)
		if !ok {
			if t.Assignment != nil {
				return nil, errorf(kerr.InvalidReplicaAssignment, "All brokers specified in the manual partition assignment for partition %d are fenced or in controlled shutdown.", index)
			}
			return nil, errorf(kerr.InvalidReplicationFactor, "Unable to replicate the partition %d time(s): All brokers are currently fenced or in controlled shutdown.", rf)
		}
		rs = append(rs, p)
	}
	return rs, nil
}
