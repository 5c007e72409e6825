package metadata

// Deltas: what changed between two images, and what that means to one node.
//
// A Delta holds, for everything that changed, the value before; the value after is in
// the image the delta leads to. Applying a batch returns one (Image.Apply); the deltas
// of consecutive batches merge into one (Merge), so a publisher that falls behind hands
// on a single delta; and two unrelated images have one too (Diff), which is how a node
// that loads a snapshot, or starts, sees it as a change from what it had.

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// Delta is the change from the image at From to the image at To.
type Delta struct {
	From, To  Offset
	ClusterID bool                      // the cluster ID was set
	Features  map[string]int16          // the old level of each feature that changed (0: unset)
	Brokers   map[int32]*Broker         // the old registration of each broker that changed (nil: none)
	Topics    map[uuid.UUID]*TopicDelta // each topic created, deleted or changed
	// BrokerConfigs holds the config keys that changed, per broker resource ("" is the
	// cluster default).
	BrokerConfigs map[string]map[string]bool
	ProducerIDs   bool // a block of producer IDs was handed out
}

// TopicDelta is the change of one topic. The topic is deleted if the new image has no
// topic with its ID, and created if Old is nil.
type TopicDelta struct {
	Old *Topic // the topic before; nil if the delta created it
	// Partitions of Old that changed, and partitions added to it (nil for a created
	// topic: all of its partitions are new).
	Partitions map[int32]bool
	Configs    map[string]bool // config keys that changed
}

func newDelta(from Offset) *Delta {
	return &Delta{From: from, To: from, Features: map[string]int16{}, Brokers: map[int32]*Broker{},
		Topics: map[uuid.UUID]*TopicDelta{}, BrokerConfigs: map[string]map[string]bool{}}
}

func (td *TopicDelta) markPartition(i int32) {
	if td.Old == nil {
		return
	}
	if td.Partitions == nil {
		td.Partitions = map[int32]bool{}
	}
	td.Partitions[i] = true
}

// Empty reports whether nothing but the offset changed.
func (d *Delta) Empty() bool {
	return !d.ClusterID && !d.ProducerIDs && len(d.Features) == 0 && len(d.Brokers) == 0 &&
		len(d.Topics) == 0 && len(d.BrokerConfigs) == 0
}

// Merge returns the change of a followed by b (b.From must be a.To). Neither is
// modified.
func Merge(a, b *Delta) (*Delta, error) {
	if a.To != b.From {
		return nil, fmt.Errorf("merge deltas: the first ends at %d (term %d), the second starts at %d (term %d)",
			a.To.Index, a.To.Term, b.From.Index, b.From.Term)
	}
	m := newDelta(a.From)
	m.To = b.To
	m.ClusterID = a.ClusterID || b.ClusterID
	m.ProducerIDs = a.ProducerIDs || b.ProducerIDs
	for _, d := range []*Delta{b, a} { // a's old values overwrite b's
		maps.Copy(m.Features, d.Features)
		maps.Copy(m.Brokers, d.Brokers)
	}
	for _, d := range []*Delta{a, b} {
		for res, keys := range d.BrokerConfigs {
			if m.BrokerConfigs[res] == nil {
				m.BrokerConfigs[res] = map[string]bool{}
			}
			maps.Copy(m.BrokerConfigs[res], keys)
		}
		for id, td := range d.Topics {
			mt := m.Topics[id]
			if mt == nil {
				mt = &TopicDelta{Old: td.Old}
				m.Topics[id] = mt
			}
			if mt.Old != nil {
				for i := range td.Partitions {
					mt.markPartition(i)
				}
			}
			for k := range td.Configs {
				if mt.Configs == nil {
					mt.Configs = map[string]bool{}
				}
				mt.Configs[k] = true
			}
		}
	}
	return m, nil
}

