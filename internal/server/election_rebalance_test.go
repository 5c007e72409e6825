package server_test

// Leader elections across three in-process nodes: a broker that stopped and came back
// gets the leaderships it is the preferred replica of, by the controller's leader
// rebalance (auto.leader.rebalance.enable) or by ElectLeaders from a client.

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/partition"
)

// startRestarted starts three nodes with over, creates a topic of three partitions whose
// preferred replicas are 1, 2 and 3, stops the node other than the quorum's leader that
// is preferred for partition p, and starts it again: it returns the cluster, the topic,
// p and the restarted node once that node is back in p's ISR, not leading it.
func startRestarted(t *testing.T, over map[string]string) (*qcluster, string, int32, *qnode) {
	t.Helper()
	c := startUnfenced(t, 3, over)
	lead := c.leader()
	topic := "elect"
	c.createAssigned(lead, topic, nil, []int32{1, 2, 3}, []int32{2, 3, 1}, []int32{3, 1, 2})
	var p int32
	var n *qnode
	for i, first := range []int32{1, 2, 3} {
		if first != lead.id {
			p, n = int32(i), c.nodes[first]
			break
		}
	}
	c.waitAll("every partition is led by its preferred replica", func(im *metadata.Image) bool {
		t := im.Topic(topic)
		for i := range t.Partitions {
			if t.Partitions[i].Leader != t.Partitions[i].Replicas()[0] {
				return false
			}
		}
		return true
	})
	c.stop(n.id)
	c.waitAll("the stopped node leads nothing", func(im *metadata.Image) bool {
		return im.Topic(topic).Partition(p).Leader != n.id
	})
	c.start(n.id, nil)
	c.waitAll("the restarted node is back in the ISR", func(im *metadata.Image) bool {
		pp := im.Topic(topic).Partition(p)
		for _, r := range pp.ISR() {
			if r == n.id {
				return true
			}
		}
		return false
	})
	return c, topic, p, n
}

// leads is a condition: partition p of topic is led by id.
func leads(topic string, p, id int32) func(*metadata.Image) bool {
	return func(im *metadata.Image) bool { return im.Topic(topic).Partition(p).Leader == id }
}

func TestElectionRebalanceGivesLeadershipBack(t *testing.T) {
	c, topic, p, n := startRestarted(t, map[string]string{"leader.imbalance.check.interval.seconds": "1"})
	c.waitAll(fmt.Sprintf("node %d leads partition %d again", n.id, p), leads(topic, p, n.id))
	c.waitReplicas("the replica on the restarted node leads", topic, p, func(ps map[int32]*partition.Partition) bool {
		return ps[n.id] != nil && ps[n.id].Role() == partition.RoleLeader
	})
}

func TestElectionElectLeadersFromAClient(t *testing.T) {
	c, topic, p, n := startRestarted(t, map[string]string{"auto.leader.rebalance.enable": "false",
		"leader.imbalance.check.interval.seconds": "1"})
	if im := n.srv.Broker().Image(); im.Topic(topic).Partition(p).Leader == n.id {
		t.Fatal("leadership came back with auto.leader.rebalance.enable=false")
	}
	// Sent to a node that is not the active controller: it forwards the request and
	// answers once its own image has the change.
	ctl := c.leader()
	var via *qnode
	for _, qn := range c.running() {
		if qn != ctl {
			via = qn
		}
	}
	req := kmsg.NewPtrElectLeadersRequest()
	req.Version, req.ElectionType, req.TimeoutMillis = 2, 0, 30000
	resp, err := req.RequestWith(ctxT(t), via.client(t).SeedBrokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || resp.Topics[0].Topic != topic || len(resp.Topics[0].Partitions) != 1 ||
		resp.Topics[0].Partitions[0].Partition != p || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("ElectLeaders for every partition: %+v, want only %s-%d, elected", resp, topic, p)
	}
	if got := via.srv.Broker().Image().Topic(topic).Partition(p).Leader; got != n.id {
		t.Fatalf("after ElectLeaders node %d's image shows leader %d, want %d", via.id, got, n.id)
	}
	// kadm sends it to the controller Metadata names.
	adm := kadm.NewClient(via.client(t))
	rs, err := adm.ElectLeaders(ctxT(t), kadm.ElectPreferredReplica, kadm.TopicsSet{topic: {p: {}}})
	if err != nil || !errors.Is(rs[topic][p].Err, kerr.ElectionNotNeeded) {
		t.Fatalf("again: %v %+v, want ELECTION_NOT_NEEDED", err, rs)
	}
}
