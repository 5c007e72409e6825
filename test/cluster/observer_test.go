package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// addBrokerOnly adds a node with process.roles=broker (no controller listener, as in
// Kafka) to c, configured with c's voters; it is not started.
func (c *testCluster) addBrokerOnly(voters string) *node {
	c.t.Helper()
	id := len(c.nodes) + 1
	nd := &node{t: c.t, id: id, dir: filepath.Join(filepath.Dir(c.nodes[0].dir), fmt.Sprintf("node-%d", id)),
		brokerPort: freePorts(c.t, 1)[0]}
	if err := os.MkdirAll(nd.dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	props := fmt.Sprintf(`# A Kafka user's KRaft broker-only properties.
node.id=%d
process.roles=broker
listeners=PLAINTEXT://%s
advertised.listeners=PLAINTEXT://%s
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.voters=%s
log.dirs=%s
vltava.http.listener=none
`, id, nd.broker(), nd.broker(), voters, nd.dataDir())
	if err := os.WriteFile(nd.props(), []byte(props), 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.nodes = append(c.nodes, nd)
	return nd
}

// TestBrokerOnlyNodeObserves: three combined nodes and one broker-only node, with a
// Kafka user's properties and no operator step. The broker-only node joins the quorum as
// an observer: it sees the topics created before and after it started, the controller
// places partitions on it, which it serves, and `vltava cluster info` lists it among the
// quorum's observers.
func TestBrokerOnlyNodeObserves(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 3, nil)
	c.startAll()
	if _, err := createTopic(ctx, c.bootstrap(), "before", 3, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	b := c.addBrokerOnly(c.voters())
	b.start()
	if _, err := c.waitTopicsEverywhere(ctx, []string{"before"}, 30*time.Second); err != nil {
		t.Fatalf("the broker-only node: %v\n%s", err, tail(b.cur().out.String(), 30))
	}
	if _, err := createTopic(ctx, []string{b.broker()}, "after", 3, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitTopicsEverywhere(ctx, []string{"before", "after"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// The controller places partitions on the broker-only node too: it leads some of a
	// topic of 8 partitions, and serves produce and consume for them.
	if _, err := createTopic(ctx, c.bootstrap(), "spread", 8, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	td, err := admin(t, c.bootstrap()...).ListTopics(ctx, "spread")
	if err != nil || td["spread"].Err != nil {
		t.Fatalf("list spread: %v %v", err, td["spread"].Err)
	}
	var mine []int32
	for _, p := range td["spread"].Partitions {
		if p.Leader == 4 {
			mine = append(mine, p.Partition)
		}
	}
	if len(mine) == 0 {
		t.Fatalf("no partition of 8 placed on the broker-only node: %+v", td["spread"].Partitions)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.bootstrap()...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"spread": {mine[0]: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	defer pcancel()
	if err := cl.ProduceSync(pctx, &kgo.Record{Topic: "spread", Partition: mine[0], Value: []byte("on-4")}).FirstErr(); err != nil {
		t.Fatalf("produce to partition %d on the broker-only node: %v", mine[0], err)
	}
	for got := false; !got; {
		fs := cl.PollFetches(pctx)
		if err := pctx.Err(); err != nil {
			t.Fatalf("consume partition %d on the broker-only node: %v", mine[0], err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = got || string(r.Value) == "on-4" })
	}

	var info struct {
		Quorum *struct {
			Voters    []struct{ ID int32 } `json:"voters"`
			Observers []struct{ ID int32 } `json:"observers"`
		} `json:"quorum"`
		QuorumError string `json:"quorum_error"`
	}
	var controllers []string
	for _, nd := range c.nodes[:3] {
		controllers = append(controllers, nd.controller())
	}
	var voters, observers []int32
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := runTool(t, "cluster", "info", "--bootstrap-controller", strings.Join(controllers, ","), "-o", "json", "--timeout", "10s")
		if err := json.Unmarshal([]byte(out), &info); err != nil {
			t.Fatalf("cluster info -o json: %v\n%s", err, out)
		}
		voters, observers = nil, nil
		if info.Quorum != nil {
			for _, v := range info.Quorum.Voters {
				voters = append(voters, v.ID)
			}
			for _, o := range info.Quorum.Observers {
				observers = append(observers, o.ID)
			}
		}
		slices.Sort(voters)
		if slices.Equal(voters, []int32{1, 2, 3}) && slices.Equal(observers, []int32{4}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster info: voters %v observers %v (quorum error %q), want voters [1 2 3] and observer 4:\n%s", voters, observers, info.QuorumError, out)
		}
	}
}
