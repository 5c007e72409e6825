package config

// The broker configuration table: every broker key Vltava accepts, with Kafka's name,
// type, default (Kafka's, except where noted: Vltava's zero-flag start is a single-node
// cluster on 127.0.0.1:9092 with data in ./data), validator, and whether Kafka lets it
// change without a restart (IncrementalAlterConfigs on a BROKER resource). The table is
// read-only after package initialisation.

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

type brokerKey struct {
	name    string
	typ     int8
	def     string
	null    bool // the default is null: unset unless configured
	check   check
	doc     string
	dynamic bool // Kafka allows changing it per broker or cluster-wide at run time
}

// brokerKeys holds the keys DescribeConfigs reports for a BROKER resource.
var brokerKeys = []brokerKey{
	// Identity and roles.
	{name: "node.id", typ: TypeInt, def: "1", check: atLeast(0), doc: "This node's id in the cluster. Vltava defaults to 1 (Kafka requires it)."},
	{name: "broker.id", typ: TypeInt, null: true, check: atLeast(-1), doc: "Older name for node.id; if both are set they must agree."},
	{name: "process.roles", typ: TypeList, def: "broker,controller", check: listOf("broker", "controller"), doc: "The roles this node plays. Vltava defaults to combined mode (Kafka requires it)."},
	{name: "cluster.id", typ: TypeString, null: true, doc: "The cluster's id (Vltava-specific key; Kafka takes it from kafka-storage format). When not set it is read from meta.properties, or chosen at the first start: at random for a quorum of one, derived from controller.quorum.voters for a larger one, so that every node of a new cluster agrees without a format step."},
	{name: "broker.rack", typ: TypeString, null: true, doc: "The rack of this broker, for rack-aware replica placement."},

	// Listeners.
	{name: "listeners", typ: TypeList, def: "PLAINTEXT://127.0.0.1:9092", doc: "Listeners as NAME://host:port (or host:port for PLAINTEXT); port 0 binds a random port. Vltava defaults to 127.0.0.1:9092."},
	{name: "advertised.listeners", typ: TypeList, null: true, doc: "Listeners given to clients in metadata, if different from listeners."},
	{name: "listener.security.protocol.map", typ: TypeList, def: "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT", doc: "Maps listener names to security protocols; only PLAINTEXT listeners are supported so far."},
	{name: "inter.broker.listener.name", typ: TypeString, null: true, doc: "The listener brokers use to talk to each other."},
	{name: "security.inter.broker.protocol", typ: TypeString, def: "PLAINTEXT", check: oneOf("PLAINTEXT"), doc: "Security protocol between brokers; only PLAINTEXT is supported so far."},
	{name: "controller.listener.names", typ: TypeList, null: true, doc: "Names of the listeners the controllers of the metadata quorum use (CONTROLLER); needed by a controller in a quorum of several voters, and by a broker-only node to know its controllers' listener."},
	{name: "controller.quorum.voters", typ: TypeList, def: "", doc: "The metadata quorum's voters, id@host:port each (host:port being the voter's controller listener). Empty on a controller: a quorum of this node alone."},
	{name: "controller.quorum.bootstrap.servers", typ: TypeList, def: "", doc: "host:port of controllers to bootstrap from; Vltava accepts only this node's own controller listener (a single-node quorum, as Kafka's single-node server.properties has it): larger quorums are formed from controller.quorum.voters."},
	{name: "controller.quorum.election.timeout.ms", typ: TypeInt, def: "1000", check: atLeast(1), doc: "A voter that hears from no leader for between this and twice this long (at most half of controller.quorum.fetch.timeout.ms) starts an election; a leader that hears from no majority for this long steps down."},
	{name: "controller.quorum.election.backoff.max.ms", typ: TypeInt, def: "1000", check: atLeast(0), doc: "Maximum election backoff (informational: Raft's randomised election timeout plays its part)."},
	{name: "controller.quorum.fetch.timeout.ms", typ: TypeInt, def: "2000", check: atLeast(1), doc: "How long a follower waits for the leader before it takes the leader for lost; the election timeout is at most half of it."},
	{name: "controller.quorum.request.timeout.ms", typ: TypeInt, def: "2000", check: atLeast(1), doc: "Bound on connecting to a quorum peer and on writing a message to it (per MiB of the message)."},
	{name: "controller.quorum.retry.backoff.ms", typ: TypeInt, def: "20", check: atLeast(1), doc: "First delay before reconnecting to a quorum peer; doubles per failure up to 1 s."},
	{name: "controller.quorum.append.linger.ms", typ: TypeInt, def: "25", check: atLeast(0), doc: "Controller quorum append linger (informational: proposals that arrive during an fsync share the next one)."},
	{name: "broker.heartbeat.interval.ms", typ: TypeInt, def: "2000", check: atLeast(1), doc: "How often a broker heartbeats to the controller."},
	{name: "broker.session.timeout.ms", typ: TypeInt, def: "9000", check: atLeast(1), doc: "How long a broker may go without a heartbeat before it is fenced."},

	// The metadata log (internal/quorum): Kafka's snapshot keys, then Vltava's own bounds
	// on the Raft log and its transport (Kafka has no keys for them).
	{name: "metadata.log.max.record.bytes.between.snapshots", typ: TypeLong, def: "20971520", check: atLeast(1), doc: "A snapshot of the metadata image is taken once the metadata log entries applied since the last one hold this many bytes."},
	{name: "metadata.log.max.snapshot.interval.ms", typ: TypeLong, def: "3600000", check: atLeast(0), doc: "A snapshot of the metadata image is taken this long after the last one if anything was applied since."},
	{name: "vltava.quorum.tick.ms", typ: TypeInt, def: "0", check: atLeast(0), doc: "Vltava-specific: the period of the metadata quorum's logical clock; 0 means a tenth of its election timeout."},
	{name: "vltava.quorum.snapshot.catchup.entries", typ: TypeLong, def: "1000", check: atLeast(1), doc: "Vltava-specific: metadata log entries kept before a new snapshot, so a voter that lags by fewer gets entries rather than the whole snapshot."},
	{name: "vltava.quorum.max.entry.bytes", typ: TypeInt, def: "8388608", check: atLeast(1), doc: "Vltava-specific: the largest metadata change (one entry of the metadata log, KRaft's largest batch)."},
	{name: "vltava.quorum.max.frame.bytes", typ: TypeInt, def: "104857600", check: atLeast(4097), doc: "Vltava-specific: the largest frame between quorum members, and on the controller listener; it must hold a whole snapshot of the metadata image."},
	{name: "vltava.quorum.max.uncommitted.bytes", typ: TypeLong, def: "67108864", check: atLeast(1), doc: "Vltava-specific: metadata entry bytes a quorum leader holds uncommitted before it refuses new changes."},
	{name: "vltava.quorum.max.pending.proposals", typ: TypeInt, def: "4096", check: atLeast(1), doc: "Vltava-specific: metadata changes queued for the quorum's loop before a change waits."},
	{name: "vltava.quorum.send.queue.messages", typ: TypeInt, def: "1024", check: atLeast(1), doc: "Vltava-specific: messages queued per quorum peer before more are dropped (Raft sends again)."},
	{name: "vltava.quorum.receive.buffer.bytes", typ: TypeLong, def: "0", check: atLeast(0), doc: "Vltava-specific: bytes of received quorum messages waiting for the quorum's loop before frames are dropped; 0 means twice vltava.quorum.max.frame.bytes."},

	// Storage.
	{name: "log.dirs", typ: TypeList, null: true, doc: "Directories holding partition data; overrides log.dir."},
	{name: "log.dir", typ: TypeList, def: "./data", doc: "Directories holding partition data, when log.dirs is not set. Vltava defaults to ./data."},
	{name: "metadata.log.dir", typ: TypeString, null: true, doc: "Directory of the metadata log (__cluster_metadata-0); the first log dir if not set."},
	{name: "num.recovery.threads.per.data.dir", typ: TypeInt, def: "2", check: atLeast(1), dynamic: true, doc: "Threads per data directory for recovery at start and flush at shutdown."},
	{name: "log.retention.check.interval.ms", typ: TypeLong, def: "300000", check: atLeast(1), doc: "How often retention is checked."},
	{name: "log.flush.offset.checkpoint.interval.ms", typ: TypeInt, def: "60000", check: atLeast(0), doc: "How often the recovery point checkpoint is written."},
	{name: "log.flush.start.offset.checkpoint.interval.ms", typ: TypeInt, def: "60000", check: atLeast(0), doc: "How often the log start offset checkpoint is written."},

	// Vltava's own limits on what a node holds (Kafka has no keys for them).
	{name: "vltava.log.max.open.files", typ: TypeInt, def: "0", check: atLeast(0), doc: "Vltava-specific: the most partition data files (segments, indexes, checkpoints) open at once; idle ones past it are closed and reopened on use. 0 means half of the process's open-file limit (RLIMIT_NOFILE), at least 64."},
	{name: "vltava.max.broker.partitions", typ: TypeInt, def: "20000", check: atLeast(1), doc: "Vltava-specific: the most partitions this broker hosts; CreateTopics and CreatePartitions past it are refused with POLICY_VIOLATION."},

	// Topic defaults (the broker synonyms of topic keys).
	{name: "log.cleanup.policy", typ: TypeList, def: "delete", check: listOf("compact", "delete"), dynamic: true, doc: "Default cleanup.policy."},
	{name: "compression.type", typ: TypeString, def: "producer", check: oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"), dynamic: true, doc: "Default compression.type."},
	{name: "compression.gzip.level", typ: TypeInt, def: "-1", check: either(equals(-1), between(1, 9)), dynamic: true, doc: "Default compression.gzip.level."},
	{name: "compression.lz4.level", typ: TypeInt, def: "9", check: between(1, 17), dynamic: true, doc: "Default compression.lz4.level."},
	{name: "compression.zstd.level", typ: TypeInt, def: "3", check: between(-131072, 22), dynamic: true, doc: "Default compression.zstd.level."},
	{name: "log.cleaner.delete.retention.ms", typ: TypeLong, def: "86400000", check: atLeast(0), dynamic: true, doc: "Default delete.retention.ms."},
	{name: "log.segment.delete.delay.ms", typ: TypeLong, def: "60000", check: atLeast(0), dynamic: true, doc: "Default file.delete.delay.ms."},
	{name: "log.flush.interval.messages", typ: TypeLong, def: maxLong, check: atLeast(1), dynamic: true, doc: "Default flush.messages."},
	{name: "log.flush.interval.ms", typ: TypeLong, null: true, dynamic: true, doc: "Default flush.ms; log.flush.scheduler.interval.ms if not set."},
	{name: "log.flush.scheduler.interval.ms", typ: TypeLong, def: maxLong, doc: "How often logs are checked for a flush; also the fallback for log.flush.interval.ms."},
	{name: "log.index.interval.bytes", typ: TypeInt, def: "4096", check: atLeast(0), dynamic: true, doc: "Default index.interval.bytes."},
	{name: "log.local.retention.bytes", typ: TypeLong, def: "-2", check: atLeast(-2), dynamic: true, doc: "Default local.retention.bytes (tiered storage, not supported)."},
	{name: "log.local.retention.ms", typ: TypeLong, def: "-2", check: atLeast(-2), dynamic: true, doc: "Default local.retention.ms (tiered storage, not supported)."},
	{name: "log.cleaner.max.compaction.lag.ms", typ: TypeLong, def: maxLong, check: atLeast(1), dynamic: true, doc: "Default max.compaction.lag.ms."},
	{name: "message.max.bytes", typ: TypeInt, def: "1048588", check: atLeast(0), dynamic: true, doc: "Default max.message.bytes: the largest record batch accepted."},
	{name: "log.message.timestamp.after.max.ms", typ: TypeLong, def: "3600000", check: atLeast(0), dynamic: true, doc: "Default message.timestamp.after.max.ms."},
	{name: "log.message.timestamp.before.max.ms", typ: TypeLong, def: maxLong, check: atLeast(0), dynamic: true, doc: "Default message.timestamp.before.max.ms."},
	{name: "log.message.timestamp.type", typ: TypeString, def: "CreateTime", check: oneOf("CreateTime", "LogAppendTime"), dynamic: true, doc: "Default message.timestamp.type."},
	{name: "log.cleaner.min.cleanable.ratio", typ: TypeDouble, def: "0.5", check: betweenFloat(0, 1), dynamic: true, doc: "Default min.cleanable.dirty.ratio."},
	{name: "log.cleaner.min.compaction.lag.ms", typ: TypeLong, def: "0", check: atLeast(0), dynamic: true, doc: "Default min.compaction.lag.ms."},
	{name: "min.insync.replicas", typ: TypeInt, def: "1", check: atLeast(1), dynamic: true, doc: "Default min.insync.replicas."},
	{name: "log.preallocate", typ: TypeBoolean, def: "false", dynamic: true, doc: "Default preallocate."},
	{name: "log.retention.bytes", typ: TypeLong, def: "-1", dynamic: true, doc: "Default retention.bytes."},
	{name: "log.retention.ms", typ: TypeLong, null: true, dynamic: true, doc: "Default retention.ms; overrides log.retention.minutes and log.retention.hours."},
	{name: "log.retention.minutes", typ: TypeInt, null: true, doc: "Default retention in minutes; overrides log.retention.hours."},
	{name: "log.retention.hours", typ: TypeInt, def: "168", doc: "Default retention in hours."},
	{name: "log.segment.bytes", typ: TypeInt, def: "1073741824", check: atLeast(1024 * 1024), dynamic: true, doc: "Default segment.bytes."},
	{name: "log.index.size.max.bytes", typ: TypeInt, def: "10485760", check: atLeast(4), dynamic: true, doc: "Default segment.index.bytes."},
	{name: "log.roll.jitter.ms", typ: TypeLong, null: true, dynamic: true, doc: "Default segment.jitter.ms; overrides log.roll.jitter.hours."},
	{name: "log.roll.jitter.hours", typ: TypeInt, def: "0", check: atLeast(0), doc: "Default segment jitter in hours."},
	{name: "log.roll.ms", typ: TypeLong, null: true, dynamic: true, doc: "Default segment.ms; overrides log.roll.hours."},
	{name: "log.roll.hours", typ: TypeInt, def: "168", check: atLeast(1), doc: "Default segment roll time in hours."},
	{name: "unclean.leader.election.enable", typ: TypeBoolean, def: "false", dynamic: true, doc: "Default unclean.leader.election.enable."},

	// Cleaner.
	{name: "log.cleaner.enable", typ: TypeBoolean, def: "true", doc: "Run the log cleaner (needed for compacted topics, including internal ones)."},
	{name: "log.cleaner.threads", typ: TypeInt, def: "1", check: atLeast(0), dynamic: true, doc: "Cleaner threads."},
	{name: "log.cleaner.backoff.ms", typ: TypeLong, def: "15000", check: atLeast(0), dynamic: true, doc: "How long the cleaner sleeps when there is nothing to clean."},
	{name: "log.cleaner.dedupe.buffer.size", typ: TypeLong, def: "134217728", dynamic: true, doc: "Memory for the cleaner's key map, across all cleaner threads."},
	{name: "log.cleaner.io.buffer.size", typ: TypeInt, def: "524288", check: atLeast(0), dynamic: true, doc: "I/O buffer memory for the cleaner, across all cleaner threads."},
	{name: "log.cleaner.io.buffer.load.factor", typ: TypeDouble, def: "0.9", dynamic: true, doc: "Load factor of the cleaner's key map."},
	{name: "log.cleaner.io.max.bytes.per.second", typ: TypeDouble, def: "1.7976931348623157E308", dynamic: true, doc: "I/O throttle of the cleaner."},

	// Requests and connections.
	{name: "socket.request.max.bytes", typ: TypeInt, def: "104857600", check: atLeast(1), doc: "The largest request frame accepted."},
	{name: "request.timeout.ms", typ: TypeInt, def: "30000", check: atLeast(0), doc: "How long acks=all produce waits for the in-sync replicas before answering with a timeout."},
	{name: "connections.max.idle.ms", typ: TypeLong, def: "600000", doc: "Idle connections are closed after this long."},
	{name: "max.connections", typ: TypeInt, def: maxInt, check: atLeast(0), dynamic: true, doc: "The most connections the broker accepts."},
	{name: "max.connections.per.ip", typ: TypeInt, def: maxInt, check: atLeast(0), dynamic: true, doc: "The most connections from one address."},
	{name: "max.connections.per.ip.overrides", typ: TypeString, def: "", dynamic: true, doc: "Per-address overrides of max.connections.per.ip (host:count list)."},
	{name: "max.connection.creation.rate", typ: TypeInt, def: maxInt, check: atLeast(0), dynamic: true, doc: "The most new connections per second."},
	{name: "queued.max.requests", typ: TypeInt, def: "500", check: atLeast(1), doc: "Requests queued for processing before reads from the network stop."},
	{name: "queued.max.request.bytes", typ: TypeLong, def: "-1", doc: "Bytes of requests queued before reads stop; -1 means no limit."},
	{name: "num.io.threads", typ: TypeInt, def: "8", check: atLeast(1), dynamic: true, doc: "Request processing threads (informational: Vltava uses goroutines)."},
	{name: "num.network.threads", typ: TypeInt, def: "3", check: atLeast(1), dynamic: true, doc: "Network threads (informational: Vltava uses goroutines)."},
	{name: "num.replica.fetchers", typ: TypeInt, def: "1", check: atLeast(1), dynamic: true, doc: "Fetcher connections per source broker for replication."},
	{name: "background.threads", typ: TypeInt, def: "10", check: atLeast(1), dynamic: true, doc: "Background task threads (informational)."},
	{name: "socket.send.buffer.bytes", typ: TypeInt, def: "102400", doc: "SO_SNDBUF of accepted sockets; -1 uses the OS default."},
	{name: "socket.receive.buffer.bytes", typ: TypeInt, def: "102400", doc: "SO_RCVBUF of accepted sockets; -1 uses the OS default."},
	{name: "socket.listen.backlog.size", typ: TypeInt, def: "50", check: atLeast(1), doc: "Listen backlog."},
	{name: "fetch.max.bytes", typ: TypeInt, def: "57671680", check: atLeast(1024), doc: "The most record bytes a fetch response carries (the first batch goes whole even if larger)."},
	{name: "max.request.partition.size.limit", typ: TypeInt, def: "2000", check: atLeast(1), doc: "The most partitions a DescribeTopicPartitions response carries (KIP-966)."},
	{name: "max.incremental.fetch.session.cache.slots", typ: TypeInt, def: "1000", check: atLeast(0), doc: "The most incremental fetch sessions (KIP-227) the broker keeps."},
	{name: "vltava.fetch.max.bytes.in.flight", typ: TypeLong, def: "536870912", check: atLeast(1 << 20), doc: "The most record bytes fetch responses hold in memory at once, across all connections, from their read until they are written; records sent from their files (sendfile) hold none (Vltava-specific key)."},

	// Replication.
	{name: "default.replication.factor", typ: TypeInt, def: "1", check: atLeast(1), doc: "Replication factor of automatically created topics."},
	{name: "num.partitions", typ: TypeInt, def: "1", check: atLeast(1), doc: "Partitions of automatically created topics and CreateTopics asking for the default."},
	{name: "auto.create.topics.enable", typ: TypeBoolean, def: "true", doc: "Create a topic when a client asks for its metadata."},
	{name: "delete.topic.enable", typ: TypeBoolean, def: "true", doc: "Allow DeleteTopics."},
	{name: "auto.leader.rebalance.enable", typ: TypeBoolean, def: "true", doc: "Move leadership back to preferred replicas."},
	{name: "leader.imbalance.check.interval.seconds", typ: TypeLong, def: "300", check: atLeast(1), doc: "How often leadership balance is checked."},
	{name: "leader.imbalance.per.broker.percentage", typ: TypeInt, def: "10", check: atLeast(0), doc: "Leader imbalance allowed per broker before a rebalance (0: any)."},
	{name: "unclean.leader.election.interval.ms", typ: TypeLong, def: "300000", check: atLeast(1), doc: "How often the controller elects unclean leaders for leaderless partitions whose topic allows it."},
	{name: "replica.lag.time.max.ms", typ: TypeLong, def: "30000", doc: "A follower that has not caught up for this long leaves the ISR."},
	{name: "replica.fetch.max.bytes", typ: TypeInt, def: "1048576", check: atLeast(0), doc: "Bytes per partition a follower fetches."},
	{name: "replica.fetch.min.bytes", typ: TypeInt, def: "1", doc: "Minimum bytes of a follower fetch response."},
	{name: "replica.fetch.wait.max.ms", typ: TypeInt, def: "500", doc: "Longest a follower fetch waits."},
	{name: "replica.fetch.response.max.bytes", typ: TypeInt, def: "10485760", check: atLeast(0), doc: "Bytes per follower fetch response."},
	{name: "replica.fetch.backoff.ms", typ: TypeInt, def: "1000", check: atLeast(0), doc: "Backoff after a follower fetch error."},
	{name: "replica.socket.timeout.ms", typ: TypeInt, def: "30000", doc: "Follower socket timeout."},
	{name: "replica.selector.class", typ: TypeString, null: true, doc: "Set to org.apache.kafka.common.replica.RackAwareReplicaSelector to send consumers that name their client.rack to an in-sync replica in that rack (KIP-392)."},
	{name: "leader.replication.throttled.rate", typ: TypeLong, def: maxLong, check: atLeast(0), dynamic: true, doc: "Bytes per second a leader sends to the followers of the replicas listed in a topic's leader.replication.throttled.replicas while they are out of the ISR (a reassignment's throttle)."},
	{name: "follower.replication.throttled.rate", typ: TypeLong, def: maxLong, check: atLeast(0), dynamic: true, doc: "Bytes per second a follower fetches for the replicas listed in a topic's follower.replication.throttled.replicas while they are out of the ISR (a reassignment's throttle)."},
	{name: "replication.quota.window.num", typ: TypeInt, def: "11", check: atLeast(1), doc: "Samples the replication throttles measure their rate over."},
	{name: "replication.quota.window.size.seconds", typ: TypeInt, def: "1", check: atLeast(1), doc: "Seconds of each replication throttle sample."},
	{name: "replica.high.watermark.checkpoint.interval.ms", typ: TypeLong, def: "5000", doc: "How often the high watermark is checkpointed."},
	{name: "vltava.controller.max.queued.operations", typ: TypeInt, def: "1024", check: atLeast(1), doc: "Vltava-specific: the most requests the active controller queues (registrations, heartbeats, topic and config changes); one more is answered with a retriable error."},
	{name: "vltava.replica.ack.waiters.max", typ: TypeInt, def: "10000", check: atLeast(1), doc: "Vltava-specific: the most acks=all appends one partition keeps waiting for its in-sync replicas; one more is refused before it is appended, with REQUEST_TIMED_OUT (the producer retries)."},

	// Groups and offsets.
	{name: "group.initial.rebalance.delay.ms", typ: TypeInt, def: "3000", doc: "How long a new classic group waits for more members before its first rebalance."},
	{name: "group.min.session.timeout.ms", typ: TypeInt, def: "6000", doc: "The shortest session timeout a classic group member may ask for."},
	{name: "group.max.session.timeout.ms", typ: TypeInt, def: "1800000", doc: "The longest session timeout a classic group member may ask for."},
	{name: "group.max.size", typ: TypeInt, def: maxInt, check: atLeast(1), doc: "The most members of one classic group."},
	{name: "group.coordinator.rebalance.protocols", typ: TypeList, def: "classic,consumer", check: listOf("classic", "consumer", "share", "streams"), doc: "Group protocols enabled."},
	{name: "group.consumer.session.timeout.ms", typ: TypeInt, def: "45000", check: atLeast(1), doc: "KIP-848 consumer group session timeout."},
	{name: "group.consumer.min.session.timeout.ms", typ: TypeInt, def: "45000", check: atLeast(1), doc: "KIP-848 minimum session timeout."},
	{name: "group.consumer.max.session.timeout.ms", typ: TypeInt, def: "60000", check: atLeast(1), doc: "KIP-848 maximum session timeout."},
	{name: "group.consumer.heartbeat.interval.ms", typ: TypeInt, def: "5000", check: atLeast(1), doc: "KIP-848 heartbeat interval."},
	{name: "group.consumer.min.heartbeat.interval.ms", typ: TypeInt, def: "5000", check: atLeast(1), doc: "KIP-848 minimum heartbeat interval."},
	{name: "group.consumer.max.heartbeat.interval.ms", typ: TypeInt, def: "15000", check: atLeast(1), doc: "KIP-848 maximum heartbeat interval."},
	{name: "group.consumer.assignors", typ: TypeList, def: "uniform,range", check: consumerAssignors, doc: "KIP-848 server-side assignors, by name (uniform, range) or Kafka class name; the first is the default, and a member may ask for any of them."},
	{name: "group.consumer.max.size", typ: TypeInt, def: maxInt, check: atLeast(1), doc: "The most members of one KIP-848 consumer group."},
	{name: "offsets.topic.num.partitions", typ: TypeInt, def: "50", check: atLeast(1), doc: "Partitions of __consumer_offsets (fixed once created)."},
	{name: "offsets.topic.replication.factor", typ: TypeShort, def: "1", check: atLeast(1), doc: "Replication factor of __consumer_offsets. Vltava defaults to 1 for its single-node start (Kafka: 3)."},
	{name: "offsets.topic.segment.bytes", typ: TypeInt, def: "104857600", check: atLeast(1), doc: "Segment size of __consumer_offsets."},
	{name: "offsets.topic.compression.codec", typ: TypeInt, def: "0", doc: "Compression of offset commits (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)."},
	{name: "offsets.retention.minutes", typ: TypeInt, def: "10080", check: atLeast(1), doc: "Committed offsets of an empty group are dropped after this long."},
	{name: "offsets.retention.check.interval.ms", typ: TypeLong, def: "600000", check: atLeast(1), doc: "How often stale offsets are checked."},
	{name: "offsets.commit.timeout.ms", typ: TypeInt, def: "5000", check: atLeast(1), doc: "How long an offset commit waits for its replicas."},
	{name: "offsets.load.buffer.size", typ: TypeInt, def: "5242880", check: atLeast(1), doc: "Read buffer when loading offsets."},

	// Transactions and producers.
	{name: "transaction.state.log.num.partitions", typ: TypeInt, def: "50", check: atLeast(1), doc: "Partitions of __transaction_state (fixed once created)."},
	{name: "transaction.state.log.replication.factor", typ: TypeShort, def: "1", check: atLeast(1), doc: "Replication factor of __transaction_state. Vltava defaults to 1 for its single-node start (Kafka: 3)."},
	{name: "transaction.state.log.min.isr", typ: TypeInt, def: "1", check: atLeast(1), doc: "min.insync.replicas of __transaction_state. Vltava defaults to 1 for its single-node start (Kafka: 2)."},
	{name: "transaction.state.log.segment.bytes", typ: TypeInt, def: "104857600", check: atLeast(1), doc: "Segment size of __transaction_state."},
	{name: "transaction.max.timeout.ms", typ: TypeInt, def: "900000", check: atLeast(1), doc: "The longest transaction timeout a producer may ask for."},
	{name: "transactional.id.expiration.ms", typ: TypeInt, def: "604800000", check: atLeast(1), doc: "A transactional id unused for this long expires."},
	{name: "transaction.abort.timed.out.transaction.cleanup.interval.ms", typ: TypeInt, def: "10000", check: atLeast(1), doc: "How often timed-out transactions are aborted."},
	{name: "transaction.remove.expired.transaction.cleanup.interval.ms", typ: TypeInt, def: "3600000", check: atLeast(1), doc: "How often expired transactional ids are removed."},
	{name: "transaction.partition.verification.enable", typ: TypeBoolean, def: "true", dynamic: true, doc: "Verify a partition is in the transaction before appending (KIP-890)."},
	// Producer state expiry (partition/producer.go, broker/producers.go).
	{name: "producer.id.expiration.ms", typ: TypeInt, def: "86400000", check: atLeast(1), dynamic: true, doc: "A producer's state in a partition is dropped once its last batch's timestamp is this old; if it comes back it starts afresh."},
	{name: "producer.id.expiration.check.interval.ms", typ: TypeInt, def: "600000", check: atLeast(1), doc: "How often partitions drop expired producer state (producer.id.expiration.ms)."},

	// Vltava's own storage keys (Kafka has none): recovery (internal/log recovery.go).
	{name: "vltava.log.recovery.truncate.below.recovery.point", typ: TypeBoolean, def: "false", doc: "Let log recovery cut a partition's log below what was synced before the stop (the recovery point, or the end of a clean shutdown) when it finds the data there corrupt or missing; the cut data is moved aside (*.aside files). Off, such a partition's log refuses to open and the broker says where (Vltava-specific key)."},

	// Vltava's operator keys (Kafka has none: it exports metrics through JMX and logs with
	// log4j): the HTTP listener (internal/server http.go), the bounds on metric series
	// (internal/metrics), the slow-request log and the log format.
	{name: "vltava.http.listener", typ: TypeString, def: "127.0.0.1:9404", check: httpListener, doc: "Vltava-specific: HOST:PORT of the HTTP listener serving /metrics (Prometheus), /healthz and /readyz; empty or none turns it off. The default port is the one the Prometheus JMX exporter uses with Kafka (Strimzi, most Helm charts), so existing scrape configurations find it. If the default port is taken the broker starts without it and warns; a port set explicitly must bind."},
	{name: "vltava.metrics.partition.series.enable", typ: TypeBoolean, def: "true", doc: "Vltava-specific: export per-partition series (log size and offsets, high watermark, cleaner dirty ratio, producer state, consumer lag per partition); off, only broker, topic and group totals are exported, for brokers with very many partitions."},
	{name: "vltava.metrics.topic.series.max", typ: TypeInt, def: "1000", check: atLeast(0), doc: "Vltava-specific: the most topics with their own BrokerTopicMetrics series (bytes and messages in, bytes out, requests, failures); traffic of topics past it counts in the all-topics series only."},
	{name: "vltava.metrics.consumer.lag.series.max", typ: TypeInt, def: "10000", check: atLeast(0), doc: "Vltava-specific: the most committed offsets (group, topic, partition) the consumer lag metrics read per scrape, groups in name order; the rest are counted in vltava_consumer_group_lag_omitted."},
	{name: "vltava.request.slow.log.threshold.ms", typ: TypeLong, def: "1000", check: atLeast(0), doc: "Vltava-specific: a request that takes longer than this from being taken up to its response being written, not counting the time it waits on purpose (a long-poll fetch, a group's join or sync barrier), is logged at INFO with its API, client and sizes (at most 10 lines a second); 0 turns the log off."},
	{name: "vltava.log.format", typ: TypeString, def: "text", check: oneOf("text", "json"), doc: "Vltava-specific: the broker's log lines as text (key=value) or JSON, one object per line (--log-format)."},

	// Security keys accepted so a Kafka server.properties loads; only PLAINTEXT is served.
	{name: "ssl.keystore.password", typ: TypePassword, null: true, dynamic: true, doc: "Key store password (TLS is not supported yet)."},
	{name: "ssl.key.password", typ: TypePassword, null: true, dynamic: true, doc: "Private key password (TLS is not supported yet)."},
	{name: "ssl.truststore.password", typ: TypePassword, null: true, dynamic: true, doc: "Trust store password (TLS is not supported yet)."},
	{name: "sasl.jaas.config", typ: TypePassword, null: true, dynamic: true, doc: "JAAS login configuration (SASL is not supported yet)."},
}

// httpListener checks vltava.http.listener: HOST:PORT, or empty or none.
func httpListener(v string) string {
	if v == "" || v == "none" {
		return ""
	}
	// An empty host listens on every interface, as in listeners.
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return "must be HOST:PORT, or empty or none to turn the listener off"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("port %q is not a number from 0 to 65535", port)
	}
	return ""
}

