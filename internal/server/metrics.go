package server

// The server's side of the metrics: it makes the registry (internal/metrics), hands
// its instruments to the layers (the ISR change counters go to every leader replica
// through the broker), and answers the scrape-time sources from the broker, the group
// coordinator and its own budgets. A hosted partition's replicas, ISR and leader are
// the metadata image's; the node is the active controller when its controller is
// (ActiveControllerCount); the controller figures (offline partitions, topics,
// brokers) come from the image, as every KRaft controller publishes them.

import (
	"strconv"
	"time"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/group"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/metrics"
	"github.com/vltava/vltava/internal/replication"
)

// newMetrics makes the metrics the configuration asks for.
func newMetrics(cfg config.Broker) *metrics.Metrics {
	intKey := func(key string, def int) int {
		if n, err := strconv.Atoi(cfg.Values[key]); err == nil {
			return n
		}
		return def
	}
	d := metrics.DefaultConfig()
	return metrics.New(metrics.Config{
		PartitionSeries: cfg.Values["vltava.metrics.partition.series.enable"] != "false",
		TopicSeriesMax:  intKey("vltava.metrics.topic.series.max", d.TopicSeriesMax),
		LagSeriesMax:    intKey("vltava.metrics.consumer.lag.series.max", d.LagSeriesMax),
	})
}

// logTimings is where every partition log reports its write and flush times.
func logTimings(m *metrics.Metrics) log.Timings {
	return log.Timings{Append: m.Log.Appended, Flush: m.Log.Flushed}
}

// Metrics returns the node's metrics (for its HTTP listener and tests).
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// watchMetrics registers the scrape-time sources once the layers exist.
func (s *Server) watchMetrics() {
	b := s.broker
	s.metrics.Watch(metrics.Sources{
		Cluster: clusterSource{b},
		Groups:  groupSource{b: b, c: s.groups},
		Cleaner: func() metrics.CleanerStats {
			st := b.CleanerStats()
			since := b.Now().Sub(b.Started())
			if !st.LastPass.IsZero() {
				since = b.Now().Sub(st.LastPass)
			}
			out := metrics.CleanerStats{Passes: st.Passes, SinceLastPass: since, MaxDirtyRatio: st.MaxDirtyRatio,
				BytesCleaned: st.BytesCleaned, BytesRemoved: st.BytesRemoved}
			for _, d := range st.Dirty {
				out.Dirty = append(out.Dirty, metrics.DirtyRatio{Topic: d.Topic, Partition: d.Partition, Ratio: d.Ratio})
			}
			return out
		},
		Throttles: func() metrics.Throttles {
			th := b.ReplicationThrottles()
			now := time.Now() // the quotas' clock (replication.Throttles records on it)
			bound := func(r int64) int64 {
				if r == replication.Unlimited {
					return -1
				}
				return r
			}
			return metrics.Throttles{LeaderRate: th.Leader.Measured(now), FollowerRate: th.Follower.Measured(now),
				LeaderBound: bound(th.Leader.Rate()), FollowerBound: bound(th.Follower.Rate())}
		},
		Intake: func() metrics.Intake {
			in := metrics.Intake{}
			in.RequestBytes, in.RequestBytesMax = s.budget.inUse()
			in.RequestsQueued, _ = s.queued.inUse()
			in.FetchBytes, in.FetchBytesMax = s.h.FetchBudget()
			return in
		},
	})
}

// clusterSource is this node's replicas, as the metadata image assigns them, and the
// controller's view of the image.
type clusterSource struct{ b *broker.Broker }

func (c clusterSource) Replicas(fn func(r *metrics.Replica)) {
	im := c.b.Image()
	me := c.b.NodeID()
	var r metrics.Replica
	for _, name := range im.TopicNames() {
		t, mt := c.b.Topic(name), im.Topic(name)
		if t == nil || mt == nil {
			continue // being created or deleted
		}
		for _, p := range t.Partitions {
			if p == nil {
				continue // placed on other brokers only
			}
			l := p.Log()
			r = metrics.Replica{Topic: name, Partition: p.Index, Offline: l.Err() != nil,
				Replicas: 1, ISR: int(p.ISRSize()), MinISR: int(p.Config().MinInsyncReplicas)}
			if mp := mt.Partition(p.Index); mp != nil {
				r.Leader = mp.Leader == me
				r.Replicas, r.ISR = len(mp.Replicas()), len(mp.ISR())
			}
			if !r.Offline {
				r.Size, r.Segments = l.Size(), l.NumSegments()
				r.LogStartOffset, r.LogEndOffset, r.HighWatermark = p.LogStartOffset(), p.LogEndOffset(), p.HighWatermark()
				r.ProducerIDs = p.ProducerCount()
			}
			fn(&r)
		}
	}
}

func (c clusterSource) Controller() metrics.ControllerState {
	im := c.b.Image()
	ctl := c.b.Controller()
	st := metrics.ControllerState{Active: ctl != nil && ctl.Active(), Topics: im.NumTopics(), Partitions: im.NumPartitions()}
	for b := range im.Brokers() {
		if b.Fenced {
			st.FencedBrokers++
		} else {
			st.ActiveBrokers++
		}
	}
	for mt := range im.Topics() {
		t := c.b.Topic(mt.Name)
		for i := range mt.Partitions {
			mp := &mt.Partitions[i]
			// Without a leader, or led here from a failed log dir (until the
			// controller hears of it, nobody else leads it).
			offline := mp.Leader == metadata.NoLeader
			if t != nil && i < len(t.Partitions) && t.Partitions[i] != nil && t.Partitions[i].Log().Err() != nil {
				offline = true
			}
			if offline {
				st.OfflinePartitions++
			}
		}
	}
	return st
}

// groupSource is the group coordinator's committed offsets against the hosted
// partitions' high watermarks.
type groupSource struct {
	b *broker.Broker
	c *group.Coordinator
}

func (g groupSource) Lag(limit int, fn func(group, topic string, partition int32, lag int64)) int {
	offsets, total := g.c.CommittedOffsets(limit)
	for _, o := range offsets {
		p := g.b.Partition(o.Topic, o.Partition)
		if p == nil {
			continue
		}
		fn(o.Group, o.Topic, o.Partition, max(p.HighWatermark()-o.Offset, 0))
	}
	return total - len(offsets)
}

func (g groupSource) Counts() (int, int) { return g.c.Counts() }
