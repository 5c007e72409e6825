package broker

// Producer state expiry: every producer.id.expiration.check.interval.ms (and once at
// start) each partition drops the producers whose last batch is producer.id.expiration.ms
// old, as Kafka's PeriodicProducerExpirationCheck does. producer.id.expiration.ms is
// dynamic: it is read from the effective config at each check.

import (
	"errors"
	"strconv"
	"time"

	"github.com/vltava/vltava/internal/partition"
)

// ExpireProducers applies producer.id.expiration.ms to every partition now. It also logs,
// once, what a partition's open could not use of its producer snapshots (it runs first as
// soon as the partitions are open).
func (b *Broker) ExpireProducers() {
	// One pass at a time: a caller returns once the notes taken by a pass running
	// concurrently (housekeeping's) are logged.
	b.expireMu.Lock()
	defer b.expireMu.Unlock()
	expiration := b.msKey(b.effective().Values, "producer.id.expiration.ms", 24*time.Hour)
	now := b.now()
	b.forEachPartition(func(p *partition.Partition) {
		if note := p.TakeProducerStateNote(); note != "" {
			b.logger.Warn("producer state snapshot", "topic", p.Topic, "partition", p.Index, "note", note)
		}
		if n := p.ExpireProducers(now, expiration); n > 0 {
			b.logger.Info("expired producer state", "topic", p.Topic, "partition", p.Index, "producers", n,
				"producer.id.expiration.ms", expiration.Milliseconds())
		}
	})
}

// producerExpirationCheck is producer.id.expiration.check.interval.ms.
func (b *Broker) producerExpirationCheck() time.Duration {
	return b.msKey(b.cfg.Values, "producer.id.expiration.check.interval.ms", 10*time.Minute)
}

// msKey reads a key of milliseconds (def if it does not parse: the config layer has
// validated it).
func (b *Broker) msKey(values map[string]string, key string, def time.Duration) time.Duration {
	ms, err := strconv.ParseInt(values[key], 10, 64)
	if err != nil || ms <= 0 {
		return def
	}
	return time.Duration(ms) * time.Millisecond
}

// logSnapshotError logs a failed producer snapshot, or at WARN one that was written
// without some producers to fit its bound.
func (b *Broker) logSnapshotError(p *partition.Partition, err error) {
	if errors.Is(err, partition.ErrSnapshotTrimmed) {
		b.logger.Warn("producer snapshot", "topic", p.Topic, "partition", p.Index, "err", err)
		return
	}
	b.logger.Error("producer snapshot", "topic", p.Topic, "partition", p.Index, "err", err)
}
