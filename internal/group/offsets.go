package group

// Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete and offset
// retention, following Kafka's OffsetMetadataManager.
//
// Deviation, on purpose: the commit timestamp is always the coordinator's
// clock (v1's per-partition timestamp and v2-v4's retention time are
// ignored, as Kafka 4 ignores them).

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit handles OffsetCommit v0+ (v10 names topics by ID). Commits
// with generation -1 and no member come from simple consumers and admin
// tools; they are accepted for groups with no members, and create the group
// if it does not exist. Empty group IDs are accepted, as Kafka does for
// backward compatibility. It returns once the commit is durable.
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		rt.TopicID = t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	setAll := func(err *kerr.Error) {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = err.Code
			}
		}
	}
	topics := c.topics()
	byID := topicsByID(topics)
	now := c.cfg.Now()
	var written []*int16
	c.write(ctx, c.PartitionFor(req.Group), func() []Record {
		if err := c.unavailableLocked(req.Group); err != nil {
			setAll(err)
			return nil
		}
		if err := c.validateCommit(req.Group, req.Generation, req.MemberID, req.InstanceID, req.Version); err != nil {
			setAll(err)
			return nil
		}
		var recs []Record
		for i, t := range req.Topics {
			name := t.Topic
			if req.Version >= 10 {
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
				if req.Version < 6 {
					leaderEpoch = -1
				}
				recs = append(recs, Record{
					Key: offsetKey(req.Group, name, p.Partition),
					Value: offsetValue(offsetCommit{
						offset:      p.Offset,
						leaderEpoch: leaderEpoch,
						metadata:    deref(p.Metadata),
						commitTime:  now,
					}),
				})
				written = append(written, &rp.ErrorCode)
			}
		}
		return recs
	}, func(recs []Record, err error) {
		if err != nil {
			for _, e := range written {
				*e = kerr.CoordinatorNotAvailable.Code
			}
			return
		}
		for _, r := range recs {
			if err := c.applyOffsetRecord(r); err != nil {
				// We encoded it a moment ago: a failure is a bug.
				panic(fmt.Sprintf("apply own offset commit: %v", err))
			}
		}
	})
	return resp
}

// validateCommit is Kafka's validation of a (non-transactional) commit
// against the group's membership. nil means the commit may proceed. mu is
// held.
func (c *Coordinator) validateCommit(groupID string, generation int32, memberID string, instanceID *string, version int16) *kerr.Error {
	g := c.groups[groupID]
	if g == nil {
		if generation < 0 {
			return nil // a simple consumer's group: created when applied
		}
		if version >= 9 {
			return kerr.GroupIDNotFound
		}
		return kerr.IllegalGeneration
	}
	if g.typ == typeConsumer {
		return g.cg.validateCommit(memberID, generation)
	}
	if generation < 0 && g.state == stateEmpty {
		return nil
	}
	if generation >= 0 || memberID != "" || instanceID != nil {
		if _, err := g.validateMember(memberID, instanceID); err != nil {
			return err
		}
		if generation != g.generation {
			return kerr.IllegalGeneration
		}
	} else if g.state != stateEmpty {
		return kerr.UnknownMemberID
	}
	if g.state == stateCompletingRebalance {
		// The member knows the new generation but has no assignment yet:
		// it must not commit for partitions it may be about to lose.
		return kerr.RebalanceInProgress
	}
	return nil
}

func (c *Coordinator) topics() map[string]TopicInfo {
	if c.cfg.Topics == nil {
		return nil
	}
	return c.cfg.Topics()
}

func topicsByID(topics map[string]TopicInfo) map[[16]byte]string {
	m := make(map[[16]byte]string, len(topics))
	for name, t := range topics {
		m[t.ID] = name
	}
	return m
}

// fetchTopic is one topic of an OffsetFetch, whatever the version.
type fetchTopic struct {
	name       string
	id         [16]byte
	partitions []int32
}

