package server_test

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestControlledShutdownServesNewConnections: while a node's controlled shutdown runs
// (here held for broker.session.timeout.ms by a controller channel that no longer
// answers), its listeners still serve, new connections included, as Kafka's broker does
// until its socket server stops; its controller listener too, where the other voters
// reconnect to its raft. A connection closed at once instead reads as EOF at the
// client's first read (ApiVersions), which franz-go does not retry: the buffered records
// of an idempotent producer failed during a rolling restart (found by the fault battery's
// rolling fault).
func TestControlledShutdownServesNewConnections(t *testing.T) {
	const bound = 4 * time.Second // broker.session.timeout.ms: the controlled shutdown's bound
	cuts := map[int32]*cutSwitch{1: {}, 2: {}, 3: {}}
	c := startQuorumCluster(t, 3, map[string]string{
		"broker.heartbeat.interval.ms": "100",
		"broker.session.timeout.ms":    "4000",
	}, func(c *qcluster) {
		c.dial = func(id int32) func(context.Context, string) (net.Conn, error) { return cuts[id].dial }
	})
	lead := c.leader()
	c.waitAll("three unfenced brokers", unfenced(1, 2, 3))
	var qn *qnode
	for _, n := range c.running() {
		if n != lead {
			qn = n
		}
	}
	addr := qn.srv.Addrs()[0]
	// Its heartbeats no longer reach the controller: the controlled shutdown waits
	// for its bound.
	cuts[qn.id].set(true)
	closed := make(chan error, 1)
	start := time.Now()
	go func() { closed <- qn.srv.Close() }()
	t.Cleanup(func() { qn.srv = nil })

	answered := 0
	for time.Since(start) < bound/2 {
		// Its client listener and its controller listener (where the other voters
		// reconnect to its raft) in turn.
		at := addr
		if answered%2 == 1 {
			at = qn.ctrl
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(at), kgo.RequestRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(ctxT(t), 2*time.Second)
		_, err = kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl.SeedBrokers()[0])
		cancel()
		cl.Close()
		if err != nil {
			var fe *kgo.ErrFirstReadEOF
			if errors.As(err, &fe) || errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("a new connection to %s during the controlled shutdown (%v in, %d answered before) was closed at once: %v",
					at, time.Since(start).Round(time.Millisecond), answered, err)
			}
			t.Fatalf("ApiVersions to %s during the controlled shutdown: %v", at, err)
		}
		answered++
	}
	select {
	case err := <-closed:
		t.Fatalf("the controlled shutdown ended within %v, before its bound %v: %v", time.Since(start), bound, err)
	default:
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d new connections answered during the controlled shutdown", answered)
}
