package cluster

// The Go libraries of the cluster client matrix (clients_test.go), in this process:
// franz-go, sarama and segmentio/kafka-go.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceInterval paces every producer, so that six of them and three brokers share the
// machine's cores with room to spare.
const produceInterval = 10 * time.Millisecond

// endSet tracks which partitions a consumer has read endValue in.
type endSet struct {
	mu    sync.Mutex
	seen  map[int32]bool
	parts int32
	done  chan struct{}
}

func newEndSet(parts int32) *endSet {
	return &endSet{seen: map[int32]bool{}, parts: parts, done: make(chan struct{})}
}

// saw records a value read in partition p and reports whether every partition has ended.
func (e *endSet) saw(p int32, v string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if v == endValue && !e.seen[p] {
		e.seen[p] = true
		if int32(len(e.seen)) == e.parts {
			close(e.done)
		}
	}
	return int32(len(e.seen)) == e.parts
}

func (e *endSet) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprintf("%s read in %d of %d partitions", endValue, len(e.seen), e.parts)
}

// pace calls send(seq) every produceInterval until stop is closed and returns the number
// of sends.
func pace(ctx context.Context, stop <-chan struct{}, send func(seq int)) (int, error) {
	tick := time.NewTicker(produceInterval)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return seq, nil
		case <-ctx.Done():
			return seq, ctx.Err()
		case <-tick.C:
		}
		send(seq)
	}
}

func value(name string, seq int) string { return fmt.Sprintf("%s-%08d", name, seq) }

// ---------------------------------------------------------------- franz-go

func franzMatrix() *matrixClient {
	return &matrixClient{name: "franz-go", idempotent: true, reportsAcks: true,
		produce: func(ctx context.Context, seeds []string, topic string, parts int32, stop <-chan struct{}, ack func(string)) error {
			// Idempotent with acks=all by default; retries until the context ends.
			cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
				kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
			if err != nil {
				return err
			}
			defer cl.Close()
			var mu sync.Mutex
			var errs []error
			send := func(v string, p int32) {
				cl.Produce(ctx, &kgo.Record{Partition: p, Value: []byte(v)}, func(r *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
					if v != endValue {
						ack(v)
					}
				})
			}
			if _, err := pace(ctx, stop, func(seq int) { send(value("franz-go", seq), int32(seq)%parts) }); err != nil {
				return err
			}
			for p := range parts {
				send(endValue, p)
			}
			if err := cl.Flush(ctx); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			return errors.Join(errs...)
		},
		consume: func(ctx context.Context, seeds []string, topic, group string, parts int32, got func(int32, int64, string)) error {
			cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
			if err != nil {
				return err
			}
			defer cl.Close()
			ends := newEndSet(parts)
			for {
				fs := cl.PollFetches(ctx)
				if ctx.Err() != nil {
					return fmt.Errorf("%w (%s)", ctx.Err(), ends)
				}
				// Errors while a broker is down are retried by the client; only a
				// fatal one ends the poll loop.
				done := false
				fs.EachRecord(func(r *kgo.Record) {
					got(r.Partition, r.Offset, string(r.Value))
					done = ends.saw(r.Partition, string(r.Value))
				})
				if done {
					return nil
				}
			}
		},
	}
}

// ---------------------------------------------------------------- sarama

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = "cluster-matrix"
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1 // sarama's condition for idempotence
	cfg.Producer.Retry.Max = 1000
	cfg.Producer.Retry.Backoff = 100 * time.Millisecond
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Metadata.Retry.Max = 1000
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 500 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 10 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = time.Second
	return cfg
}

