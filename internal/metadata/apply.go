package metadata

// Applying a batch of records to an image. A batch is one change: it is validated and
// applied record by record against a private copy of the image, and either every
// record applies or the batch is refused and the image is as it was. The copy is
// shallow and grows only with what the batch touches: a topic is copied the first time a
// record of the batch changes it and modified in place after that, so a batch costs
// O(what it changes), never O(the image).
//
// Validation is part of replay, not only of the controller's decisions: replay must be
// deterministic and total, so every node refuses the same batches for the same reasons
// (StateMachine skips a refused entry on every node alike).

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"

	"github.com/google/uuid"
)

// ErrInvalid is wrapped by the error of every batch that validation refuses.
var ErrInvalid = errors.New("invalid metadata change")

// ApplyError says which record of a batch was refused, and why.
type ApplyError struct {
	Record int // position in the batch
	Type   RecordType
	Reason string
}

func (e *ApplyError) Error() string {
	return fmt.Sprintf("metadata record %d (%s) refused: %s", e.Record, e.Type, e.Reason)
}

func (e *ApplyError) Unwrap() error { return ErrInvalid }

// Apply applies the batch rs, the entry at off, and returns the new image and the delta
// from im to it. If any record is invalid it returns an error wrapping ErrInvalid (an
// *ApplyError) and nothing of the batch applies. im is never modified.
func (im *Image) Apply(off Offset, rs []Record) (*Image, *Delta, error) {
	if len(rs) == 0 {
		return nil, nil, fmt.Errorf("%w: an empty batch", ErrInvalid)
	}
	if off.Index <= im.offset.Index || off.Term < im.offset.Term {
		return nil, nil, fmt.Errorf("%w: entry at %d (term %d) does not follow the image at %d (term %d)",
			ErrInvalid, off.Index, off.Term, im.offset.Index, im.offset.Term)
	}
	return im.apply(off, rs)
}

func (im *Image) apply(off Offset, rs []Record) (*Image, *Delta, error) {
	b := newBuilder(im)
	for i, r := range rs {
		if reason := b.record(r); reason != "" {
			return nil, nil, &ApplyError{Record: i, Type: typeOf(r), Reason: reason}
		}
	}
	next, d := b.finish(off)
	return next, d, nil
}

// WithOffset returns im as of a later entry that changed nothing (an entry refused by
// validation, or one the quorum wrote for itself).
func (im *Image) WithOffset(off Offset) *Image {
	c := *im
	c.offset = off
	return &c
}

// builder is an image being built by one batch.
type builder struct {
	im    Image // a shallow copy of the base image; its maps are the base's until owned
	d     *Delta
	owned map[uuid.UUID]*ownedTopic // topics copied by this batch, modified in place

	featuresOwned bool
	configsOwned  map[string]bool // broker resources whose config map is this batch's
}

func newBuilder(im *Image) *builder {
	return &builder{im: *im, d: newDelta(im.offset), owned: map[uuid.UUID]*ownedTopic{}}
}

// finish returns the image built, as of off, and the delta to it.
func (b *builder) finish(off Offset) (*Image, *Delta) {
	// Partition slices grew by append; trim their spare capacity, once per topic.
	for _, ot := range b.owned {
		if ot.parts && cap(ot.t.Partitions) > len(ot.t.Partitions) {
			ot.t.Partitions = slices.Clone(ot.t.Partitions)
		}
	}
	b.owned = nil // the image is published: nothing in it may change now
	b.im.offset = off
	b.d.To = off
	return &b.im, b.d
}

type ownedTopic struct {
	t              *Topic
	parts, configs bool // t's Partitions / Configs are this batch's own
}

func (b *builder) record(r Record) string {
	if isNil(r) {
		return "a nil record"
	}
	switch r := r.(type) {
	case *ClusterIDRecord:
		return b.clusterID(r)
	case *FeatureLevelRecord:
		return b.featureLevel(r)
	case *RegisterBrokerRecord:
		return b.registerBroker(r)
	case *BrokerRegistrationChangeRecord:
		return b.brokerChange(r)
	case *UnregisterBrokerRecord:
		return b.unregisterBroker(r)
	case *TopicRecord:
		return b.topic(r)
	case *PartitionRecord:
		return b.partition(r)
	case *PartitionChangeRecord:
		return b.partitionChange(r)
	case *RemoveTopicRecord:
		return b.removeTopic(r)
	case *ConfigRecord:
		return b.config(r)
	case *ProducerIDsRecord:
		return b.producerIDs(r)
	case *NoOpRecord:
		return ""
	}
	return fmt.Sprintf("unknown record %T", r)
}

