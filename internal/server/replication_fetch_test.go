package server_test

// Fetching from replicated partitions: who may fetch what (followers, non-replicas,
// stale and unknown leader epochs), consumers at followers and the closest replica
// (KIP-392), and what a node hosting part of a topic reports. The cluster helpers are
// replication_cluster_test.go's.

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/partition"
)

// fetchAs sends a Fetch v16 of partition 0 of rc's topic from offset 0 to qn as replica
// (ReplicaState) replicaID with broker epoch epoch (replicaID -1: a consumer), naming
// leaderEpoch as the current leader epoch, and returns the partition's answer.
func (rc *replicatedCluster) fetchAs(t *testing.T, qn *qnode, replicaID int32, epoch int64, leaderEpoch int32) kmsg.FetchResponseTopicPartition {
	t.Helper()
	return rc.fetchV(t, qn, 16, "", replicaID, epoch, leaderEpoch)
}

// fetchV is fetchAs at Fetch version v, from a client in rack.
func (rc *replicatedCluster) fetchV(t *testing.T, qn *qnode, v int16, rack string, replicaID int32, epoch int64, leaderEpoch int32) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxBytes, req.SessionEpoch, req.Rack = v, -1, 1<<20, -1, rack
	// Every fetch here has something to answer at once (records, an error, a preferred
	// replica): none may wait for max_wait_ms.
	req.MinBytes, req.MaxWaitMillis = 1, 20000
	if v < 15 {
		req.ReplicaID = replicaID
	}
	req.ReplicaState.ID, req.ReplicaState.Epoch = replicaID, epoch
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = rc.topic, rc.id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch = 0, 1<<20, leaderEpoch, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	vs := kversion.V4_0_0()
	vs.SetMaxKeyVersion(req.Key(), v) // the client sends the highest version it may
	start := time.Now()
	resp, err := req.RequestWith(ctxT(t), qn.client(t, kgo.MaxVersions(vs)).SeedBrokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the fetch waited %v for max_wait_ms with something to answer", d)
	}
	if resp.Version != v {
		t.Fatalf("fetch sent at v%d, want v%d", resp.Version, v)
	}
	return resp.Topics[0].Partitions[0]
}