// Diff returns the delta from old to new, two images of the same log (new's offset at
// or after old's). It walks both images: O(the images), for loading a snapshot or
// starting, not for every entry.
func Diff(old, new *Image) *Delta {
	d := newDelta(old.offset)
	d.To = new.offset
	d.ClusterID = old.clusterID != new.clusterID
	d.ProducerIDs = old.producerIDs != new.producerIDs
	for n, l := range old.features {
		if new.features[n] != l {
			d.Features[n] = l
		}
	}
	for n := range new.features {
		if _, ok := old.features[n]; !ok {
			d.Features[n] = 0
		}
	}
	old.brokers.All(func(id int32, ob *Broker) bool {
		if nb := new.Broker(id); nb == nil || !brokerEqual(ob, nb) {
			d.Brokers[id] = ob
		}
		return true
	})
	new.brokers.All(func(id int32, _ *Broker) bool {
		if old.Broker(id) == nil {
			d.Brokers[id] = nil
		}
		return true
	})
	old.topics.All(func(_ string, ot *Topic) bool {
		nt := new.TopicByID(ot.ID)
		if nt == ot {
			return true
		}
		td := &TopicDelta{Old: ot}
		if nt != nil {
			for i := range nt.Partitions {
				if i >= len(ot.Partitions) || !partitionEqual(&ot.Partitions[i], &nt.Partitions[i]) {
					td.markPartition(int32(i))
				}
			}
			td.Configs = changedKeys(ot.Configs, nt.Configs)
			if td.Partitions == nil && td.Configs == nil {
				return true
			}
		}
		d.Topics[ot.ID] = td
		return true
	})
	new.topics.All(func(_ string, nt *Topic) bool {
		if old.TopicByID(nt.ID) == nil {
			d.Topics[nt.ID] = &TopicDelta{}
		}
		return true
	})
	for _, res := range sortedKeys(mapsUnion(old.configs, new.configs)) {
		if keys := changedKeys(old.configs[res], new.configs[res]); keys != nil {
			d.BrokerConfigs[res] = keys
		}
	}
	return d
}

func mapsUnion[V any](a, b map[string]V) map[string]V {
	m := maps.Clone(a)
	if m == nil {
		m = map[string]V{}
	}
	maps.Copy(m, b)
	return m
}

// changedKeys returns the keys whose values differ between a and b, or nil.
func changedKeys(a, b map[string]string) map[string]bool {
	var keys map[string]bool
	mark := func(k string) {
		if keys == nil {
			keys = map[string]bool{}
		}
		keys[k] = true
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			mark(k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			mark(k)
		}
	}
	return keys
}

func brokerEqual(a, b *Broker) bool {
	return a.ID == b.ID && a.IncarnationID == b.IncarnationID && a.Epoch == b.Epoch &&
		slices.Equal(a.Listeners, b.Listeners) && a.Rack == b.Rack && a.Fenced == b.Fenced &&
		a.InControlledShutdown == b.InControlledShutdown && slices.Equal(a.LogDirs, b.LogDirs)
}

func partitionEqual(a, b *Partition) bool {
	return a.Leader == b.Leader && a.LeaderEpoch == b.LeaderEpoch && a.PartitionEpoch == b.PartitionEpoch &&
		a.ends == b.ends && slices.Equal(a.lists, b.lists)
}

// BrokerChange is a broker whose registration changed: Old before, New after (nil when
// there was or is none).
type BrokerChange struct {
	ID       int32
	Old, New *Broker
}

func (c BrokerChange) Registered() bool {
	return c.New != nil && (c.Old == nil || c.Old.Epoch != c.New.Epoch)
}
func (c BrokerChange) Unregistered() bool { return c.Old != nil && c.New == nil }
func (c BrokerChange) Fenced() bool {
	return c.New != nil && c.New.Fenced && (c.Old == nil || !c.Old.Fenced)
}
func (c BrokerChange) Unfenced() bool {
	return c.New != nil && !c.New.Fenced && (c.Old == nil || c.Old.Fenced)
}

// BrokerChanges returns the brokers d changed, by ID; im is the image d leads to.
func (d *Delta) BrokerChanges(im *Image) []BrokerChange {
	out := make([]BrokerChange, 0, len(d.Brokers))
	for id, old := range d.Brokers {
		if c := (BrokerChange{ID: id, Old: old, New: im.Broker(id)}); c.Old != nil || c.New != nil {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b BrokerChange) int { return cmpInt32(a.ID, b.ID) })
	return out
}