// acceptedKafkaKey reports whether key is a well-known Kafka broker key that does not
// apply to Vltava, accepted so an existing server.properties loads. Its value is kept in
// Values but has no effect and is not described.
func acceptedKafkaKey(key string) bool {
	for _, prefix := range []string{"ssl.", "sasl.", "metrics.", "kafka.metrics.", "remote.log.", "quota.", "replication.quota.", "alter.log.dirs.replication.quota.", "zookeeper.", "controller.quorum.", "share.", "group.share.", "group.streams."} {
		if strings.HasPrefix(key, prefix) {
			return true
		}
	}
	switch key {
	case "metric.reporters", "authorizer.class.name", "super.users", "allow.everyone.if.no.acl.found",
		"principal.builder.class", "security.providers", "inter.broker.protocol.version",
		"log.message.format.version", "log.message.downconversion.enable",
		"num.replica.alter.log.dirs.threads", "replica.socket.receive.buffer.bytes",
		"delegation.token.secret.key", "delegation.token.master.key", "delegation.token.max.lifetime.ms",
		"delegation.token.expiry.time.ms", "delegation.token.expiry.check.interval.ms",
		"connection.failed.authentication.delay.ms", "create.topic.policy.class.name",
		"alter.config.policy.class.name", "client.quota.callback.class", "auto.include.jmx.reporter",
		"reserved.broker.max.id", "metadata.log.segment.bytes", "metadata.log.segment.ms",
		"metadata.max.retention.ms", "metadata.max.retention.bytes", "metadata.max.idle.interval.ms",
		"initial.broker.registration.timeout.ms", "controller.socket.timeout.ms",
		"telemetry.max.bytes", "unstable.api.versions.enable", "unstable.feature.versions.enable",
		"early.start.listeners", "node.id.generation.enable", "log.dir.failure.timeout.ms",
		"log.initial.task.delay.ms", "cordoned.log.dirs", "log.message.timestamp.difference.max.ms",
		"transaction.two.phase.commit.enable", "group.consumer.migration.policy",
		"group.coordinator.threads", "group.coordinator.append.linger.ms", "offsets.topic.compression.type":
		return true
	}
	return false
}