// OffsetFetch handles OffsetFetch v0+: one group for v0-v7, many for v8+.
// An unknown group is not an error: its partitions answer offset -1.
func (c *Coordinator) OffsetFetch(req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	topics := c.topics()
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			var ft []fetchTopic
			if rg.Topics != nil {
				ft = []fetchTopic{}
				for _, t := range rg.Topics {
					ft = append(ft, fetchTopic{name: t.Topic, id: t.TopicID, partitions: t.Partitions})
				}
			}
			memberID, epoch := rg.MemberID, rg.MemberEpoch
			if req.Version < 9 {
				memberID, epoch = nil, -1 // not in the request before v9
			}
			resp.Groups = append(resp.Groups, c.fetchGroup(req.Version, rg.Group, memberID, epoch, ft, topics, req.RequireStable))
		}
		return resp
	}
	var ft []fetchTopic
	if req.Topics != nil {
		ft = []fetchTopic{}
		for _, t := range req.Topics {
			ft = append(ft, fetchTopic{name: t.Topic, partitions: t.Partitions})
		}
	}
	g := c.fetchGroup(req.Version, req.Group, nil, -1, ft, topics, req.RequireStable)
	resp.ErrorCode = g.ErrorCode
	for _, t := range g.Topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition = p.Partition
			rp.Offset = p.Offset
			rp.LeaderEpoch = p.LeaderEpoch
			rp.Metadata = p.Metadata
			rp.ErrorCode = p.ErrorCode
			if req.Version < 2 && g.ErrorCode != 0 {
				// v0-v1 have no group-level error code.
				rp.ErrorCode = g.ErrorCode
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// fetchGroup answers one group of an OffsetFetch. topics nil means all the
// group's committed offsets. With requireStable, a partition an open
// transaction staged an offset for answers UNSTABLE_OFFSET_COMMIT.
func (c *Coordinator) fetchGroup(version int16, groupID string, memberID *string, memberEpoch int32, req []fetchTopic, topics map[string]TopicInfo, requireStable bool) kmsg.OffsetFetchResponseGroup {
	rg := kmsg.NewOffsetFetchResponseGroup()
	rg.Group = groupID
	byID := topicsByID(topics)

	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.unavailableLocked(groupID); err != nil {
		rg.ErrorCode = err.Code
		return rg
	}
	g := c.groups[groupID]
	// A KIP-848 member fetching (v9+) names itself and its epoch; admin
	// tools and classic consumers send neither and are not checked.
	if g != nil && g.typ == typeConsumer && ((memberID != nil && *memberID != "") || memberEpoch >= 0) {
		if err := g.cg.validateFetch(deref(memberID), memberEpoch); err != nil {
			rg.ErrorCode = err.Code
			return rg
		}
	}
	partition := func(name string, p int32) kmsg.OffsetFetchResponseGroupTopicPartition {
		rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		rp.Partition = p
		rp.Offset = -1
		rp.LeaderEpoch = -1
		rp.Metadata = kmsg.StringPtr("")
		if g != nil {
			if requireStable && g.hasPendingTxn(name, p) {
				rp.ErrorCode = kerr.UnstableOffsetCommit.Code
				return rp
			}
			if o, ok := g.offsets[name][p]; ok {
				rp.Offset = o.offset
				rp.LeaderEpoch = o.leaderEpoch
				rp.Metadata = kmsg.StringPtr(o.metadata)
			}
		}
		return rp
	}
	if req == nil {
		if g == nil {
			return rg
		}
		names := make([]string, 0, len(g.offsets))
		for name := range g.offsets {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = name
			if version >= 10 {
				ti, ok := topics[name]
				if !ok {
					continue // no ID to name it by
				}
				rt.TopicID = ti.ID
			}
			ps := make([]int32, 0, len(g.offsets[name]))
			for p := range g.offsets[name] {
				ps = append(ps, p)
			}
			slices.Sort(ps)
			for _, p := range ps {
				rt.Partitions = append(rt.Partitions, partition(name, p))
			}
			rg.Topics = append(rg.Topics, rt)
		}
		return rg
	}
	for _, t := range req {
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic = t.name
		rt.TopicID = t.id
		name, known := t.name, true
		if version >= 10 {
			name, known = byID[t.id]
		}
		for _, p := range t.partitions {
			rp := partition(name, p)
			if !known {
				rp.ErrorCode = kerr.UnknownTopicID.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		rg.Topics = append(rg.Topics, rt)
	}
	return rg
}

// OffsetDelete handles OffsetDelete v0+: it removes a group's offsets for
// partitions of topics the group is not subscribed to.
func (c *Coordinator) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	topics := c.topics()
	c.write(ctx, c.PartitionFor(req.Group), func() []Record {
		if err := c.unavailableLocked(req.Group); err != nil {
			resp.ErrorCode = err.Code
			return nil
		}
		g := c.groups[req.Group]
		if g == nil {
			resp.ErrorCode = kerr.GroupIDNotFound.Code
			return nil
		}
		if g.typ == typeClassic && g.state != stateEmpty && g.protocolType != "consumer" {
			resp.ErrorCode = kerr.NonEmptyGroup.Code
			return nil
		}
		subscribed, _ := c.subscribedTopics(g, topics)
		var recs []Record
		for i, t := range req.Topics {
			for j, p := range t.Partitions {
				if subscribed[t.Topic] {
					resp.Topics[i].Partitions[j].ErrorCode = kerr.GroupSubscribedToTopic.Code
					continue
				}
				if _, ok := g.offsets[t.Topic][p.Partition]; ok {
					recs = append(recs, Record{Key: offsetKey(g.id, t.Topic, p.Partition)})
				}
			}
		}
		return recs
	}, func(recs []Record, err error) {
		if err != nil {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return
		}
		for _, r := range recs {
			if err := c.applyOffsetRecord(r); err != nil {
				panic(fmt.Sprintf("apply own offset tombstone: %v", err))
			}
		}
	})
	return resp
}

// subscribedTopics is the set of topics the group's live members subscribe
// to: for classic groups of the "consumer" protocol type, read from the
// members' subscription metadata; for KIP-848 groups, their topic names and
// regex matches. known is false when the subscriptions cannot be known (a
// classic group of another protocol type, or metadata that does not parse),
// as Kafka's computeSubscribedTopics answers empty then. mu is held.
func (c *Coordinator) subscribedTopics(g *group, topics map[string]TopicInfo) (subs map[string]bool, known bool) {
	subs = make(map[string]bool)
	if g.typ == typeConsumer {
		for _, m := range g.cg.members {
			for _, t := range m.subscribedTopics(topics) {
				subs[t] = true
			}
		}
		return subs, true
	}
	if g.protocolType != "consumer" || g.protocol == "" || len(g.members) == 0 {
		return subs, false
	}
	for _, m := range g.members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			return map[string]bool{}, false
		}
		for _, t := range meta.Topics {
			subs[t] = true
		}
	}
	return subs, true
}

