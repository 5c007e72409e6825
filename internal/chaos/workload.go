package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// WorkloadOptions shape the clients of a run.
type WorkloadOptions struct {
	Topic      string
	Partitions int32
	// Replication is the topic's replication factor (0: 1), MinInsync its
	// min.insync.replicas (0: the broker's default).
	Replication int
	MinInsync   int
	Group       string
	// Producers idempotent acks=all writers, plus one acks=1 writer
	// without idempotence when AcksOne is set (the contrast: its losses
	// are reported but allowed).
	Producers int
	AcksOne   bool
	// Rate is records per second per writer.
	Rate int
	// Consumers in the group, committing after every poll.
	Consumers int
	// Pad is filler bytes after each value's "<writer>-<seq>|".
	Pad int
	// DeliveryTimeout bounds a record's wait for its acknowledgement,
	// retries included (0: 15 s); past it the application gets an error.
	DeliveryTimeout time.Duration
}

func (o WorkloadOptions) deliveryTimeout() time.Duration {
	if o.DeliveryTimeout > 0 {
		return o.DeliveryTimeout
	}
	return 15 * time.Second
}

// workload runs the writers and consumers of a run into a recorder.
type workload struct {
	opts  WorkloadOptions
	seeds []string
	rec   *Recorder
	logf  func(string, ...any)

	// clientLog, when set, receives the clients' own warnings (a
	// connection a broker closed, a request that failed), each line
	// prefixed by the client's name: where an error a writer got came
	// from.
	clientLog io.Writer

	wg      sync.WaitGroup
	clients []*kgo.Client
}

// logOpt is the option that sends a client's warnings to the client log.
func (wl *workload) logOpt(name string) []kgo.Opt {
	if wl.clientLog == nil {
		return nil
	}
	return []kgo.Opt{kgo.WithLogger(kgo.BasicLogger(wl.clientLog, kgo.LogLevelWarn, func() string {
		return fmt.Sprintf("%s %s ", time.Now().UTC().Format(time.RFC3339Nano), name)
	}))}
}

// writers lists the run's writers with their guarantees.
func (o WorkloadOptions) writers() []Writer {
	var ws []Writer
	for i := range o.Producers {
		ws = append(ws, Writer{ID: fmt.Sprintf("w%d", i+1), Acks: -1, Idempotent: true})
	}
	if o.AcksOne {
		ws = append(ws, Writer{ID: "a1", Acks: 1})
	}
	return ws
}

