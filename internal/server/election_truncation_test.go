package server_test

// Truncation by leader epoch after an unclean election, in a cluster: a leader
// acknowledges acks=1 records its follower never got, dies; the follower, out of the
// ISR, comes back: the partition stays without a leader (Metadata: LEADER_NOT_AVAILABLE,
// leader -1, the dead leader offline) until unclean.leader.election.enable is set on the
// topic, when the controller's periodic check elects it unclean; it takes new records at
// the same offsets; the old leader comes back as its follower and must cut its divergent
// suffix (the diverging epoch of its fetch, KIP-320) before it fetches, so that both logs
// are byte-identical up to the high watermark. Five nodes, so that the metadata quorum
// keeps a majority with both replicas of the partition down.

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/partition"
)

func TestElectionUncleanLeaderTruncatesOldLeader(t *testing.T) {
	c, cuts := startUnfencedWithCuts(t, 5, map[string]string{"unclean.leader.election.interval.ms": "200"})
	lead := c.leader()
	followers := c.followersOf(lead)
	A, B := followers[0], followers[1] // the partition's replicas, neither leading the quorum
	const topic = "diverge"
	c.createAssigned(lead, topic, map[string]string{"min.insync.replicas": "1"},
		[]int32{A.id, B.id})
	c.waitReplicas("A leads, B follows", topic, 0, func(ps map[int32]*partition.Partition) bool {
		return ps[A.id] != nil && ps[A.id].Role() == partition.RoleLeader && ps[B.id] != nil && ps[B.id].Role() == partition.RoleFollower
	})
	produce := func(qn *qnode, acks kgo.Acks, prefix string, n int) {
		t.Helper()
		cl := qn.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(acks), kgo.DisableIdempotentWrite())
		defer cl.Close()
		for i := range n {
			if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}).FirstErr(); err != nil {
				t.Fatalf("produce %s-%d to node %d: %v", prefix, i, qn.id, err)
			}
		}
	}
	const committed = 10
	produce(A, kgo.AllISRAcks(), "both", committed)
	c.waitReplicas("B has the committed records", topic, 0, func(ps map[int32]*partition.Partition) bool {
		return ps[B.id].LogEndOffset() == committed
	})

	// B stops (a controlled shutdown takes it out of the ISR); A, alone in the ISR,
	// acknowledges records B never gets.
	c.stop(B.id)
	c.waitAll("B is out of the ISR", isrIs(topic, A.id))
	produce(A, kgo.LeaderAck(), "only-on-A", 5)
	ap := A.srv.Broker().Partition(topic, 0)
	if leo, hw := ap.LogEndOffset(), ap.HighWatermark(); leo != committed+5 || hw != committed+5 {
		t.Fatalf("A alone in the ISR: log end %d, high watermark %d, want %d for both", leo, hw, committed+5)
	}
	aEpoch := ap.LeaderEpoch()

	// A dies (no controlled shutdown): the partition has no leader once it is fenced.
	cuts[A.id].set(true)
	c.stop(A.id)
	cuts[A.id].set(false)
	c.waitAll("the partition has no leader", func(im *metadata.Image) bool {
		return im.Broker(A.id).Fenced && im.Topic(topic).Partition(0).Leader == metadata.NoLeader
	})

	// B comes back: the only live replica, out of the ISR. Unclean elections are off:
	// unfencing B elects no leader, and a client is told so. (That the periodic check
	// leaves it so is the controller package's TestUncleanElectionOverTime.)
	c.start(B.id, nil)
	c.waitAll("B is unfenced", unfenced(B.id))
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	md, err := req.RequestWith(ctxT(t), B.client(t).SeedBrokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	if mp := md.Topics[0].Partitions[0]; mp.ErrorCode != kerr.LeaderNotAvailable.Code || mp.Leader != -1 || !slices.Equal(mp.OfflineReplicas, []int32{A.id}) {
		t.Fatalf("Metadata of the leaderless partition: %s leader %d offline %v, want LEADER_NOT_AVAILABLE, -1, [%d]",
			kerr.ErrorForCode(mp.ErrorCode), mp.Leader, mp.OfflineReplicas, A.id)
	}
	// The topic allows an unclean election: the controller's next check makes it.
	c.alterTopicConfig(lead, topic, "unclean.leader.election.enable", "true")
	c.waitAll("B is elected unclean", func(im *metadata.Image) bool {
		p := im.Topic(topic).Partition(0)
		return p.Leader == B.id && slices.Equal(p.ISR(), []int32{B.id})
	})
	c.waitReplicas("B's replica leads", topic, 0, func(ps map[int32]*partition.Partition) bool {
		return ps[B.id] != nil && ps[B.id].Role() == partition.RoleLeader && ps[B.id].LeaderEpoch() > aEpoch
	})
	produce(B, kgo.AllISRAcks(), "after-unclean", 8)

	// A comes back as B's follower: its records 10..14 diverge from B's (same offsets,
	// an older epoch), so it truncates to 10 and fetches B's.
	c.start(A.id, nil)
	bp := B.srv.Broker().Partition(topic, 0)
	end := bp.LogEndOffset()
	if end != committed+8 {
		t.Fatalf("B's log end %d, want %d", end, committed+8)
	}
	c.waitAll("A is back in the ISR", isrIs(topic, A.id, B.id))
	c.waitReplicas("A has B's log", topic, 0, func(ps map[int32]*partition.Partition) bool {
		p := ps[A.id]
		return p != nil && p.Role() == partition.RoleFollower && p.LogEndOffset() == end && p.HighWatermark() == end &&
			ps[B.id].HighWatermark() == end
	})
	ap = A.srv.Broker().Partition(topic, 0)
	want := logBytes(t, bp, end)
	if got := logBytes(t, ap, end); !bytes.Equal(got, want) {
		t.Fatalf("A's log differs from B's up to the high watermark (%d vs %d bytes)", len(got), len(want))
	}
	offs, vals := recordValues(t, want)
	for i, v := range vals {
		if offs[i] != int64(i) {
			t.Fatalf("offset %d where %d was due", offs[i], i)
		}
		wantV := fmt.Sprintf("both-%d", i)
		if i >= committed {
			wantV = fmt.Sprintf("after-unclean-%d", i-committed)
		}
		if v != wantV {
			t.Fatalf("offset %d holds %q, want %q (the old leader's suffix must be gone)", i, v, wantV)
		}
	}
}
