package server_test

// A cluster of three combined nodes in one process, formed from empty data dirs with
// Kafka's KRaft keys and no other step: the metadata quorum elects a leader, a topic
// created through any node (clients send it to the controller Metadata names, the
// quorum's leader) appears in every node's image and is hosted where the image places
// it; a partition's non-leaders answer NOT_LEADER_OR_FOLLOWER with the leader (KIP-951);
// losing the leader elects another, on which topic creation works again; the old
// leader, restarted, catches up (from a snapshot: the log is compacted after every
// entry).

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/metaprops"
	"github.com/vltava/vltava/internal/server"
	"github.com/vltava/vltava/internal/vfs"
)

// qnode is one node of an in-process quorum.
type qnode struct {
	id   int32
	dir  string
	ctrl string // its controller listener's address
	over map[string]string
	srv  *server.Server
}

type qcluster struct {
	t     *testing.T
	nodes map[int32]*qnode
}

// startQuorumCluster starts n combined nodes forming one static quorum. Their controller
// listeners are bound first (port 0), to name them in controller.quorum.voters.
func startQuorumCluster(t *testing.T, n int, over map[string]string) *qcluster {
	t.Helper()
	c := &qcluster{t: t, nodes: map[int32]*qnode{}}
	var voters []string
	lns := map[int32]net.Listener{}
	for id := int32(1); id <= int32(n); id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[id] = ln
		c.nodes[id] = &qnode{id: id, dir: t.TempDir(), ctrl: ln.Addr().String(), over: over}
		voters = append(voters, fmt.Sprintf("%d@%s", id, ln.Addr()))
	}
	for id, qn := range c.nodes {
		qn.over = map[string]string{"controller.quorum.voters": strings.Join(voters, ",")}
		for k, v := range over {
			qn.over[k] = v
		}
		c.start(id, lns[id])
	}
	t.Cleanup(func() {
		for id := range c.nodes {
			c.stop(id)
		}
	})
	return c
}

