package broker

// ISR changes a leader replica proposes (partition.ISRChange) go to the active
// controller as one AlterPartition (v3: topic IDs, each member with the broker epoch it
// fetched with, KIP-903), and the answer comes back to the replica: ISRCommitted, or
// ISRFailed with partition.AlterOutcomeOf's reading of the code. The replica keeps at
// most one change in flight per partition; here the latest change per partition waits
// until the sender is free, so a burst of changes costs one request. A failed request
// (no controller reachable) is sent again after a backoff.
//
// The sender is the controller channel (isrSender). Until one is installed
// (SetISRSender) changes wait here, and a leader whose follower fell behind keeps its
// high watermark waiting for it, as a Kafka leader does while its AlterPartition cannot
// reach the controller.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/partition"
)

// isrSender sends an AlterPartition to the active controller: the node's controller
// channel (openController in node.go), or a stand-in in tests.
type isrSender interface {
	AlterPartition(ctx context.Context, req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, error)
}

// RequestSender sends a request to the active controller (the controller channel).
type RequestSender interface {
	Send(ctx context.Context, req kmsg.Request) (kmsg.Response, error)
}

// channelISR sends AlterPartition through a controller channel.
type channelISR struct{ ch RequestSender }

func (c channelISR) AlterPartition(ctx context.Context, req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, error) {
	resp, err := c.ch.Send(ctx, req)
	if err != nil {
		return nil, err
	}
	ap, ok := resp.(*kmsg.AlterPartitionResponse)
	if !ok {
		return nil, fmt.Errorf("AlterPartition answered with %T", resp)
	}
	return ap, nil
}

// SendISRChangesBy makes ISR changes go to the active controller through ch.
func (b *Broker) SendISRChangesBy(ch RequestSender) { b.SetISRSender(channelISR{ch}) }

// isrRetryBackoff is how long a failed AlterPartition waits before it is sent again
// (Kafka's AlterPartitionManager retries after a similar short backoff).
const isrRetryBackoff = 500 * time.Millisecond

type isrQueue struct {
	b *Broker

	mu      sync.Mutex
	sender  isrSender
	pending map[partKey]partition.ISRChange
	wake    chan struct{} // buffered 1
	stop    chan struct{}
	done    chan struct{}
	warned  bool
}

func newISRQueue(b *Broker) *isrQueue {
	q := &isrQueue{b: b, pending: map[partKey]partition.ISRChange{}, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go q.run()
	return q
}

// SetISRSender installs the channel ISR changes go to the controller by.
func (b *Broker) SetISRSender(s isrSender) {
	q := b.replicas.isr
	q.mu.Lock()
	q.sender = s
	q.mu.Unlock()
	q.signal()
}

// send queues c for key; it never blocks (the replica calls it without its locks, but
// from request paths).
func (q *isrQueue) send(key partKey, c partition.ISRChange) {
	q.mu.Lock()
	q.pending[key] = c
	q.mu.Unlock()
	q.signal()
}

func (q *isrQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *isrQueue) close() {
	close(q.stop)
	<-q.done
}

func (q *isrQueue) run() {
	defer close(q.done)
	for {
		select {
		case <-q.stop:
			return
		case <-q.wake:
		}
		for {
			q.mu.Lock()
			sender, batch := q.sender, q.pending
			if sender == nil || len(batch) == 0 {
				if sender == nil && len(batch) > 0 && !q.warned {
					q.warned = true
					q.b.logger.Warn("ISR changes wait: no controller channel to send AlterPartition by", "partitions", len(batch))
				}
				q.mu.Unlock()
				break
			}
			q.pending = map[partKey]partition.ISRChange{}
			q.mu.Unlock()
			if !q.deliver(sender, batch) {
				q.mu.Lock()
				for k, c := range batch {
					if _, newer := q.pending[k]; !newer {
						q.pending[k] = c
					}
				}
				q.mu.Unlock()
				select {
				case <-q.stop:
					return
				case <-time.After(isrRetryBackoff):
				}
			}
		}
	}
}

// deliver sends batch as one AlterPartition and applies the answer; false means the
// request failed as a whole and is to be sent again.
func (q *isrQueue) deliver(sender isrSender, batch map[partKey]partition.ISRChange) bool {
	b := q.b
	im := b.Image()
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version = 3
	req.BrokerID, req.BrokerEpoch = b.cfg.NodeID, b.BrokerEpoch()
	type sentPart struct {
		key partKey
		seq uint64
	}
	sent := map[[16]byte]map[int32]sentPart{}
	topics := map[string]int{}
	for key, c := range batch {
		t := im.Topic(key.topic)
		if t == nil {
			continue // deleted: nothing to change
		}
		i, ok := topics[key.topic]
		if !ok {
			i = len(req.Topics)
			topics[key.topic] = i
			rt := kmsg.NewAlterPartitionRequestTopic()
			rt.Topic, rt.TopicID = t.Name, t.ID
			req.Topics = append(req.Topics, rt)
			sent[t.ID] = map[int32]sentPart{}
		}
		rp := kmsg.NewAlterPartitionRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = key.partition, c.LeaderEpoch, c.PartitionEpoch
		for _, m := range c.ISR {
			e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
			e.BrokerID, e.BrokerEpoch = m.BrokerID, m.BrokerEpoch
			rp.NewEpochISR = append(rp.NewEpochISR, e)
			rp.NewISR = append(rp.NewISR, m.BrokerID)
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		sent[t.ID][key.partition] = sentPart{key, c.Seq}
	}
	if len(req.Topics) == 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.requestTimeout())
	defer cancel()
	resp, err := sender.AlterPartition(ctx, req)
	if err == nil && resp.ErrorCode != 0 {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		b.logger.Info("AlterPartition failed; sent again", "err", err)
		return false
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			s, ok := sent[rt.TopidID][rp.Partition]
			if !ok {
				continue
			}
			p := b.Partition(s.key.topic, s.key.partition)
			if p == nil || !p.Replicated() {
				continue
			}
			if rp.ErrorCode == 0 {
				p.ISRCommitted(s.seq, rp.LeaderEpoch, rp.PartitionEpoch, rp.ISR)
			} else {
				b.logger.Info("AlterPartition refused", "topic", s.key.topic, "partition", s.key.partition,
					"err", kerr.ErrorForCode(rp.ErrorCode))
				p.ISRFailed(s.seq, partition.AlterOutcomeOf(rp.ErrorCode))
			}
		}
	}
	return true
}
