package cluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The client matrix against a cluster (clients_test.go, the clients in clients_go_test.go
// and clients_ext_test.go): every client library produces with acks=all to its own topic
// (RF 3, min.insync.replicas=2) and consumes it in a consumer group, all at once, while
// the broker that leads the most of their partitions is killed with SIGKILL and started
// again. Every record a producer had acknowledged must be read back by its group
// consumer, and an idempotent producer's records must each be in the log once.

const (
	matrixParts   = 3
	endValue      = "END" // a producer's last record in every partition
	ackedBefore   = 100   // every producer's acknowledged records before the kill
	ackedAfter    = 100   // ... and after the restart, before the producers stop
	clientsBudget = 90 * time.Second
)

// matrixClient is one client library as a producer and a group consumer.
type matrixClient struct {
	name string
	// idempotent: the producer is idempotent as configured, so no record of it may be
	// in the log twice.
	idempotent bool
	// reportsAcks: the producer reports each acknowledgement as it arrives (kcat reports
	// only at its exit), so the test can wait for its progress.
	reportsAcks bool
	// produce sends "<name>-<seq>" values to partition seq%partitions until stop is
	// closed, calling ack for each acknowledged one, then an endValue record to every
	// partition, and returns once every record is acknowledged or has failed.
	produce func(ctx context.Context, seeds []string, topic string, partitions int32, stop <-chan struct{}, ack func(v string)) error
	// consume reads topic in consumer group group from the earliest offset, calling got
	// for every record, until it has read endValue in every partition.
	consume func(ctx context.Context, seeds []string, topic, group string, partitions int32, got func(p int32, o int64, v string)) error
}

func matrixClients() []*matrixClient {
	return []*matrixClient{franzMatrix(), saramaMatrix(), kafkaGoMatrix(), kcatMatrix(),
		pyMatrix("kafka-python", "kafka", false), pyMatrix("confluent-kafka", "confluent", true)}
}

// clientRun is what one client did.
type clientRun struct {
	c         *matrixClient
	topic     string
	mu        sync.Mutex
	acked     []string
	nAcked    atomic.Int64
	read      map[string]map[[2]int64]bool // value -> the (partition, offset)s it was read at
	prodErr   error
	consErr   error
	prodDone  chan struct{}
	consDone  chan struct{}
	readCount int
}

func (r *clientRun) ack(v string) {
	r.mu.Lock()
	r.acked = append(r.acked, v)
	r.mu.Unlock()
	r.nAcked.Add(1)
}

func (r *clientRun) got(p int32, o int64, v string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.read[v] == nil {
		r.read[v] = map[[2]int64]bool{}
	}
	r.read[v][[2]int64{int64(p), o}] = true
	r.readCount++
}

// TestClientsThroughBrokerKill9 is the client matrix against a cluster of three.
func TestClientsThroughBrokerKill9(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newCluster(t, 3, map[string]string{
		// A Kafka user's settings for a durable cluster of three.
		"offsets.topic.replication.factor": "3",
		"default.replication.factor":       "3",
		"min.insync.replicas":              "2",
		// Quick fencing, so the test does not wait Kafka's 9 s for the killed broker's
		// session to end (it is started again at once, which ends it anyway).
		"broker.heartbeat.interval.ms": "500",
		"broker.session.timeout.ms":    "3000",
	})
	c.startAll()
	adm := admin(t, c.bootstrap()...)
	waitBrokers(ctx, t, c, 3)

	clients := matrixClients()
	runs := make([]*clientRun, len(clients))
	for i, mc := range clients {
		runs[i] = &clientRun{c: mc, topic: "clients-" + mc.name, read: map[string]map[[2]int64]bool{},
			prodDone: make(chan struct{}), consDone: make(chan struct{})}
		createReplicated(ctx, t, adm, runs[i].topic, matrixParts)
	}
	victim := mostLeader(ctx, t, adm, c, runs)

	stop := make(chan struct{})
	seeds := c.bootstrap()
	for _, r := range runs {
		go func() {
			defer close(r.prodDone)
			r.prodErr = r.c.produce(ctx, seeds, r.topic, matrixParts, stop, r.ack)
		}()
		go func() {
			defer close(r.consDone)
			r.consErr = r.c.consume(ctx, seeds, r.topic, "group-"+r.c.name, matrixParts, r.got)
		}()
	}
	stopOnce := sync.OnceFunc(func() { close(stop) })
	defer stopOnce()

	waitAcked(ctx, t, runs, func(*clientRun) int64 { return ackedBefore }, "before the kill")
	t.Logf("killing node %d (pid %d) with SIGKILL, the leader of the most partitions", victim.id, victim.cur().pid())
	victim.kill9()
	victim.start()
	at := map[*clientRun]int64{}
	for _, r := range runs {
		at[r] = r.nAcked.Load()
	}
	waitAcked(ctx, t, runs, func(r *clientRun) int64 { return at[r] + ackedAfter }, "after the restart")
	stopOnce()

	// Every client gets the same budget; those still running after it are stopped (their
	// errors then say where they were) and fail the test.
	budget, bcancel := context.WithTimeout(ctx, clientsBudget)
	defer bcancel()
	for _, r := range runs {
		for what, done := range map[string]chan struct{}{"producer": r.prodDone, "group consumer": r.consDone} {
			select {
			case <-done:
				continue
			default:
			}
			select {
			case <-done:
			case <-budget.Done():
				t.Errorf("%s: the %s has not finished %s after the producers were stopped", r.c.name, what, clientsBudget)
				cancel()
				<-done
			}
		}
	}
	for _, r := range runs {
		checkRun(t, r)
	}
}

// checkRun: every acknowledged value was read, and an idempotent producer's values are
// in the log once.
func checkRun(t *testing.T, r *clientRun) {
	t.Helper()
	if r.prodErr != nil {
		t.Errorf("%s produce: %v", r.c.name, r.prodErr)
	}
	if r.consErr != nil {
		t.Errorf("%s consume in a group: %v", r.c.name, r.consErr)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var missing, dups []string
	for _, v := range r.acked {
		if len(r.read[v]) == 0 {
			missing = append(missing, v)
		}
	}
	for v, at := range r.read {
		if len(at) > 1 && v != endValue && r.c.idempotent {
			dups = append(dups, fmt.Sprintf("%s at %v", v, slices.Collect(maps.Keys(at))))
		}
	}
	slices.Sort(missing)
	slices.Sort(dups)
	t.Logf("%s: %d records acknowledged, %d distinct values read (%d reads)", r.c.name, len(r.acked), len(r.read), r.readCount)
	if len(missing) > 0 {
		t.Errorf("%s: %d acknowledged records not read back by the group consumer, e.g. %v", r.c.name, len(missing), first(missing, 5))
	}
	if len(dups) > 0 {
		t.Errorf("%s: the idempotent producer's records are in the log more than once: %v", r.c.name, first(dups, 5))
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// waitAcked waits until every producer that reports acknowledgements has want(r) of them.
func waitAcked(ctx context.Context, t *testing.T, runs []*clientRun, want func(*clientRun) int64, when string) {
	t.Helper()
	deadline := time.Now().Add(clientsBudget)
	for {
		var behind []string
		for _, r := range runs {
			select {
			case <-r.prodDone:
				t.Fatalf("%s: the producer stopped early (%s): %v", r.c.name, when, r.prodErr)
			case <-r.consDone:
				t.Fatalf("%s: the group consumer stopped early (%s): %v", r.c.name, when, r.consErr)
			default:
			}
			if r.c.reportsAcks && r.nAcked.Load() < want(r) {
				behind = append(behind, fmt.Sprintf("%s %d/%d", r.c.name, r.nAcked.Load(), want(r)))
			}
		}
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("producers acknowledged too few records %s after %s: %s", when, clientsBudget, strings.Join(behind, ", "))
		}
		time.Sleep(20 * time.Millisecond) // polling counters other goroutines and processes move
	}
}

// waitBrokers waits until every node's Metadata lists n brokers (registered and
// unfenced). Each node is asked directly: kadm's BrokerMetadata may answer from its
// client's cached metadata.
func waitBrokers(ctx context.Context, t *testing.T, c *testCluster, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, nd := range c.nodes {
		for {
			got, err := brokersOn(ctx, nd)
			if err == nil && got == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d lists %d brokers after 30s, want %d: %v", nd.id, got, n, err)
			}
			time.Sleep(20 * time.Millisecond) // polling the cluster
		}
	}
}

func brokersOn(ctx context.Context, nd *node) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(nd.broker()), kgo.RequestRetries(0), kgo.DialTimeout(time.Second))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].RetriableRequest(ctx, kmsgMetadataAll())
	if err != nil {
		return 0, err
	}
	return len(resp.(*kmsg.MetadataResponse).Brokers), nil
}

