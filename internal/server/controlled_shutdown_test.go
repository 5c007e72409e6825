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

// TestCloseAbandonsForwardedRequests: a client's topic change that a node has forwarded
// to the controller, and that has no answer yet (here its controller channel is cut),
// does not hold the node's Close for request.timeout.ms: once the connections are closed
// nobody waits for the answer. (Found by the fault battery's rolling restart: a node whose
// quorum had lost its leader during the shutdown took 30 s to stop, in a DeleteTopics
// forwarded to the controller.)
func TestCloseAbandonsForwardedRequests(t *testing.T) {
	cuts := map[int32]*cutSwitch{1: {}, 2: {}, 3: {}}
	dialed := make(chan struct{}, 1)
	c := startQuorumCluster(t, 3, map[string]string{
		"broker.heartbeat.interval.ms": "1500",
		"broker.session.timeout.ms":    "4000",
		"request.timeout.ms":           "30000",
	}, func(c *qcluster) {
		c.dial = func(id int32) func(context.Context, string) (net.Conn, error) {
			return func(ctx context.Context, addr string) (net.Conn, error) {
				if cuts[id].on() {
					select {
					case dialed <- struct{}{}:
					default:
					}
				}
				return cuts[id].dial(ctx, addr)
			}
		}
	})
	lead := c.leader()
	c.waitAll("three unfenced brokers", unfenced(1, 2, 3))
	var qn *qnode
	for _, n := range c.running() {
		if n != lead {
			qn = n
		}
	}
	cuts[qn.id].set(true)
	for len(dialed) > 0 { // a heartbeat's dial between the cut and now
		<-dialed
	}
	go func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(qn.srv.Addrs()[0]), kgo.RequestRetries(0))
		if err != nil {
			return
		}
		defer cl.Close()
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "waits", 1, 1
		req.Topics = append(req.Topics, rt)
		req.TimeoutMillis = 60000
		// To this node (a client would route it to the controller), which
		// forwards it; it fails once the node closes the connection.
		cl.SeedBrokers()[0].Request(ctxT(t), req)
	}()
	<-dialed // the forwarded request (or a heartbeat) tried the cut channel
	start := time.Now()
	if err := qn.srv.Close(); err != nil {
		t.Fatal(err)
	}
	qn.srv = nil
	// The controlled shutdown waits for its bound (the session timeout, 4 s: its
	// heartbeats do not get through either); the forwarded request must not add the
	// rest of its 30 s.
	took := time.Since(start)
	t.Logf("Close took %v", took.Round(time.Millisecond))
	if took > 15*time.Second {
		t.Fatalf("Close took %v with a forwarded request pending", took.Round(time.Millisecond))
	}
}

// TestCloseAnswersAYoungConnection: a connection accepted just before the node stops
// listening gets its first requests answered before it is closed. A client opens a
// connection to send a request at once (ApiVersions, then the request it was opened
// for); closed before that request is answered, it reads EOF at its first read after
// ApiVersions, which franz-go takes for a SASL mismatch and does not retry (the fault
// battery's rolling restart saw an acks=1 producer's records fail on it).
func TestCloseAnswersAYoungConnection(t *testing.T) {
	n := startNode(t, nil)
	rc := dialRaw(t, n.addr)
	rc.do(kmsg.NewPtrApiVersionsRequest()) // accepted and served
	closed := make(chan error, 1)
	go func() { closed <- n.srv.Close() }()
	t.Cleanup(func() { n.srv = nil })
	// Wait until the node no longer listens; then the young connection's first
	// request.
	for {
		c, err := net.Dial("tcp", n.addr)
		if err != nil {
			break
		}
		c.Close()
	}
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	rc.corr++
	if _, err := rc.c.Write(frame(req, rc.corr)); err != nil {
		t.Fatalf("write the first request: %v", err)
	}
	if _, _, err := rc.readFrame(); err != nil {
		t.Fatalf("the young connection's first request after ApiVersions: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
