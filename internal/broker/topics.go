package broker

// Topic lifecycle: names, deletion and config changes (creation is create.go, hosting
// partitions host.go). changeMu serialises the changes' decisions; a change of one topic
// that works outside it (creating or removing partitions) reserves the topic's name, so
// that other changes of that topic wait for it and changes of other topics do not.

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/metadata"
)

const maxTopicNameLen = 249

var legalTopicName = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// Internal topics.
const (
	ConsumerOffsetsTopic  = "__consumer_offsets"
	TransactionStateTopic = "__transaction_state"
)

// IsInternal reports whether name is one of Kafka's internal topics.
func IsInternal(name string) bool {
	return name == ConsumerOffsetsTopic || name == TransactionStateTopic
}

// ValidateTopicName checks a topic name as Kafka does.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return kafkaErr(kerr.InvalidTopicException, "topic name is empty")
	case name == "." || name == "..":
		return kafkaErr(kerr.InvalidTopicException, "topic name cannot be %q", name)
	case len(name) > maxTopicNameLen:
		return kafkaErr(kerr.InvalidTopicException, "topic name is longer than %d characters", maxTopicNameLen)
	case !legalTopicName.MatchString(name):
		return kafkaErr(kerr.InvalidTopicException, "topic name %q contains characters other than ASCII alphanumerics, '.', '_' and '-'", name)
	}
	return nil
}

// collides reports whether two names are the same once '.' and '_' are equated: Kafka's
// metric names cannot tell them apart, so it refuses such pairs.
func collides(a, b string) bool {
	return a != b && strings.ReplaceAll(a, ".", "_") == strings.ReplaceAll(b, ".", "_")
}

// DeleteTopic deletes a topic and its data: the deletion is recorded first, then the
// partitions are closed and their directories removed, without holding up other topics'
// changes (a change of this topic name waits for it).
func (b *Broker) DeleteTopic(name string) (uuid.UUID, error) {
	if !b.cfg.DeleteTopicEnable {
		return uuid.Nil, kafkaErr(kerr.TopicDeletionDisabled, "delete.topic.enable is false")
	}
	b.changeMu.Lock()
	b.waitFreeLocked(name)
	if b.closing {
		b.changeMu.Unlock()
		return uuid.Nil, ErrShuttingDown
	}
	var id uuid.UUID
	if _, err := b.meta.Apply(func(im *metadata.Image) ([]metadata.Record, error) {
		t := im.Topic(name)
		if t == nil {
			return nil, kafkaErr(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
		}
		id = t.ID
		return []metadata.Record{&metadata.RemoveTopicRecord{ID: t.ID}}, nil
	}); err != nil {
		b.changeMu.Unlock()
		return uuid.Nil, recordError(err)
	}
	old := b.swapTopic(name, nil)
	b.reserveLocked(name, 0)
	b.changeMu.Unlock()
	defer b.release(name)
	if old != nil {
		for _, p := range old.Partitions {
			// The deletion is recorded: a directory left by a failure here is set aside
			// at the next start.
			if err := p.Delete(); err != nil {
				b.logger.Error("delete partition", "topic", name, "partition", p.Index, "err", err)
			}
		}
	}
	b.logger.Info("deleted topic", "topic", name, "topic_id", base64URL(id[:]))
	return id, nil
}

// ConfigChange is one config operation: Value nil deletes the override.
type ConfigChange struct {
	Key   string
	Value *string
}

// AlterTopicConfigs applies changes to a topic's overrides. With replace, every override
// not in changes is removed (the legacy AlterConfigs semantics).
func (b *Broker) AlterTopicConfigs(name string, changes []ConfigChange, replace, validateOnly bool) error {
	b.changeMu.Lock()
	defer b.changeMu.Unlock()
	b.waitFreeLocked(name)
	rec := func(im *metadata.Image) ([]metadata.Record, error) {
		t := im.Topic(name)
		if t == nil {
			return nil, kafkaErr(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
		}
		next := map[string]string{}
		if !replace {
			for k, v := range t.Configs {
				next[k] = v
			}
		}
		for _, c := range changes {
			if c.Value == nil {
				delete(next, c.Key)
			} else {
				next[c.Key] = *c.Value
			}
		}
		if err := b.effective().ValidateTopic(next); err != nil {
			return nil, fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
		}
		var rs []metadata.Record
		for k := range t.Configs {
			if _, ok := next[k]; !ok {
				rs = append(rs, &metadata.ConfigRecord{ResourceType: metadata.ResourceTopic, ResourceName: t.Name, Name: k})
			}
		}
		for k, v := range next {
			if old, ok := t.Configs[k]; !ok || old != v {
				v := v
				rs = append(rs, &metadata.ConfigRecord{ResourceType: metadata.ResourceTopic, ResourceName: t.Name, Name: k, Value: &v})
			}
		}
		return rs, nil
	}
	if validateOnly {
		_, err := rec(b.meta.Image())
		return err
	}
	im, err := b.meta.Apply(rec)
	if err != nil {
		return recordError(err)
	}
	b.reconfigure(im.Topic(name))
	return nil
}

// AlterBrokerConfigs applies dynamic broker config changes (cluster-wide defaults).
func (b *Broker) AlterBrokerConfigs(changes []ConfigChange, validateOnly bool) error {
	for _, c := range changes {
		var err error
		if c.Value != nil {
			err = config.ValidateBrokerDynamic(c.Key, *c.Value)
		} else {
			err = config.ValidateBrokerDynamicDelete(c.Key)
		}
		if err != nil {
			return fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
		}
	}
	if validateOnly {
		return nil
	}
	b.changeMu.Lock()
	defer b.changeMu.Unlock()
	im, err := b.meta.Apply(func(*metadata.Image) ([]metadata.Record, error) {
		rs := make([]metadata.Record, 0, len(changes))
		for _, c := range changes {
			// The cluster-wide default: a node's own configs are the same thing while it
			// is the only one.
			rs = append(rs, &metadata.ConfigRecord{ResourceType: metadata.ResourceBroker, Name: c.Key, Value: c.Value})
		}
		return rs, nil
	})
	if err != nil {
		return recordError(err)
	}
	for _, name := range im.TopicNames() {
		b.reconfigure(im.Topic(name))
	}
	return nil
}

func (b *Broker) reconfigure(t *metadata.Topic) {
	ht := b.Topic(t.Name)
	if ht == nil {
		return
	}
	tc := b.TopicConfig(t.Configs)
	for _, p := range ht.Partitions {
		p.SetConfig(PartitionConfig(tc), LogConfig(tc))
	}
}

// swapTopic replaces (or with nil removes) a hosted topic and returns the old one.
func (b *Broker) swapTopic(name string, t *Topic) *Topic {
	old := *b.topics.Load()
	next := make(map[string]*Topic, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	prev := next[name]
	if t == nil {
		delete(next, name)
	} else {
		next[name] = t
	}
	b.topics.Store(&next)
	return prev
}