// createReplicated creates topic with RF 3 and min.insync.replicas=2.
func createReplicated(ctx context.Context, t *testing.T, adm *kadm.Client, topic string, partitions int32) {
	t.Helper()
	two := "2"
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := adm.CreateTopic(cctx, partitions, 3, map[string]*string{"min.insync.replicas": &two}, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Fatalf("create %s (RF 3): %v", topic, err)
	}
}

// mostLeader returns the node that leads the most partitions of the runs' topics, once
// every partition has a leader.
func mostLeader(ctx context.Context, t *testing.T, adm *kadm.Client, c *testCluster, runs []*clientRun) *node {
	t.Helper()
	var topics []string
	for _, r := range runs {
		topics = append(topics, r.topic)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		td, err := adm.ListTopics(ctx, topics...)
		led := map[int32]int{}
		ready := err == nil && len(td) == len(topics)
		for _, d := range td {
			ready = ready && d.Err == nil && len(d.Partitions) == matrixParts
			for _, p := range d.Partitions {
				ready = ready && p.Err == nil && p.Leader >= 1 && len(p.ISR) == 3
				led[p.Leader]++
			}
		}
		if ready {
			best := int32(1)
			for id, n := range led {
				if n > led[best] || (n == led[best] && id < best) {
					best = id
				}
			}
			t.Logf("partitions led per node: %v", led)
			return c.nodes[best-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the topics' partitions have no leaders with full ISRs after 30s: %v %+v", err, td)
		}
		time.Sleep(20 * time.Millisecond) // polling the cluster
	}
}