func (b *builder) clusterID(r *ClusterIDRecord) string {
	switch {
	case r.ID == "":
		return "empty cluster ID"
	case b.im.clusterID != "" && b.im.clusterID != r.ID:
		return fmt.Sprintf("the cluster ID is %q already; it cannot become %q", b.im.clusterID, r.ID)
	}
	if b.im.clusterID != r.ID {
		b.im.clusterID = r.ID
		b.d.ClusterID = true
	}
	return ""
}

func (b *builder) featureLevel(r *FeatureLevelRecord) string {
	if r.Name == "" || r.Level < 0 {
		return fmt.Sprintf("feature %q level %d", r.Name, r.Level)
	}
	old := b.im.features[r.Name]
	if old == r.Level {
		return ""
	}
	if !b.featuresOwned {
		b.im.features = maps.Clone(b.im.features)
		if b.im.features == nil {
			b.im.features = map[string]int16{}
		}
		b.featuresOwned = true
	}
	if r.Level == 0 {
		delete(b.im.features, r.Name)
	} else {
		b.im.features[r.Name] = r.Level
	}
	if _, seen := b.d.Features[r.Name]; !seen {
		b.d.Features[r.Name] = old
	}
	return ""
}

func (b *builder) touchBroker(id int32, old *Broker) {
	if _, seen := b.d.Brokers[id]; !seen {
		b.d.Brokers[id] = old
	}
}

func (b *builder) registerBroker(r *RegisterBrokerRecord) string {
	if r.BrokerID < 0 {
		return fmt.Sprintf("broker ID %d", r.BrokerID)
	}
	if r.BrokerEpoch < 0 {
		return fmt.Sprintf("broker epoch %d", r.BrokerEpoch)
	}
	names := map[string]bool{}
	for _, l := range r.Listeners {
		switch {
		case l.Name == "" || l.Host == "" || l.Port == 0:
			return fmt.Sprintf("listener %q at %q port %d", l.Name, l.Host, l.Port)
		case l.SecurityProtocol < ProtocolPlaintext || l.SecurityProtocol > ProtocolSASLSSL:
			return fmt.Sprintf("listener %s: security protocol %d", l.Name, l.SecurityProtocol)
		case names[l.Name]:
			return fmt.Sprintf("listener %s twice", l.Name)
		}
		names[l.Name] = true
	}
	if len(r.Listeners) > maxListeners || len(r.LogDirs) > maxLogDirs {
		return "too many listeners or log dirs"
	}
	old := b.im.Broker(r.BrokerID)
	if old != nil && r.BrokerEpoch <= old.Epoch {
		return fmt.Sprintf("broker %d registers with epoch %d, not above its registration's %d", r.BrokerID, r.BrokerEpoch, old.Epoch)
	}
	nb := &Broker{ID: r.BrokerID, IncarnationID: r.IncarnationID, Epoch: r.BrokerEpoch,
		Listeners: slices.Clone(r.Listeners), Rack: r.Rack, Fenced: r.Fenced,
		InControlledShutdown: r.InControlledShutdown, LogDirs: slices.Clone(r.LogDirs)}
	b.touchBroker(r.BrokerID, old)
	b.im.brokers = b.im.brokers.Set(r.BrokerID, nb)
	return ""
}

// registered returns broker id's registration if epoch is its epoch.
func (b *builder) registered(id int32, epoch int64) (*Broker, string) {
	old := b.im.Broker(id)
	switch {
	case old == nil:
		return nil, fmt.Sprintf("broker %d is not registered", id)
	case old.Epoch != epoch:
		return nil, fmt.Sprintf("broker %d has epoch %d, not %d", id, old.Epoch, epoch)
	}
	return old, ""
}

