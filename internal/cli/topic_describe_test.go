package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/server"
)

// testCluster is n in-process Vltava nodes (combined broker and controller) forming one
// quorum on loopback, for what only a cluster shows (replicas, ISR, a broker down).
type testCluster struct {
	t     *testing.T
	nodes map[int32]*server.Server
}

func startTestCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	c := &testCluster{t: t, nodes: map[int32]*server.Server{}}
	lns := map[int32]net.Listener{}
	var voters []string
	for id := int32(1); id <= int32(n); id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[id] = ln
		voters = append(voters, fmt.Sprintf("%d@%s", id, ln.Addr()))
	}
	for id := int32(1); id <= int32(n); id++ {
		ctrl, dir := lns[id].Addr().String(), t.TempDir()
		cfg, err := config.Load("", nil, map[string]string{
			"node.id":                   fmt.Sprint(id),
			"log.dirs":                  dir,
			"listeners":                 "PLAINTEXT://127.0.0.1:0,CONTROLLER://" + ctrl,
			"controller.listener.names": "CONTROLLER",
			"controller.quorum.voters":  strings.Join(voters, ","),
			// Quick enough, and slow enough that a busy machine does not fence a
			// broker (which would take it out of the ISRs) or move the quorum.
			"controller.quorum.election.timeout.ms": "1000",
			"controller.quorum.fetch.timeout.ms":    "2000",
			"broker.heartbeat.interval.ms":          "200",
			"broker.session.timeout.ms":             "15000",
			"replica.fetch.wait.max.ms":             "100",
		})
		if err != nil {
			t.Fatalf("config of node %d: %v", id, err)
		}
		srv, err := server.New(cfg, broker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatalf("node %d: %v", id, err)
		}
		srv.UseListener(ctrl, lns[id])
		c.nodes[id] = srv
		// Registered after its data dir's: closed before the dir is removed.
		t.Cleanup(func() { c.stop(id) })
		if err := srv.Start(); err != nil {
			t.Fatalf("start node %d: %v", id, err)
		}
	}
	c.waitAll("every broker is unfenced", func(im *metadata.Image) bool {
		for id := range c.nodes {
			if b := im.Broker(id); b == nil || b.Fenced {
				return false
			}
		}
		return true
	})
	return c
}

func (c *testCluster) stop(id int32) {
	if srv := c.nodes[id]; srv != nil {
		if err := srv.Close(); err != nil {
			c.t.Errorf("close node %d: %v", id, err)
		}
		delete(c.nodes, id)
	}
}

// waitAll waits until cond holds of every running node's metadata image.
func (c *testCluster) waitAll(what string, cond func(*metadata.Image) bool) {
	c.t.Helper()
	for id, srv := range c.nodes {
		if err := srv.Broker().WaitImage(c.t.Context(), cond); err != nil {
			c.t.Fatalf("node %d: %s: %v", id, what, err)
		}
	}
}

// addrs is the running nodes' client listeners, for --brokers.
func (c *testCluster) addrs() string {
	var out []string
	for _, srv := range c.nodes {
		out = append(out, srv.Addrs()[0])
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// create makes topic with one partition per replica list, and configs.
func (c *testCluster) create(topic string, configs map[string]string, assignment ...[]int32) {
	c.t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for i, rs := range assignment {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(i), rs
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	for k, v := range configs {
		cf := kmsg.NewCreateTopicsRequestTopicConfig()
		cf.Name, cf.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, cf)
	}
	req.Topics = append(req.Topics, rt)
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(c.addrs(), ",")...))
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	resp, err := req.RequestWith(c.t.Context(), cl)
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		c.t.Fatalf("create %s: %v %+v", topic, err, resp)
	}
	c.waitAll("the topic is created", func(im *metadata.Image) bool { return im.Topic(topic) != nil })
	// Until its leader has opened a partition, Metadata says LEADER_NOT_AVAILABLE.
	for id, srv := range c.nodes {
		for {
			im := srv.Broker().Image()
			t := im.Topic(topic)
			led := true
			for i := range t.Partitions {
				led = led && t.Partitions[i].Leader >= 0 && !c.nodes[t.Partitions[i].Leader].Broker().LeadsUnopened(im, topic, int32(i))
			}
			if led {
				break
			}
			select {
			case <-c.t.Context().Done():
				c.t.Fatalf("node %d: %s is not led", id, topic)
			case <-time.After(10 * time.Millisecond): // opening has no signal to wait on
			}
		}
	}
}

// describedPartitions returns "topic-partition" of each partition line topic describe
// printed, and whether it printed anything else.
func describedPartitions(out string) (parts []string, other []string) {
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "Topic:" && f[2] == "Partition:" {
			parts = append(parts, f[1]+"-"+f[3])
		} else if line != "" {
			other = append(other, line)
		}
	}
	slices.Sort(parts)
	return parts, other
}

