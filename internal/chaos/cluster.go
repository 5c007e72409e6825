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
// Run as root, node i runs as user nodeUIDBase+i, so that a network cut can
// match a node's packets by their socket's owner (the nodes' dialers do not
// bind their own address: every inter-node connection leaves from
// 127.0.0.1). With the slow fault in the mix, every node's CONTROLLER
// listener is reached through a link Proxy on the node's address, named in
// the voters instead of the listener, whose delay the nemesis sets.

// nodeUIDBase + node id is the user a cluster node runs as (root only).
const nodeUIDBase = 20000

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
		n.Overrides = append([]string{
			fmt.Sprintf("node.id=%d", n.ID),
			"process.roles=broker,controller",
			"controller.listener.names=CONTROLLER",
			"controller.quorum.voters=" + strings.Join(voters, ","),
			"advertised.listeners=PLAINTEXT://" + n.Addr(),
		}, n.Overrides...)
		if os.Geteuid() == 0 {
			n.UID = nodeUIDBase + n.ID
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

// nodeDir is where a node's data, disk and ready files live.
func nodeDir(out string, id int) string { return filepath.Join(out, fmt.Sprintf("node%d", id)) }