// brokerKeyIndex maps a broker key's name to its entry in brokerKeys.
var brokerKeyIndex = func() map[string]*brokerKey {
	m := make(map[string]*brokerKey, len(brokerKeys))
	for i := range brokerKeys {
		m[brokerKeys[i].name] = &brokerKeys[i]
	}
	return m
}()

// brokerSynonymGroup is Kafka's DynamicBrokerConfig.brokerConfigSynonyms: the broker
// keys that configure the same thing, most specific first.
func brokerSynonymGroup(name string) []string {
	switch name {
	case "log.roll.ms", "log.roll.hours":
		return []string{"log.roll.ms", "log.roll.hours"}
	case "log.roll.jitter.ms", "log.roll.jitter.hours":
		return []string{"log.roll.jitter.ms", "log.roll.jitter.hours"}
	case "log.flush.interval.ms":
		return []string{"log.flush.interval.ms", "log.flush.scheduler.interval.ms"}
	case "log.retention.ms", "log.retention.minutes", "log.retention.hours":
		return []string{"log.retention.ms", "log.retention.minutes", "log.retention.hours"}
	}
	return []string{name}
}

// consumerAssignorClasses maps the class names Kafka accepts in group.consumer.assignors
// to the names of the built-in assignors, which Vltava implements; Kafka 4 also takes
// the names themselves. Custom assignor classes cannot load here.
var consumerAssignorClasses = map[string]string{
	"org.apache.kafka.coordinator.group.assignor.UniformAssignor": "uniform",
	"org.apache.kafka.coordinator.group.assignor.RangeAssignor":   "range",
}

