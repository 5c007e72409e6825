package server_test

// The replica manager's and controller's metrics after real ISR changes on three
// in-process nodes: the leader counts its committed shrinks and expansions
// (kafka_server_replicamanager_isrshrinks_total / isrexpands_total, Kafka's
// IsrShrinksPerSec / IsrExpandsPerSec), its under-replicated, under-min-ISR and at-min-ISR
// gauges follow the ISR and min.insync.replicas, and only the active controller reports
// ActiveControllerCount 1.

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vltava/vltava/internal/metadata"
)

// waitSample waits until name on the /metrics at addr is want.
func waitSample(t *testing.T, addr string, want float64, name string) {
	t.Helper()
	ctx := ctxT(t)
	for {
		got, ok := sample(scrape(t, addr), name)
		if ok && got == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s is %v (present %v), want %v: %v", name, got, ok, want, context.Cause(ctx))
		case <-time.After(20 * time.Millisecond): // the leader applies the answer a moment after the image
		}
	}
}

func TestReplicationMetricsFollowISRChanges(t *testing.T) {
	rc := startReplicated(t, "isrm", map[string]string{"replica.lag.time.max.ms": "600", "broker.session.timeout.ms": "6000"})
	c, L, F, S := rc.qcluster, rc.L, rc.F, rc.S
	rc.crashable(S)                                 // S's rejoining may count an expansion: counts below are from here
	c.createAssigned(L, "on-s", nil, []int32{S.id}) // leaderless once S is fenced
	addr := startHTTP(t, L.srv)
	const (
		shrinks  = "kafka_server_replicamanager_isrshrinks_total"
		expands  = "kafka_server_replicamanager_isrexpands_total"
		under    = "kafka_server_replicamanager_underreplicatedpartitions"
		underMin = "kafka_server_replicamanager_underminisrpartitioncount"
		atMin    = "kafka_server_replicamanager_atminisrpartitioncount"
		active   = "kafka_controller_kafkacontroller_activecontrollercount"
		offline  = "kafka_controller_kafkacontroller_offlinepartitionscount"
	)
	fams := scrape(t, addr)
	shrinks0, _ := sample(fams, shrinks)
	expands0, _ := sample(fams, expands)
	wantSample(t, fams, 0, under)
	wantSample(t, fams, 0, underMin)
	wantSample(t, fams, 0, atMin) // ISR 3 > min.insync.replicas 2
	wantSample(t, fams, 1, active)
	wantSample(t, fams, 0, offline)
	fAddr := startHTTP(t, F.srv)
	wantSample(t, scrape(t, fAddr), 0, active)

	pc := L.client(t, kgo.DefaultProduceTopic(rc.topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	rc.crash(S)
	// Completes once the leader has dropped S from the ISR.
	if err := pc.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("two of three")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c.waitAll("S leaves the ISR", isrIs(rc.topic, L.id, F.id))
	waitSample(t, addr, shrinks0+1, shrinks)
	fams = scrape(t, addr)
	wantSample(t, fams, expands0, expands)
	wantSample(t, fams, 1, under)
	wantSample(t, fams, 0, underMin)
	wantSample(t, fams, 1, atMin) // ISR 2 = min.insync.replicas

	// Once the controller fences S (broker.session.timeout.ms), on-s has no leader.
	c.waitAll("S is fenced", func(im *metadata.Image) bool { b := im.Broker(S.id); return b == nil || b.Fenced })
	c.waitAll("on-s has no leader", func(im *metadata.Image) bool { return im.Topic("on-s").Partition(0).Leader < 0 })
	wantSample(t, scrape(t, addr), 1, offline)
	wantSample(t, scrape(t, fAddr), 1, offline) // every controller reports it, as in KRaft

	c.alterTopicConfig(L, rc.topic, "min.insync.replicas", "3")
	fams = scrape(t, addr)
	wantSample(t, fams, 1, underMin)
	wantSample(t, fams, 0, atMin)

	c.start(S.id, nil)
	c.waitAll("S joins the ISR again", isrIs(rc.topic, L.id, F.id, S.id))
	waitSample(t, addr, expands0+1, expands)
	fams = scrape(t, addr)
	wantSample(t, fams, shrinks0+1, shrinks)
	wantSample(t, fams, 0, under)
	wantSample(t, fams, 0, underMin)
	wantSample(t, fams, 1, atMin) // ISR 3 = min.insync.replicas 3
	c.waitAll("on-s is led again", func(im *metadata.Image) bool { return im.Topic("on-s").Partition(0).Leader == S.id })
	wantSample(t, scrape(t, addr), 0, offline)
}