// scheduleExpiration arms the offset retention sweep.
func (c *Coordinator) scheduleExpiration() {
	c.sched.after(timerKey{kind: timerExpireOffsets}, c.cfg.OffsetsRetentionCheckInterval, func() {
		c.ExpireOffsets()
		c.scheduleExpiration()
	})
}

// ExpireOffsets removes offsets older than offsets.retention.minutes, as
// Kafka's offset expiration condition says: for an empty classic group,
// counted from when it became empty; for a simple consumer's group and a
// KIP-848 group, from the commit, and never for a topic the group is
// subscribed to; a non-empty classic group of a protocol other than
// "consumer" keeps its offsets. A group left empty with no offsets is
// deleted. The timer calls it every offsets.retention.check.interval.ms;
// it is exported for tests and admin use.
func (c *Coordinator) ExpireOffsets() {
	topics := c.topics()
	for p := int32(0); p < c.cfg.NumPartitions; p++ {
		c.write(c.bgCtx, p, func() []Record {
			return c.expiredRecordsLocked(p, topics)
		}, func(recs []Record, err error) {
			if err != nil {
				return
			}
			for _, r := range recs {
				c.applyExpiryRecord(r)
			}
		})
	}
}

func (c *Coordinator) expiredRecordsLocked(p int32, topics map[string]TopicInfo) []Record {
	if c.partitionUnavailableLocked(p) != nil {
		return nil
	}
	now := c.cfg.Now()
	var recs []Record
	for _, g := range c.groups {
		if g.partition != p {
			continue
		}
		subscribed, known := c.subscribedTopics(g, topics)
		var base func(o offsetCommit) (bool, time.Time)
		switch {
		case g.typ == typeConsumer:
			base = func(o offsetCommit) (bool, time.Time) { return true, o.commitTime }
		case g.protocolType == "":
			base = func(o offsetCommit) (bool, time.Time) { return true, o.commitTime }
		case g.state == stateEmpty:
			base = func(o offsetCommit) (bool, time.Time) {
				if g.stateTime.IsZero() {
					return true, o.commitTime
				}
				return true, g.stateTime
			}
		case g.protocolType == "consumer" && g.state == stateStable && known:
			base = func(o offsetCommit) (bool, time.Time) { return true, o.commitTime }
		default:
			base = func(offsetCommit) (bool, time.Time) { return false, time.Time{} }
		}
		remaining := 0
		for t, ps := range g.offsets {
			for part, o := range ps {
				ok, from := base(o)
				if ok && !subscribed[t] && now.Sub(from) >= c.cfg.OffsetsRetention {
					recs = append(recs, Record{Key: offsetKey(g.id, t, part)})
					continue
				}
				remaining++
			}
		}
		if remaining == 0 && g.isEmpty() && c.canDropEmpty(g, now, len(g.offsets) > 0) {
			recs = append(recs, g.tombstones()...)
		}
	}
	return recs
}

