// Package config is the broker's configuration: Kafka's key names, defaults in one
// place, a properties file, environment and flag overrides, validation, and the topic
// configuration table (names, types, defaults taken from broker keys, validation,
// sources for DescribeConfigs).
//
// Layers, lowest first, as in Kafka: a key's default (DEFAULT_CONFIG); the static
// configuration from the properties file, VLTAVA_* environment variables and overrides
// (STATIC_BROKER_CONFIG); cluster-wide dynamic defaults (DYNAMIC_DEFAULT_BROKER_CONFIG)
// and this broker's dynamic values (DYNAMIC_BROKER_CONFIG), both given by the broker from
// its metadata through WithDynamicDefaults and WithDynamic; and per topic, the topic's
// overrides (DYNAMIC_TOPIC_CONFIG).
package config

import (
	"errors"
	"time"
)

// ErrInvalid wraps every validation error (maps to INVALID_CONFIG).
var ErrInvalid = errors.New("invalid config")

// Broker is the resolved static broker configuration.
type Broker struct {
	NodeID                     int32    // node.id (default 1)
	Listeners                  []string // listeners host:port (from PLAINTEXT://host:port), default 127.0.0.1:9092
	AdvertisedListeners        []string // advertised.listeners, host:port; empty = same as Listeners
	LogDirs                    []string // log.dirs (or log.dir), default ./data
	ClusterID                  string   // cluster.id: optional; generated and stored in meta.properties when empty
	NumPartitions              int32    // num.partitions 1
	DefaultReplicationFactor   int16    // default.replication.factor 1
	AutoCreateTopics           bool     // auto.create.topics.enable true
	DeleteTopicEnable          bool     // delete.topic.enable true
	SocketRequestMaxBytes      int32    // socket.request.max.bytes 104857600
	RequestTimeout             time.Duration
	GroupInitialRebalanceDelay time.Duration // group.initial.rebalance.delay.ms 3000
	OffsetsTopicNumPartitions  int32         // offsets.topic.num.partitions 50
	OffsetsRetention           time.Duration // offsets.retention.minutes 10080
	ConnectionsMaxIdle         time.Duration // connections.max.idle.ms 600000
	MaxConnections             int           // max.connections (default 2147483647 -> no limit)
	QueuedMaxRequests          int           // queued.max.requests 500
	LogRetentionCheckInterval  time.Duration // log.retention.check.interval.ms 300000
	// Topic-level defaults live in Values (log.segment.bytes, log.retention.ms, ...);
	// use TopicDefaults/Resolve to read them.
	//
	// Values holds every broker key's effective value: defaults, then file, env and
	// overrides, then the dynamic layers given with WithDynamicDefaults/WithDynamic.
	// Keys whose default is null (log.retention.ms, ...) are absent unless set.
	Values map[string]string

	// Fields added beyond the original contract.

	ControllerListeners           []string      // listeners named in controller.listener.names, host:port
	ControllerListenerNames       []string      // the name of each of ControllerListeners, upper case
	ListenerNames                 []string      // the name of each of Listeners (PLAINTEXT, ...), upper case
	ProcessRoles                  []string      // process.roles: broker, controller or both
	OffsetsTopicReplicationFactor int16         // offsets.topic.replication.factor (Vltava default 1)
	GroupMinSessionTimeout        time.Duration // group.min.session.timeout.ms 6000
	GroupMaxSessionTimeout        time.Duration // group.max.session.timeout.ms 1800000
	GroupMaxSize                  int32         // group.max.size
	TransactionStateNumPartitions int32         // transaction.state.log.num.partitions 50
	TransactionMaxTimeout         time.Duration // transaction.max.timeout.ms 900000
	FetchMaxBytes                 int32         // fetch.max.bytes 57671680
	ReplicaLagTimeMax             time.Duration // replica.lag.time.max.ms 30000
	// ConsumerAssignors is group.consumer.assignors as assignor names ("uniform",
	// "range"; class names mapped to them), in order: the first is the default.
	ConsumerAssignors []string

	// KRaft (kraft.go).

	// Voters is controller.quorum.voters, in the order given; empty when it is not set.
	// QuorumVoters resolves the voter set a node uses.
	Voters []Voter
	// QuorumBootstrapServers is controller.quorum.bootstrap.servers, host:port.
	QuorumBootstrapServers []string
	// InterBrokerListenerName is inter.broker.listener.name, or when unset the client
	// listener named PLAINTEXT, else the first client listener ("" on a controller-only
	// node).
	InterBrokerListenerName string
	// MetadataLogDir is metadata.log.dir, or the first log dir when it is not set: where
	// the metadata log (__cluster_metadata-0) lives.
	MetadataLogDir string
	// BrokerRack is broker.rack ("" when unset).
	BrokerRack string
	// BrokerHeartbeatInterval and BrokerSessionTimeout are broker.heartbeat.interval.ms
	// and broker.session.timeout.ms.
	BrokerHeartbeatInterval time.Duration
	BrokerSessionTimeout    time.Duration

	static     map[string]string // keys set by file, env or overrides
	dynDefault map[string]string // cluster-wide dynamic defaults
	dynBroker  map[string]string // this broker's dynamic values
}

// Entry is one config as DescribeConfigs reports it.
type Entry struct {
	Name      string
	Value     *string // nil for sensitive or null
	Source    int8    // kmsg ConfigSource: 1 DYNAMIC_TOPIC_CONFIG, 4 STATIC_BROKER_CONFIG, 5 DEFAULT_CONFIG, ...
	ReadOnly  bool
	Sensitive bool
	Type      int8 // kmsg ConfigType
	Doc       string
	Synonyms  []Synonym
}

// Synonym is one source of a config's value, as DescribeConfigs reports it.
type Synonym struct {
	Name   string
	Value  *string
	Source int8
}

// Topic is a topic's resolved configuration: its explicit overrides over the broker's defaults.
type Topic struct {
	CleanupPolicy               string // "delete", "compact" or "compact,delete"
	CompressionType             string // producer|uncompressed|gzip|snappy|lz4|zstd
	DeleteRetention             time.Duration
	FileDeleteDelay             time.Duration
	FlushMessages               int64
	Flush                       time.Duration
	IndexIntervalBytes          int32
	MaxCompactionLag            time.Duration
	MaxMessageBytes             int32
	MessageTimestampType        string // CreateTime|LogAppendTime
	MessageTimestampBeforeMaxMs int64
	MessageTimestampAfterMaxMs  int64
	MinCleanableDirtyRatio      float64
	MinCompactionLag            time.Duration
	MinInsyncReplicas           int32
	RetentionBytes              int64
	Retention                   time.Duration // negative = unlimited
	SegmentBytes                int64
	SegmentIndexBytes           int32
	Segment                     time.Duration
	UncleanLeaderElection       bool

	// Fields added beyond the original contract.

	SegmentJitter time.Duration
	Preallocate   bool
	GzipLevel     int32 // compression.gzip.level, -1 = codec default
	Lz4Level      int32
	ZstdLevel     int32
}

// Compact reports whether the cleanup policy includes compaction.
func (t Topic) Compact() bool { return hasPolicy(t.CleanupPolicy, "compact") }

// Delete reports whether the cleanup policy includes deletion by retention.
func (t Topic) Delete() bool { return hasPolicy(t.CleanupPolicy, "delete") }

func hasPolicy(list, p string) bool {
	for _, item := range parseList(list) {
		if item == p {
			return true
		}
	}
	return false
}