// consumerAssignorName returns the assignor name for an element of
// group.consumer.assignors, false if it names no built-in assignor.
func consumerAssignorName(item string) (string, bool) {
	switch item {
	case "uniform", "range":
		return item, true
	}
	name, ok := consumerAssignorClasses[item]
	return name, ok
}

// consumerAssignors accepts a non-empty list of built-in assignors, each named once
// (by name or class name): the list is what members may ask for, first the default.
func consumerAssignors(v string) string {
	items := parseList(v)
	if len(items) == 0 {
		return "must name at least one assignor"
	}
	seen := make(map[string]bool, len(items))
	for _, item := range items {
		name, ok := consumerAssignorName(item)
		if !ok {
			return fmt.Sprintf("unknown assignor %q: supported are uniform (%s) and range (%s)", item,
				"org.apache.kafka.coordinator.group.assignor.UniformAssignor", "org.apache.kafka.coordinator.group.assignor.RangeAssignor")
		}
		if seen[name] {
			return fmt.Sprintf("assignor %s is listed twice", name)
		}
		seen[name] = true
	}
	return ""
}

// parseConsumerAssignors turns a validated group.consumer.assignors into assignor names.
func parseConsumerAssignors(v string) []string {
	var out []string
	for _, item := range parseList(v) {
		if name, ok := consumerAssignorName(item); ok {
			out = append(out, name)
		}
	}
	return out
}
