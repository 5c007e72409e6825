package metrics

// Metrics read at scrape time: the state of the partitions this broker hosts (Kafka's
// ReplicaManager, KafkaController and per-partition Log gauges), the request and fetch
// budgets, the log cleaner and consumer lag. They come from small interfaces the
// server implements over the broker and the group coordinator today, and the cluster
// code over the metadata image once there is one, so the names and their meaning stay
// put when replication arrives.

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sources are what the scrape-time metrics are read from. A nil field leaves its
// metrics out.
type Sources struct {
	Cluster Cluster
	Groups  Groups
	Cleaner func() CleanerStats
	Intake  func() Intake
	// Throttles returns the replication quotas' measured rates and bounds.
	Throttles func() Throttles
}

// Cluster is this broker's replicas and, if it is the active controller, the
// controller's view.
type Cluster interface {
	// Replicas calls fn for every partition replica this broker hosts; r is reused
	// between calls.
	Replicas(fn func(r *Replica))
	// Controller returns the controller's figures.
	Controller() ControllerState
}

// Replica is one hosted partition replica.
type Replica struct {
	Topic     string
	Partition int32
	Leader    bool // this broker leads it
	Offline   bool // its log dir has failed: it serves nothing
	// Replicas, ISR and MinISR are the assigned replicas, the in-sync ones and the
	// topic's min.insync.replicas.
	Replicas, ISR, MinISR int
	Size                  int64 // bytes of its segments
	Segments              int
	LogStartOffset        int64
	LogEndOffset          int64
	HighWatermark         int64
	ProducerIDs           int // idempotent producers with state in it
}

// ControllerState is what Kafka's KafkaController MBeans report.
type ControllerState struct {
	Active            bool // this node is the active controller
	OfflinePartitions int  // partitions without a leader, from the metadata image
	Topics            int
	Partitions        int
	ActiveBrokers     int
	FencedBrokers     int
}

// Groups are the group coordinator's state.
type Groups interface {
	// Lag calls fn with the lag (high watermark minus committed offset, at least 0) of
	// at most max committed offsets, ordered by group, topic and partition, and
	// returns how many it left out past max. Offsets of partitions this broker does
	// not host are skipped.
	Lag(max int, fn func(group, topic string, partition int32, lag int64)) (omitted int)
	// Counts returns the groups and committed offsets held.
	Counts() (groups, offsets int)
}

// Throttles are a broker's two replication quotas (KIP-73): the rate measured over the
// quota window in bytes per second, and the bound (-1: none), for what it sends to
// throttled followers as a leader and what it fetches for throttled replicas.
type Throttles struct {
	LeaderRate, FollowerRate   float64
	LeaderBound, FollowerBound int64
}

// Intake is the state of the broker-wide request and fetch budgets.
type Intake struct {
	RequestBytes, RequestBytesMax int64 // queued.max.request.bytes: in use, and the budget
	RequestsQueued                int64 // read and not yet taken up (queued.max.requests)
	FetchBytes, FetchBytesMax     int64 // vltava.fetch.max.bytes.in.flight: in use, and the budget
}

// CleanerStats are the log cleaner's progress.
type CleanerStats struct {
	Passes        int64
	SinceLastPass time.Duration // since the broker started if no pass has run
	// MaxDirtyRatio is the largest dirty ratio of a compacted partition at the last pass.
	MaxDirtyRatio float64
	BytesCleaned  int64 // bytes of the segments cleaned, before
	BytesRemoved  int64 // bytes cleaning removed from them
	// Dirty is each compacted partition's dirty ratio at the last pass.
	Dirty []DirtyRatio
}

// DirtyRatio is one compacted partition's cleanable fraction.
type DirtyRatio struct {
	Topic     string
	Partition int32
	Ratio     float64
}