// CreatedTopics returns the topics d created, by name; im is the image d leads to.
func (d *Delta) CreatedTopics(im *Image) []*Topic {
	var out []*Topic
	for id, td := range d.Topics {
		if t := im.TopicByID(id); td.Old == nil && t != nil {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b *Topic) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// DeletedTopics returns the topics d deleted, as they were, by name; im is the image d
// leads to.
func (d *Delta) DeletedTopics(im *Image) []*Topic {
	var out []*Topic
	for id, td := range d.Topics {
		if td.Old != nil && im.TopicByID(id) == nil {
			out = append(out, td.Old)
		}
	}
	slices.SortFunc(out, func(a, b *Topic) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	TopicID   uuid.UUID
	Partition int32
}

// LocalPartition is a partition this node hosts, in its new state.
type LocalPartition struct {
	TopicPartition
	State Partition
	// Elected (leaders only): the leadership is new, a new leader epoch, rather than an
	// update of the ISR or replicas under the same one.
	Elected bool
}

// LocalChanges is what a delta asks of one node.
type LocalChanges struct {
	// Leaders: partitions this node now leads, or leads with a new partition epoch.
	Leaders []LocalPartition
	// Followers: partitions this node now follows (their leader may be NoLeader), or
	// follows with a new partition epoch.
	Followers []LocalPartition
	// Close: partitions whose replicas no longer include this node; the partition lives
	// on elsewhere. (Kafka deletes the local replica then.)
	Close []TopicPartition
	// Delete: partitions of deleted topics this node held a replica of; their data goes.
	Delete []TopicPartition
}

// ForNode returns what d asks of node: the partitions to open or update as leader or
// follower, to close and to delete. im is the image d leads to. It is a pure function
// of its arguments. Close and Delete come before the others in a reconciliation: a
// topic deleted and created again under its name in one delta appears in both.
func ForNode(d *Delta, im *Image, node int32) LocalChanges {
	var lc LocalChanges
	for id, td := range d.Topics {
		nt := im.TopicByID(id)
		switch {
		case nt == nil && td.Old == nil:
			// created and deleted within the delta: this node never saw it
		case nt == nil:
			for i := range td.Old.Partitions {
				if td.Old.Partitions[i].HasReplica(node) {
					lc.Delete = append(lc.Delete, TopicPartition{td.Old.Name, id, int32(i)})
				}
			}
		case td.Old == nil:
			for i := range nt.Partitions {
				lc.classify(nt, int32(i), nil, node)
			}
		default:
			for i := range td.Partitions {
				lc.classify(nt, i, td.Old.Partition(i), node)
			}
		}
	}
	byName := func(a, b TopicPartition) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		if c := cmpUUID(a.TopicID, b.TopicID); c != 0 {
			return c
		}
		return cmpInt32(a.Partition, b.Partition)
	}
	local := func(a, b LocalPartition) int { return byName(a.TopicPartition, b.TopicPartition) }
	slices.SortFunc(lc.Leaders, local)
	slices.SortFunc(lc.Followers, local)
	slices.SortFunc(lc.Close, byName)
	slices.SortFunc(lc.Delete, byName)
	return lc
}

func (lc *LocalChanges) classify(t *Topic, i int32, old *Partition, node int32) {
	p := t.Partition(i)
	if p == nil {
		return
	}
	tp := TopicPartition{t.Name, t.ID, i}
	switch {
	case !p.HasReplica(node):
		if old != nil && old.HasReplica(node) {
			lc.Close = append(lc.Close, tp)
		}
	case old != nil && old.HasReplica(node) && old.PartitionEpoch == p.PartitionEpoch:
		// unchanged for this node
	case p.Leader == node:
		elected := old == nil || !old.HasReplica(node) || old.Leader != node || old.LeaderEpoch != p.LeaderEpoch
		lc.Leaders = append(lc.Leaders, LocalPartition{TopicPartition: tp, State: *p, Elected: elected})
	default:
		lc.Followers = append(lc.Followers, LocalPartition{TopicPartition: tp, State: *p})
	}
}
