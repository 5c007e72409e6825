package cluster

// A reassignment under load, process level: three `vltava server` processes, a topic on
// {1,2} with min.insync.replicas=2, an idempotent acks=all producer running throughout,
// and `vltava partition reassign --execute` moving the partition to {2,3} (the leader, 1,
// leaves). Checked against the producer's ledger: every acknowledged record is read back
// once at the offset it was acknowledged at, no value is in the log twice, the ISR is the
// target, and node 1's copy is gone from its data dir.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ledger is what the producer was told: each acknowledged value's offset, and how many
// produces failed.
type ledger struct {
	mu     sync.Mutex
	acked  map[string]int64
	failed []error
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// produceUntil produces values v-0, v-1, ... to partition 0 of topic, idempotent and
// acks=all, a window of them in flight, until ctx ends; it returns once every record
// sent is answered.
func produceUntil(ctx context.Context, t *testing.T, seeds []string, topic string, l *ledger) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.RecordDeliveryTimeout(2*time.Minute), kgo.MaxBufferedRecords(200))
	if err != nil {
		t.Error(err)
		return
	}
	defer cl.Close()
	pad := strings.Repeat("x", 1000)
	for i := 0; ctx.Err() == nil; i++ {
		v := fmt.Sprintf("v-%d", i)
		cl.Produce(context.Background(), &kgo.Record{Topic: topic, Partition: 0, Key: []byte(v), Value: []byte(v + pad)},
			func(r *kgo.Record, err error) {
				l.mu.Lock()
				defer l.mu.Unlock()
				if err != nil {
					l.failed = append(l.failed, fmt.Errorf("%s: %w", v, err))
					return
				}
				l.acked[v] = r.Offset
			})
	}
	if err := cl.Flush(context.Background()); err != nil {
		t.Error(err)
	}
}

// createAssigned creates topic with one partition on replicas (the first its preferred
// leader) and configs, through cl.
func createAssigned(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, replicas []int32, configs map[string]string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	rt.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: replicas}}
	for k, v := range configs {
		rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: k, Value: kmsg.StringPtr(v)})
	}
	req.Topics = append(req.Topics, rt)
	if resp, err := req.RequestWith(ctx, cl); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create %s: %v %+v", topic, err, resp)
	}
}

// runCLI runs the vltava binary with args and returns its output; it fails the test if
// the tool fails.
func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	p := launch(t, bin, args...)
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		_ = p.stop(9, time.Second)
		t.Fatalf("vltava %v did not finish in a minute", args)
	}
	if p.err != nil {
		t.Fatalf("vltava %v: %v\n%s", args, p.err, p.out.String())
	}
	return p.out.String()
}

// partitionState asks seeds for partition 0 of topic: leader, replicas, ISR.
func partitionState(ctx context.Context, seeds []string, topic string) (leader int32, replicas, isr []int32, err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequestRetries(0))
	if err != nil {
		return -1, nil, nil, err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return -1, nil, nil, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return -1, nil, nil, fmt.Errorf("metadata of %s: %+v", topic, resp.Topics)
	}
	p := resp.Topics[0].Partitions[0]
	return p.Leader, p.Replicas, p.ISR, nil
}

func TestReassignmentUnderLoad(t *testing.T) {
	ctx := t.Context()
	c := newCluster(t, 3, map[string]string{"broker.heartbeat.interval.ms": "200", "replica.fetch.wait.max.ms": "100"})
	c.startAll()
	if _, err := c.waitLeader(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	seeds := c.bootstrap()
	adm := admin(t, seeds...)
	waitFor(t, "three unfenced brokers", func() bool {
		bs, err := adm.ListBrokers(ctx)
		return err == nil && len(bs) == 3
	})
	const topic = "moving"
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createAssigned(ctx, t, cl, topic, []int32{1, 2}, map[string]string{"min.insync.replicas": "2"})
	waitFor(t, "leader 1, ISR {1,2}", func() bool {
		l, _, isr, err := partitionState(ctx, seeds, topic)
		return err == nil && l == 1 && len(isr) == 2
	})

	l := &ledger{acked: map[string]int64{}}
	pctx, stopProducing := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		produceUntil(pctx, t, seeds, topic, l)
	}()
	defer func() { stopProducing(); wg.Wait() }()
	waitFor(t, "3000 records acknowledged before the move", func() bool { return l.count() >= 3000 })

	dir := t.TempDir()
	plan := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(plan, []byte(`{"version":1,"partitions":[{"topic":"moving","partition":0,"replicas":[2,3]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	brokers := strings.Join(seeds, ",")
	out := runCLI(t, "partition", "reassign", "--bootstrap-server", brokers, "--execute", "--reassignment-json-file", plan)
	if !strings.Contains(out, "Successfully started partition reassignment for moving-0") {
		t.Fatalf("--execute:\n%s", out)
	}
	atMove := l.count()
	waitFor(t, "the reassignment completes", func() bool {
		return strings.Contains(runCLI(t, "partition", "reassign", "--bootstrap-server", brokers, "--verify", "--reassignment-json-file", plan),
			"Reassignment of partition moving-0 is completed.")
	})
	waitFor(t, "1000 more records acknowledged after the move", func() bool { return l.count() >= atMove+1000 })
	stopProducing()
	wg.Wait()

	leader, replicas, isr, err := partitionState(ctx, seeds, topic)
	if err != nil {
		t.Fatal(err)
	}
	if leader != 2 || !slices.Equal(replicas, []int32{2, 3}) || !slices.Equal(slices.Sorted(slices.Values(isr)), []int32{2, 3}) {
		t.Fatalf("after the move: leader %d replicas %v ISR %v; want 2, [2 3], {2,3}", leader, replicas, isr)
	}
	old := filepath.Join(c.nodes[0].dataDir(), topic+"-0")
	waitFor(t, "node 1 deletes its copy", func() bool {
		_, err := os.Stat(old)
		return errors.Is(err, fs.ErrNotExist)
	})

	l.mu.Lock()
	acked, failed := l.acked, l.failed
	l.mu.Unlock()
	if len(failed) > 0 {
		t.Errorf("%d produces failed during the move, the first: %v", len(failed), failed[0])
	}
	// Read the whole partition back and check it against the ledger.
	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	end, err := admin(t, seeds...).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	hw, _ := end.Lookup(topic, 0)
	seen := map[string]int64{}
	var dups []string
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for next := int64(0); next < hw.Offset; {
		fetches := cons.PollFetches(rctx)
		if err := fetches.Err0(); err != nil {
			t.Fatalf("consume at %d of %d: %v", next, hw.Offset, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			k := string(r.Key)
			if _, dup := seen[k]; dup {
				dups = append(dups, k)
			}
			seen[k] = r.Offset
			next = r.Offset + 1
		})
	}
	lost, moved := 0, 0
	for v, off := range acked {
		got, ok := seen[v]
		switch {
		case !ok:
			lost++
		case got != off:
			moved++
		}
	}
	t.Logf("%d records acknowledged (%d before the move), %d in the log, high watermark %d", len(acked), atMove, len(seen), hw.Offset)
	if lost > 0 || moved > 0 || len(dups) > 0 {
		t.Fatalf("against the ledger: %d acknowledged records lost, %d at another offset than acknowledged, %d duplicates (first %v)", lost, moved, len(dups), dups[:min(len(dups), 3)])
	}
}

// waitFor waits up to two minutes for cond, looking again every 50 ms (the state is in
// other processes: there is nothing to wait on).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 2 minutes", what)
		}
		time.Sleep(50 * time.Millisecond) // polling other processes
	}
}