type scrape struct {
	cfg Config
	src Sources
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var tp = []string{"topic", "partition"}

var (
	dPartitionCount   = desc("kafka_server_replicamanager_partitioncount", "Partitions this broker hosts (ReplicaManager PartitionCount).")
	dLeaderCount      = desc("kafka_server_replicamanager_leadercount", "Partitions this broker leads (ReplicaManager LeaderCount).")
	dUnderReplicated  = desc("kafka_server_replicamanager_underreplicatedpartitions", "Partitions this broker leads whose ISR is smaller than their replicas (ReplicaManager UnderReplicatedPartitions).")
	dUnderMinISR      = desc("kafka_server_replicamanager_underminisrpartitioncount", "Partitions this broker leads whose ISR is below min.insync.replicas, capped by the replica count (ReplicaManager UnderMinIsrPartitionCount).")
	dAtMinISR         = desc("kafka_server_replicamanager_atminisrpartitioncount", "Partitions this broker leads whose ISR is exactly min.insync.replicas, capped by the replica count: one more failure refuses acks=all (ReplicaManager AtMinIsrPartitionCount).")
	dOfflineReplicas  = desc("kafka_server_replicamanager_offlinereplicacount", "Replicas on this broker in a failed log dir (ReplicaManager OfflineReplicaCount).")
	dActiveController = desc("kafka_controller_kafkacontroller_activecontrollercount", "1 on the active controller, else 0 (KafkaController ActiveControllerCount).")
	dOfflinePart      = desc("kafka_controller_kafkacontroller_offlinepartitionscount", "Partitions without a leader, reported by the active controller (KafkaController OfflinePartitionsCount).")
	dGlobalTopics     = desc("kafka_controller_kafkacontroller_globaltopiccount", "Topics in the cluster, reported by the active controller (KafkaController GlobalTopicCount).")
	dGlobalPartitions = desc("kafka_controller_kafkacontroller_globalpartitioncount", "Partitions in the cluster, reported by the active controller (KafkaController GlobalPartitionCount).")
	dActiveBrokers    = desc("kafka_controller_kafkacontroller_activebrokercount", "Brokers registered and not fenced, reported by the active controller (KafkaController ActiveBrokerCount).")
	dFencedBrokers    = desc("kafka_controller_kafkacontroller_fencedbrokercount", "Brokers registered and fenced, reported by the active controller (KafkaController FencedBrokerCount).")
	dLogBytes         = desc("vltava_log_size_bytes", "Bytes of every hosted partition's segments.")
	dProducerIDs      = desc("vltava_producer_ids", "Idempotent producers with state, summed over the hosted partitions (memory held and snapshotted).")

	dSize        = desc("kafka_log_log_size", "Bytes of a partition's segments (Log Size).", tp...)
	dSegments    = desc("kafka_log_log_numlogsegments", "Segments of a partition (Log NumLogSegments).", tp...)
	dStart       = desc("kafka_log_log_logstartoffset", "A partition's log start offset (Log LogStartOffset).", tp...)
	dEnd         = desc("kafka_log_log_logendoffset", "A partition's log end offset (Log LogEndOffset).", tp...)
	dHW          = desc("vltava_partition_high_watermark", "A partition's high watermark: consumers read below it.", tp...)
	dPartProdIDs = desc("vltava_partition_producer_ids", "Idempotent producers with state in a partition.", tp...)

	dRequestBytes    = desc("vltava_server_request_bytes_in_flight", "Bytes of requests read or being read and not yet served (queued.max.request.bytes budget in use).")
	dRequestBytesMax = desc("vltava_server_request_bytes_max", "The request bytes budget (queued.max.request.bytes; Vltava's 512 MiB when Kafka's -1).")
	dRequestQueue    = desc("kafka_network_requestchannel_requestqueuesize", "Requests read and waiting to be taken up (RequestChannel RequestQueueSize; bounded by queued.max.requests).")
	dFetchBytes      = desc("vltava_fetch_bytes_in_flight", "Record bytes fetch responses hold in memory, from their read until written (vltava.fetch.max.bytes.in.flight budget in use).")
	dFetchBytesMax   = desc("vltava_fetch_bytes_max", "The fetch memory budget (vltava.fetch.max.bytes.in.flight).")

	dLeaderRepl        = desc("kafka_server_leaderreplication_byte_rate", "Bytes per second this broker sent as a leader to throttled replicas, over the quota window (LeaderReplication byte-rate).")
	dFollowerRepl      = desc("kafka_server_followerreplication_byte_rate", "Bytes per second this broker fetched for throttled replicas, over the quota window (FollowerReplication byte-rate).")
	dLeaderReplBound   = desc("vltava_replication_leader_throttled_rate", "The leader replication quota in bytes per second (leader.replication.throttled.rate; -1: none).")
	dFollowerReplBound = desc("vltava_replication_follower_throttled_rate", "The follower replication quota in bytes per second (follower.replication.throttled.rate; -1: none).")

	dCleanerPasses   = desc("vltava_log_cleaner_passes_total", "Passes of the log cleaner over the compacted partitions.")
	dCleanerSince    = desc("kafka_log_logcleaner_time_since_last_run_ms", "Milliseconds since the log cleaner's last pass (LogCleaner time-since-last-run-ms).")
	dCleanerMaxDirty = desc("kafka_log_logcleanermanager_max_dirty_percent", "The largest dirty ratio of a compacted partition at the last pass, in percent (LogCleanerManager max-dirty-percent).")
	dCleanerCleaned  = desc("vltava_log_cleaner_cleaned_bytes_total", "Bytes of the segments the log cleaner has cleaned, counted before cleaning.")
	dCleanerRemoved  = desc("vltava_log_cleaner_removed_bytes_total", "Bytes the log cleaner has removed (superseded records and expired tombstones).")
	dDirtyRatio      = desc("vltava_log_cleaner_dirty_ratio", "A compacted partition's cleanable fraction at the cleaner's last pass.", tp...)

	dLag        = desc("vltava_consumer_group_lag", "A group's lag on a partition: high watermark minus committed offset.", "group", "topic", "partition")
	dLagSum     = desc("vltava_consumer_group_lag_sum", "A group's lag summed over a topic's partitions.", "group", "topic")
	dLagOmitted = desc("vltava_consumer_group_lag_omitted", "Committed offsets left out of the lag metrics this scrape (vltava.metrics.consumer.lag.series.max).")
	dNumGroups  = desc("kafka_coordinator_group_groupmetadatamanager_numgroups", "Groups the coordinator holds (GroupMetadataManager NumGroups).")
	dNumOffsets = desc("kafka_coordinator_group_groupmetadatamanager_numoffsets", "Committed offsets the coordinator holds (GroupMetadataManager NumOffsets).")
)

var allDescs = []*prometheus.Desc{
	dPartitionCount, dLeaderCount, dUnderReplicated, dUnderMinISR, dAtMinISR, dOfflineReplicas, dActiveController, dOfflinePart,
	dGlobalTopics, dGlobalPartitions, dActiveBrokers, dFencedBrokers, dLogBytes, dProducerIDs,
	dSize, dSegments, dStart, dEnd, dHW, dPartProdIDs,
	dRequestBytes, dRequestBytesMax, dRequestQueue, dFetchBytes, dFetchBytesMax,
	dLeaderRepl, dFollowerRepl, dLeaderReplBound, dFollowerReplBound,
	dCleanerPasses, dCleanerSince, dCleanerMaxDirty, dCleanerCleaned, dCleanerRemoved, dDirtyRatio,
	dLag, dLagSum, dLagOmitted, dNumGroups, dNumOffsets,
}

func (s *scrape) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

func (s *scrape) Collect(ch chan<- prometheus.Metric) {
	if s.src.Cluster != nil {
		s.collectCluster(ch)
	}
	if s.src.Intake != nil {
		in := s.src.Intake()
		gauge(ch, dRequestBytes, float64(in.RequestBytes))
		gauge(ch, dRequestBytesMax, float64(in.RequestBytesMax))
		gauge(ch, dRequestQueue, float64(in.RequestsQueued))
		gauge(ch, dFetchBytes, float64(in.FetchBytes))
		gauge(ch, dFetchBytesMax, float64(in.FetchBytesMax))
	}
	if s.src.Throttles != nil {
		th := s.src.Throttles()
		gauge(ch, dLeaderRepl, th.LeaderRate)
		gauge(ch, dFollowerRepl, th.FollowerRate)
		gauge(ch, dLeaderReplBound, float64(th.LeaderBound))
		gauge(ch, dFollowerReplBound, float64(th.FollowerBound))
	}
	if s.src.Cleaner != nil {
		s.collectCleaner(ch)
	}
	if s.src.Groups != nil {
		s.collectGroups(ch)
	}
}

func (s *scrape) collectCluster(ch chan<- prometheus.Metric) {
	var partitions, leaders, under, underMin, atMin, offline, producers int
	var bytes int64
	s.src.Cluster.Replicas(func(r *Replica) {
		partitions++
		if r.Offline {
			offline++
			return // nothing to read from a failed log dir
		}
		if r.Leader {
			leaders++
			if r.ISR < r.Replicas {
				under++
			}
			// Kafka's effective min ISR: min.insync.replicas above the replica count
			// is taken as the replica count.
			switch minISR := min(r.MinISR, r.Replicas); {
			case r.ISR < minISR:
				underMin++
			case r.ISR == minISR:
				atMin++
			}
		}
		bytes += r.Size
		producers += r.ProducerIDs
		if !s.cfg.PartitionSeries {
			return
		}
		p := strconv.Itoa(int(r.Partition))
		gauge(ch, dSize, float64(r.Size), r.Topic, p)
		gauge(ch, dSegments, float64(r.Segments), r.Topic, p)
		gauge(ch, dStart, float64(r.LogStartOffset), r.Topic, p)
		gauge(ch, dEnd, float64(r.LogEndOffset), r.Topic, p)
		gauge(ch, dHW, float64(r.HighWatermark), r.Topic, p)
		gauge(ch, dPartProdIDs, float64(r.ProducerIDs), r.Topic, p)
	})
	gauge(ch, dPartitionCount, float64(partitions))
	gauge(ch, dLeaderCount, float64(leaders))
	gauge(ch, dUnderReplicated, float64(under))
	gauge(ch, dUnderMinISR, float64(underMin))
	gauge(ch, dAtMinISR, float64(atMin))
	gauge(ch, dOfflineReplicas, float64(offline))
	gauge(ch, dLogBytes, float64(bytes))
	gauge(ch, dProducerIDs, float64(producers))

	c := s.src.Cluster.Controller()
	active := 0.0
	if c.Active {
		active = 1
	}
	gauge(ch, dActiveController, active)
	gauge(ch, dOfflinePart, float64(c.OfflinePartitions))
	gauge(ch, dGlobalTopics, float64(c.Topics))
	gauge(ch, dGlobalPartitions, float64(c.Partitions))
	gauge(ch, dActiveBrokers, float64(c.ActiveBrokers))
	gauge(ch, dFencedBrokers, float64(c.FencedBrokers))
}

func (s *scrape) collectCleaner(ch chan<- prometheus.Metric) {
	st := s.src.Cleaner()
	counter(ch, dCleanerPasses, float64(st.Passes))
	gauge(ch, dCleanerSince, ms(st.SinceLastPass))
	gauge(ch, dCleanerMaxDirty, 100*st.MaxDirtyRatio)
	counter(ch, dCleanerCleaned, float64(st.BytesCleaned))
	counter(ch, dCleanerRemoved, float64(st.BytesRemoved))
	if s.cfg.PartitionSeries {
		for _, d := range st.Dirty {
			gauge(ch, dDirtyRatio, d.Ratio, d.Topic, strconv.Itoa(int(d.Partition)))
		}
	}
}

func (s *scrape) collectGroups(ch chan<- prometheus.Metric) {
	groups, offsets := s.src.Groups.Counts()
	gauge(ch, dNumGroups, float64(groups))
	gauge(ch, dNumOffsets, float64(offsets))

	type key struct{ group, topic string }
	var sums []struct {
		key
		lag int64
	}
	omitted := s.src.Groups.Lag(s.cfg.LagSeriesMax, func(group, topic string, partition int32, lag int64) {
		// Entries come group by group, and within a group topic by topic.
		if n := len(sums); n > 0 && sums[n-1].key == (key{group, topic}) {
			sums[n-1].lag += lag
		} else {
			sums = append(sums, struct {
				key
				lag int64
			}{key{group, topic}, lag})
		}
		if s.cfg.PartitionSeries {
			gauge(ch, dLag, float64(lag), group, topic, strconv.Itoa(int(partition)))
		}
	})
	for _, e := range sums {
		gauge(ch, dLagSum, float64(e.lag), e.group, e.topic)
	}
	gauge(ch, dLagOmitted, float64(omitted))
}
