package server_test

// Retention on a replicated leader, through the broker's own retention pass: a segment
// is deleted only once it lies wholly below the high watermark, so a follower in the ISR
// that was away while the leader rolled and deleted still gets every record when it
// comes back, and the leader's log start offset never passes its high watermark.

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vltava/vltava/internal/partition"
)

func TestReplicationRetentionWaitsForTheISR(t *testing.T) {
	// S, crashed, stays in the ISR until the controller fences it (10 s), which bounds
	// the controlled shutdowns at the end too.
	rc := startReplicated(t, "retention", map[string]string{"broker.session.timeout.ms": "10000"})
	c, L, S, topic := rc.qcluster, rc.L, rc.S, rc.topic
	rc.crashable(S)
	lp := L.srv.Broker().Partition(topic, 0)
	roll := func() {
		t.Helper()
		if err := lp.Log().Roll(); err != nil {
			t.Fatal(err)
		}
	}
	pc := L.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := pc.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("committed")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	roll() // [0, 1) is committed
	// S stays in the ISR, away: nothing more commits (replica.lag.time.max.ms is 30 s).
	rc.crash(S)
	ac := L.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	for seg := 0; seg < 2; seg++ {
		for i := 0; i < 5; i++ {
			if err := ac.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("past the high watermark")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		roll()
	}
	if leo, hw := lp.LogEndOffset(), lp.HighWatermark(); leo != 11 || hw != 1 {
		t.Fatalf("log end %d, high watermark %d; want 11 and 1", leo, hw)
	}
	if !isrIs(topic, L.id, rc.F.id, S.id)(L.srv.Broker().Image()) {
		t.Fatal("S left the ISR during the test: lengthen the controller's session timeout")
	}
	c.alterTopicConfig(L, topic, "retention.bytes", "1") // every closed segment is over it
	L.srv.Broker().EnforceRetention()
	if start, hw := lp.LogStartOffset(), lp.HighWatermark(); start != 1 {
		t.Fatalf("leader's log start offset %d after retention, high watermark %d", start, hw)
	}

	// S comes back, fetches what it missed and the ISR commits it.
	c.start(S.id, nil)
	c.waitReplicas("S catches up", topic, 0, func(ps map[int32]*partition.Partition) bool {
		return ps[S.id] != nil && ps[S.id].LogEndOffset() == 11 && lp.HighWatermark() == 11
	})
	sp := S.srv.Broker().Partition(topic, 0)
	if got, want := logBytes(t, sp, 11)[len(logBytes(t, sp, 1)):], logBytes(t, lp, 11); !bytes.Equal(got, want) {
		t.Fatalf("S's log from 1 differs from the leader's: %d bytes, %d", len(got), len(want))
	}
}
