package server_test

// A cluster of three combined nodes in one process, formed from empty data dirs with
// Kafka's KRaft keys and no other step: the metadata quorum elects a leader, whose
// controller is active; every broker registers and is unfenced; a topic created through
// any node (forwarded to the controller, no client retry) is placed over the brokers
// with its replication factor (more than the unfenced brokers:
// INVALID_REPLICATION_FACTOR) and is in the forwarding node's image when it answers; a
// partition's non-leaders answer NOT_LEADER_OR_FOLLOWER with the leader (KIP-951);
// stopping the controller's node is a controlled shutdown (its leaderships move, it is
// fenced and no longer listed), another controller takes over, on which topic creation
// works again; the old node, restarted, catches up (from a snapshot: the log is
// compacted after every entry) and is unfenced.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
	// dial, if set, dials the controller for node id's controller channel.
	dial func(id int32) func(ctx context.Context, addr string) (net.Conn, error)
}

// startQuorumCluster starts n combined nodes forming one static quorum. Their controller
// listeners are bound first (port 0), to name them in controller.quorum.voters.
func startQuorumCluster(t *testing.T, n int, over map[string]string, opts ...func(*qcluster)) *qcluster {
	t.Helper()
	c := &qcluster{t: t, nodes: map[int32]*qnode{}}
	for _, o := range opts {
		o(c)
	}
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
	opts := broker.Options{Logger: logger}
	if c.dial != nil {
		opts.ControllerDial = c.dial(id)
	}
	srv, err := server.New(cfg, opts)
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

// createRaw sends CreateTopics to exactly this node (no client retry, no redirection to
// the controller) and returns its answer for the topic.
func (qn *qnode) createRaw(t *testing.T, name string, partitions int32, rf int16) kmsg.CreateTopicsResponseTopic {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), qn.client(t).SeedBrokers()[0])
	if err != nil || len(resp.Topics) != 1 {
		t.Fatalf("create %s through node %d: %v %+v", name, qn.id, err, resp)
	}
	return resp.Topics[0]
}

// listed returns the broker IDs this node's Metadata and DescribeCluster list, and the
// controller ID each names.
func (qn *qnode) listed(t *testing.T) (metadataIDs, clusterIDs []int32, mdController, dcController int32) {
	t.Helper()
	cl := qn.client(t).SeedBrokers()[0]
	md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range md.Brokers {
		metadataIDs = append(metadataIDs, b.NodeID)
	}
	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range dc.Brokers {
		clusterIDs = append(clusterIDs, b.NodeID)
	}
	slices.Sort(metadataIDs)
	slices.Sort(clusterIDs)
	return metadataIDs, clusterIDs, md.ControllerID, dc.ControllerID
}

// unfenced is a condition on an image: the brokers ids are registered and unfenced.
func unfenced(ids ...int32) func(*metadata.Image) bool {
	return func(im *metadata.Image) bool {
		for _, id := range ids {
			if b := im.Broker(id); b == nil || b.Fenced {
				return false
			}
		}
		return true
	}
}

