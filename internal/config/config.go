// Package config is the broker's configuration: Kafka's key names, defaults in one
// place, a properties file, environment and flag overrides, validation, and the topic
// configuration table (names, types, defaults taken from broker keys, validation,
// sources for DescribeConfigs).
package config

// STUB: the config engineer replaces the bodies below; signatures are the contract.

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
	MessageMaxBytes            int32    // message.max.bytes 1048588
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
	Values map[string]string // every broker key after defaults, file, env and overrides
}

// Load resolves the configuration: defaults, then the properties file at path (if not
// empty; Java properties syntax), then environment variables VLTAVA_<KEY> with dots as
// underscores, upper case (VLTAVA_LOG_DIRS), then overrides (from --override k=v and
// convenience flags). Unknown keys are an error; so are invalid values.
func Load(path string, env []string, overrides map[string]string) (Broker, error) {
	panic("stub")
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
}

// ValidateTopicConfigs checks topic-level overrides (unknown key or bad value -> error
// wrapping ErrInvalid, message naming the key).
func ValidateTopicConfigs(overrides map[string]string) error { panic("stub") }

// ResolveTopic applies overrides over the broker's defaults (the broker key synonym of each
// topic key, e.g. retention.ms <- log.retention.ms <- log.retention.hours).
func (b Broker) ResolveTopic(overrides map[string]string) Topic { panic("stub") }

// DescribeTopic lists every topic config (or only names, if non-empty) with value, source and
// synonyms (if requested), as Kafka's DescribeConfigs does.
func (b Broker) DescribeTopic(overrides map[string]string, names []string, synonyms bool) []Entry {
	panic("stub")
}

// DescribeBroker lists broker configs with sources; dynamic holds dynamically altered values.
func (b Broker) DescribeBroker(dynamic map[string]string, names []string, synonyms bool) []Entry {
	panic("stub")
}

// ValidateBrokerDynamic checks a dynamic broker config change (IncrementalAlterConfigs on a
// BROKER resource): only keys Kafka allows to change dynamically are accepted.
func ValidateBrokerDynamic(key, value string) error { panic("stub") }
