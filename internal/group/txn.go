package group

// Transactional offset commits (KIP-98, KIP-447): TxnOffsetCommit stages a
// transaction's offsets per producer; they are invisible to OffsetFetch
// (which answers UNSTABLE_OFFSET_COMMIT for them when require_stable is
// set) until the transaction coordinator ends the transaction with
// CompleteTxn, which writes them like ordinary commits or drops them.
//
// Limitation, documented on purpose: Kafka writes staged offsets to
// __consumer_offsets as transactional records resolved by the commit marker,
// so they survive a coordinator restart. The Store interface has no
// transactional appends, so staged offsets live in memory only: a broker
// restart between TxnOffsetCommit and CompleteTxn(commit) loses them (the
// group then resumes from its previous committed offsets).

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TxnOffsetCommit handles TxnOffsetCommit v0+ (v6 names topics by ID).
func (c *Coordinator) TxnOffsetCommit(req *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		rt.TopicID = t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	setAll := func(err *kerr.Error) *kmsg.TxnOffsetCommitResponse {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = err.Code
			}
		}
		return resp
	}
	if req.Group == "" {
		return setAll(kerr.InvalidGroupID)
	}
	topics := c.topics()
	byID := topicsByID(topics)
	now := c.cfg.Now()

	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.unavailableLocked(req.Group); err != nil {
		return setAll(err)
	}
	g := c.groups[req.Group]
	if g == nil && req.Generation >= 0 {
		return setAll(kerr.IllegalGeneration)
	}
	if g != nil {
		if err := c.validateTxnCommit(g, req); err != nil {
			return setAll(err)
		}
	}
	if g == nil {
		g = c.newClassicGroup(req.Group)
	}
	for i, t := range req.Topics {
		name := t.Topic
		if req.Version >= 6 {
			var ok bool
			if name, ok = byID[t.TopicID]; !ok {
				for j := range resp.Topics[i].Partitions {
					resp.Topics[i].Partitions[j].ErrorCode = kerr.UnknownTopicID.Code
				}
				continue
			}
		}
		for j, p := range t.Partitions {
			rp := &resp.Topics[i].Partitions[j]
			if rp.ErrorCode = c.commitPartitionError(topics, name, p.Partition, p.Metadata); rp.ErrorCode != 0 {
				continue
			}
			leaderEpoch := p.LeaderEpoch
			if req.Version < 2 {
				leaderEpoch = -1
			}
			g.stageTxnOffset(req.ProducerID, name, p.Partition, offsetCommit{
				offset:      p.Offset,
				leaderEpoch: leaderEpoch,
				metadata:    deref(p.Metadata),
				commitTime:  now,
			})
		}
	}
	return resp
}

// validateTxnCommit is validateCommit for transactional commits: members
// may commit while the group completes a rebalance, v0-v2 requests carry no
// member at all, and a stale member epoch reads as ILLEGAL_GENERATION.
func (c *Coordinator) validateTxnCommit(g *group, req *kmsg.TxnOffsetCommitRequest) *kerr.Error {
	if g.typ == typeConsumer {
		if err := g.cg.validateCommit(req.MemberID, req.Generation); err != nil {
			if err == kerr.StaleMemberEpoch {
				return kerr.IllegalGeneration
			}
			return err
		}
		return nil
	}
	if req.Generation < 0 && g.state == stateEmpty {
		return nil
	}
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil {
		if _, err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
			return err
		}
		if req.Generation != g.generation {
			return kerr.IllegalGeneration
		}
	}
	return nil
}

func (g *group) stageTxnOffset(producerID int64, topic string, partition int32, o offsetCommit) {
	if g.pendingTxn == nil {
		g.pendingTxn = make(map[int64]map[string]map[int32]offsetCommit)
	}
	byTopic := g.pendingTxn[producerID]
	if byTopic == nil {
		byTopic = make(map[string]map[int32]offsetCommit)
		g.pendingTxn[producerID] = byTopic
	}
	ps := byTopic[topic]
	if ps == nil {
		ps = make(map[int32]offsetCommit)
		byTopic[topic] = ps
	}
	ps[partition] = o
}

// hasPendingTxn reports whether some open transaction staged an offset for
// the partition: what require_stable refuses to answer for.
func (g *group) hasPendingTxn(topic string, partition int32) bool {
	for _, byTopic := range g.pendingTxn {
		if _, ok := byTopic[topic][partition]; ok {
			return true
		}
	}
	return false
}

// CompleteTxn ends producerID's transaction for the offsets it staged with
// TxnOffsetCommit: on commit they are written and become the groups'
// committed offsets, on abort they are dropped. The transaction
// coordinator calls it where Kafka writes the transaction marker to
// __consumer_offsets. On error nothing of the failed partition's offsets
// was applied and they stay staged, so the call can be retried.
func (c *Coordinator) CompleteTxn(ctx context.Context, producerID int64, commit bool) error {
	var errs []error
	for p := int32(0); p < c.cfg.NumPartitions; p++ {
		c.write(ctx, p, func() []Record {
			if !commit {
				for _, g := range c.groups {
					if g.partition == p {
						delete(g.pendingTxn, producerID)
					}
				}
				return nil
			}
			var recs []Record
			for _, g := range c.groups {
				if g.partition != p {
					continue
				}
				for topic, ps := range g.pendingTxn[producerID] {
					for part, o := range ps {
						recs = append(recs, Record{Key: offsetKey(g.id, topic, part), Value: offsetValue(o)})
					}
				}
			}
			return recs
		}, func(recs []Record, err error) {
			if err != nil {
				errs = append(errs, fmt.Errorf("commit transactional offsets of producer %d to partition %d: %w", producerID, p, err))
				return
			}
			for _, g := range c.groups {
				if g.partition == p {
					delete(g.pendingTxn, producerID)
				}
			}
			for _, r := range recs {
				if err := c.applyOffsetRecord(r); err != nil {
					panic(fmt.Sprintf("apply own transactional offset: %v", err))
				}
			}
		})
	}
	return errors.Join(errs...)
}
