package controller

// The controller over the real quorum member (one voter, an in-memory file system, no
// peers), as the integration will run it: the contract of Log and image holds for
// *quorum.Node and the StateMachine.

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/quorum"
	"github.com/vltava/vltava/internal/vfs"
)

type noPeers struct{}

func (noPeers) Start(quorum.Reporter) error { return nil }
func (noPeers) Send([]*raftpb.Message)      {}
func (noPeers) SetPeer(uint64, string)      {}
func (noPeers) RemovePeer(uint64)           {}
func (noPeers) Stop()                       {}

func TestControllerOverQuorumNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logger := testLogger(t)
		sm := metadata.NewStateMachine(nil, logger)
		node, err := quorum.Open(quorum.Config{NodeID: 1, ClusterID: testClusterID, Voters: map[uint64]string{1: "127.0.0.1:9093"}},
			vfs.NewMem(), "data", sm, noPeers{}, quorum.SystemClock(), logger)
		if err != nil {
			t.Fatal(err)
		}
		defer node.Close()
		ctl, err := New(testConfig(), node, sm.Image, quorum.SystemClock(), logger)
		if err != nil {
			t.Fatal(err)
		}
		defer ctl.Close()
		synctest.Wait()
		if !ctl.Active() {
			t.Fatal("the only voter's controller is not active")
		}
		ctx := context.Background()
		reg := ctl.Handle(ctx, registration(1, uuid.New(), "")).(*kmsg.BrokerRegistrationResponse)
		if reg.ErrorCode != 0 {
			t.Fatalf("registration: %s", codeName(reg.ErrorCode))
		}
		// The epoch is the index of the registration's entry: the controller predicted it.
		if b := sm.Image().Broker(1); b == nil || b.Epoch != reg.BrokerEpoch || uint64(reg.BrokerEpoch) != sm.Image().Offset().Index {
			t.Fatalf("epoch %d, image at %d, broker %+v", reg.BrokerEpoch, sm.Image().Offset().Index, sm.Image().Broker(1))
		}
		hb := ctl.Handle(ctx, heartbeat(1, reg.BrokerEpoch, int64(sm.Image().Offset().Index))).(*kmsg.BrokerHeartbeatResponse)
		if hb.ErrorCode != 0 || hb.IsFenced {
			t.Fatalf("heartbeat: %+v", hb)
		}
		if r := ctl.Handle(ctx, createTopic("t", 3, 1)).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != 0 {
			t.Fatalf("create: %s", codeName(r.Topics[0].ErrorCode))
		}
		if tp := sm.Image().Topic("t"); tp == nil || tp.NumPartitions() != 3 || tp.Partitions[0].Leader != 1 {
			t.Fatalf("topic in the image: %+v", tp)
		}
		dq := kmsg.NewPtrDescribeQuorumRequest()
		dq.Topics = []kmsg.DescribeQuorumRequestTopic{{Topic: MetadataTopic, Partitions: []kmsg.DescribeQuorumRequestTopicPartition{{Partition: 0}}}}
		p := ctl.Handle(ctx, dq).(*kmsg.DescribeQuorumResponse).Topics[0].Partitions[0]
		last := int64(sm.Image().Offset().Index)
		if p.ErrorCode != 0 || p.LeaderID != 1 || p.HighWatermark < last || len(p.CurrentVoters) != 1 || p.CurrentVoters[0].LogEndOffset < last {
			t.Fatalf("DescribeQuorum: %+v (image at %d)", p, last)
		}
		if sm.Refused() != 0 {
			t.Fatal("the state machine refused an entry")
		}
	})
}