// TestTopicDescribeFilters: kafka-topics.sh's partition filters, with its meanings, on a
// three-node cluster with one broker down (a controlled shutdown): X, the stopped node,
// is not the quorum's leader; rf3 has all three replicas and min.insync.replicas=2, solo
// one replica on X, pair two on the others and min.insync.replicas=2.
func TestTopicDescribeFilters(t *testing.T) {
	c := startTestCluster(t, 3)
	lead, _ := c.nodes[1].Broker().Quorum().Leader()
	var x int32
	var others []int32
	for id := int32(1); id <= 3; id++ {
		if uint64(id) != lead.LeaderID && x == 0 {
			x = id
		} else {
			others = append(others, id)
		}
	}
	c.create("rf3", map[string]string{"min.insync.replicas": "2"}, []int32{1, 2, 3})
	c.create("solo", nil, []int32{x})
	c.create("pair", map[string]string{"min.insync.replicas": "2"}, others)
	brokers := c.addrs()
	describe := func(args ...string) []string {
		t.Helper()
		out := must(t, brokers, "", "topic", append([]string{"describe", "rf3", "solo", "pair"}, args...)...)
		parts, other := describedPartitions(out)
		t.Logf("describe %v:\n%s", args, out)
		if len(args) > 0 && len(other) > 0 {
			t.Errorf("describe %v printed more than partitions: %q", args, other)
		}
		return parts
	}
	want := func(got []string, want ...string) {
		t.Helper()
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("partitions %q, want %q", got, want)
		}
	}
	want(describe(), "pair-0", "rf3-0", "solo-0")
	want(describe("--under-replicated-partitions"))
	want(describe("--unavailable-partitions"))
	want(describe("--under-min-isr-partitions"))
	// An ISR of exactly min.insync.replicas matches, healthy or not (solo: 1 of 1).
	want(describe("--at-min-isr-partitions"), "pair-0", "solo-0")

	c.stop(x)
	c.waitAll("X is fenced and out of rf3's ISR", func(im *metadata.Image) bool {
		b := im.Broker(x)
		return (b == nil || b.Fenced) && !slices.Contains(im.Topic("rf3").Partition(0).ISR(), x)
	})
	brokers = c.addrs()
	// solo's last ISR member left its ISR for its ELR (KIP-966, as a Kafka 4.1+ cluster
	// does). Its last known ELR is whatever the controller recorded.
	soloLastKnown := elrIDs(c.nodes[others[0]].Broker().Image().Topic("solo").Partition(0).LastKnownELR(), true)
	// DescribeTopicPartitions over the wire, raw, through a franz-go client: the
	// partitions as Metadata gives them, with their ELR.
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	for _, name := range []string{"solo", "rf3", "pair"} {
		rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
		rt.Topic = name
		req.Topics = append(req.Topics, rt)
	}
	dtp, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rt := range dtp.Topics {
		for _, p := range rt.Partitions {
			got = append(got, fmt.Sprintf("%s-%d error %d leader %d replicas %v isr %v elr %v last known %s offline %v", *rt.Topic, p.Partition,
				p.ErrorCode, p.LeaderID, p.Replicas, p.ISR, p.EligibleLeaderReplicas, elrIDs(p.LastKnownELR, true), p.OfflineReplicas))
		}
	}
	wantDTP := []string{
		fmt.Sprintf("pair-0 error 0 leader %[2]d replicas [%[2]d %[3]d] isr [%[2]d %[3]d] elr [] last known  offline []", x, others[0], others[1]),
		fmt.Sprintf("rf3-0 error 0 leader %[2]d replicas [1 2 3] isr [%[2]d %[3]d] elr [] last known  offline [%[1]d]", x, others[0], others[1]),
		fmt.Sprintf("solo-0 error 0 leader -1 replicas [%[1]d] isr [] elr [%[1]d] last known %[2]s offline [%[1]d]", x, soloLastKnown),
	}
	if !slices.Equal(got, wantDTP) || dtp.NextCursor != nil {
		t.Errorf("DescribeTopicPartitions:\n%s\nwant\n%s\nnext cursor %+v", strings.Join(got, "\n"), strings.Join(wantDTP, "\n"), dtp.NextCursor)
	}
	// Leader, replicas, ISR and offline replicas, as Metadata gives them, and the ELR
	// columns of kafka-topics.sh 4.x, as DescribeTopicPartitions gives them.
	out := must(t, brokers, "", "topic", "describe", "rf3", "solo", "pair")
	for _, line := range []string{
		"\tTopic: rf3\tPartition: 0\tLeader: %[2]d\tReplicas: 1,2,3\tIsr: %[2]d,%[3]d\tElr: \tLastKnownElr: \tOffline: %[1]d\n",
		"\tTopic: solo\tPartition: 0\tLeader: none\tReplicas: %[1]d\tIsr: (none)\tElr: %[1]d\tLastKnownElr: %[4]s\tOffline: %[1]d\tError: LEADER_NOT_AVAILABLE",
		"\tTopic: pair\tPartition: 0\tLeader: %[2]d\tReplicas: %[2]d,%[3]d\tIsr: %[2]d,%[3]d\tElr: \tLastKnownElr: \n",
	} {
		if l := fmt.Sprintf(line, x, others[0], others[1], soloLastKnown); !strings.Contains(out, l) {
			t.Errorf("describe with node %d down lacks %q:\n%s", x, l, out)
		}
	}
	// An empty ISR is under-replicated and under min ISR.
	want(describe("--under-replicated-partitions"), "rf3-0", "solo-0")
	want(describe("--unavailable-partitions"), "solo-0")
	want(describe("--under-min-isr-partitions"), "solo-0")
	want(describe("--at-min-isr-partitions"), "pair-0", "rf3-0")
	// JSON: the matching topics with the matching partitions.
	var js []jsonTopic
	if err := json.Unmarshal([]byte(must(t, brokers, "", "topic", "describe", "rf3", "solo", "pair", "-o", "json", "--unavailable-partitions")), &js); err != nil {
		t.Fatal(err)
	}
	if len(js) != 1 || js[0].Name != "solo" || len(js[0].Partitions) != 1 || js[0].Partitions[0].Leader != -1 {
		t.Fatalf("json with --unavailable-partitions: %+v", js)
	}
	if jp := js[0].Partitions[0]; jp.ELR == nil || !slices.Equal(*jp.ELR, []int32{x}) || jp.LastKnownELR == nil || elrIDs(*jp.LastKnownELR, true) != soloLastKnown {
		t.Fatalf("json ELR %v, last known %v; want [%d] and %s", jp.ELR, jp.LastKnownELR, x, soloLastKnown)
	}
	// Filters add up.
	want(describe("--under-replicated-partitions", "--unavailable-partitions"), "rf3-0", "solo-0")
}

