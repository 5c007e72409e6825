// Command failover is bench/replicated's helper for a cluster of `vltava server` processes that
// the script started: it waits for the cluster to be ready, and measures one failover of a
// partition leader under a steady idempotent acks=all producer.
//
//	failover wait-brokers --brokers B --nodes N        until metadata lists N brokers
//	failover wait-isr --brokers B --topic T            until every partition's ISR is all its replicas
//	failover run --brokers B --topic T --pids 1=PID,2=PID,3=PID --signal KILL|TERM
//
// run produces 1 KiB records at --rate into partition 0 of the topic, and once acks flow, sends
// the signal to the process of that partition's leader (found in metadata, mapped to a pid by
// --pids). It prints one JSON object: the time from the signal to the first batch acknowledged by
// another broker (the unavailability a producer sees), the time until a surviving broker's
// metadata names a new leader, and how many records failed (a promise that returned an error:
// what reaches the application). The script restarts the stopped node; this command never
// starts a process.
//
// The producer uses the retry timing of Kafka's Java producer rather than franz-go's defaults
// (metadata at most every 5 s, backoff up to 5 s), which would measure the client instead:
// metadata refreshed at most every 100 ms (Java: retry.backoff.ms) and retries backing off from
// 100 ms to 1 s (retry.backoff.max.ms).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: failover wait-brokers|wait-isr|run [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "wait-brokers":
		err = waitBrokers(os.Args[2:])
	case "wait-isr":
		err = waitISR(os.Args[2:])
	case "run":
		err = run(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "failover:", err)
		os.Exit(1)
	}
}

// ask runs f with an admin client of its own, closed afterwards. kgo answers metadata from a
// cache younger than its metadata age, so a poll that wants what the cluster says now needs a
// new client each time.
func ask(ctx context.Context, brokers string, f func(ctx context.Context, adm *kadm.Client) error) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ClientID("vltava-failover"))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return f(ctx, kadm.NewClient(cl))
}

