package config

// Topic configuration: validating a topic's overrides (CreateTopics, AlterConfigs,
// IncrementalAlterConfigs) and resolving them over the broker's defaults.

import (
	"fmt"
	"strings"
)

// IsTopicKey reports whether key is a topic-level configuration.
func IsTopicKey(key string) bool { return topicKeyIndex[key] != nil }

// ValidateTopicConfigs checks topic-level overrides (unknown key or bad value -> error
// wrapping ErrInvalid, message naming the key).
func ValidateTopicConfigs(overrides map[string]string) error {
	for _, key := range sortedKeys(overrides) {
		if err := ValidateTopicConfig(key, overrides[key]); err != nil {
			return err
		}
	}
	// Kafka's LogConfig.validateValues: a record cannot be due for compaction before it
	// is allowed to be compacted.
	if minLag, ok := overrides["min.compaction.lag.ms"]; ok {
		if maxLag, ok := overrides["max.compaction.lag.ms"]; ok && parseInt(minLag) > parseInt(maxLag) {
			return &Error{Key: "min.compaction.lag.ms", Value: strings.TrimSpace(minLag),
				Reason: fmt.Sprintf("must not exceed max.compaction.lag.ms (%s)", strings.TrimSpace(maxLag))}
		}
	}
	return nil
}

// ValidateTopic is ValidateTopicConfigs plus the checks Kafka makes against the merged
// configuration (LogConfig.validateValues): with the broker's defaults filled in,
// min.compaction.lag.ms must not exceed max.compaction.lag.ms. Use it where the broker
// is at hand (CreateTopics, AlterConfigs); the result wraps ErrInvalid.
func (b Broker) ValidateTopic(overrides map[string]string) error {
	if err := ValidateTopicConfigs(overrides); err != nil {
		return err
	}
	t := b.ResolveTopic(overrides)
	if t.MinCompactionLag > t.MaxCompactionLag {
		return &Error{Key: "min.compaction.lag.ms", Value: fmt.Sprint(t.MinCompactionLag.Milliseconds()),
			Reason: fmt.Sprintf("must not exceed max.compaction.lag.ms (%d)", t.MaxCompactionLag.Milliseconds())}
	}
	return nil
}

// ValidateTopicConfig checks one topic-level key and value.
func ValidateTopicConfig(key, value string) error {
	k := topicKeyIndex[key]
	if k == nil {
		return &Error{Key: key, Hint: topicKeyHint(key)}
	}
	v := strings.TrimSpace(value)
	if why := validate(k.typ, k.check, v); why != "" {
		return &Error{Key: key, Value: v, Reason: why}
	}
	return nil
}

// WithDynamic returns a copy of b whose effective values include this broker's dynamic
// configuration (DYNAMIC_BROKER_CONFIG: IncrementalAlterConfigs on BROKER resource
// "<node id>"), on top of the dynamic cluster defaults and the static configuration. The
// broker calls it whenever its metadata image's broker configs change and uses the copy
// for ResolveTopic, DescribeTopic, DescribeBroker and the typed fields (MaxConnections,
// ...). The map replaces any earlier per-broker layer; nil clears it.
// Values that are not valid for a dynamic broker key are ignored (ValidateBrokerDynamic
// should have refused them), so a bad record never breaks resolution.
func (b Broker) WithDynamic(dynamic map[string]string) Broker {
	if len(dynamic) == 0 && len(b.dynBroker) == 0 {
		return b // nothing to change: skip rebuilding Values
	}
	b.dynBroker = cleanDynamic(dynamic)
	b.rebuild()
	return b
}

// WithDynamicDefaults is WithDynamic for the cluster-wide dynamic defaults
// (DYNAMIC_DEFAULT_BROKER_CONFIG: BROKER resource ""), which per-broker values override.
func (b Broker) WithDynamicDefaults(defaults map[string]string) Broker {
	if len(defaults) == 0 && len(b.dynDefault) == 0 {
		return b
	}
	b.dynDefault = cleanDynamic(defaults)
	b.rebuild()
	return b
}