// start starts node id; ln, if not nil, is its controller listener, bound already.
func (c *qcluster) start(id int32, ln net.Listener) {
	c.t.Helper()
	qn := c.nodes[id]
	ov := map[string]string{
		"node.id":                   fmt.Sprint(id),
		"log.dirs":                  qn.dir,
		"listeners":                 "PLAINTEXT://127.0.0.1:0,CONTROLLER://" + qn.ctrl,
		"controller.listener.names": "CONTROLLER",
		// A quick quorum: a lost leader is noticed within 0.5 to 1 s.
		"controller.quorum.election.timeout.ms": "500",
		"controller.quorum.fetch.timeout.ms":    "1000",
		"group.initial.rebalance.delay.ms":      "0",
	}
	for k, v := range qn.over {
		ov[k] = v
	}
	cfg, err := config.Load("", nil, ov)
	if err != nil {
		c.t.Fatalf("config of node %d: %v", id, err)
	}
	var out io.Writer = io.Discard
	if os.Getenv("VLTAVA_TEST_LOG") != "" {
		out = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test_node", id)
	srv, err := server.New(cfg, broker.Options{Logger: logger})
	if err != nil {
		c.t.Fatalf("node %d: %v", id, err)
	}
	if ln != nil {
		srv.UseListener(qn.ctrl, ln)
	}
	if err := srv.Start(); err != nil {
		c.t.Fatalf("start node %d: %v", id, err)
	}
	qn.srv = srv
}

func (c *qcluster) stop(id int32) {
	if qn := c.nodes[id]; qn.srv != nil {
		if err := qn.srv.Close(); err != nil {
			c.t.Errorf("close node %d: %v", id, err)
		}
		qn.srv = nil
	}
}

func (c *qcluster) running() []*qnode {
	var out []*qnode
	for id := int32(1); id <= int32(len(c.nodes)); id++ {
		if qn := c.nodes[id]; qn.srv != nil {
			out = append(out, qn)
		}
	}
	return out
}

// leader waits until every running node knows the same quorum leader, one of them and
// registered as a broker in its own image, and returns it.
func (c *qcluster) leader() *qnode {
	c.t.Helper()
	ctx := ctxT(c.t)
	for {
		var lead uint64
		agree := true
		var changes []<-chan struct{}
		for _, qn := range c.running() {
			l, ch := qn.srv.Broker().Quorum().Leader()
			changes = append(changes, ch)
			if lead == 0 {
				lead = l.LeaderID
			}
			agree = agree && l.LeaderID == lead
		}
		if qn := c.nodes[int32(lead)]; agree && lead != 0 && qn != nil && qn.srv != nil {
			// The leader registers itself once it leads (its own record).
			if err := qn.srv.Broker().WaitImage(ctx, func(im *metadata.Image) bool { return im.Broker(qn.id) != nil }); err != nil {
				c.t.Fatalf("the leader, node %d, did not register: %v", lead, err)
			}
			return qn
		}
		select {
		case <-changes[0]:
		case <-ctx.Done():
			c.t.Fatal("no leader that every node agrees on")
		case <-time.After(50 * time.Millisecond): // another node's view may change first
		}
	}
}

// waitAll waits until cond holds of every running node's image.
func (c *qcluster) waitAll(what string, cond func(*metadata.Image) bool) {
	c.t.Helper()
	for _, qn := range c.running() {
		if err := qn.srv.Broker().WaitImage(ctxT(c.t), cond); err != nil {
			c.t.Fatalf("node %d: %s: %v", qn.id, what, err)
		}
	}
}

func (qn *qnode) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(qn.srv.Addrs()[0])}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceRaw produces one record to partition p of topic on exactly this node.
func (qn *qnode) produceRaw(t *testing.T, topic string, p int32) *kmsg.ProduceResponse {
	t.Helper()
	cl := qn.client(t)
	req := kmsg.NewPtrProduceRequest()
	req.Version = 11
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = p
	b, err := batch.Build(batch.BuildOptions{}, []batch.Record{{Value: []byte("v"), Timestamp: time.Now().UnixMilli()}})
	if err != nil {
		t.Fatal(err)
	}
	rp.Records = b
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl.SeedBrokers()[0])
	if err != nil {
		t.Fatalf("produce to node %d: %v", qn.id, err)
	}
	return resp
}