// TestTopicDescribeProducers: --producers lists each partition's idempotent producers
// from its leader (DescribeProducers), in text and JSON.
func TestTopicDescribeProducers(t *testing.T) {
	brokers := vltavaBroker(t, nil)
	topic := createTopic(t, brokers, 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ts := time.Now().UnixMilli()
	for i := range 3 {
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Value: []byte("v"), Timestamp: time.UnixMilli(ts + int64(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	id, epoch, err := cl.ProducerID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := must(t, brokers, "", "topic", "describe", topic, "--producers")
	_, rest, ok := strings.Cut(out, "Producers of topic "+topic+":\n")
	lines := strings.Split(strings.TrimRight(rest, "\n"), "\n")
	want := []string{"0", fmt.Sprint(id), fmt.Sprint(epoch), "2", fmt.Sprint(ts + 2), "-1", "-1"}
	if !ok || len(lines) != 2 || strings.Fields(lines[0])[0] != "Partition" || !slices.Equal(strings.Fields(lines[1]), want) {
		t.Fatalf("describe --producers printed:\n%s\nwant one producer row %q", out, want)
	}
	var js []jsonTopic
	if err := json.Unmarshal([]byte(must(t, brokers, "", "topic", "describe", topic, "--producers", "-o", "json")), &js); err != nil {
		t.Fatal(err)
	}
	wantJSON := []jsonProducer{{ProducerID: id, ProducerEpoch: epoch, LastSequence: 2, LastTimestamp: ts + 2, CoordinatorEpoch: -1, CurrentTxnStartOffset: -1}}
	if len(js) != 1 || len(js[0].Partitions) != 2 || !slices.Equal(js[0].Partitions[0].Producers, wantJSON) ||
		len(js[0].Partitions[1].Producers) != 0 || js[0].Partitions[1].ProducersError != "" {
		t.Fatalf("describe --producers -o json: %+v", js)
	}
}

// TestTopicDescribeWithoutDescribeTopicPartitions: a cluster whose ApiVersions leaves
// DescribeTopicPartitions out (a Kafka 3.7 kfake) gets the output it got before the ELR
// columns: no Elr or LastKnownElr column, no elr in JSON, and no error. One that serves
// it (Vltava) gets both, empty for a healthy partition.
func TestTopicDescribeWithoutDescribeTopicPartitions(t *testing.T) {
	old, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.MaxVersions(kversion.V3_7_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	for _, tc := range []struct {
		name    string
		brokers string
		elr     bool
	}{{"kafka 3.7", old.ListenAddrs()[0], false}, {"vltava", vltavaBroker(t, nil), true}} {
		topic := createTopic(t, tc.brokers, 1)
		out := must(t, tc.brokers, "", "topic", "describe", topic)
		if strings.Contains(out, "Elr") != tc.elr || tc.elr && !strings.Contains(out, "\tIsr: 1\tElr: \tLastKnownElr: \n") {
			t.Errorf("%s: describe printed\n%s", tc.name, out)
		}
		raw := must(t, tc.brokers, "", "topic", "describe", topic, "-o", "json")
		var js []jsonTopic
		if err := json.Unmarshal([]byte(raw), &js); err != nil || len(js) != 1 || len(js[0].Partitions) != 1 {
			t.Fatalf("%s: json %s: %v", tc.name, raw, err)
		}
		jp := js[0].Partitions[0]
		if strings.Contains(raw, `"elr"`) != tc.elr || tc.elr && (jp.ELR == nil || len(*jp.ELR) != 0 || jp.LastKnownELR == nil || len(*jp.LastKnownELR) != 0) {
			t.Errorf("%s: json %s", tc.name, raw)
		}
	}
}