func (b *builder) brokerChange(r *BrokerRegistrationChangeRecord) string {
	old, why := b.registered(r.BrokerID, r.BrokerEpoch)
	if why != "" {
		return why
	}
	nb := *old
	switch r.Fenced {
	case FenceNone:
	case FenceFence:
		nb.Fenced = true
	case FenceUnfence:
		nb.Fenced = false
	default:
		return fmt.Sprintf("fencing change %d", r.Fenced)
	}
	if r.InControlledShutdown {
		nb.InControlledShutdown = true
	}
	b.touchBroker(r.BrokerID, old)
	b.im.brokers = b.im.brokers.Set(r.BrokerID, &nb)
	return ""
}

func (b *builder) unregisterBroker(r *UnregisterBrokerRecord) string {
	old, why := b.registered(r.BrokerID, r.BrokerEpoch)
	if why != "" {
		return why
	}
	b.touchBroker(r.BrokerID, old)
	b.im.brokers = b.im.brokers.Delete(r.BrokerID)
	return ""
}

const maxTopicNameLen = 249

var legalTopicName = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

func (b *builder) topic(r *TopicRecord) string {
	switch {
	case r.Name == "" || r.Name == "." || r.Name == ".." || len(r.Name) > maxTopicNameLen || !legalTopicName.MatchString(r.Name):
		return fmt.Sprintf("illegal topic name %q", r.Name)
	case r.ID == uuid.Nil:
		return "topic ID is zero"
	case b.im.Topic(r.Name) != nil:
		return fmt.Sprintf("topic %s exists", r.Name)
	}
	if _, taken := b.im.topicIDs.Get(r.ID); taken {
		return fmt.Sprintf("topic ID %s is taken", r.ID)
	}
	t := &Topic{Name: r.Name, ID: r.ID}
	b.owned[r.ID] = &ownedTopic{t: t, parts: true, configs: true}
	b.im.topics = b.im.topics.Set(r.Name, t)
	b.im.topicIDs = b.im.topicIDs.Set(r.ID, r.Name)
	if _, seen := b.d.Topics[r.ID]; !seen {
		b.d.Topics[r.ID] = &TopicDelta{}
	}
	return ""
}

func (b *builder) removeTopic(r *RemoveTopicRecord) string {
	t := b.im.TopicByID(r.ID)
	if t == nil {
		return fmt.Sprintf("no topic with ID %s", r.ID)
	}
	if _, seen := b.d.Topics[r.ID]; !seen {
		b.d.Topics[r.ID] = &TopicDelta{Old: t}
	}
	delete(b.owned, r.ID)
	b.im.topics = b.im.topics.Delete(t.Name)
	b.im.topicIDs = b.im.topicIDs.Delete(r.ID)
	b.im.partitions -= len(t.Partitions)
	return ""
}

// mutable returns the topic with this ID as this batch's own copy, or nil.
func (b *builder) mutable(id uuid.UUID) (*ownedTopic, *TopicDelta) {
	if ot := b.owned[id]; ot != nil {
		return ot, b.d.Topics[id]
	}
	t := b.im.TopicByID(id)
	if t == nil {
		return nil, nil
	}
	td := b.d.Topics[id]
	if td == nil {
		td = &TopicDelta{Old: t}
		b.d.Topics[id] = td
	}
	c := *t
	ot := &ownedTopic{t: &c}
	b.owned[id] = ot
	b.im.topics = b.im.topics.Set(c.Name, &c)
	return ot, td
}

func (b *builder) partition(r *PartitionRecord) string {
	ot, td := b.mutable(r.TopicID)
	if ot == nil {
		return fmt.Sprintf("no topic with ID %s", r.TopicID)
	}
	t := ot.t
	if r.Partition != t.NumPartitions() {
		return fmt.Sprintf("partition %d of topic %s, which has %d: partitions are added in order", r.Partition, t.Name, len(t.Partitions))
	}
	if r.LeaderEpoch < 0 || r.PartitionEpoch < 0 {
		return fmt.Sprintf("partition %s-%d: leader epoch %d, partition epoch %d", t.Name, r.Partition, r.LeaderEpoch, r.PartitionEpoch)
	}
	if why := checkPartition(r.Replicas, r.ISR, r.RemovingReplicas, r.AddingReplicas, r.ELR, r.LastKnownELR, r.Leader); why != "" {
		return fmt.Sprintf("partition %s-%d: %s", t.Name, r.Partition, why)
	}
	if !ot.parts {
		t.Partitions = slices.Grow(slices.Clone(t.Partitions), 1)
		ot.parts = true
	}
	t.Partitions = append(t.Partitions, makePartition(r.Replicas, r.ISR, r.RemovingReplicas, r.AddingReplicas,
		r.ELR, r.LastKnownELR, r.Leader, r.LeaderEpoch, r.PartitionEpoch))
	b.im.partitions++
	td.markPartition(r.Partition)
	return ""
}

