package server_test

// KIP-966 in a cluster: a partition whose last ISR member dies keeps its eligible leader
// replicas, and one that stopped cleanly (its clean shutdown recorded in its log dirs,
// named in its registration) leads again when it comes back, with every acknowledged
// record; the replica that died rejoins as its follower. Five nodes, so that the metadata
// quorum keeps a majority with both replicas of the partition down.

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/partition"
)

func TestElectionCleanELRMemberLeadsAfterLastISRMemberDies(t *testing.T) {
	c, cuts := startUnfencedWithCuts(t, 5, nil)
	lead := c.leader()
	followers := c.followersOf(lead)
	A, B := followers[0], followers[1]
	const topic = "elr"
	c.createAssigned(lead, topic, map[string]string{"min.insync.replicas": "2"}, []int32{A.id, B.id})
	c.waitReplicas("A leads, B follows", topic, 0, func(ps map[int32]*partition.Partition) bool {
		return ps[A.id] != nil && ps[A.id].Role() == partition.RoleLeader && ps[B.id] != nil && ps[B.id].Role() == partition.RoleFollower
	})
	cl := A.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const acked = 20
	for i := range acked {
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte(fmt.Sprintf("acked-%d", i))}).FirstErr(); err != nil {
			t.Fatalf("acks=all produce %d: %v", i, err)
		}
	}
	cl.Close()
	c.waitReplicas("B has every acknowledged record", topic, 0, func(ps map[int32]*partition.Partition) bool {
		return ps[B.id].LogEndOffset() == acked
	})

	// B stops cleanly: it leaves the ISR, which falls below min.insync.replicas, so B
	// becomes an eligible leader replica.
	c.stop(B.id)
	c.waitAll("B is eligible", func(im *metadata.Image) bool {
		p := im.Topic(topic).Partition(0)
		return slices.Equal(p.ISR(), []int32{A.id}) && slices.Equal(p.ELR(), []int32{B.id})
	})
	// A, the last ISR member, dies.
	cuts[A.id].set(true)
	c.stop(A.id)
	cuts[A.id].set(false)
	c.waitAll("no leader, the ISR empty, both eligible", func(im *metadata.Image) bool {
		p := im.Topic(topic).Partition(0)
		return im.Broker(A.id).Fenced && p.Leader == metadata.NoLeader && len(p.ISR()) == 0 &&
			slices.Equal(slices.Sorted(slices.Values(p.ELR())), slices.Sorted(slices.Values([]int32{A.id, B.id})))
	})

	// B comes back, having shut down cleanly: it leads, with every acknowledged record.
	c.start(B.id, nil)
	c.waitAll("B leads", func(im *metadata.Image) bool {
		p := im.Topic(topic).Partition(0)
		return p.Leader == B.id && slices.Equal(p.ISR(), []int32{B.id}) && slices.Equal(p.ELR(), []int32{A.id})
	})
	c.waitReplicas("B's replica leads", topic, 0, func(ps map[int32]*partition.Partition) bool {
		return ps[B.id] != nil && ps[B.id].Role() == partition.RoleLeader
	})
	bp := B.srv.Broker().Partition(topic, 0)
	if leo := bp.LogEndOffset(); leo != acked {
		t.Fatalf("B leads with log end %d, want the %d acknowledged records", leo, acked)
	}

	// A comes back as B's follower; with both in the ISR acks=all works again, and the
	// logs are identical.
	c.start(A.id, nil)
	c.waitAll("A is back in the ISR", isrIs(topic, A.id, B.id))
	pc := B.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := pc.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("acks=all after A is back: %v", err)
	}
	end := int64(acked + 1)
	c.waitReplicas("A has B's log", topic, 0, func(ps map[int32]*partition.Partition) bool {
		return ps[A.id] != nil && ps[A.id].LogEndOffset() == end && ps[A.id].HighWatermark() == end && ps[B.id].HighWatermark() == end
	})
	want := logBytes(t, bp, end)
	if got := logBytes(t, A.srv.Broker().Partition(topic, 0), end); !bytes.Equal(got, want) {
		t.Fatalf("A's log differs from B's (%d vs %d bytes)", len(got), len(want))
	}
	_, vals := recordValues(t, want)
	for i := range acked {
		if vals[i] != fmt.Sprintf("acked-%d", i) {
			t.Fatalf("offset %d holds %q", i, vals[i])
		}
	}
}