// TestReplicationFetchErrors: who may fetch what, as Kafka answers. A broker that is not
// a replica gets NOT_LEADER_OR_FOLLOWER (UNKNOWN_LEADER_EPOCH when it names an epoch);
// a current leader epoch newer than the leader's is UNKNOWN_LEADER_EPOCH, an older one
// FENCED_LEADER_EPOCH (KIP-320); a consumer at a follower is sent to the leader
// (KIP-951); Metadata from every node names the replicas, ISR and leader epoch.
func TestReplicationFetchErrors(t *testing.T) {
	rc := startReplicated(t, "fetch-errors", nil)
	c, L, F := rc.qcluster, rc.L, rc.F
	pc := L.client(t, kgo.DefaultProduceTopic(rc.topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := pc.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	epoch := L.srv.Broker().Partition(rc.topic, 0).LeaderEpoch()
	fEpoch := c.nodes[F.id].srv.Broker().Image().Broker(F.id).Epoch
	for _, tc := range []struct {
		name        string
		qn          *qnode
		replica     int32
		leaderEpoch int32
		want        int16
	}{
		{"a replica", L, F.id, epoch, 0},
		{"not a replica", L, 99, -1, kerr.NotLeaderForPartition.Code},
		{"not a replica, naming an epoch", L, 99, epoch, kerr.UnknownLeaderEpoch.Code},
		{"a newer leader epoch", L, F.id, epoch + 1, kerr.UnknownLeaderEpoch.Code},
		{"a consumer at the leader, a newer epoch", L, -1, epoch + 1, kerr.UnknownLeaderEpoch.Code},
		{"a replica at a follower", F, F.id, -1, kerr.NotLeaderForPartition.Code},
	} {
		got := rc.fetchAs(t, tc.qn, tc.replica, fEpoch, tc.leaderEpoch)
		if got.ErrorCode != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, kerr.ErrorForCode(got.ErrorCode), kerr.ErrorForCode(tc.want))
		}
	}
	// A consumer without client metadata (before Fetch v11) at a follower is sent to the
	// leader (from v11 the follower serves it: TestReplicationFetchFromFollower).
	if got := rc.fetchV(t, F, 10, "", -1, -1, -1); got.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("a v10 consumer at a follower: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	// A follower reads up to the log end, a consumer up to the high watermark; both are
	// told the high watermark.
	if got := rc.fetchAs(t, L, F.id, fEpoch, epoch); got.ErrorCode != 0 || got.HighWatermark != 1 || len(got.RecordBatches) == 0 {
		t.Fatalf("a follower's fetch: %v, high watermark %d, %d bytes", kerr.ErrorForCode(got.ErrorCode), got.HighWatermark, len(got.RecordBatches))
	}

	// After a leader change, the old epoch is fenced. L stops: its controlled shutdown
	// moves the leadership to F, next in the ISR, and takes L out of the ISR.
	c.stop(L.id)
	c.waitReplicas("F leads", rc.topic, 0, func(ps map[int32]*partition.Partition) bool {
		return ps[F.id].Role() == partition.RoleLeader && ps[F.id].LeaderEpoch() == epoch+1
	})
	if got := rc.fetchAs(t, F, -1, -1, epoch); got.ErrorCode != kerr.FencedLeaderEpoch.Code {
		t.Fatalf("a consumer naming the old leader epoch: %v", kerr.ErrorForCode(got.ErrorCode))
	}

	// Metadata, from every node.
	for _, qn := range c.running() {
		m, err := kmsg.NewPtrMetadataRequest().RequestWith(ctxT(t), qn.client(t).SeedBrokers()[0])
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, mt := range m.Topics {
			if mt.Topic == nil || *mt.Topic != rc.topic {
				continue
			}
			found = true
			p := mt.Partitions[0]
			if p.Leader != F.id || p.LeaderEpoch != epoch+1 || len(p.Replicas) != 3 || len(p.ISR) != 2 || slices.Contains(p.ISR, L.id) {
				t.Fatalf("node %d's metadata: %+v", qn.id, p)
			}
		}
		if !found {
			t.Fatalf("node %d's metadata has no %s", qn.id, rc.topic)
		}
	}
}

// TestReplicationFetchFromFollower: KIP-392. With the rack-aware selector, the leader
// sends a consumer in F's rack to F (preferred_read_replica, no records); F serves it up
// to its high watermark; a consumer of another rack reads from the leader; franz-go
// with client.rack consumes everything.
func TestReplicationFetchFromFollower(t *testing.T) {
	rc := startReplicated(t, "closest", map[string]string{"replica.selector.class": broker.RackAwareReplicaSelector})
	c, L, F := rc.qcluster, rc.L, rc.F
	// F restarts in broker.rack r2, and joins the ISR again.
	c.stop(F.id)
	F.over["broker.rack"] = "r2"
	c.start(F.id, nil)
	c.waitAll("F's rack", func(im *metadata.Image) bool {
		b := im.Broker(F.id)
		return b != nil && b.Rack == "r2" && !b.Fenced && isrIs(rc.topic, L.id, F.id, rc.S.id)(im)
	})
	pc := L.client(t, kgo.DefaultProduceTopic(rc.topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const n = 10
	for i := 0; i < n; i++ {
		if err := pc.ProduceSync(ctxT(t), &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c.waitReplicas("F learns the high watermark", rc.topic, 0, func(ps map[int32]*partition.Partition) bool {
		return ps[F.id].HighWatermark() == n
	})
	if got := rc.fetchV(t, L, 16, "r2", -1, -1, -1); got.ErrorCode != 0 || got.PreferredReadReplica != F.id || len(got.RecordBatches) != 0 {
		t.Fatalf("a consumer in F's rack at the leader: %v, preferred %d, %d bytes", kerr.ErrorForCode(got.ErrorCode), got.PreferredReadReplica, len(got.RecordBatches))
	}
	if got := rc.fetchV(t, L, 16, "elsewhere", -1, -1, -1); got.ErrorCode != 0 || got.PreferredReadReplica != -1 || len(got.RecordBatches) == 0 {
		t.Fatalf("a consumer of another rack at the leader: %v, preferred %d, %d bytes", kerr.ErrorForCode(got.ErrorCode), got.PreferredReadReplica, len(got.RecordBatches))
	}
	got := rc.fetchV(t, F, 16, "r2", -1, -1, -1)
	if got.ErrorCode != 0 || got.HighWatermark != n || got.PreferredReadReplica != -1 {
		t.Fatalf("a consumer at F: %v, high watermark %d, preferred %d", kerr.ErrorForCode(got.ErrorCode), got.HighWatermark, got.PreferredReadReplica)
	}
	if offs, _ := recordValues(t, got.RecordBatches); len(offs) != n {
		t.Fatalf("F served %d records, want %d", len(offs), n)
	}

	cc := L.client(t, kgo.Rack("r2"), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{rc.topic: {0: kgo.NewOffset().AtStart()}}))
	var vals []string
	for len(vals) < n {
		fs := cc.PollFetches(ctxT(t))
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { vals = append(vals, string(r.Value)) })
	}
	for i, v := range vals {
		if v != fmt.Sprint(i) {
			t.Fatalf("record %d is %q", i, v)
		}
	}
}

// TestClusterMetricsPartialTopic: /metrics and DescribeLogDirs on a node that hosts some
// partitions of a topic and not others (placed on other brokers) describe the ones it
// hosts.
func TestClusterMetricsPartialTopic(t *testing.T) {
	c := startUnfenced(t, 3, nil)
	L := c.leader()
	var F *qnode
	for _, qn := range c.running() {
		if qn != L {
			F = qn
		}
	}
	const topic = "split"
	c.createAssigned(L, topic, nil, []int32{F.id}, []int32{L.id})
	c.waitReplicas("L hosts partition 1", topic, 1, func(ps map[int32]*partition.Partition) bool { return ps[L.id] != nil })
	fams := scrape(t, startHTTP(t, L.srv))
	wantSample(t, fams, 1, "kafka_server_replicamanager_leadercount")
	wantSample(t, fams, 0, "kafka_controller_kafkacontroller_offlinepartitionscount")

	// DescribeLogDirs names the hosted partition only.
	req := kmsg.NewPtrDescribeLogDirsRequest()
	resp, err := req.RequestWith(ctxT(t), L.client(t).SeedBrokers()[0])
	if err != nil {
		t.Fatalf("DescribeLogDirs: %v", err)
	}
	var got []string
	for _, d := range resp.Dirs {
		for _, dt := range d.Topics {
			for _, dp := range dt.Partitions {
				got = append(got, fmt.Sprintf("%s-%d", dt.Topic, dp.Partition))
			}
		}
	}
	if !slices.Equal(got, []string{topic + "-1"}) {
		t.Fatalf("DescribeLogDirs lists %v", got)
	}
}

// TestReplicationFollowerFetchLimit: a follower's fetch keeps to the response's
// max_bytes as a consumer's does: the first batch goes whole, whatever its size, and
// no partition after it gets more than what is left.
func TestReplicationFollowerFetchLimit(t *testing.T) {
	rc := startReplicated(t, "limit-a", nil)
	c, L, F := rc.qcluster, rc.L, rc.F
	idB := c.createAssigned(L, "limit-b", nil, []int32{rc.L.id, rc.F.id, rc.S.id})
	c.waitReplicas("limit-b is led by L", "limit-b", 0, func(ps map[int32]*partition.Partition) bool {
		return ps[L.id] != nil && ps[L.id].Role() == partition.RoleLeader
	})
	for _, topic := range []string{"limit-a", "limit-b"} {
		pc := L.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err := pc.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxBytes, req.SessionEpoch = 16, -1, 1, -1
	req.ReplicaState.ID, req.ReplicaState.Epoch = F.id, F.srv.Broker().Image().Broker(F.id).Epoch
	for _, id := range []uuid.UUID{rc.id, idB} {
		rt := kmsg.NewFetchRequestTopic()
		rt.TopicID = id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch = 1<<20, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctxT(t), L.client(t).SeedBrokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	a, b := resp.Topics[0].Partitions[0], resp.Topics[1].Partitions[0]
	if a.ErrorCode != 0 || b.ErrorCode != 0 || len(a.RecordBatches) == 0 || len(b.RecordBatches) != 0 {
		t.Fatalf("max_bytes 1: %v with %d bytes, then %v with %d bytes; want the first batch whole and nothing after it",
			kerr.ErrorForCode(a.ErrorCode), len(a.RecordBatches), kerr.ErrorForCode(b.ErrorCode), len(b.RecordBatches))
	}
}
