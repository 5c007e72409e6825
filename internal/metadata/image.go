// Package metadata is the cluster image: topics with their IDs, partition counts and
// config overrides, dynamic broker configs, the cluster ID and the producer ID
// allocator. The image is rebuilt from an ordered log of metadata records; every
// change is a record appended to that log first and applied second. Readers hold an
// immutable *Image; writers publish a new one (copy on write), so the produce and
// fetch paths never take a lock to look a topic up.
//
// Today the log is a local file (single node). The controller issue replaces the
// file with a Raft-replicated log of the same records; the image and its callers do
// not change.
package metadata

import (
	"sort"

	"github.com/google/uuid"
)

// Topic is one topic as the cluster knows it.
type Topic struct {
	Name              string
	ID                uuid.UUID
	Partitions        int32
	ReplicationFactor int16
	Configs           map[string]string // explicit overrides only
}

// Image is an immutable snapshot of cluster metadata. Never modify one you were given.
type Image struct {
	ClusterID      string
	Topics         map[string]*Topic
	TopicIDs       map[uuid.UUID]*Topic
	BrokerConfigs  map[string]string // dynamic broker configs (cluster-wide default)
	NextProducerID int64             // first producer ID not yet handed out
}

func emptyImage() *Image {
	return &Image{
		Topics:        map[string]*Topic{},
		TopicIDs:      map[uuid.UUID]*Topic{},
		BrokerConfigs: map[string]string{},
	}
}

// Topic returns the topic by name, or nil.
func (im *Image) Topic(name string) *Topic { return im.Topics[name] }

// TopicByID returns the topic by ID, or nil.
func (im *Image) TopicByID(id uuid.UUID) *Topic { return im.TopicIDs[id] }

// TopicNames returns every topic name, sorted.
func (im *Image) TopicNames() []string {
	names := make([]string, 0, len(im.Topics))
	for n := range im.Topics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// clone copies the maps (topics are copied when modified).
func (im *Image) clone() *Image {
	c := &Image{
		ClusterID:      im.ClusterID,
		Topics:         make(map[string]*Topic, len(im.Topics)),
		TopicIDs:       make(map[uuid.UUID]*Topic, len(im.TopicIDs)),
		BrokerConfigs:  make(map[string]string, len(im.BrokerConfigs)),
		NextProducerID: im.NextProducerID,
	}
	for k, v := range im.Topics {
		c.Topics[k] = v
		c.TopicIDs[v.ID] = v
	}
	for k, v := range im.BrokerConfigs {
		c.BrokerConfigs[k] = v
	}
	return c
}

func (t *Topic) clone() *Topic {
	c := *t
	c.Configs = make(map[string]string, len(t.Configs))
	for k, v := range t.Configs {
		c.Configs[k] = v
	}
	return &c
}
