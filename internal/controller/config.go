package controller

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vltava/vltava/internal/config"
)

// MetadataVersionFeature is the feature whose level names the metadata records' format.
const MetadataVersionFeature = "metadata.version"

// ELRFeature is KIP-966's feature: at level 1 the controller keeps eligible leader
// replicas (partition.go).
const ELRFeature = "eligible.leader.replicas.version"

// DefaultMetadataVersion is the metadata.version level this Vltava writes: Vltava's
// records are its own (metadata/record.go), so its levels are too; 1 is the first.
const DefaultMetadataVersion int16 = 1

// ProducerIDBlockSize is the number of producer IDs AllocateProducerIds hands out at a
// time, as Kafka's ProducerIdsBlock.
const ProducerIDBlockSize = 1000

// Config is what the controller needs of the node's configuration. ConfigFor fills it
// from the broker configuration; zero fields take the defaults.
type Config struct {
	// NodeID is node.id: the controller acts while the quorum's leader is this node.
	NodeID int32
	// ClusterID is written into a metadata log that has none when this node first
	// becomes the active controller (meta.properties' cluster.id).
	ClusterID string
	// Broker is the static broker configuration: num.partitions and
	// default.replication.factor for CreateTopics, delete.topic.enable, the topic and
	// dynamic broker config tables for validation (with the cluster's dynamic defaults
	// from the image laid over it).
	Broker config.Broker
	// SessionTimeout is broker.session.timeout.ms (9 s): a broker that has not
	// heartbeated for this long is fenced. HeartbeatInterval is
	// broker.heartbeat.interval.ms (2 s), the brokers' heartbeat period; sessions are
	// checked every quarter of the shorter of the two.
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
	// ControllerListenerName is the first of controller.listener.names: AddRaftVoter
	// takes the new voter's address from its listener of that name (CONTROLLER).
	ControllerListenerName string
	// MaxQueuedOperations (vltava.controller.max.queued.operations, 1024, Vltava's own)
	// bounds the requests and writes the controller holds: beyond it, Handle waits for
	// room until its context ends (REQUEST_TIMED_OUT).
	MaxQueuedOperations int
	// MaxEntryBytes is the quorum's vltava.quorum.max.entry.bytes (8 MiB): a change
	// larger than one entry is refused with POLICY_VIOLATION before it is proposed.
	MaxEntryBytes int
	// MetadataVersion is the metadata.version level written with the cluster ID.
	MetadataVersion int16
	// ELRVersion is the eligible.leader.replicas.version (KIP-966) a new cluster is
	// given with its metadata.version: 1 (the default), as Kafka 4.1+ formats new
	// clusters, keeps eligible leader replicas: the ISR may become empty, with the
	// replicas that left it below min.insync.replicas kept as leader candidates. -1
	// gives level 0, Kafka 4.0's default: the ISR keeps its last member (KIP-841). A
	// cluster keeps the level it was given.
	ELRVersion int16
	// Seed seeds placement's randomness and topic IDs (0: from the clock), for tests and
	// the simulation.
	Seed int64
}

// ConfigFor returns the controller's configuration from a node's broker configuration.
func ConfigFor(b config.Broker, clusterID string) Config {
	ms := func(key string, def time.Duration) time.Duration {
		if v, err := strconv.ParseInt(strings.TrimSpace(b.Values[key]), 10, 64); err == nil && v > 0 {
			return time.Duration(v) * time.Millisecond
		}
		return def
	}
	c := Config{NodeID: b.NodeID, ClusterID: clusterID, Broker: b,
		SessionTimeout:    ms("broker.session.timeout.ms", 9*time.Second),
		HeartbeatInterval: ms("broker.heartbeat.interval.ms", 2*time.Second)}
	if names := strings.Split(b.Values["controller.listener.names"], ","); strings.TrimSpace(names[0]) != "" {
		c.ControllerListenerName = strings.ToUpper(strings.TrimSpace(names[0]))
	}
	if v, err := strconv.Atoi(strings.TrimSpace(b.Values["vltava.controller.max.queued.operations"])); err == nil {
		c.MaxQueuedOperations = v
	}
	if v, err := strconv.Atoi(strings.TrimSpace(b.Values["vltava.quorum.max.entry.bytes"])); err == nil {
		c.MaxEntryBytes = v
	}
	return c
}

// withDefaults fills zero fields and checks the result.
func (c Config) withDefaults() (Config, error) {
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 9 * time.Second
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 2 * time.Second
	}
	if c.ControllerListenerName == "" {
		c.ControllerListenerName = "CONTROLLER"
	}
	if c.MaxQueuedOperations == 0 {
		c.MaxQueuedOperations = 1024
	}
	if c.MaxEntryBytes == 0 {
		c.MaxEntryBytes = 8 << 20
	}
	if c.MetadataVersion == 0 {
		c.MetadataVersion = DefaultMetadataVersion
	}
	switch {
	case c.ELRVersion == 0:
		c.ELRVersion = 1
	case c.ELRVersion < 0:
		c.ELRVersion = 0
	}
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano()
	}
	if c.Broker.Values == nil {
		c.Broker = config.Default()
	}
	switch {
	case c.NodeID <= 0:
		return c, fmt.Errorf("controller: node.id %d: a quorum member's id must be positive", c.NodeID)
	case c.SessionTimeout < 0 || c.HeartbeatInterval < 0:
		return c, fmt.Errorf("controller: broker.session.timeout.ms and broker.heartbeat.interval.ms must be positive")
	case c.MaxQueuedOperations < 1:
		return c, fmt.Errorf("controller: vltava.controller.max.queued.operations %d: at least 1", c.MaxQueuedOperations)
	case c.MaxEntryBytes < 1:
		return c, fmt.Errorf("controller: vltava.quorum.max.entry.bytes %d: at least 1", c.MaxEntryBytes)
	}
	return c, nil
}

// tickInterval is how often sessions are checked.
func (c Config) tickInterval() time.Duration {
	return max(min(c.SessionTimeout, c.HeartbeatInterval)/4, time.Millisecond)
}