func TestQuorumClusterFormsAndFailsOver(t *testing.T) {
	c := startQuorumCluster(t, 3, map[string]string{
		// Compact the metadata log after every entry, so a node that comes back catches
		// up from a snapshot.
		"metadata.log.max.record.bytes.between.snapshots": "1",
		"vltava.quorum.snapshot.catchup.entries":          "1",
		// Quick heartbeats, so that controlled shutdown (which waits for every active
		// broker to have seen its leaderships move) is quick.
		"broker.heartbeat.interval.ms": "100",
		"broker.session.timeout.ms":    "3000",
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
	// Every broker registers with the controller and is unfenced once caught up.
	c.waitAll("three unfenced brokers", unfenced(1, 2, 3))
	var followers []*qnode
	for _, qn := range c.running() {
		if qn != lead {
			followers = append(followers, qn)
		}
	}
	follower := followers[0]
	md, dc, mdc, dcc := follower.listed(t)
	if fmt.Sprint(md, dc) != "[1 2 3] [1 2 3]" || mdc != lead.id || dcc != lead.id {
		t.Fatalf("node %d lists brokers %v and %v, controller %d and %d; want all three, controller %d", follower.id, md, dc, mdc, dcc, lead.id)
	}

	// Created through a node that is not the controller, with no client retry: the
	// node forwards it, and the controller places three replicas on three brokers.
	if rt := follower.createRaw(t, "replicated", 3, 3); rt.ErrorCode != 0 || rt.NumPartitions != 3 || rt.ReplicationFactor != 3 {
		t.Fatalf("create with RF 3 through node %d: %s (%s) %d partitions RF %d", follower.id, kerr.ErrorForCode(rt.ErrorCode), msgOf(rt.ErrorMessage), rt.NumPartitions, rt.ReplicationFactor)
	}
	// Answered once this node's image has it.
	mt := follower.srv.Broker().Image().Topic("replicated")
	if mt == nil {
		t.Fatal("the forwarding node answered before its image had the topic")
	}
	for i := range mt.Partitions {
		p := &mt.Partitions[i]
		rs := slices.Clone(p.Replicas())
		slices.Sort(rs)
		if fmt.Sprint(rs) != "[1 2 3]" || len(p.ISR()) != 3 || !slices.Contains(rs, p.Leader) {
			t.Fatalf("partition %d: replicas %v ISR %v leader %d", i, p.Replicas(), p.ISR(), p.Leader)
		}
	}
	if rt := follower.createRaw(t, "too-many", 1, 4); rt.ErrorCode != kerr.InvalidReplicationFactor.Code {
		t.Fatalf("create with RF 4 on three brokers: %s, want INVALID_REPLICATION_FACTOR", kerr.ErrorForCode(rt.ErrorCode))
	}

	// A partition's non-leaders answer NOT_LEADER_OR_FOLLOWER with the leader and its
	// endpoint.
	if rt := follower.createRaw(t, "orders", 3, 1); rt.ErrorCode != 0 {
		t.Fatalf("create orders: %s", kerr.ErrorForCode(rt.ErrorCode))
	}
	c.waitAll("orders", func(im *metadata.Image) bool { return im.Topic("orders") != nil })
	pl := c.nodes[follower.srv.Broker().Image().Topic("orders").Partitions[1].Leader]
	var other *qnode
	for _, qn := range c.running() {
		if qn != pl {
			other = qn
		}
	}
	resp := other.produceRaw(t, "orders", 1)
	sp := resp.Topics[0].Partitions[0]
	if sp.ErrorCode != kerr.NotLeaderForPartition.Code || sp.CurrentLeader.LeaderID != pl.id ||
		len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != pl.id {
		t.Fatalf("produce to a non-leader: %s, current leader %+v, brokers %+v", kerr.ErrorForCode(sp.ErrorCode), sp.CurrentLeader, resp.Brokers)
	}
	// The leader serves it once it has opened it (the client retries until then).
	lc := pl.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := lc.ProduceSync(ctxT(t), &kgo.Record{Topic: "orders", Partition: 1, Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce to the leader: %v", err)
	}
	// A client bootstrapped at any node produces and consumes (Metadata leads it on),
	// and a consumer group is coordinated by the leader of its offsets partition.
	pc := follower.client(t, kgo.DefaultProduceTopic("orders"))
	if err := pc.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("through any node")}).FirstErr(); err != nil {
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

	// Stop the controller's node: a controlled shutdown moves its leaderships away and
	// fences it; another node becomes the controller, and creation works again through
	// any node.
	old := c.leader()
	c.stop(old.id)
	lead = c.leader()
	if lead == old {
		t.Fatal("the stopped node still leads")
	}
	c.waitAll("the stopped broker fenced", func(im *metadata.Image) bool { b := im.Broker(old.id); return b != nil && b.Fenced })
	im := lead.srv.Broker().Image()
	for _, name := range []string{"replicated", "orders"} {
		for i, p := range im.Topic(name).Partitions {
			if p.Leader == old.id {
				t.Fatalf("%s-%d is still led by the stopped node %d", name, i, old.id)
			}
		}
	}
	var rest []int32
	for _, qn := range c.running() {
		rest = append(rest, qn.id)
	}
	for _, qn := range c.running() {
		md, dc, mdc, dcc := qn.listed(t)
		if fmt.Sprint(md) != fmt.Sprint(rest) || fmt.Sprint(dc) != fmt.Sprint(rest) || mdc != lead.id || dcc != lead.id {
			t.Fatalf("node %d lists brokers %v and %v, controller %d and %d; want %v and controller %d (a fenced broker is not listed)",
				qn.id, md, dc, mdc, dcc, rest, lead.id)
		}
	}
	for _, qn := range c.running() {
		if rt := qn.createRaw(t, "after-failover-"+fmt.Sprint(qn.id), 2, 2); rt.ErrorCode != 0 {
			t.Fatalf("create after failover through node %d: %s (%s)", qn.id, kerr.ErrorForCode(rt.ErrorCode), msgOf(rt.ErrorMessage))
		}
	}
	if rt := lead.createRaw(t, "three-replicas", 1, 3); rt.ErrorCode != kerr.InvalidReplicationFactor.Code {
		t.Fatalf("create with RF 3 on two unfenced brokers: %s, want INVALID_REPLICATION_FACTOR", kerr.ErrorForCode(rt.ErrorCode))
	}

	// The old controller's node comes back, catches up with what it missed, and is
	// unfenced and listed again.
	c.start(old.id, nil)
	last := "after-failover-" + fmt.Sprint(rest[len(rest)-1])
	if err := old.srv.Broker().WaitImage(ctxT(t), func(im *metadata.Image) bool { return im.Topic(last) != nil }); err != nil {
		t.Fatalf("the restarted node did not catch up: %v", err)
	}
	c.waitAll("the restarted broker unfenced", unfenced(1, 2, 3))
	if md, _, _, _ := lead.listed(t); fmt.Sprint(md) != "[1 2 3]" {
		t.Fatalf("after the restart node %d lists %v", lead.id, md)
	}
	if ht := old.srv.Broker().Topic("replicated"); ht == nil || ht.Partitions[0] == nil {
		t.Fatalf("the restarted node does not host its replicas of replicated again: %+v", ht)
	}
	if _, err := os.Stat(filepath.Join(old.dir, "__cluster_metadata-0")); err != nil {
		t.Fatal(err)
	}
}

// cuttable is a connection the test can cut: once cut, reads and writes fail.
type cuttable struct {
	net.Conn
	cut *cutSwitch
}

func (c cuttable) Read(p []byte) (int, error) {
	if c.cut.on() {
		return 0, net.ErrClosed
	}
	return c.Conn.Read(p)
}

func (c cuttable) Write(p []byte) (int, error) {
	if c.cut.on() {
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

// cutSwitch cuts a node's controller channel: dials fail and open connections break.
type cutSwitch struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (s *cutSwitch) on() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cut
}

func (s *cutSwitch) set(cut bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cut = cut
	if cut {
		for _, c := range s.conns {
			c.Close()
		}
		s.conns = nil
	}
}

func (s *cutSwitch) dial(ctx context.Context, addr string) (net.Conn, error) {
	if s.on() {
		return nil, net.ErrClosed
	}
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns = append(s.conns, nc)
	return cuttable{Conn: nc, cut: s}, nil
}

// TestQuorumClusterFencesASilentBroker: a broker whose heartbeats stop reaching the
// controller (its channel cut, the process alive) is fenced once broker.session.timeout.ms
// passes: its leaderships move, and no node lists it in Metadata or DescribeCluster;
// once its heartbeats get through again it is unfenced and listed. Restarted while it
// cannot reach the controller, it serves no client until it is unfenced.
func TestQuorumClusterFencesASilentBroker(t *testing.T) {
	cuts := map[int32]*cutSwitch{1: {}, 2: {}, 3: {}}
	c := startQuorumCluster(t, 3, map[string]string{
		"broker.heartbeat.interval.ms": "100",
		"broker.session.timeout.ms":    "1000",
	}, func(c *qcluster) {
		c.dial = func(id int32) func(context.Context, string) (net.Conn, error) { return cuts[id].dial }
	})
	lead := c.leader()
	c.waitAll("three unfenced brokers", unfenced(1, 2, 3))
	var silent, other *qnode
	for _, qn := range c.running() {
		if qn != lead {
			silent, other = other, qn
		}
	}
	if rt := other.createRaw(t, "spread", 6, 2); rt.ErrorCode != 0 {
		t.Fatalf("create: %s", kerr.ErrorForCode(rt.ErrorCode))
	}
	cuts[silent.id].set(true)
	c.waitAll("the silent broker fenced", func(im *metadata.Image) bool { b := im.Broker(silent.id); return b != nil && b.Fenced })
	im := lead.srv.Broker().Image()
	for i, p := range im.Topic("spread").Partitions {
		if p.Leader == silent.id || slices.Contains(p.ISR(), silent.id) {
			t.Fatalf("spread-%d: leader %d ISR %v still has the fenced broker %d", i, p.Leader, p.ISR(), silent.id)
		}
	}
	want := []int32{lead.id, other.id}
	slices.Sort(want)
	for _, qn := range c.running() {
		if md, dc, _, _ := qn.listed(t); fmt.Sprint(md, dc) != fmt.Sprint(want, want) {
			t.Fatalf("node %d lists %v and %v, want %v (the fenced broker hidden)", qn.id, md, dc, want)
		}
	}
	cuts[silent.id].set(false)
	c.waitAll("the broker unfenced again", unfenced(1, 2, 3))
	for _, qn := range c.running() {
		if md, dc, _, _ := qn.listed(t); fmt.Sprint(md, dc) != "[1 2 3] [1 2 3]" {
			t.Fatalf("node %d lists %v and %v after the broker came back", qn.id, md, dc)
		}
	}

	// Restarted while it cannot reach the controller, the broker is not unfenced and
	// serves no client: a request waits (not refused) until it is.
	c.stop(silent.id)
	cuts[silent.id].set(true)
	c.start(silent.id, nil)
	if err := silent.srv.Ready(); err == nil || !strings.Contains(err.Error(), "not unfenced") {
		t.Fatalf("ready while the controller is unreachable: %v", err)
	}
	answered := make(chan error, 1)
	go func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(silent.srv.Addrs()[0]))
		if err != nil {
			answered <- err
			return
		}
		defer cl.Close()
		_, err = kmsg.NewPtrApiVersionsRequest().RequestWith(ctxT(t), cl.SeedBrokers()[0])
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("a fenced broker answered a client: %v", err)
	case <-silent.srv.Broker().Unfenced():
		t.Fatal("unfenced without reaching the controller")
	default:
	}
	cuts[silent.id].set(false)
	<-silent.srv.Broker().Unfenced()
	if err := <-answered; err != nil {
		t.Fatalf("the request made while fenced: %v", err)
	}
	if err := silent.srv.Ready(); err != nil {
		t.Fatalf("not ready once unfenced: %v", err)
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

// TestQuorumClusterStopsWithoutQuorum: a whole cluster stopped at once does not wait out
// broker.session.timeout.ms in each node's controlled shutdown: once the quorum has no
// leader, a node stops without it.
func TestQuorumClusterStopsWithoutQuorum(t *testing.T) {
	c := startQuorumCluster(t, 3, map[string]string{
		"broker.heartbeat.interval.ms": "100",
		"broker.session.timeout.ms":    "60000",
	})
	c.leader()
	c.waitAll("three unfenced brokers", unfenced(1, 2, 3))
	start := time.Now()
	var wg sync.WaitGroup
	for _, qn := range c.running() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.stop(qn.id)
		}()
	}
	wg.Wait()
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("stopping the whole cluster took %v: a node waited out its controlled shutdown's bound", took)
	}
}
