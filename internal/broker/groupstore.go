package broker

// The group coordinator's store: its records are appended to, and replayed from, the
// partitions of the compacted internal topic __consumer_offsets, which is created on
// first use as Kafka does (offsets.topic.num.partitions partitions, compacted).

import (
	"context"
	"fmt"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/group"
	"github.com/vltava/vltava/internal/log"
)

// offsetsSegmentBytes is Kafka's offsets.topic.segment.bytes default.
const offsetsSegmentBytes = 100 << 20

// GroupStore returns the coordinator's view of __consumer_offsets.
func (b *Broker) GroupStore() group.Store { return groupStore{b} }

type groupStore struct{ b *Broker }

// EnsureOffsetsTopic creates __consumer_offsets if it does not exist, with
// offsets.topic.num.partitions and offsets.topic.replication.factor, placed by the
// controller (more replicas than unfenced brokers: INVALID_REPLICATION_FACTOR, and the
// coordinator is not available until there are enough, as in Kafka).
func (b *Broker) EnsureOffsetsTopic() error {
	if b.Image().Topic(ConsumerOffsetsTopic) != nil {
		return nil
	}
	rf := max(b.cfg.OffsetsTopicReplicationFactor, 1) // a configuration not from config.Load may leave it 0
	_, err := b.CreateTopic(ConsumerOffsetsTopic, b.cfg.OffsetsTopicNumPartitions, rf, map[string]string{
		"cleanup.policy":   "compact",
		"segment.bytes":    fmt.Sprint(offsetsSegmentBytes),
		"compression.type": "producer",
	}, false)
	if err != nil && b.Image().Topic(ConsumerOffsetsTopic) != nil {
		return nil // created concurrently
	}
	return err
}

func (s groupStore) Append(ctx context.Context, p int32, recs []group.Record) error {
	if err := s.b.EnsureOffsetsTopic(); err != nil {
		return err
	}
	part, err := s.b.LeaderPartition(ConsumerOffsetsTopic, p)
	if err != nil {
		return err
	}
	now := s.b.now().UnixMilli()
	brs := make([]batch.Record, len(recs))
	for i, r := range recs {
		brs[i] = batch.Record{Key: r.Key, Value: r.Value, Timestamp: now}
	}
	bb, err := batch.Build(batch.BuildOptions{}, brs)
	if err != nil {
		return err
	}
	if part.Replicated() {
		// Replicated: answered once the in-sync replicas have it (acks=all), so a commit
		// acknowledged to a client survives the leader's loss.
		w, err := part.AppendAcksAll(bb, s.b.now().Add(s.b.requestTimeout()))
		if err != nil {
			return err
		}
		_, err = part.AwaitAcks(ctx, w)
		return err
	}
	_, err = part.Append(bb)
	return err
}

// maxReplayBatch bounds one read while replaying; a larger batch is still read whole.
const maxReplayBatch = 1 << 20

func (s groupStore) Replay(p int32, fn func(group.Record) error) error {
	part := s.b.Partition(ConsumerOffsetsTopic, p)
	if part == nil {
		return nil // the topic does not exist yet: nothing to replay
	}
	// A replica that has just become leader may not have learned the high watermark
	// that covers the last acknowledged writes (followers learn it on their next fetch):
	// it loads its whole log, as Kafka's coordinator does. What it has past the high
	// watermark it will commit as leader; should it lose the lead first, the coordinator
	// moves with it.
	end := part.HighWatermark
	read := func(off int64) ([]log.Range, error) { return part.Read(off, maxReplayBatch, true, false) }
	if part.Replicated() {
		end = part.LogEndOffset
		read = func(off int64) ([]log.Range, error) {
			return part.Log().Read(off, part.LogEndOffset(), maxReplayBatch, true)
		}
	}
	off := part.LogStartOffset()
	for off < end() {
		ranges, err := read(off)
		if err != nil {
			return fmt.Errorf("replay %s-%d at %d: %w", ConsumerOffsetsTopic, p, off, err)
		}
		data := make([]byte, log.RangesLen(ranges))
		if err := log.ReadRanges(data, ranges); err != nil {
			return err
		}
		if len(data) == 0 {
			break
		}
		for len(data) > 0 {
			var bt batch.Batch
			bt, data, err = batch.Next(data, len(data))
			if err != nil {
				return fmt.Errorf("replay %s-%d at %d: %w", ConsumerOffsetsTopic, p, off, err)
			}
			if bt.Control() {
				off = bt.LastOffset() + 1
				continue
			}
			recs, err := batch.Records(bt, 64<<20)
			if err != nil {
				return fmt.Errorf("replay %s-%d at %d: %w", ConsumerOffsetsTopic, p, bt.BaseOffset(), err)
			}
			for _, r := range recs {
				if r.Offset < off {
					continue
				}
				if err := fn(group.Record{Key: r.Key, Value: r.Value}); err != nil {
					return err
				}
			}
			off = bt.LastOffset() + 1
		}
	}
	return nil
}

type topicsCache struct {
	image  any
	topics map[string]group.TopicInfo
}

// GroupTopics is the coordinator's view of the topics, rebuilt only when the metadata
// image changes.
func (b *Broker) GroupTopics() map[string]group.TopicInfo {
	im := b.Image()
	if c := b.groupTopics.Load(); c != nil && c.image == any(im) {
		return c.topics
	}
	m := make(map[string]group.TopicInfo, im.NumTopics())
	for t := range im.Topics() {
		m[t.Name] = group.TopicInfo{ID: t.ID, Partitions: t.NumPartitions()}
	}
	b.groupTopics.Store(&topicsCache{image: im, topics: m})
	return m
}