func (b *builder) partitionChange(r *PartitionChangeRecord) string {
	ot, td := b.mutable(r.TopicID)
	if ot == nil {
		return fmt.Sprintf("no topic with ID %s", r.TopicID)
	}
	t := ot.t
	p := t.Partition(r.Partition)
	switch {
	case p == nil:
		return fmt.Sprintf("topic %s has no partition %d", t.Name, r.Partition)
	case r.PartitionEpoch != p.PartitionEpoch:
		return fmt.Sprintf("partition %s-%d: the change was decided at partition epoch %d, the partition is at %d", t.Name, r.Partition, r.PartitionEpoch, p.PartitionEpoch)
	case r.Set&^allPartitionFields != 0:
		return fmt.Sprintf("unknown changed fields %#x", uint8(r.Set))
	case p.PartitionEpoch == math.MaxInt32 || (r.Set&SetLeader != 0 && p.LeaderEpoch == math.MaxInt32):
		return fmt.Sprintf("partition %s-%d: epoch overflow", t.Name, r.Partition)
	}
	pick := func(f PartitionFields, changed, old []int32) []int32 {
		if r.Set&f != 0 {
			return changed
		}
		return old
	}
	replicas := pick(SetReplicas, r.Replicas, p.Replicas())
	isr := pick(SetISR, r.ISR, p.ISR())
	removing := pick(SetRemovingReplicas, r.RemovingReplicas, p.RemovingReplicas())
	adding := pick(SetAddingReplicas, r.AddingReplicas, p.AddingReplicas())
	elr := pick(SetELR, r.ELR, p.ELR())
	lastKnown := pick(SetLastKnownELR, r.LastKnownELR, p.LastKnownELR())
	leader, leaderEpoch := p.Leader, p.LeaderEpoch
	if r.Set&SetLeader != 0 {
		leader, leaderEpoch = r.Leader, p.LeaderEpoch+1
	}
	if why := checkPartition(replicas, isr, removing, adding, elr, lastKnown, leader); why != "" {
		return fmt.Sprintf("partition %s-%d: %s", t.Name, r.Partition, why)
	}
	if !ot.parts {
		t.Partitions = slices.Clone(t.Partitions)
		ot.parts = true
	}
	t.Partitions[r.Partition] = makePartition(replicas, isr, removing, adding, elr, lastKnown, leader, leaderEpoch, p.PartitionEpoch+1)
	td.markPartition(r.Partition)
	return ""
}

// checkPartition returns what is wrong with a partition's state, or "".
func checkPartition(replicas, isr, removing, adding, elr, lastKnown []int32, leader int32) string {
	if len(replicas) == 0 {
		return "no replicas"
	}
	n := 0
	for _, l := range [][]int32{replicas, isr, removing, adding, elr, lastKnown} {
		if len(l) > maxReplicas {
			return fmt.Sprintf("a replica list of %d (at most %d)", len(l), maxReplicas)
		}
		n += len(l)
	}
	if n > maxPartitionLists {
		return fmt.Sprintf("replica lists of %d entries together (at most %d)", n, maxPartitionLists)
	}
	in := make(map[int32]bool, len(replicas))
	for _, r := range replicas {
		if r < 0 || in[r] {
			return fmt.Sprintf("replicas %v: negative or repeated", replicas)
		}
		in[r] = true
	}
	sub := func(what string, l []int32) string {
		seen := make(map[int32]bool, len(l))
		for _, r := range l {
			if !in[r] || seen[r] {
				return fmt.Sprintf("%s %v: not a set of the replicas %v", what, l, replicas)
			}
			seen[r] = true
		}
		return ""
	}
	for _, c := range []struct {
		what string
		l    []int32
	}{{"ISR", isr}, {"removing replicas", removing}, {"adding replicas", adding}, {"ELR", elr}, {"last known ELR", lastKnown}} {
		if why := sub(c.what, c.l); why != "" {
			return why
		}
	}
	for _, r := range elr {
		if slices.Contains(isr, r) {
			return fmt.Sprintf("replica %d is in both the ISR and the ELR", r)
		}
	}
	for _, r := range adding {
		if slices.Contains(removing, r) {
			return fmt.Sprintf("replica %d is both being added and removed", r)
		}
	}
	if leader != NoLeader && !slices.Contains(isr, leader) {
		return fmt.Sprintf("leader %d is not in the ISR %v", leader, isr)
	}
	return ""
}