// canDropEmpty reports whether a group with no members and (after this
// sweep) no offsets may be deleted now. A group that never had offsets and
// was just emptied is kept until a sweep after it has been empty a check
// interval, so that it does not vanish under a member about to rejoin.
func (c *Coordinator) canDropEmpty(g *group, now time.Time, hadOffsets bool) bool {
	if g.typ == typeClassic && (g.state != stateEmpty || len(g.pending) > 0) || len(g.pendingTxn) > 0 {
		return false
	}
	return hadOffsets || now.Sub(g.stateTime) >= c.cfg.OffsetsRetentionCheckInterval
}

// tombstones are the records that delete g's group (not offset) records.
func (g *group) tombstones() []Record {
	if g.typ == typeConsumer {
		recs := []Record{{Key: consumerGroupKey(g.id)}}
		for id := range g.cg.members {
			recs = append(recs, Record{Key: consumerMemberKey(g.id, id)})
		}
		return recs
	}
	return []Record{{Key: groupKey(g.id)}}
}

// applyExpiryRecord applies an offset or group tombstone written by the
// retention sweep or DeleteGroups. A group tombstone only removes a group
// that is still empty: a member may have joined while the write was out.
func (c *Coordinator) applyExpiryRecord(r Record) {
	switch int16(r.Key[0])<<8 | int16(r.Key[1]) {
	case 0, keyOffsetCommit:
		if err := c.applyOffsetRecord(r); err != nil {
			panic(fmt.Sprintf("apply own offset tombstone: %v", err))
		}
	case keyGroupMetadata, keyConsumerGroup:
		id := groupIDOfKey(r.Key)
		if g := c.groups[id]; g != nil && g.isEmpty() {
			c.dropGroupLocked(g)
		}
	}
}

func groupIDOfKey(key []byte) string {
	id, _, err := readString(key[2:])
	if err != nil {
		panic(fmt.Sprintf("decode own group key: %v", err))
	}
	return id
}

// dropGroupLocked forgets g and stops its timers.
func (c *Coordinator) dropGroupLocked(g *group) {
	if g.typ == typeConsumer {
		c.dropConsumerTimersLocked(g)
	}
	for id := range g.pending {
		c.sched.cancel(timerKey{timerPendingMember, g.id, id})
	}
	c.sched.cancel(timerKey{timerJoin, g.id, ""})
	c.sched.cancel(timerKey{timerSync, g.id, ""})
	delete(c.groups, g.id)
}

// commitPartitionError checks one partition of an offset commit (plain or
// transactional): the partition must exist when topics are known, and the metadata
// must fit offset.metadata.max.bytes. It returns the error code, 0 if none.
func (c *Coordinator) commitPartitionError(topics map[string]TopicInfo, topic string, partition int32, metadata *string) int16 {
	if topics != nil {
		if ti, ok := topics[topic]; !ok || partition < 0 || partition >= ti.Partitions {
			return kerr.UnknownTopicOrPartition.Code
		}
	}
	if metadata != nil && len(*metadata) > c.cfg.OffsetMetadataMaxBytes {
		return kerr.OffsetMetadataTooLarge.Code
	}
	return 0
}