func cleanDynamic(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if ValidateBrokerDynamic(k, v) == nil {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// rebuild recomputes Values and the typed fields after a dynamic layer changed. build
// allocates a new Values map and new slices, so the Broker this copy came from is not
// touched. Only dynamic keys can be in those layers and none takes part in build's
// cross-key checks, so build cannot fail here; if it ever did, the fields stay as they
// were.
func (b *Broker) rebuild() {
	saved := *b
	if err := b.build(); err != nil {
		*b = saved
	}
}

// topicValue returns a topic key's effective value and its source: the topic's own
// override, else the first of its broker synonyms set in any broker layer (scaled to
// the topic key's unit), else the first synonym default that is not null, else the
// topic key's own default. Invalid overrides are ignored (they are validated before
// they are stored).
func (b *Broker) topicValue(k *topicKey, overrides map[string]string) (string, int8) {
	if v, ok := overrides[k.name]; ok {
		v = strings.TrimSpace(v)
		if validate(k.typ, k.check, v) == "" {
			return v, SourceDynamicTopic
		}
	}
	for _, s := range k.synonyms {
		if b.explicit(s.name) {
			v, src, _ := b.lookup(s.name)
			return scaleValue(k, v, s.scale), src
		}
	}
	for _, s := range k.synonyms {
		if v, src, ok := b.lookup(s.name); ok {
			return scaleValue(k, v, s.scale), src
		}
	}
	return k.def, SourceDefault
}

// scaleValue converts a broker value into its topic key's unit. For retention Kafka
// turns any negative value into -1 (unlimited), whatever the unit
// (KafkaConfig.logRetentionTimeMillis).
func scaleValue(k *topicKey, v string, scale int64) string {
	if k.name == "retention.ms" && parseInt(v) < 0 {
		return "-1"
	}
	if scale == 1 {
		return v
	}
	return fmt.Sprint(parseInt(v) * scale)
}

// ResolveTopic applies overrides over the broker's defaults (the broker key synonym of each
// topic key, e.g. retention.ms <- log.retention.ms <- log.retention.hours).
func (b Broker) ResolveTopic(overrides map[string]string) Topic {
	get := func(name string) string {
		v, _ := b.topicValue(topicKeyIndex[name], overrides)
		return v
	}
	num := func(name string) int64 { return parseInt(get(name)) }
	t := Topic{
		CleanupPolicy:               strings.Join(parseList(get("cleanup.policy")), ","),
		CompressionType:             get("compression.type"),
		DeleteRetention:             millis(num("delete.retention.ms")),
		FileDeleteDelay:             millis(num("file.delete.delay.ms")),
		FlushMessages:               num("flush.messages"),
		Flush:                       millis(num("flush.ms")),
		IndexIntervalBytes:          int32(num("index.interval.bytes")),
		MaxCompactionLag:            millis(num("max.compaction.lag.ms")),
		MaxMessageBytes:             int32(num("max.message.bytes")),
		MessageTimestampType:        get("message.timestamp.type"),
		MessageTimestampBeforeMaxMs: num("message.timestamp.before.max.ms"),
		MessageTimestampAfterMaxMs:  num("message.timestamp.after.max.ms"),
		MinCleanableDirtyRatio:      parseFloat(get("min.cleanable.dirty.ratio")),
		MinCompactionLag:            millis(num("min.compaction.lag.ms")),
		MinInsyncReplicas:           int32(num("min.insync.replicas")),
		RetentionBytes:              num("retention.bytes"),
		Retention:                   millis(num("retention.ms")),
		SegmentBytes:                num("segment.bytes"),
		SegmentIndexBytes:           int32(num("segment.index.bytes")),
		Segment:                     millis(num("segment.ms")),
		UncleanLeaderElection:       parseBool(get("unclean.leader.election.enable")),
		SegmentJitter:               millis(num("segment.jitter.ms")),
		Preallocate:                 parseBool(get("preallocate")),
		GzipLevel:                   int32(num("compression.gzip.level")),
		Lz4Level:                    int32(num("compression.lz4.level")),
		ZstdLevel:                   int32(num("compression.zstd.level")),
	}
	if v := get("internal.segment.bytes"); v != "" {
		t.SegmentBytes = parseInt(v)
	}
	return t
}

// TopicDefaults is the configuration of a topic without overrides.
func (b Broker) TopicDefaults() Topic { return b.ResolveTopic(nil) }