func TestQuorumClusterFormsAndFailsOver(t *testing.T) {
	c := startQuorumCluster(t, 3, map[string]string{
		// Compact the metadata log after every entry, so a node that comes back catches
		// up from a snapshot.
		"metadata.log.max.record.bytes.between.snapshots": "1",
		"vltava.quorum.snapshot.catchup.entries":          "1",
	})

	// One cluster ID, agreed without talking, in every data dir.
	ids := map[string]bool{}
	for _, qn := range c.nodes {
		p, err := metaprops.Read(vfs.OS(), qn.dir)
		if err != nil || p.NodeID != qn.id || p.DirectoryID == "" {
			t.Fatalf("node %d: meta.properties %+v %v", qn.id, p, err)
		}
		ids[p.ClusterID] = true
		if qn.srv.Broker().ClusterID() != p.ClusterID {
			t.Fatalf("node %d: cluster ID %s, meta.properties %s", qn.id, qn.srv.Broker().ClusterID(), p.ClusterID)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("cluster IDs %v", ids)
	}

	lead := c.leader()
	var follower *qnode
	for _, qn := range c.running() {
		if qn != lead {
			follower = qn
		}
	}
	// Created through a follower: the client sends it to the controller Metadata names.
	adm := kadm.NewClient(follower.client(t))
	if resp, err := adm.CreateTopic(ctxT(t), 3, 1, nil, "orders"); err != nil || resp.Err != nil {
		t.Fatalf("create orders: %v %v", err, resp.Err)
	}
	c.waitAll("orders", func(im *metadata.Image) bool { return im.Topic("orders") != nil })
	for _, qn := range c.running() {
		ht := qn.srv.Broker().Topic("orders")
		if qn == lead && (ht == nil || len(ht.Partitions) != 3 || ht.Partitions[0] == nil || ht.Partitions[2] == nil) {
			t.Fatalf("the leader does not host orders: %+v", ht)
		}
		if qn != lead && ht != nil {
			t.Fatalf("node %d hosts orders, placed on node %d", qn.id, lead.id)
		}
	}

	// A follower answers NOT_LEADER_OR_FOLLOWER with the leader and its endpoint.
	resp := follower.produceRaw(t, "orders", 1)
	sp := resp.Topics[0].Partitions[0]
	if sp.ErrorCode != kerr.NotLeaderForPartition.Code || sp.CurrentLeader.LeaderID != lead.id ||
		len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != lead.id {
		t.Fatalf("produce to a follower: %s, current leader %+v, brokers %+v", kerr.ErrorForCode(sp.ErrorCode), sp.CurrentLeader, resp.Brokers)
	}
	if resp := lead.produceRaw(t, "orders", 1); resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce to the leader: %v", kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode))
	}
	// A client bootstrapped at a follower produces and consumes (Metadata leads it on),
	// and a consumer group is coordinated by the leader of its offsets partition.
	pc := follower.client(t, kgo.DefaultProduceTopic("orders"))
	if err := pc.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("through a follower")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cc := follower.client(t, kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("g"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < 2 {
		fs := cc.PollFetches(ctxT(t))
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	if err := cc.CommitUncommittedOffsets(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	cc.Close() // leaves the group while its coordinator is up

	// Lose the leader: another is elected, and creates topics.
	old := lead
	c.stop(old.id)
	lead = c.leader()
	if lead == old {
		t.Fatal("the stopped node still leads")
	}
	if resp, err := kadm.NewClient(lead.client(t)).CreateTopic(ctxT(t), 2, 1, nil, "after-failover"); err != nil || resp.Err != nil {
		t.Fatalf("create after failover: %v %v", err, resp.Err)
	}
	c.waitAll("after-failover", func(im *metadata.Image) bool { return im.Topic("after-failover") != nil })
	if ht := lead.srv.Broker().Topic("after-failover"); ht == nil || ht.Partitions[1] == nil {
		t.Fatalf("the new leader does not host its topic: %+v", ht)
	}

	// The old leader comes back and catches up with what it missed.
	c.start(old.id, nil)
	if err := old.srv.Broker().WaitImage(ctxT(t), func(im *metadata.Image) bool { return im.Topic("after-failover") != nil }); err != nil {
		t.Fatalf("the restarted node did not catch up: %v", err)
	}
	if ht := old.srv.Broker().Topic("orders"); ht == nil || ht.Partitions[0] == nil {
		t.Fatalf("the restarted node does not host its partitions of orders again: %+v", ht)
	}
	if _, err := os.Stat(filepath.Join(old.dir, "__cluster_metadata-0")); err != nil {
		t.Fatal(err)
	}
}

// TestQuorumClusterRefusesAnotherClustersDir: a node whose data dir holds another
// cluster's meta.properties refuses to start, naming the dir and both clusters.
func TestQuorumClusterRefusesAnotherClustersDir(t *testing.T) {
	dir := t.TempDir()
	if err := metaprops.Write(vfs.OS(), dir, metaprops.Props{ClusterID: "someOtherCluster000000", NodeID: 1, DirectoryID: metaprops.RandomUUID()}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("", nil, map[string]string{"log.dirs": dir, "listeners": "PLAINTEXT://127.0.0.1:0",
		"cluster.id": "thisCluster00000000000"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = server.New(cfg, broker.Options{Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "belongs to cluster someOtherCluster000000") ||
		!strings.Contains(err.Error(), "thisCluster00000000000") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("start on another cluster's dir: %v", err)
	}
}
