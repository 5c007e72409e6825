package broker

// Topic lifecycle: names, deletion and config changes (creation is create.go; hosting,
// deleting and reconfiguring partitions follow the image, reconcile.go).

import (
	"regexp"
	"strings"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"

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

// DeleteTopic deletes a topic: the deletion is committed, and every node that hosts its
// partitions deletes them as it applies it (reconcile.go); on this node that has happened
// when it answers.
func (b *Broker) DeleteTopic(name string) (uuid.UUID, error) {
	ctx, done, err := b.beginChange()
	if err != nil {
		return uuid.Nil, err
	}
	defer done()
	id, err := b.writer.DeleteTopic(ctx, name)
	if err == nil {
		b.awaitHosted(ctx, b.Image().Offset().Index, name)
	}
	return id, err
}

// ConfigChange is one config operation: Value nil deletes the override.
type ConfigChange struct {
	Key   string
	Value *string
}

// AlterTopicConfigs applies changes to a topic's overrides. With replace, every override
// not in changes is removed (the legacy AlterConfigs semantics).
func (b *Broker) AlterTopicConfigs(name string, changes []ConfigChange, replace, validateOnly bool) error {
	ctx, done, err := b.beginChange()
	if err != nil {
		return err
	}
	defer done()
	if err := b.writer.AlterTopicConfigs(ctx, name, changes, replace, validateOnly); err != nil {
		return err
	}
	if !validateOnly {
		b.awaitHosted(ctx, b.Image().Offset().Index)
	}
	return nil
}

// AlterBrokerConfigs applies dynamic broker config changes to the BROKER resource name:
// "" for the cluster-wide defaults, a broker ID in decimal for that broker's own.
func (b *Broker) AlterBrokerConfigs(name string, changes []ConfigChange, validateOnly bool) error {
	ctx, done, err := b.beginChange()
	if err != nil {
		return err
	}
	defer done()
	if err := b.writer.AlterBrokerConfigs(ctx, name, changes, validateOnly); err != nil {
		return err
	}
	if !validateOnly {
		b.awaitHosted(ctx, b.Image().Offset().Index)
	}
	return nil
}

// reconfigure applies a topic's configuration (its overrides over the effective broker
// defaults) to its hosted partitions.
func (b *Broker) reconfigure(t *metadata.Topic) {
	ht := b.Topic(t.Name)
	if ht == nil || ht.ID != t.ID {
		return
	}
	tc := b.TopicConfig(t.Configs)
	for _, p := range ht.Partitions {
		if p != nil {
			p.SetConfig(PartitionConfig(tc), LogConfig(tc))
		}
	}
}
