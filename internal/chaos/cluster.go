package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A cluster run (Config.Nodes > 1) starts every node as a combined broker and
// controller of one static KRaft quorum, with Kafka's keys: node.id,
// process.roles=broker,controller, listeners PLAINTEXT and CONTROLLER on the
// node's own loopback address, controller.listener.names,
// controller.quorum.voters naming every node, advertised.listeners. The
// ports are chosen once, before the first start, and kept across restarts.
//
// Run as root, node i runs as root with group nodeGIDBase+i, so that a
// network cut can match a node's packets by their socket's group (the
// nodes' dialers do not bind their own address: every inter-node connection
// leaves from 127.0.0.1). With the slow fault in the mix, every node's CONTROLLER
// listener is reached through a link Proxy on the node's address, named in
// the voters instead of the listener, whose delay the nemesis sets.

// nodeGIDBase + node id is the group a cluster node runs as (root only).
const nodeGIDBase = 20000

// freePort returns a port that was free on host a moment ago.
func freePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// clusterNodes configures the nodes of a cluster run (not started); proxies
// are the CONTROLLER links when withProxies, by node id.
func clusterNodes(nodes []*Node, withProxies bool) (map[int]*Proxy, error) {
	var voters []string
	ctrl := map[int]string{}
	proxies := map[int]*Proxy{}
	closeAll := func() {
		for _, p := range proxies {
			p.Close()
		}
	}
	for _, n := range nodes {
		pp, err := freePort(n.Host)
		if err != nil {
			closeAll()
			return nil, err
		}
		cp, err := freePort(n.Host)
		if err != nil {
			closeAll()
			return nil, err
		}
		n.port = pp
		ctrl[n.ID] = net.JoinHostPort(n.Host, fmt.Sprint(cp))
		voter := ctrl[n.ID]
		if withProxies {
			p, err := NewProxy(net.JoinHostPort(n.Host, "0"), ctrl[n.ID])
			if err != nil {
				closeAll()
				return nil, err
			}
			proxies[n.ID] = p
			voter = p.Addr()
		}
		voters = append(voters, fmt.Sprintf("%d@%s", n.ID, voter))
	}
	for _, n := range nodes {
		n.Listeners = fmt.Sprintf("PLAINTEXT://%s,CONTROLLER://%s", n.Addr(), ctrl[n.ID])
		n.Controller = ctrl[n.ID]
		n.Overrides = append([]string{
			fmt.Sprintf("node.id=%d", n.ID),
			"process.roles=broker,controller",
			"controller.listener.names=CONTROLLER",
			"controller.quorum.voters=" + strings.Join(voters, ","),
			"advertised.listeners=PLAINTEXT://" + n.Addr(),
		}, n.Overrides...)
		if os.Geteuid() == 0 {
			n.GID = nodeGIDBase + n.ID
		}
	}
	return proxies, nil
}

// controllerID asks each running, unpaused node in turn for Metadata and
// returns the controller the first answer names (the quorum's leader today;
// the active controller once it is wired), or -1.
func controllerID(ctx context.Context, nodes []*Node) int {
	for _, n := range nodes {
		if !n.Running() || n.Paused() {
			continue
		}
		if id, err := askController(ctx, n); err == nil && id >= 0 {
			return int(id)
		}
	}
	return -1
}

func askController(ctx context.Context, n *Node) (int32, error) {
	cl, err := kgo.NewClient(clientOpts([]string{n.Addr()})...)
	if err != nil {
		return -1, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // no topics, not all
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return -1, err
	}
	return resp.(*kmsg.MetadataResponse).ControllerID, nil
}

// brokersRegistered waits, up to wait, until Metadata from the first node
// lists every node as a broker, and returns how many it lists: topics are
// placed on registered brokers only, so a topic created before the others
// registered would live on fewer nodes than the run has (or, with a
// replication factor above the count, not be created at all).
func brokersRegistered(ctx context.Context, nodes []*Node, wait time.Duration) int {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	cl, err := kgo.NewClient(clientOpts(addrs(nodes))...)
	if err != nil {
		return 0
	}
	defer cl.Close()
	seen := 0
	for {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{}
		if resp, err := req.RequestWith(ctx, cl); err == nil {
			seen = len(resp.Brokers)
			if seen >= len(nodes) {
				return seen
			}
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return seen
		case <-t.C:
		}
	}
}

// quorumWatch asks every node's CONTROLLER listener DescribeQuorum once a
// second until ctx ends and records each new (node, epoch, leader) it
// answers as a leader claim. A node that is not the active controller
// answers NOT_CONTROLLER (as do all of them until the controller is
// wired); the election lines of the logs are claims too (logLeaderClaims).
func quorumWatch(ctx context.Context, rec *Recorder, nodes []*Node) {
	type seen struct {
		node, leader int
		epoch        int64
	}
	known := map[seen]bool{}
	cls := map[int]*kgo.Client{}
	defer func() {
		for _, cl := range cls {
			cl.Close()
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, n := range nodes {
			if n.Controller == "" {
				continue
			}
			cl := cls[n.ID]
			if cl == nil {
				var err error
				if cl, err = kgo.NewClient(clientOpts([]string{n.Controller})...); err != nil {
					continue
				}
				cls[n.ID] = cl
			}
			req := kmsg.NewPtrDescribeQuorumRequest()
			tp := kmsg.NewDescribeQuorumRequestTopic()
			tp.Topic = "__cluster_metadata"
			tp.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
			req.Topics = append(req.Topics, tp)
			rctx, cancel := context.WithTimeout(ctx, 900*time.Millisecond)
			resp, err := cl.SeedBrokers()[0].Request(rctx, req)
			cancel()
			if err != nil {
				continue
			}
			r := resp.(*kmsg.DescribeQuorumResponse)
			if r.ErrorCode != 0 || len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
				continue
			}
			p := r.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.LeaderID < 0 {
				continue
			}
			k := seen{n.ID, int(p.LeaderID), int64(p.LeaderEpoch)}
			if known[k] {
				continue
			}
			known[k] = true
			c := LeaderClaim{Node: n.ID, Leader: k.leader, Epoch: k.epoch, Time: rec.Now(), Source: "describe-quorum"}
			rec.Do(func(h *History) { h.Leaders = append(h.Leaders, c) })
		}
	}
}

// nodeDir is where a node's data, disk and ready files live.
func nodeDir(out string, id int) string { return filepath.Join(out, fmt.Sprintf("node%d", id)) }
