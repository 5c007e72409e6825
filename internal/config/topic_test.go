package config

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func mustLoad(t *testing.T, overrides map[string]string) Broker {
	t.Helper()
	b, err := Load("", nil, overrides)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTopicDefaults(t *testing.T) {
	got := mustLoad(t, nil).TopicDefaults()
	never := time.Duration(math.MaxInt64)
	want := Topic{
		CleanupPolicy:               "delete",
		CompressionType:             "producer",
		DeleteRetention:             24 * time.Hour,
		FileDeleteDelay:             time.Minute,
		FlushMessages:               math.MaxInt64,
		Flush:                       never,
		IndexIntervalBytes:          4096,
		MaxCompactionLag:            never,
		MaxMessageBytes:             1048588,
		MessageTimestampType:        "CreateTime",
		MessageTimestampBeforeMaxMs: math.MaxInt64,
		MessageTimestampAfterMaxMs:  3600000,
		MinCleanableDirtyRatio:      0.5,
		MinCompactionLag:            0,
		MinInsyncReplicas:           1,
		RetentionBytes:              -1,
		Retention:                   7 * 24 * time.Hour,
		SegmentBytes:                1 << 30,
		SegmentIndexBytes:           10 << 20,
		Segment:                     7 * 24 * time.Hour,
		UncleanLeaderElection:       false,
		SegmentJitter:               0,
		Preallocate:                 false,
		GzipLevel:                   -1,
		Lz4Level:                    9,
		ZstdLevel:                   3,
	}
	if got != want {
		t.Fatalf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if !got.Delete() || got.Compact() {
		t.Fatalf("policy helpers wrong for %q", got.CleanupPolicy)
	}
}

func TestResolveTopicSynonyms(t *testing.T) {
	cases := []struct {
		name      string
		broker    map[string]string
		overrides map[string]string
		check     func(Topic) bool
	}{
		{"hours", map[string]string{"log.retention.hours": "1"}, nil, func(t Topic) bool { return t.Retention == time.Hour }},
		{"minutes beat hours", map[string]string{"log.retention.hours": "1", "log.retention.minutes": "2"}, nil, func(t Topic) bool { return t.Retention == 2*time.Minute }},
		{"ms beats minutes", map[string]string{"log.retention.minutes": "2", "log.retention.ms": "1500"}, nil, func(t Topic) bool { return t.Retention == 1500*time.Millisecond }},
		{"negative hours unlimited", map[string]string{"log.retention.hours": "-1"}, nil, func(t Topic) bool { return t.Retention < 0 }},
		{"negative ms unlimited", map[string]string{"log.retention.ms": "-1"}, nil, func(t Topic) bool { return t.Retention < 0 }},
		{"any negative ms is -1", map[string]string{"log.retention.ms": "-7"}, nil, func(t Topic) bool { return t.Retention == -time.Millisecond }},
		{"negative minutes is -1", map[string]string{"log.retention.minutes": "-2"}, nil, func(t Topic) bool { return t.Retention == -time.Millisecond }},
		{"topic beats broker", map[string]string{"log.retention.ms": "1000"}, map[string]string{"retention.ms": "5000"}, func(t Topic) bool { return t.Retention == 5*time.Second }},
		{"roll hours", map[string]string{"log.roll.hours": "2"}, nil, func(t Topic) bool { return t.Segment == 2*time.Hour }},
		{"roll ms", map[string]string{"log.roll.hours": "2", "log.roll.ms": "10"}, nil, func(t Topic) bool { return t.Segment == 10*time.Millisecond }},
		{"jitter hours", map[string]string{"log.roll.jitter.hours": "1"}, nil, func(t Topic) bool { return t.SegmentJitter == time.Hour }},
		{"flush scheduler fallback", map[string]string{"log.flush.scheduler.interval.ms": "700"}, nil, func(t Topic) bool { return t.Flush == 700*time.Millisecond }},
		{"flush interval wins", map[string]string{"log.flush.scheduler.interval.ms": "700", "log.flush.interval.ms": "5"}, nil, func(t Topic) bool { return t.Flush == 5*time.Millisecond }},
		{"message.max.bytes", map[string]string{"message.max.bytes": "100"}, nil, func(t Topic) bool { return t.MaxMessageBytes == 100 }},
		{"max.message.bytes override", nil, map[string]string{"max.message.bytes": "64000"}, func(t Topic) bool { return t.MaxMessageBytes == 64000 }},
		{"segment bytes", map[string]string{"log.segment.bytes": "2097152"}, nil, func(t Topic) bool { return t.SegmentBytes == 2097152 }},
		{"internal segment bytes", nil, map[string]string{"internal.segment.bytes": "1024"}, func(t Topic) bool { return t.SegmentBytes == 1024 }},
		{"cleanup list normalised", nil, map[string]string{"cleanup.policy": "compact, delete"}, func(t Topic) bool { return t.CleanupPolicy == "compact,delete" && t.Compact() && t.Delete() }},
		{"log.cleanup.policy", map[string]string{"log.cleanup.policy": "compact"}, nil, func(t Topic) bool { return t.Compact() && !t.Delete() }},
		{"timestamp type", map[string]string{"log.message.timestamp.type": "LogAppendTime"}, nil, func(t Topic) bool { return t.MessageTimestampType == "LogAppendTime" }},
		{"ratio", nil, map[string]string{"min.cleanable.dirty.ratio": "0.1"}, func(t Topic) bool { return t.MinCleanableDirtyRatio == 0.1 }},
		{"unclean", map[string]string{"unclean.leader.election.enable": "TRUE"}, nil, func(t Topic) bool { return t.UncleanLeaderElection }},
		{"min isr", nil, map[string]string{"min.insync.replicas": "2"}, func(t Topic) bool { return t.MinInsyncReplicas == 2 }},
		{"invalid override ignored", nil, map[string]string{"retention.ms": "x"}, func(t Topic) bool { return t.Retention == 7*24*time.Hour }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := mustLoad(t, tc.broker).ResolveTopic(tc.overrides)
			if !tc.check(got) {
				t.Fatalf("resolved %+v", got)
			}
		})
	}
}

func TestValidateTopicConfigs(t *testing.T) {
	good := map[string]string{
		"cleanup.policy": "compact,delete", "compression.type": "zstd", "retention.ms": "-1",
		"retention.bytes": "-1", "segment.bytes": "1048576", "segment.ms": "1", "max.message.bytes": "0",
		"min.insync.replicas": "2", "message.timestamp.type": "LogAppendTime", "min.cleanable.dirty.ratio": "0",
		"unclean.leader.election.enable": "True", "flush.messages": "1", "flush.ms": "0",
		"leader.replication.throttled.replicas": "0:1,1:2", "follower.replication.throttled.replicas": "*",
		"compression.gzip.level": "-1", "compression.zstd.level": "-5", "remote.storage.enable": "false",
		"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "10", "preallocate": "false",
	}
	if err := ValidateTopicConfigs(good); err != nil {
		t.Fatalf("valid configs rejected: %v", err)
	}
	bad := []struct {
		key, value, want string
	}{
		{"retention.ms", "x", `invalid value "x" for configuration retention.ms: not a number`},
		{"retention.ms", "-2", "must be at least -1"},
		{"retention.ms", "99999999999999999999", "out of range for type LONG"},
		{"segment.bytes", "1048575", "must be at least 1048576"},
		{"segment.bytes", "4294967296", "out of range for type INT"},
		{"segment.ms", "0", "must be at least 1"},
		{"segment.index.bytes", "3", "must be at least 4"},
		{"segment.jitter.ms", "-1", "must be at least 0"},
		{"cleanup.policy", "remove", `"remove" is not one of compact, delete`},
		{"cleanup.policy", "", "must not be empty"},
		{"compression.type", "brotli", "must be one of"},
		{"compression.type", "GZIP", "must be one of"},
		{"compression.gzip.level", "10", "must be between 1 and 9"},
		{"compression.gzip.level", "0", "must be between 1 and 9"},
		{"compression.lz4.level", "18", "must be between 1 and 17"},
		{"compression.zstd.level", "23", "must be between -131072 and 22"},
		{"min.insync.replicas", "0", "must be at least 1"},
		{"max.message.bytes", "-1", "must be at least 0"},
		{"message.timestamp.type", "NoTime", "must be one of CreateTime, LogAppendTime"},
		{"message.timestamp.before.max.ms", "-1", "must be at least 0"},
		{"message.timestamp.after.max.ms", "-1", "must be at least 0"},
		{"min.cleanable.dirty.ratio", "1.01", "must be between 0 and 1"},
		{"min.cleanable.dirty.ratio", "NaN", "not a number"},
		{"min.compaction.lag.ms", "-1", "must be at least 0"},
		{"max.compaction.lag.ms", "0", "must be at least 1"},
		{"delete.retention.ms", "-1", "must be at least 0"},
		{"file.delete.delay.ms", "-1", "must be at least 0"},
		{"flush.messages", "0", "must be at least 1"},
		{"flush.ms", "-1", "must be at least 0"},
		{"index.interval.bytes", "-1", "must be at least 0"},
		{"unclean.leader.election.enable", "1", "expected true or false"},
		{"preallocate", "no", "expected true or false"},
		{"leader.replication.throttled.replicas", "0-1", "partitionId:brokerId"},
		{"remote.storage.enable", "true", "must be one of false"},
		{"local.retention.ms", "-3", "must be at least -2"},
		{"internal.segment.bytes", "1", "must be at least 14"},
		{"retention.hours", "1", `unknown configuration "retention.hours"`},
		{"log.retention.ms", "1", `unknown configuration "log.retention.ms" (log.retention.ms is a broker config; the topic config is retention.ms)`},
		{"log.roll.hours", "1", `(log.roll.hours is a broker config; the topic config is segment.ms)`},
	}
	for _, tc := range bad {
		err := ValidateTopicConfigs(map[string]string{tc.key: tc.value})
		if err == nil {
			t.Errorf("%s=%q accepted", tc.key, tc.value)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s=%q: %v does not wrap ErrInvalid", tc.key, tc.value, err)
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s=%q: error %q, want it to name the key and contain %q", tc.key, tc.value, err, tc.want)
		}
	}
	err := ValidateTopicConfigs(map[string]string{"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"})
	if err == nil || !strings.Contains(err.Error(), "must not exceed max.compaction.lag.ms") {
		t.Errorf("min > max compaction lag: %v", err)
	}
}

// Every broker key that is a topic key's synonym must exist in the broker table, and
// every validator in the tables must accept its own default.
func TestTablesConsistent(t *testing.T) {
	for _, k := range topicKeys {
		for _, s := range k.synonyms {
			if brokerKeyIndex[s.name] == nil {
				t.Errorf("topic key %s: synonym %s not in broker table", k.name, s.name)
			}
		}
		if len(k.synonyms) == 0 && k.def != "" {
			if why := validate(k.typ, k.check, k.def); why != "" {
				t.Errorf("topic key %s: default %q invalid: %s", k.name, k.def, why)
			}
		}
		if k.doc == "" {
			t.Errorf("topic key %s has no doc", k.name)
		}
	}
	seen := map[string]bool{}
	for _, k := range brokerKeys {
		if seen[k.name] {
			t.Errorf("broker key %s listed twice", k.name)
		}
		seen[k.name] = true
		if !k.null {
			if why := validate(k.typ, k.check, k.def); why != "" {
				t.Errorf("broker key %s: default %q invalid: %s", k.name, k.def, why)
			}
		}
		if k.doc == "" {
			t.Errorf("broker key %s has no doc", k.name)
		}
	}
	for i := 1; i < len(topicKeys); i++ {
		if topicKeys[i-1].name >= topicKeys[i].name {
			t.Errorf("topic keys not sorted at %s", topicKeys[i].name)
		}
	}
}

func TestBrokerValidateTopic(t *testing.T) {
	b := mustLoad(t, map[string]string{"log.cleaner.max.compaction.lag.ms": "1000"})
	if err := b.ValidateTopic(map[string]string{"min.compaction.lag.ms": "500"}); err != nil {
		t.Fatal(err)
	}
	err := b.ValidateTopic(map[string]string{"min.compaction.lag.ms": "2000"})
	if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "must not exceed max.compaction.lag.ms (1000)") {
		t.Fatalf("merged check: %v", err)
	}
	if err := b.ValidateTopic(map[string]string{"retention.ms": "x"}); err == nil {
		t.Fatal("bad value accepted")
	}
}
