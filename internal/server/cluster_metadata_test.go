package server_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestMetadataAnswersFromTheImage: Metadata and DescribeCluster describe the brokers as
// registered in the metadata image (advertised address, rack) and the partitions as the
// image holds them (leader, leader epoch, replicas, ISR, offline replicas); a restart
// registers the node again at its new address and epoch, and it leads its partitions
// again at a new leader epoch.
func TestMetadataAnswersFromTheImage(t *testing.T) {
	n := startNode(t, map[string]string{"broker.rack": "rack-a"})
	ctx := context.Background()
	if code := createTopicsRaw(t, n.client(), 3, "t")[0].ErrorCode; code != 0 {
		t.Fatalf("create: %d", code)
	}
	check := func(step string, leaderEpoch int32) {
		t.Helper()
		cl := n.client()
		host, ps, _ := net.SplitHostPort(n.addr)
		port, _ := strconv.Atoi(ps)
		want := fmt.Sprintf("[{1 %s %d rack-a}]", host, port)

		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		name := "t"
		rt.Topic = &name
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		var brokers []string
		for _, b := range resp.Brokers {
			brokers = append(brokers, fmt.Sprintf("{%d %s %d %s}", b.NodeID, b.Host, b.Port, rackOf(b.Rack)))
		}
		if got := fmt.Sprint(brokers); got != want {
			t.Fatalf("%s: Metadata brokers %s, want %s", step, got, want)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 3 {
			t.Fatalf("%s: topics %+v", step, resp.Topics)
		}
		for _, p := range resp.Topics[0].Partitions {
			if got := fmt.Sprintf("%d %d %v %v %v %d", p.ErrorCode, p.Leader, p.Replicas, p.ISR, p.OfflineReplicas, p.LeaderEpoch); got != fmt.Sprintf("0 1 [1] [1] [] %d", leaderEpoch) {
				t.Fatalf("%s: partition %d: %s (want leader epoch %d)", step, p.Partition, got, leaderEpoch)
			}
		}

		dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		brokers = nil
		for _, b := range dc.Brokers {
			brokers = append(brokers, fmt.Sprintf("{%d %s %d %s}", b.NodeID, b.Host, b.Port, rackOf(b.Rack)))
		}
		if got := fmt.Sprint(brokers); got != want || dc.ControllerID != 1 {
			t.Fatalf("%s: DescribeCluster brokers %s controller %d, want %s", step, got, dc.ControllerID, want)
		}
	}
	check("first start", 0)
	epoch := n.srv.Broker().Image().Broker(1).Epoch
	n.restart() // a new port (listeners on port 0)
	// The new incarnation's registration moves the leaderships of the old one away
	// (epoch 1), and its unfencing gives them back (epoch 2), as Kafka's controller does.
	check("after a restart", 2)
	if b := n.srv.Broker().Image().Broker(1); b.Epoch <= epoch || b.Fenced {
		t.Fatalf("registration after a restart: epoch %d (was %d), fenced %v", b.Epoch, epoch, b.Fenced)
	}
}

func rackOf(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