// clientOpts are the options every client of the battery shares: short
// timeouts so that a fault shows as errors and retries, not as a hang.
func clientOpts(seeds []string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DialTimeout(3 * time.Second),
		kgo.RequestTimeoutOverhead(5 * time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
}

// start launches every client; they run until ctx ends.
func (wl *workload) start(ctx context.Context) error {
	for _, w := range wl.opts.writers() {
		opts := append(clientOpts(wl.seeds),
			kgo.DefaultProduceTopic(wl.opts.Topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerLinger(5*time.Millisecond),
			kgo.MaxBufferedRecords(2000),
			kgo.RecordDeliveryTimeout(wl.opts.deliveryTimeout()),
			kgo.ProduceRequestTimeout(5*time.Second),
		)
		opts = append(opts, wl.logOpt(w.ID)...)
		if w.Acks == 1 {
			opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
		} else {
			opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return err
		}
		wl.clients = append(wl.clients, cl)
		wl.wg.Add(1)
		go func() { defer wl.wg.Done(); wl.produce(ctx, cl, w) }()
	}
	for i := range wl.opts.Consumers {
		name := fmt.Sprintf("c%d", i+1)
		opts := append(clientOpts(wl.seeds),
			kgo.ConsumerGroup(wl.opts.Group),
			kgo.ConsumeTopics(wl.opts.Topic),
			kgo.DisableAutoCommit(),
			kgo.BlockRebalanceOnPoll(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxWait(500*time.Millisecond),
			kgo.SessionTimeout(10*time.Second),
			kgo.HeartbeatInterval(time.Second),
			kgo.OnPartitionsAssigned(wl.onAssign(name, true)),
			kgo.OnPartitionsRevoked(wl.onAssign(name, false)),
			kgo.OnPartitionsLost(wl.onAssign(name, false)),
		)
		opts = append(opts, wl.logOpt(name)...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return err
		}
		wl.clients = append(wl.clients, cl)
		wl.wg.Add(1)
		go func() { defer wl.wg.Done(); wl.consume(ctx, cl, name) }()
	}
	return nil
}

// stop waits for the clients to finish (ctx must have ended), failing what
// they still buffer, so every write has a recorded outcome.
func (wl *workload) stop() {
	wl.wg.Wait()
	for _, cl := range wl.clients {
		cl.Close()
	}
}

// produce writes "<writer>-<seq>" to partition seq mod partitions at the
// configured rate until ctx ends, then waits for every outcome.
func (wl *workload) produce(ctx context.Context, cl *kgo.Client, w Writer) {
	var inflight sync.WaitGroup
	defer inflight.Wait()
	every := time.Second / time.Duration(max(1, wl.opts.Rate))
	tick := time.NewTicker(every)
	defer tick.Stop()
	pad := strings.Repeat("x", wl.opts.Pad)
	for seq := int64(0); ; seq++ {
		select {
		case <-ctx.Done():
			// Buffered records would wait for the broker for up to the
			// delivery timeout; the run is over, so fail them now.
			cl.PurgeTopicsFromProducing(wl.opts.Topic)
			return
		case <-tick.C:
		}
		p := int32(seq % int64(wl.opts.Partitions))
		value := fmt.Sprintf("%s-%d|%s", w.ID, seq, pad)
		write := Write{Writer: w.ID, Seq: seq, Partition: p, Value: valueKey(value), Invoke: wl.rec.Now(), Offset: -1}
		inflight.Add(1)
		// Produce blocks while the buffer is full: the writer slows down
		// with the broker instead of queueing without bound.
		cl.Produce(ctx, &kgo.Record{Partition: p, Value: []byte(value)}, func(r *kgo.Record, err error) {
			defer inflight.Done()
			write.Complete = wl.rec.Now()
			if err != nil {
				write.Err = err.Error()
			} else {
				write.Offset = r.Offset
			}
			wl.rec.Do(func(h *History) { h.Writes = append(h.Writes, write) })
		})
	}
}

// valueKey is the unique part of a value: "<writer>-<seq>", without the
// padding.
func valueKey(v string) string {
	k, _, _ := strings.Cut(v, "|")
	return k
}

func (wl *workload) onAssign(name string, assigned bool) func(context.Context, *kgo.Client, map[string][]int32) {
	return func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
		ps := m[wl.opts.Topic]
		if len(ps) == 0 {
			return
		}
		a := Assign{Consumer: name, Time: wl.rec.Now(), Assigned: assigned, Partitions: append([]int32(nil), ps...)}
		wl.rec.Do(func(h *History) { h.Assigns = append(h.Assigns, a) })
	}
}

// consume polls, records what each poll returned, commits it, and only then
// lets a rebalance happen (so a commit never races a revocation).
func (wl *workload) consume(ctx context.Context, cl *kgo.Client, name string) {
	for ctx.Err() == nil {
		fs := cl.PollRecords(ctx, 500)
		now := wl.rec.Now()
		var polls []Poll
		next := map[int32]int64{}
		fs.EachPartition(func(ft kgo.FetchTopicPartition) {
			if len(ft.Records) == 0 {
				return
			}
			pl := Poll{Consumer: name, Time: now, Partition: ft.Partition}
			for _, r := range ft.Records {
				pl.Records = append(pl.Records, Record{Offset: r.Offset, Value: valueKey(string(r.Value))})
			}
			polls = append(polls, pl)
			next[ft.Partition] = ft.Records[len(ft.Records)-1].Offset + 1
		})
		if len(polls) > 0 {
			wl.rec.Do(func(h *History) { h.Polls = append(h.Polls, polls...) })
			wl.commit(ctx, cl, name, next)
		}
		cl.AllowRebalance()
	}
}

// commit commits the next offsets of the partitions just polled and records
// each partition's outcome.
func (wl *workload) commit(ctx context.Context, cl *kgo.Client, name string, next map[int32]int64) {
	offs := map[string]map[int32]kgo.EpochOffset{wl.opts.Topic: {}}
	for p, o := range next {
		offs[wl.opts.Topic][p] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	invoke := wl.rec.Now()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var commits []Commit
	cl.CommitOffsetsSync(cctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		complete := wl.rec.Now()
		for p, o := range next {
			c := Commit{Consumer: name, Partition: p, Offset: o, Invoke: invoke, Complete: complete}
			if e := commitErr(resp, wl.opts.Topic, p, err); e != nil {
				c.Err = e.Error()
			}
			commits = append(commits, c)
		}
	})
	wl.rec.Do(func(h *History) { h.Commits = append(h.Commits, commits...) })
}

// commitErr is the outcome of partition p in a commit response.
func commitErr(resp *kmsg.OffsetCommitResponse, topic string, p int32, err error) error {
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		if t.Topic != topic {
			continue
		}
		for _, tp := range t.Partitions {
			if tp.Partition == p {
				return kerr.ErrorForCode(tp.ErrorCode)
			}
		}
	}
	return fmt.Errorf("no answer for %s-%d", topic, p)
}

// finalRead reads every partition from its start to its end offset on each
// node, and the group's committed offsets, into the history.
func finalRead(ctx context.Context, rec *Recorder, nodes []*Node, topic, group string, partitions int32) error {
	var errs []error
	for _, n := range nodes {
		if err := finalReadNode(ctx, rec, n, topic, partitions); err != nil {
			errs = append(errs, fmt.Errorf("node %d: %w", n.ID, err))
		}
	}
	cl, err := kgo.NewClient(clientOpts(addrs(nodes))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	offs, err := retry(ctx, func() (kadm.OffsetResponses, error) {
		r, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			err = r.Error()
		}
		return r, err
	})
	if err != nil {
		// Nothing recorded: an unanswered fetch says nothing about what
		// the group has committed.
		return errors.Join(append(errs, fmt.Errorf("fetch the group's offsets: %w", err))...)
	}
	rec.Do(func(h *History) {
		for p := range partitions {
			c := Committed{Partition: p, Offset: -1}
			if o, ok := offs.Lookup(topic, p); ok {
				c.Offset = o.At
			}
			h.Committed = append(h.Committed, c)
		}
	})
	return errors.Join(errs...)
}

func finalReadNode(ctx context.Context, rec *Recorder, n *Node, topic string, partitions int32) error {
	cl, err := kgo.NewClient(clientOpts([]string{n.Addr()})...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := retry(ctx, func() (kadm.ListedOffsets, error) {
		r, err := adm.ListStartOffsets(ctx, topic)
		if err == nil {
			err = r.Error()
		}
		return r, err
	})
	if err != nil {
		return fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := retry(ctx, func() (kadm.ListedOffsets, error) {
		r, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = r.Error()
		}
		return r, err
	})
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	want := map[int32]kgo.Offset{}
	need := map[int32]int64{}
	for p := range partitions {
		s, _ := starts.Lookup(topic, p)
		e, _ := ends.Lookup(topic, p)
		rec.Do(func(h *History) {
			h.FinalEnds = append(h.FinalEnds, FinalEnd{Node: n.ID, Partition: p, Start: s.Offset, End: e.Offset})
		})
		if e.Offset > s.Offset {
			want[p] = kgo.NewOffset().At(s.Offset)
			need[p] = e.Offset
		}
	}
	if len(want) == 0 {
		return nil
	}
	rd, err := kgo.NewClient(append(clientOpts([]string{n.Addr()}),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: want}),
		kgo.FetchMaxWait(200*time.Millisecond))...)
	if err != nil {
		return err
	}
	defer rd.Close()
	for len(need) > 0 {
		if ctx.Err() != nil {
			return fmt.Errorf("final read unfinished (%v): partitions %v not read to their end", ctx.Err(), need)
		}
		fs := rd.PollFetches(ctx)
		var reads []Read
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := need[r.Partition]; ok && r.Offset < end {
				reads = append(reads, Read{Node: n.ID, Partition: r.Partition, Record: Record{r.Offset, valueKey(string(r.Value))}})
				if r.Offset+1 >= end {
					delete(need, r.Partition)
				}
			}
		})
		rec.Do(func(h *History) { h.Final = append(h.Final, reads...) })
	}
	return nil
}

// retry calls f every 250 ms until it succeeds or ctx ends (a node that was
// just restarted may still be loading).
func retry[T any](ctx context.Context, f func() (T, error)) (T, error) {
	for {
		v, err := f()
		if err == nil || ctx.Err() != nil {
			return v, err
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, err
		case <-t.C:
		}
	}
}

func addrs(nodes []*Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Addr())
	}
	return out
}
