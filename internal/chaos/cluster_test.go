package chaos

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestQuorumWatchRecordsLeaders: DescribeQuorum answers from two nodes'
// controller listeners become one leader claim per node and epoch, however
// often they repeat; an error answer (NOT_CONTROLLER, as every node gives
// today) becomes none.
func TestQuorumWatchRecordsLeaders(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The fake broker does not know DescribeQuorum: advertise it.
	c.ControlKey(int16(kmsg.ApiVersions), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		resp.SetVersion(req.GetVersion())
		for _, k := range []int16{int16(kmsg.ApiVersions), int16(kmsg.DescribeQuorum)} {
			v := kmsg.NewApiVersionsResponseApiKey()
			v.ApiKey, v.MaxVersion = k, 2
			resp.ApiKeys = append(resp.ApiKeys, v)
		}
		return resp, nil, true
	})
	ctx, cancel := context.WithCancel(context.Background())
	asked := 0
	c.ControlKey(int16(kmsg.DescribeQuorum), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
		resp.SetVersion(req.GetVersion())
		asked++
		if asked == 1 {
			resp.ErrorCode = 41 // NOT_CONTROLLER
			return resp, nil, true
		}
		tp := kmsg.NewDescribeQuorumResponseTopic()
		tp.Topic = "__cluster_metadata"
		p := kmsg.NewDescribeQuorumResponseTopicPartition()
		p.LeaderID, p.LeaderEpoch = 2, 5
		tp.Partitions = append(tp.Partitions, p)
		resp.Topics = append(resp.Topics, tp)
		if asked == 6 { // three rounds of two nodes
			cancel()
		}
		return resp, nil, true
	})
	addr := c.ListenAddrs()[0]
	nodes := []*Node{{ID: 1, Controller: addr}, {ID: 2, Controller: addr}, {ID: 3}}
	rec := NewRecorder(History{})
	quorumWatch(ctx, rec, nodes) // returns once cancelled
	got := rec.Snapshot().Leaders
	if len(got) != 2 {
		t.Fatalf("claims %+v, want one per node", got)
	}
	byNode := map[int]bool{}
	for _, l := range got {
		byNode[l.Node] = true
		if l.Leader != 2 || l.Epoch != 5 || l.Source != "describe-quorum" {
			t.Errorf("claim %+v, want leader 2 in epoch 5 from DescribeQuorum", l)
		}
	}
	if !byNode[1] || !byNode[2] {
		t.Errorf("claims %+v, want one from node 1 and one from node 2", got)
	}
}