func (b *builder) config(r *ConfigRecord) string {
	if r.Name == "" {
		return "empty config name"
	}
	switch r.ResourceType {
	case ResourceTopic:
		t := b.im.Topic(r.ResourceName)
		if t == nil {
			return fmt.Sprintf("config of unknown topic %q", r.ResourceName)
		}
		if old, had := t.Configs[r.Name]; (r.Value == nil && !had) || (r.Value != nil && had && old == *r.Value) {
			return "" // no change: the topic is not copied
		}
		ot, td := b.mutable(t.ID)
		setConfig(&ot.t.Configs, &ot.configs, r)
		if td.Configs == nil {
			td.Configs = map[string]bool{}
		}
		td.Configs[r.Name] = true
	case ResourceBroker:
		if r.ResourceName != "" {
			id, err := strconv.ParseInt(r.ResourceName, 10, 32)
			if err != nil || id < 0 || strconv.FormatInt(id, 10) != r.ResourceName {
				return fmt.Sprintf("broker config resource %q is neither \"\" nor a broker ID", r.ResourceName)
			}
		}
		if old, had := b.im.configs[r.ResourceName][r.Name]; (r.Value == nil && !had) || (r.Value != nil && had && old == *r.Value) {
			return ""
		}
		if b.configsOwned == nil {
			b.im.configs = maps.Clone(b.im.configs)
			if b.im.configs == nil {
				b.im.configs = map[string]map[string]string{}
			}
			b.configsOwned = map[string]bool{}
		}
		m, owned := b.im.configs[r.ResourceName], b.configsOwned[r.ResourceName]
		setConfig(&m, &owned, r)
		b.configsOwned[r.ResourceName] = true
		if m == nil {
			delete(b.im.configs, r.ResourceName)
		} else {
			b.im.configs[r.ResourceName] = m
		}
		keys := b.d.BrokerConfigs[r.ResourceName]
		if keys == nil {
			keys = map[string]bool{}
			b.d.BrokerConfigs[r.ResourceName] = keys
		}
		keys[r.Name] = true
	default:
		return fmt.Sprintf("config resource type %d", r.ResourceType)
	}
	return ""
}

// setConfig applies r, a change, to *m (nil when empty), copying it first unless *owned.
func setConfig(m *map[string]string, owned *bool, r *ConfigRecord) {
	if !*owned {
		*m = maps.Clone(*m)
		*owned = true
	}
	if r.Value == nil {
		delete(*m, r.Name)
		if len(*m) == 0 {
			*m = nil
		}
		return
	}
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[r.Name] = *r.Value
}

func (b *builder) producerIDs(r *ProducerIDsRecord) string {
	next := b.im.NextProducerID()
	switch {
	case r.BrokerID < 0:
		return fmt.Sprintf("broker ID %d", r.BrokerID)
	case r.Size <= 0:
		return fmt.Sprintf("a block of %d producer IDs", r.Size)
	case r.FirstID < next:
		return fmt.Sprintf("a block from producer ID %d, below the next free one (%d)", r.FirstID, next)
	case r.FirstID > math.MaxInt64-int64(r.Size):
		return fmt.Sprintf("a block from producer ID %d of %d overflows", r.FirstID, r.Size)
	}
	b.im.producerIDs = *r
	b.d.ProducerIDs = true
	return ""
}
