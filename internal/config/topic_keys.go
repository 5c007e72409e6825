package config

// The topic configuration table: every topic-level key Vltava accepts, its type, its
// validator, and the broker keys that supply its default, in Kafka's order (the first
// broker key set explicitly wins; if none is, the first broker default that is not null).
// Defaults of topic keys with broker synonyms live in the broker table only, so the two
// can never disagree. The table is read-only after package initialisation.

// brokerSynonym is a broker key that supplies a topic key's default; scale converts its
// unit into the topic key's (log.retention.hours -> retention.ms multiplies by 3600000).
type brokerSynonym struct {
	name  string
	scale int64
}

type topicKey struct {
	name     string
	typ      int8
	def      string // only for keys without broker synonyms
	check    check
	doc      string
	synonyms []brokerSynonym
	hidden   bool // accepted but not described (Kafka's internal.* keys)
}

const (
	msPerMinute = 60 * 1000
	msPerHour   = 60 * msPerMinute
	maxLong     = "9223372036854775807"
	maxInt      = "2147483647"
)

func syn(names ...string) []brokerSynonym {
	s := make([]brokerSynonym, len(names))
	for i, n := range names {
		s[i] = brokerSynonym{name: n, scale: 1}
	}
	return s
}

// topicKeys is sorted by name, the order DescribeConfigs lists them in.
var topicKeys = []topicKey{
	{name: "cleanup.policy", typ: TypeList, check: listOf("compact", "delete"), synonyms: syn("log.cleanup.policy"),
		doc: "What happens to segments beyond the retention window: \"delete\" discards them, \"compact\" keeps the latest record per key; both may be given."},
	{name: "compression.gzip.level", typ: TypeInt, check: either(equals(-1), between(1, 9)), synonyms: syn("compression.gzip.level"),
		doc: "Compression level for gzip when compression.type is gzip (-1 is the codec's default)."},
	{name: "compression.lz4.level", typ: TypeInt, check: between(1, 17), synonyms: syn("compression.lz4.level"),
		doc: "Compression level for lz4 when compression.type is lz4."},
	{name: "compression.type", typ: TypeString, check: oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"), synonyms: syn("compression.type"),
		doc: "Final compression of the topic's batches: a codec, \"uncompressed\", or \"producer\" to keep what the producer sent."},
	{name: "compression.zstd.level", typ: TypeInt, check: between(-131072, 22), synonyms: syn("compression.zstd.level"),
		doc: "Compression level for zstd when compression.type is zstd."},
	{name: "delete.retention.ms", typ: TypeLong, check: atLeast(0), synonyms: syn("log.cleaner.delete.retention.ms"),
		doc: "How long delete tombstones are kept in a compacted topic, so consumers reading from the start see them."},
	{name: "file.delete.delay.ms", typ: TypeLong, check: atLeast(0), synonyms: syn("log.segment.delete.delay.ms"),
		doc: "How long to wait before deleting a segment file from the filesystem."},
	{name: "flush.messages", typ: TypeLong, check: atLeast(1), synonyms: syn("log.flush.interval.messages"),
		doc: "Force an fsync after this many messages; the default leaves durability to replication and the OS."},
	{name: "flush.ms", typ: TypeLong, check: atLeast(0), synonyms: syn("log.flush.interval.ms", "log.flush.scheduler.interval.ms"),
		doc: "Force an fsync when data is older than this; the default leaves durability to replication and the OS."},
	{name: "follower.replication.throttled.replicas", typ: TypeList, def: "", check: throttledReplicas,
		doc: "Replicas whose follower-side replication is throttled: partitionId:brokerId pairs, or \"*\" for all."},
	{name: "index.interval.bytes", typ: TypeInt, check: atLeast(0), synonyms: syn("log.index.interval.bytes"),
		doc: "How many bytes of records between two offset index entries."},
	// internal.segment.bytes is Kafka's (4.0+) test-only override of segment.bytes, which
	// lets tests use segments below segment.bytes' 1 MiB minimum. Hidden from describe.
	{name: "internal.segment.bytes", typ: TypeInt, def: "", check: atLeast(14), hidden: true,
		doc: "Test-only override of segment.bytes without its minimum."},
	{name: "leader.replication.throttled.replicas", typ: TypeList, def: "", check: throttledReplicas,
		doc: "Replicas whose leader-side replication is throttled: partitionId:brokerId pairs, or \"*\" for all."},
	{name: "local.retention.bytes", typ: TypeLong, check: atLeast(-2), synonyms: syn("log.local.retention.bytes"),
		doc: "Tiered storage: local bytes kept (-2 means retention.bytes). Tiered storage is not supported; accepted for compatibility."},
	{name: "local.retention.ms", typ: TypeLong, check: atLeast(-2), synonyms: syn("log.local.retention.ms"),
		doc: "Tiered storage: local retention time (-2 means retention.ms). Tiered storage is not supported; accepted for compatibility."},
	{name: "max.compaction.lag.ms", typ: TypeLong, check: atLeast(1), synonyms: syn("log.cleaner.max.compaction.lag.ms"),
		doc: "The longest a record stays ineligible for compaction."},
	{name: "max.message.bytes", typ: TypeInt, check: atLeast(0), synonyms: syn("message.max.bytes"),
		doc: "The largest record batch the topic accepts, after compression."},
	{name: "message.timestamp.after.max.ms", typ: TypeLong, check: atLeast(0), synonyms: syn("log.message.timestamp.after.max.ms"),
		doc: "How far in the future of the broker's clock a CreateTime timestamp may be (KIP-937)."},
	{name: "message.timestamp.before.max.ms", typ: TypeLong, check: atLeast(0), synonyms: syn("log.message.timestamp.before.max.ms"),
		doc: "How far in the past of the broker's clock a CreateTime timestamp may be (KIP-937)."},
	{name: "message.timestamp.type", typ: TypeString, check: oneOf("CreateTime", "LogAppendTime"), synonyms: syn("log.message.timestamp.type"),
		doc: "Whose timestamp records carry: the producer's (CreateTime) or the broker's at append (LogAppendTime)."},
	{name: "min.cleanable.dirty.ratio", typ: TypeDouble, check: betweenFloat(0, 1), synonyms: syn("log.cleaner.min.cleanable.ratio"),
		doc: "The share of the log that must be uncompacted before the cleaner compacts it."},
	{name: "min.compaction.lag.ms", typ: TypeLong, check: atLeast(0), synonyms: syn("log.cleaner.min.compaction.lag.ms"),
		doc: "The shortest time a record stays uncompacted."},
	{name: "min.insync.replicas", typ: TypeInt, check: atLeast(1), synonyms: syn("min.insync.replicas"),
		doc: "With acks=all, the fewest in-sync replicas that must have a write for it to succeed."},
	{name: "preallocate", typ: TypeBoolean, synonyms: syn("log.preallocate"),
		doc: "Preallocate the file of a new segment."},
	{name: "remote.log.copy.disable", typ: TypeBoolean, def: "false",
		doc: "Tiered storage: stop copying segments to remote storage. Tiered storage is not supported; accepted for compatibility."},
	{name: "remote.log.delete.on.disable", typ: TypeBoolean, def: "false",
		doc: "Tiered storage: delete remote data when remote storage is disabled. Tiered storage is not supported; accepted for compatibility."},
	{name: "remote.storage.enable", typ: TypeBoolean, def: "false", check: oneOf("false"),
		doc: "Tiered storage for the topic. Not supported: only false is accepted."},
	{name: "retention.bytes", typ: TypeLong, synonyms: syn("log.retention.bytes"),
		doc: "The most bytes a partition keeps before old segments are deleted; -1 means no limit."},
	{name: "retention.ms", typ: TypeLong, check: atLeast(-1),
		synonyms: []brokerSynonym{{"log.retention.ms", 1}, {"log.retention.minutes", msPerMinute}, {"log.retention.hours", msPerHour}},
		doc:      "How long a segment is kept before it is deleted; -1 means no time limit."},
	{name: "segment.bytes", typ: TypeInt, check: atLeast(1024 * 1024), synonyms: syn("log.segment.bytes"),
		doc: "The size at which a partition's active segment is rolled."},
	{name: "segment.index.bytes", typ: TypeInt, check: atLeast(4), synonyms: syn("log.index.size.max.bytes"),
		doc: "The size of a segment's offset index (and time index) files."},
	{name: "segment.jitter.ms", typ: TypeLong, check: atLeast(0),
		synonyms: []brokerSynonym{{"log.roll.jitter.ms", 1}, {"log.roll.jitter.hours", msPerHour}},
		doc:      "The most random time subtracted from segment.ms, so segments do not all roll together."},
	{name: "segment.ms", typ: TypeLong, check: atLeast(1),
		synonyms: []brokerSynonym{{"log.roll.ms", 1}, {"log.roll.hours", msPerHour}},
		doc:      "The age at which the active segment is rolled even if not full, so retention can delete it."},
	{name: "unclean.leader.election.enable", typ: TypeBoolean, synonyms: syn("unclean.leader.election.enable"),
		doc: "Let a replica outside the ISR become leader as a last resort, at the cost of losing data."},
}

// topicKeyIndex maps a topic key's name to its entry in topicKeys.
var topicKeyIndex = func() map[string]*topicKey {
	m := make(map[string]*topicKey, len(topicKeys))
	for i := range topicKeys {
		m[topicKeys[i].name] = &topicKeys[i]
	}
	return m
}()