func saramaMatrix() *matrixClient {
	return &matrixClient{name: "sarama", idempotent: true, reportsAcks: true,
		produce: func(ctx context.Context, seeds []string, topic string, parts int32, stop <-chan struct{}, ack func(string)) error {
			prod, err := sarama.NewAsyncProducer(seeds, saramaConfig())
			if err != nil {
				return err
			}
			var errs []error
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				for m := range prod.Successes() {
					if v, _ := m.Value.Encode(); string(v) != endValue {
						ack(string(v))
					}
				}
			}()
			go func() {
				defer wg.Done()
				for e := range prod.Errors() {
					errs = append(errs, e)
				}
			}()
			send := func(v string, p int32) {
				select {
				case prod.Input() <- &sarama.ProducerMessage{Topic: topic, Partition: p, Value: sarama.StringEncoder(v)}:
				case <-ctx.Done():
				}
			}
			_, perr := pace(ctx, stop, func(seq int) { send(value("sarama", seq), int32(seq)%parts) })
			for p := range parts {
				send(endValue, p)
			}
			prod.AsyncClose() // flushes what is buffered, then closes both channels
			wg.Wait()
			return errors.Join(append(errs, perr)...)
		},
		consume: func(ctx context.Context, seeds []string, topic, group string, parts int32, got func(int32, int64, string)) error {
			g, err := sarama.NewConsumerGroup(seeds, group, saramaConfig())
			if err != nil {
				return err
			}
			defer g.Close()
			go func() {
				for range g.Errors() { // transient while a broker is down; sarama retries
				}
			}()
			ends := newEndSet(parts)
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			h := saramaClaims{got: got, ends: ends, cancel: cancel}
			for cctx.Err() == nil {
				if err := g.Consume(cctx, []string{topic}, h); err != nil && cctx.Err() == nil {
					// A rebalance or a coordinator moving: join again.
					select {
					case <-cctx.Done():
					case <-time.After(100 * time.Millisecond): // sarama's own retry pace
					}
				}
			}
			select {
			case <-ends.done:
				return nil
			default:
				return fmt.Errorf("%w (%s)", ctx.Err(), ends)
			}
		},
	}
}

type saramaClaims struct {
	got    func(int32, int64, string)
	ends   *endSet
	cancel context.CancelFunc
}

func (saramaClaims) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaClaims) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h saramaClaims) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case <-sess.Context().Done():
			return nil
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.got(m.Partition, m.Offset, string(m.Value))
			sess.MarkMessage(m, "")
			if h.ends.saw(m.Partition, string(m.Value)) {
				h.cancel()
			}
		}
	}
}

// ---------------------------------------------------------------- kafka-go

func kafkaGoMatrix() *matrixClient {
	return &matrixClient{name: "kafka-go", idempotent: false, reportsAcks: true, // kafka-go has no idempotent producer
		produce: func(ctx context.Context, seeds []string, topic string, parts int32, stop <-chan struct{}, ack func(string)) error {
			w := &kafka.Writer{Addr: kafka.TCP(seeds...), Topic: topic, RequiredAcks: kafka.RequireAll,
				// The partition is in the key: seq % partitions, or the partition of an
				// endValue record.
				Balancer: kafka.BalancerFunc(func(m kafka.Message, ps ...int) int {
					n, _ := strconv.Atoi(string(m.Key))
					return ps[n%len(ps)]
				}),
				BatchTimeout: 5 * time.Millisecond, MaxAttempts: 1000,
				WriteBackoffMin: 50 * time.Millisecond, WriteBackoffMax: 500 * time.Millisecond}
			defer w.Close()
			// Sent in batches of ten: one synchronous write per record would be paced by
			// the round trip, not by produceInterval.
			var batch []kafka.Message
			var failed []error
			flush := func() {
				if len(batch) == 0 {
					return
				}
				err := w.WriteMessages(ctx, batch...)
				var we kafka.WriteErrors
				for i, m := range batch {
					switch {
					case err == nil, errors.As(err, &we) && we[i] == nil:
						if string(m.Value) != endValue {
							ack(string(m.Value))
						}
					default:
						failed = append(failed, err)
					}
				}
				batch = batch[:0]
			}
			_, perr := pace(ctx, stop, func(seq int) {
				batch = append(batch, kafka.Message{Key: []byte(strconv.Itoa(seq % int(parts))), Value: []byte(value("kafka-go", seq))})
				if len(batch) == 10 {
					flush()
				}
			})
			for p := range parts {
				batch = append(batch, kafka.Message{Key: []byte(strconv.Itoa(int(p))), Value: []byte(endValue)})
			}
			flush()
			if len(failed) > 0 {
				return fmt.Errorf("%d records failed, first %w", len(failed), failed[0])
			}
			return perr
		},
		consume: func(ctx context.Context, seeds []string, topic, group string, parts int32, got func(int32, int64, string)) error {
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: seeds, GroupID: group, Topic: topic,
				StartOffset: kafka.FirstOffset, MaxWait: 500 * time.Millisecond, CommitInterval: 500 * time.Millisecond,
				SessionTimeout: 10 * time.Second, HeartbeatInterval: time.Second})
			defer r.Close()
			ends := newEndSet(parts)
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return fmt.Errorf("%w (%s)", err, ends)
					}
					if strings.Contains(err.Error(), "closed") {
						return err
					}
					continue // the reader retries its group and connections itself
				}
				got(int32(m.Partition), m.Offset, string(m.Value))
				if ends.saw(int32(m.Partition), string(m.Value)) {
					return nil
				}
			}
		},
	}
}