// poll calls f every 50 ms until it says done or the timeout passes.
func poll(timeout time.Duration, what string, f func(ctx context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		done, err := f(ctx)
		if done {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not after %s (last error: %v)", what, timeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func waitBrokers(args []string) error {
	fs := flag.NewFlagSet("wait-brokers", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "seed brokers")
	nodes := fs.Int("nodes", 3, "brokers to wait for")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return poll(*timeout, fmt.Sprintf("%d brokers in metadata", *nodes), func(ctx context.Context) (bool, error) {
		n := 0
		err := ask(ctx, *brokers, func(ctx context.Context, adm *kadm.Client) error {
			m, err := adm.BrokerMetadata(ctx)
			n = len(m.Brokers)
			return err
		})
		return err == nil && n >= *nodes, err
	})
}

func waitISR(args []string) error {
	fs := flag.NewFlagSet("wait-isr", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "seed brokers")
	topic := fs.String("topic", "", "topic")
	timeout := fs.Duration("timeout", 120*time.Second, "give up after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return poll(*timeout, "full ISR of "+*topic, func(ctx context.Context) (bool, error) {
		full := false
		err := ask(ctx, *brokers, func(ctx context.Context, adm *kadm.Client) error {
			td, err := adm.ListTopics(ctx, *topic)
			if err != nil {
				return err
			}
			t, ok := td[*topic]
			if !ok || len(t.Partitions) == 0 {
				return fmt.Errorf("topic %s not in metadata (%v)", *topic, t.Err)
			}
			for _, p := range t.Partitions {
				if p.Err != nil || p.Leader < 0 || len(p.ISR) != len(p.Replicas) {
					return p.Err
				}
			}
			full = true
			return nil
		})
		return full, err
	})
}

// Outcome is what run prints.
type Outcome struct {
	Signal     string `json:"signal"`
	KilledNode int32  `json:"killed_node"`
	KilledPid  int    `json:"killed_pid"`
	// WasController: the stopped node was the active controller, so the quorum had to elect
	// another before any broker could be fenced.
	WasController bool  `json:"was_controller"`
	NewLeader     int32 `json:"new_leader"`
	// UnavailableMs: from the signal to the first batch acknowledged by a broker other than
	// the stopped one (-1 if none within --timeout).
	UnavailableMs float64 `json:"unavailable_ms"`
	// MetadataMs: from the signal until a surviving broker's metadata names another leader.
	MetadataMs float64 `json:"metadata_ms"`
	// Failed counts records whose produce failed (the error reached the application).
	Failed     int64  `json:"failed"`
	FirstError string `json:"first_error,omitempty"`
	Acked      int64  `json:"acked"`
}

// ackHook notes, after the signal, the first batch a broker other than the stopped one
// acknowledged.
type ackHook struct {
	killedAt atomic.Int64 // ns since base; 0 before the signal
	killed   atomic.Int32
	first    atomic.Int64 // ns since base of the first ack by another broker after the signal
	by       atomic.Int32
	base     time.Time
}

func (h *ackHook) OnProduceBatchWritten(meta kgo.BrokerMetadata, _ string, _ int32, _ kgo.ProduceBatchMetrics) {
	if h.killedAt.Load() == 0 || meta.NodeID == h.killed.Load() {
		return
	}
	if h.first.CompareAndSwap(0, int64(time.Since(h.base))) {
		h.by.Store(meta.NodeID)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "seed brokers")
	topic := fs.String("topic", "", "topic (partition 0 is produced to)")
	pidList := fs.String("pids", "", "node.id=pid,... of the cluster's processes")
	sig := fs.String("signal", "KILL", "KILL or TERM")
	rate := fs.Int("rate", 2000, "records per second")
	size := fs.Int("record-size", 1024, "value bytes")
	warm := fs.Duration("warmup", time.Second, "produce this long before the signal")
	after := fs.Duration("after", 2*time.Second, "keep producing this long after the first ack by the new leader")
	timeout := fs.Duration("timeout", 60*time.Second, "give up waiting for the new leader after")
	debug := fs.Bool("debug", false, "log the producer client's debug lines to stderr (what the client saw during the failover)")
	victim := fs.String("victim", "leader", "leader: partition 0's leader, whichever node it is; controller: first move partition 0's "+
		"leadership to the active controller (a reassignment that puts it first, then a preferred election), so the stopped "+
		"node is both")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pids := map[int32]int{}
	for _, kv := range strings.Split(*pidList, ",") {
		k, v, ok := strings.Cut(kv, "=")
		id, err1 := strconv.Atoi(k)
		pid, err2 := strconv.Atoi(v)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("--pids: bad entry %q", kv)
		}
		pids[int32(id)] = pid
	}
	signal := map[string]syscall.Signal{"KILL": syscall.SIGKILL, "TERM": syscall.SIGTERM}[*sig]
	if signal == 0 {
		return fmt.Errorf("--signal %q: want KILL or TERM", *sig)
	}
	switch *victim {
	case "leader":
	case "controller":
		if err := leadFromController(*brokers, *topic, *timeout); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--victim %q: want leader or controller", *victim)
	}

	// leaderOf asks brokers for partition 0's leader.
	leaderOf := func(ctx context.Context, brokers string) (int32, error) {
		leader := int32(-1)
		err := ask(ctx, brokers, func(ctx context.Context, adm *kadm.Client) error {
			td, err := adm.ListTopics(ctx, *topic)
			if err != nil {
				return err
			}
			p, ok := td[*topic].Partitions[0]
			if !ok || p.Err != nil {
				return fmt.Errorf("partition 0: %v", p.Err)
			}
			leader = p.Leader
			return nil
		})
		return leader, err
	}

	base := time.Now()
	hook := &ackHook{base: base}
	backoff := func(n int) time.Duration { return min(100*time.Millisecond<<min(n, 4), time.Second) }
	opts := []kgo.Opt{kgo.SeedBrokers(strings.Split(*brokers, ",")...), kgo.ClientID("vltava-failover"),
		kgo.DefaultProduceTopic(*topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.RetryBackoffFn(backoff), kgo.WithHooks(hook)}
	if *debug {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, nil)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	var out Outcome
	out.Signal = *sig
	var acked, failed atomic.Int64
	var errMu sync.Mutex
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	value := make([]byte, *size)
	for i := range value {
		value[i] = 'A' + byte(i%26)
	}
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		interval := time.Second / time.Duration(max(*rate, 1))
		next := time.Now()
		for ctx.Err() == nil {
			r := &kgo.Record{Value: value, Partition: 0}
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err == nil {
					acked.Add(1)
					return
				}
				if errors.Is(err, context.Canceled) {
					return
				}
				if failed.Add(1) == 1 {
					errMu.Lock()
					out.FirstError = err.Error()
					errMu.Unlock()
				}
			})
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
	}()

	if err := poll(*timeout, "first acks", func(context.Context) (bool, error) { return acked.Load() > 0, nil }); err != nil {
		return err
	}
	time.Sleep(*warm)
	leader, err := leaderOf(context.Background(), *brokers)
	if err != nil {
		return fmt.Errorf("leader of %s-0: %w", *topic, err)
	}
	pid, ok := pids[leader]
	if !ok {
		return fmt.Errorf("leader %d is not in --pids", leader)
	}
	// Metadata from the surviving brokers only, so that no request waits on the stopped one.
	var survivors []string
	_ = ask(context.Background(), *brokers, func(ctx context.Context, adm *kadm.Client) error {
		m, err := adm.BrokerMetadata(ctx)
		out.WasController = err == nil && m.Controller == leader
		for _, b := range m.Brokers {
			if b.NodeID != leader {
				survivors = append(survivors, fmt.Sprintf("%s:%d", b.Host, b.Port))
			}
		}
		return err
	})
	out.KilledNode, out.KilledPid = leader, pid
	hook.killed.Store(leader)
	killedAt := time.Since(base)
	hook.killedAt.Store(int64(killedAt))
	if err := syscall.Kill(pid, signal); err != nil {
		return fmt.Errorf("signal %d: %w", pid, err)
	}

	out.MetadataMs = -1
	if len(survivors) > 0 {
		_ = poll(*timeout, "new leader in metadata", func(ctx context.Context) (bool, error) {
			l, err := leaderOf(ctx, strings.Join(survivors, ","))
			if err == nil && l >= 0 && l != leader {
				out.MetadataMs = float64(time.Since(base)-killedAt) / 1e6
				return true, nil
			}
			return false, err
		})
	}
	out.UnavailableMs = -1
	if err := poll(*timeout, "first ack by another broker", func(context.Context) (bool, error) { return hook.first.Load() != 0, nil }); err == nil {
		out.UnavailableMs = float64(time.Duration(hook.first.Load())-killedAt) / 1e6
		out.NewLeader = hook.by.Load()
		time.Sleep(*after)
	}
	stop()
	<-produced
	fctx, fcancel := context.WithTimeout(context.Background(), *timeout)
	_ = cl.Flush(fctx)
	fcancel()
	out.Acked, out.Failed = acked.Load(), failed.Load()
	errMu.Lock()
	defer errMu.Unlock()
	return json.NewEncoder(os.Stdout).Encode(out)
}

// leadFromController makes the active controller partition 0's leader: a reassignment to the
// same replicas with the controller first (complete at once, as they are all in the ISR), then
// a preferred leader election, and waits until metadata says so.
func leadFromController(brokers, topic string, timeout time.Duration) error {
	return poll(timeout, "partition 0 led by the active controller", func(context.Context) (bool, error) {
		done := false
		err := ask(context.Background(), brokers, func(ctx context.Context, adm *kadm.Client) error {
			m, err := adm.Metadata(ctx, topic)
			if err != nil {
				return err
			}
			p, ok := m.Topics[topic].Partitions[0]
			if !ok || p.Err != nil {
				return fmt.Errorf("partition 0: %v", p.Err)
			}
			if p.Leader == m.Controller {
				done = true
				return nil
			}
			if p.Replicas[0] != m.Controller {
				order := []int32{m.Controller}
				for _, r := range p.Replicas {
					if r != m.Controller {
						order = append(order, r)
					}
				}
				var req kadm.AlterPartitionAssignmentsReq
				req.Assign(topic, 0, order)
				if _, err := adm.AlterPartitionAssignments(ctx, req); err != nil {
					return err
				}
			}
			_, err = adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{topic: {0: {}}})
			return err
		})
		return done, err
	})
}
