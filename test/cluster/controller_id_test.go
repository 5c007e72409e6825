package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// dedicatedController returns a testCluster whose node 1 is a controller only
// (process.roles=controller), the only voter, with nodes 2 and 3 brokers only: the
// layout of a production Kafka cluster with dedicated controllers. Nothing is started.
func dedicatedController(t *testing.T) *testCluster {
	t.Helper()
	c := &testCluster{t: t}
	ctrl := &node{t: t, id: 1, dir: filepath.Join(t.TempDir(), "node-1"), controllPort: freePorts(t, 1)[0]}
	if err := os.MkdirAll(ctrl.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	voters := fmt.Sprintf("1@%s", ctrl.controller())
	props := fmt.Sprintf(`# A Kafka user's KRaft controller-only properties.
node.id=1
process.roles=controller
listeners=CONTROLLER://%s
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT
controller.quorum.voters=%s
log.dirs=%s
vltava.http.listener=none
`, ctrl.controller(), voters, ctrl.dataDir())
	if err := os.WriteFile(ctrl.props(), []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	c.nodes = append(c.nodes, ctrl)
	t.Cleanup(func() {
		c.stopAll()
		if t.Failed() {
			for _, nd := range c.nodes {
				for i, r := range nd.runs {
					t.Logf("node %d run %d (pid %d) output:\n%s", nd.id, i+1, r.pid(), tail(r.out.String(), 60))
				}
			}
		}
	})
	c.addBrokerOnly(voters)
	c.addBrokerOnly(voters)
	return c
}

// startController runs a controller-only node and waits until its controller listener
// accepts.
func (nd *node) startController() {
	nd.t.Helper()
	p := launch(nd.t, bin, "server", "--config", nd.props())
	nd.runs = append(nd.runs, p)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p.done() {
			nd.t.Fatalf("controller %d exited at start: %v\n%s", nd.id, p.err, tail(p.out.String(), 30))
		}
		if conn, err := net.DialTimeout("tcp", nd.controller(), time.Second); err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			nd.t.Fatalf("controller %d does not listen on %s after 30s", nd.id, nd.controller())
		}
		select {
		case <-p.exited:
		case <-time.After(20 * time.Millisecond): // a refused dial returns at once
		}
	}
}

// clusterView is what one broker's Metadata and DescribeCluster say.
type clusterView struct {
	metadataBrokers, clusterBrokers []int32
	metadataController              int32
	clusterController               int32
}

func viewOf(ctx context.Context, nd *node) (clusterView, error) {
	var v clusterView
	cl, err := kgo.NewClient(kgo.SeedBrokers(nd.broker()), kgo.RequestRetries(0), kgo.DialTimeout(time.Second))
	if err != nil {
		return v, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	b := cl.SeedBrokers()[0]
	md, err := b.RetriableRequest(ctx, kmsgMetadataAll())
	if err != nil {
		return v, err
	}
	for _, br := range md.(*kmsg.MetadataResponse).Brokers {
		v.metadataBrokers = append(v.metadataBrokers, br.NodeID)
	}
	v.metadataController = md.(*kmsg.MetadataResponse).ControllerID
	dc, err := b.RetriableRequest(ctx, kmsg.NewPtrDescribeClusterRequest())
	if err != nil {
		return v, err
	}
	for _, br := range dc.(*kmsg.DescribeClusterResponse).Brokers {
		v.clusterBrokers = append(v.clusterBrokers, br.NodeID)
	}
	v.clusterController = dc.(*kmsg.DescribeClusterResponse).ControllerID
	slices.Sort(v.metadataBrokers)
	slices.Sort(v.clusterBrokers)
	return v, nil
}

// TestControllerIDWithDedicatedController: when the active controller is a
// controller-only node, which clients cannot reach, Metadata and DescribeCluster name an
// alive broker as the controller, as Kafka's KRaft brokers do (any broker forwards what
// the controller must do), instead of -1, which clients take for "no controller" and
// retry on.
func TestControllerIDWithDedicatedController(t *testing.T) {
	ctx := context.Background()
	c := dedicatedController(t)
	c.nodes[0].startController()
	c.nodes[1].start()
	c.nodes[2].start()
	for _, nd := range c.nodes[1:] {
		var v clusterView
		var err error
		deadline := time.Now().Add(30 * time.Second)
		for {
			v, err = viewOf(ctx, nd)
			if err == nil && fmt.Sprint(v.metadataBrokers, v.clusterBrokers) == "[2 3] [2 3]" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d after 30s: %+v %v, want brokers 2 and 3", nd.id, v, err)
			}
			time.Sleep(20 * time.Millisecond) // polling another process
		}
		for what, id := range map[string]int32{"Metadata": v.metadataController, "DescribeCluster": v.clusterController} {
			if id != 2 && id != 3 {
				t.Errorf("node %d: %s names controller %d; want an alive broker (2 or 3), as Kafka's brokers answer when the active controller is not a broker", nd.id, what, id)
			}
		}
	}
	// franz-go sends CreateTopics to the node named the controller: it works through it.
	if _, err := createTopic(ctx, []string{c.nodes[1].broker(), c.nodes[2].broker()}, "through-the-named-controller", 2, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestClusterInfoShowsFencedBroker: a broker killed with SIGKILL is fenced once its
// session times out; `vltava cluster info` lists it as fenced (DescribeCluster v2 with
// IncludeFencedBrokers, KIP-1073) and the others as not fenced, while Metadata keeps
// hiding it from clients.
func TestClusterInfoShowsFencedBroker(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 3, map[string]string{"broker.heartbeat.interval.ms": "200", "broker.session.timeout.ms": "1500"})
	c.startAll()
	waitBrokers(ctx, t, c, 3)
	c.nodes[2].kill9()
	type info struct {
		Brokers []struct {
			ID     int32 `json:"id"`
			Fenced *bool `json:"fenced"`
		} `json:"brokers"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := runTool(t, "cluster", "info", "--bootstrap-server", c.nodes[0].broker(), "-o", "json", "--timeout", "10s")
		var in info
		if err := json.Unmarshal([]byte(out), &in); err != nil {
			t.Fatalf("cluster info -o json: %v\n%s", err, out)
		}
		got := map[int32]string{}
		for _, b := range in.Brokers {
			got[b.ID] = "?"
			if b.Fenced != nil {
				got[b.ID] = fmt.Sprint(*b.Fenced)
			}
		}
		if fmt.Sprint(got) == "map[1:false 2:false 3:true]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster info after 30s lists brokers (id:fenced) %v, want map[1:false 2:false 3:true]:\n%s", got, out)
		}
		time.Sleep(50 * time.Millisecond) // polling the cluster
	}
	v, err := viewOf(ctx, c.nodes[0])
	if err != nil || fmt.Sprint(v.metadataBrokers, v.clusterBrokers) != "[1 2] [1 2]" {
		t.Fatalf("Metadata and DescribeCluster (without IncludeFencedBrokers) list %+v %v, want [1 2] (the fenced broker hidden)", v, err)
	}
}
