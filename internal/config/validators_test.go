package config

import (
	"errors"
	"strings"
	"testing"
)

// TestBrokerValidators pins each broker key's validator: the boundary value accepted,
// the value just past it rejected with a message naming the key.
func TestBrokerValidators(t *testing.T) {
	cases := []struct {
		key, good, bad, want string
	}{
		{"node.id", "1", "0", "number nodes from 1"},
		{"broker.id", "-1", "-2", "at least -1"},
		{"process.roles", "controller,broker", "", "must not be empty"},
		{"security.inter.broker.protocol", "PLAINTEXT", "SSL", "must be one of PLAINTEXT"},
		{"num.recovery.threads.per.data.dir", "1", "0", "at least 1"},
		{"log.retention.check.interval.ms", "1", "0", "at least 1"},
		{"log.flush.offset.checkpoint.interval.ms", "0", "-1", "at least 0"},
		{"log.flush.start.offset.checkpoint.interval.ms", "0", "-1", "at least 0"},
		{"log.cleanup.policy", "compact,delete", "none", "not one of compact, delete"},
		{"compression.type", "snappy", "deflate", "must be one of"},
		{"compression.gzip.level", "9", "10", "between 1 and 9"},
		{"compression.lz4.level", "1", "0", "between 1 and 17"},
		{"compression.zstd.level", "-131072", "-131073", "between -131072 and 22"},
		{"log.cleaner.delete.retention.ms", "0", "-1", "at least 0"},
		{"log.segment.delete.delay.ms", "0", "-1", "at least 0"},
		{"log.flush.interval.messages", "1", "0", "at least 1"},
		{"log.flush.interval.ms", "5", "x", "not a number"},
		{"log.index.interval.bytes", "0", "-1", "at least 0"},
		{"log.local.retention.bytes", "-2", "-3", "at least -2"},
		{"log.local.retention.ms", "-2", "-3", "at least -2"},
		{"log.cleaner.max.compaction.lag.ms", "1", "0", "at least 1"},
		{"message.max.bytes", "0", "-1", "at least 0"},
		{"log.message.timestamp.after.max.ms", "0", "-1", "at least 0"},
		{"log.message.timestamp.before.max.ms", "0", "-1", "at least 0"},
		{"log.message.timestamp.type", "LogAppendTime", "logappendtime", "must be one of"},
		{"log.cleaner.min.cleanable.ratio", "1", "-0.1", "between 0 and 1"},
		{"log.cleaner.min.compaction.lag.ms", "0", "-1", "at least 0"},
		{"min.insync.replicas", "1", "0", "at least 1"},
		{"log.preallocate", "FALSE", "0", "expected true or false"},
		{"log.retention.bytes", "-1", "1.5", "not a number"},
		{"log.retention.ms", "-1", "1h", "not a number"},
		{"log.retention.minutes", "1", "3000000000", "out of range for type INT"},
		{"log.retention.hours", "-1", "x", "not a number"},
		{"log.segment.bytes", "1048576", "1048575", "at least 1048576"},
		{"log.index.size.max.bytes", "4", "3", "at least 4"},
		{"log.roll.jitter.hours", "0", "-1", "at least 0"},
		{"log.roll.hours", "1", "0", "at least 1"},
		{"unclean.leader.election.enable", "true", "on", "expected true or false"},
		{"log.cleaner.threads", "0", "-1", "at least 0"},
		{"log.cleaner.backoff.ms", "0", "-1", "at least 0"},
		{"log.cleaner.io.buffer.size", "0", "-1", "at least 0"},
		{"log.cleaner.io.buffer.load.factor", "0.5", "half", "not a number"},
		{"socket.request.max.bytes", "1", "0", "at least 1"},
		{"request.timeout.ms", "0", "-1", "at least 0"},
		{"max.connections", "0", "-1", "at least 0"},
		{"max.connections.per.ip", "0", "-1", "at least 0"},
		{"max.connection.creation.rate", "0", "-1", "at least 0"},
		{"queued.max.requests", "1", "0", "at least 1"},
		{"num.io.threads", "1", "0", "at least 1"},
		{"num.network.threads", "1", "0", "at least 1"},
		{"num.replica.fetchers", "1", "0", "at least 1"},
		{"background.threads", "1", "0", "at least 1"},
		{"socket.listen.backlog.size", "1", "0", "at least 1"},
		{"fetch.max.bytes", "1024", "1023", "at least 1024"},
		{"default.replication.factor", "1", "0", "at least 1"},
		{"num.partitions", "1", "0", "at least 1"},
		{"auto.create.topics.enable", "false", "no", "expected true or false"},
		{"delete.topic.enable", "true", "1", "expected true or false"},
		{"leader.imbalance.check.interval.seconds", "1", "0", "at least 1"},
		{"replica.fetch.max.bytes", "0", "-1", "at least 0"},
		{"replica.fetch.response.max.bytes", "0", "-1", "at least 0"},
		{"replica.fetch.backoff.ms", "0", "-1", "at least 0"},
		{"group.max.size", "1", "0", "at least 1"},
		{"group.coordinator.rebalance.protocols", "classic", "eager", "not one of classic, consumer, share, streams"},
		{"group.consumer.session.timeout.ms", "1", "0", "at least 1"},
		{"group.consumer.heartbeat.interval.ms", "1", "0", "at least 1"},
		{"group.consumer.max.size", "1", "0", "at least 1"},
		{"offsets.topic.num.partitions", "1", "0", "at least 1"},
		{"offsets.topic.replication.factor", "1", "0", "at least 1"},
		{"offsets.topic.replication.factor", "1", "40000", "out of range for type SHORT"},
		{"offsets.topic.segment.bytes", "1", "0", "at least 1"},
		{"offsets.retention.minutes", "1", "0", "at least 1"},
		{"offsets.retention.check.interval.ms", "1", "0", "at least 1"},
		{"offsets.commit.timeout.ms", "1", "0", "at least 1"},
		{"offsets.load.buffer.size", "1", "0", "at least 1"},
		{"transaction.state.log.num.partitions", "1", "0", "at least 1"},
		{"transaction.state.log.replication.factor", "1", "0", "at least 1"},
		{"transaction.state.log.min.isr", "1", "0", "at least 1"},
		{"transaction.state.log.segment.bytes", "1", "0", "at least 1"},
		{"transaction.max.timeout.ms", "1", "0", "at least 1"},
		{"transactional.id.expiration.ms", "1", "0", "at least 1"},
		{"producer.id.expiration.ms", "1", "0", "at least 1"},
		{"transaction.partition.verification.enable", "false", "nope", "expected true or false"},
		{"controller.quorum.election.timeout.ms", "2", "0", "at least 1"},
		{"controller.quorum.fetch.timeout.ms", "4", "3", "at least 2 ms"},
		{"broker.heartbeat.interval.ms", "8999", "9000", "less than broker.session.timeout.ms"},
		{"metadata.log.max.record.bytes.between.snapshots", "1", "0", "at least 1"},
		{"metadata.log.max.snapshot.interval.ms", "0", "-1", "at least 0"},
		{"vltava.quorum.max.entry.bytes", "1", "0", "at least 1"},
		{"vltava.quorum.max.frame.bytes", "8392704", "8392703", "must hold an entry"},
		{"vltava.quorum.receive.buffer.bytes", "0", "1", "must hold one frame"},
		{"vltava.quorum.max.pending.proposals", "1", "0", "at least 1"},
	}
	for _, tc := range cases {
		if brokerKeyIndex[tc.key] == nil {
			t.Errorf("%s: not in the broker table", tc.key)
			continue
		}
		if _, err := Load("", nil, map[string]string{tc.key: tc.good}); err != nil {
			t.Errorf("%s=%q rejected: %v", tc.key, tc.good, err)
		}
		_, err := Load("", nil, map[string]string{tc.key: tc.bad})
		if err == nil {
			t.Errorf("%s=%q accepted", tc.key, tc.bad)
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) ||
			!strings.Contains(err.Error(), "configuration "+tc.key+":") {
			t.Errorf("%s=%q: error %q, want it to name the key and say %q", tc.key, tc.bad, err, tc.want)
		}
	}
}
