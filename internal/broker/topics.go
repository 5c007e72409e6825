package broker

// Topic lifecycle: create, delete, add partitions, alter configs. Every change is a
// metadata record first; partition directories follow. A directory is named
// <topic>-<partition> as in Kafka and holds partition.metadata with the topic ID, so a
// directory left behind by a deleted topic of the same name is recognised and removed.

import (
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/partition"
	"github.com/vltava/vltava/internal/vfs"
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

// CreateTopic creates a topic. partitions and replicationFactor of -1 take the broker
// defaults. With validateOnly nothing changes.
func (b *Broker) CreateTopic(name string, partitions int32, replicationFactor int16, configs map[string]string, validateOnly bool) (*metadata.Topic, error) {
	if err := ValidateTopicName(name); err != nil {
		return nil, err
	}
	if partitions == -1 {
		partitions = b.cfg.NumPartitions
	}
	if replicationFactor == -1 {
		replicationFactor = b.cfg.DefaultReplicationFactor
	}
	if partitions <= 0 {
		return nil, kafkaErr(kerr.InvalidPartitions, "number of partitions must be larger than 0")
	}
	if replicationFactor <= 0 {
		return nil, kafkaErr(kerr.InvalidReplicationFactor, "replication factor must be larger than 0")
	}
	if live := int16(1); replicationFactor > live {
		return nil, kafkaErr(kerr.InvalidReplicationFactor, "replication factor: %d larger than available brokers: %d", replicationFactor, live)
	}
	if err := b.effective().ValidateTopic(configs); err != nil {
		return nil, fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	b.changeMu.Lock()
	defer b.changeMu.Unlock()
	var created *metadata.Topic
	rec := func(im *metadata.Image) ([]metadata.Record, error) {
		if im.Topic(name) != nil {
			return nil, kafkaErr(kerr.TopicAlreadyExists, "topic %q already exists", name)
		}
		for _, other := range im.TopicNames() {
			if collides(name, other) {
				return nil, kafkaErr(kerr.InvalidTopicException, "topic %q collides with existing topic %q", name, other)
			}
		}
		cfgs := make(map[string]string, len(configs))
		for k, v := range configs {
			cfgs[k] = v
		}
		return []metadata.Record{{Topic: &metadata.TopicRecord{Name: name, ID: uuid.New(),
			Partitions: partitions, ReplicationFactor: replicationFactor, Configs: cfgs}}}, nil
	}
	if validateOnly {
		rs, err := rec(b.meta.Image())
		if err != nil {
			return nil, err
		}
		r := rs[0].Topic
		return &metadata.Topic{Name: r.Name, ID: r.ID, Partitions: r.Partitions, ReplicationFactor: r.ReplicationFactor, Configs: r.Configs}, nil
	}
	im, err := b.meta.Apply(rec)
	if err != nil {
		return nil, err
	}
	created = im.Topic(name)
	if err := b.openTopic(created, true); err != nil {
		return nil, fmt.Errorf("%w: create partitions of %s: %v", kerr.UnknownServerError, name, err)
	}
	b.logger.Info("created topic", "topic", name, "id", created.ID, "partitions", partitions)
	return created, nil
}

// DeleteTopic deletes a topic and its data.
func (b *Broker) DeleteTopic(name string) (uuid.UUID, error) {
	if !b.cfg.DeleteTopicEnable {
		return uuid.Nil, kafkaErr(kerr.TopicDeletionDisabled, "delete.topic.enable is false")
	}
	b.changeMu.Lock()
	defer b.changeMu.Unlock()
	var id uuid.UUID
	if _, err := b.meta.Apply(func(im *metadata.Image) ([]metadata.Record, error) {
		t := im.Topic(name)
		if t == nil {
			return nil, kafkaErr(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
		}
		id = t.ID
		return []metadata.Record{{RemoveTopic: &metadata.RemoveTopicRecord{ID: t.ID}}}, nil
	}); err != nil {
		return uuid.Nil, err
	}
	old := b.swapTopic(name, nil)
	if old != nil {
		for _, p := range old.Partitions {
			if err := p.Delete(); err != nil {
				b.logger.Error("delete partition", "topic", name, "partition", p.Index, "err", err)
			}
		}
	}
	b.logger.Info("deleted topic", "topic", name, "id", id)
	return id, nil
}

// CreatePartitions raises a topic's partition count to count.
func (b *Broker) CreatePartitions(name string, count int32, validateOnly bool) error {
	b.changeMu.Lock()
	defer b.changeMu.Unlock()
	rec := func(im *metadata.Image) ([]metadata.Record, error) {
		t := im.Topic(name)
		if t == nil {
			return nil, kafkaErr(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
		}
		if count < t.Partitions {
			return nil, kafkaErr(kerr.InvalidPartitions, "topic currently has %d partitions, which is higher than the requested %d", t.Partitions, count)
		}
		if count == t.Partitions {
			return nil, kafkaErr(kerr.InvalidPartitions, "topic already has %d partitions", t.Partitions)
		}
		return []metadata.Record{{Partitions: &metadata.PartitionsRecord{ID: t.ID, Partitions: count}}}, nil
	}
	if validateOnly {
		_, err := rec(b.meta.Image())
		return err
	}
	im, err := b.meta.Apply(rec)
	if err != nil {
		return err
	}
	return b.openTopic(im.Topic(name), true)
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
				rs = append(rs, metadata.Record{TopicConfig: &metadata.TopicConfigRecord{ID: t.ID, Key: k}})
			}
		}
		for k, v := range next {
			if old, ok := t.Configs[k]; !ok || old != v {
				v := v
				rs = append(rs, metadata.Record{TopicConfig: &metadata.TopicConfigRecord{ID: t.ID, Key: k, Value: &v}})
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
		return err
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
			rs = append(rs, metadata.Record{BrokerConfig: &metadata.BrokerConfigRecord{Key: c.Key, Value: c.Value}})
		}
		return rs, nil
	})
	if err != nil {
		return err
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

// openAll opens every partition of every topic in the image and removes directories
// that belong to no topic (left by a deletion that crashed half way).
func (b *Broker) openAll(im *metadata.Image) error {
	empty := map[string]*Topic{}
	b.topics.Store(&empty)
	for _, name := range im.TopicNames() {
		if err := b.openTopic(im.Topic(name), false); err != nil {
			return err
		}
	}
	for _, d := range b.cfg.LogDirs {
		entries, err := b.fsys.ReadDir(d)
		if err != nil {
			return fmt.Errorf("read log dir %s: %w", d, err)
		}
		for _, e := range entries {
			if !e.IsDir() || e.Name() == metadataDirName {
				continue
			}
			topic, idx, ok := parsePartitionDir(e.Name())
			if !ok {
				continue
			}
			if t := im.Topic(topic); t != nil && idx < t.Partitions {
				continue
			}
			b.logger.Warn("removing partition directory of a deleted topic", "dir", e.Name())
			if err := b.fsys.RemoveAll(filepath.Join(d, e.Name())); err != nil {
				return fmt.Errorf("remove stale %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

func parsePartitionDir(name string) (string, int32, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || n < 0 {
		return "", 0, false
	}
	return name[:i], int32(n), true
}

// openTopic opens (creating as needed) the partitions of t that are not open yet.
// fresh says a directory with another topic ID is stale and may be replaced.
func (b *Broker) openTopic(t *metadata.Topic, fresh bool) error {
	prev := b.Topic(t.Name)
	ht := &Topic{Name: t.Name, ID: t.ID, Internal: IsInternal(t.Name)}
	if prev != nil && prev.ID == t.ID {
		ht.Partitions = append(ht.Partitions, prev.Partitions...)
	}
	tc := b.TopicConfig(t.Configs)
	opened := 0
	for i := int32(len(ht.Partitions)); i < t.Partitions; i++ {
		p, err := b.openPartition(t, i, tc)
		if err != nil {
			for _, p := range ht.Partitions[len(ht.Partitions)-opened:] {
				p.Close()
			}
			return err
		}
		ht.Partitions = append(ht.Partitions, p)
		opened++
	}
	b.swapTopic(t.Name, ht)
	return nil
}

func (b *Broker) partitionDir(topic string, idx int32) string {
	name := fmt.Sprintf("%s-%d", topic, idx)
	for _, d := range b.cfg.LogDirs {
		if _, err := b.fsys.Stat(filepath.Join(d, name)); err == nil {
			return filepath.Join(d, name)
		}
	}
	// A new partition goes to the log dir with the fewest partitions.
	best, bestN := b.cfg.LogDirs[0], -1
	for _, d := range b.cfg.LogDirs {
		entries, _ := b.fsys.ReadDir(d)
		if bestN == -1 || len(entries) < bestN {
			best, bestN = d, len(entries)
		}
	}
	return filepath.Join(best, name)
}

func (b *Broker) openPartition(t *metadata.Topic, idx int32, tc config.Topic) (*partition.Partition, error) {
	dir := b.partitionDir(t.Name, idx)
	metaPath := filepath.Join(dir, "partition.metadata")
	want := fmt.Sprintf("version: 0\ntopic_id: %s\n", base64URL(t.ID[:]))
	if old, err := readFile(b.fsys, metaPath); err == nil && string(old) != want {
		// The directory belongs to an earlier topic of the same name.
		b.logger.Warn("replacing partition directory of an earlier topic", "dir", dir)
		if err := b.fsys.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("remove stale %s: %w", dir, err)
		}
	}
	if err := b.fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("partition dir %s: %w", dir, err)
	}
	if old, err := readFile(b.fsys, metaPath); err != nil || string(old) != want {
		if err := writeFileAtomic(b.fsys, metaPath, []byte(want)); err != nil {
			return nil, err
		}
	}
	l, err := log.Open(b.fsys, dir, LogConfig(tc), b.now)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	p, err := partition.Open(t.Name, idx, l, PartitionConfig(tc), 0, b.now)
	if err != nil {
		l.Close()
		return nil, err
	}
	return p, nil
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func readFile(fsys vfs.FS, path string) ([]byte, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

// writeFileAtomic writes a small file so that a crash leaves either the old or the new
// content: temp file, fsync, rename, fsync the directory.
func writeFileAtomic(fsys vfs.FS, path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err == nil {
		err = fsys.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
