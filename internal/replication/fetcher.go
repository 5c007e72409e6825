// Package replication is a broker's follower side: per source broker, a fetcher that
// holds the partitions this broker follows there, fetches their leader's batches with
// Kafka's Fetch as a replica, appends them as they are, learns the high watermark, and
// truncates what the leader never had by leader epoch (KIP-101, KIP-279, KIP-320).
//
// The Fetcher is a state machine in the style of Kafka's AbstractFetcherThread with the
// I/O taken out: Next says which request to send now (a Fetch, an OffsetForLeaderEpoch
// for partitions that must find where they diverge, or a ListOffsets for those whose
// offset is out of range), Handle takes the response (or the transport's error) and
// applies it to the local partitions. Time is an input. The Driver (driver.go) runs it
// over a Transport; tests drive it step by step against a leader built on a real
// partition and log in memory.
//
// A partition's fetch state is one of:
//
//   - fetching: the next Fetch asks for it from its log end offset, with the last
//     epoch it fetched (Fetch v12+: the leader answers a divergence instead of records,
//     KIP-320, and the partition truncates and goes on fetching);
//   - truncating: (Fetch before v12) it asks OffsetForLeaderEpoch for its latest epoch
//     and truncates to min(the leader's end of that epoch, its own), repeating while the
//     leader answers an epoch it does not have;
//   - resetting (latest, then earliest): its fetch offset was out of range on the
//     leader; it asks the leader's log end and start with ListOffsets and continues as
//     Kafka's fetchOffsetAndTruncate does;
//   - failed: fenced (the leader knows a newer epoch), or the local log failed: nothing
//     is sent until the metadata gives it again (Add with a new leader epoch).
//
// A partition with an error is delayed by replica.fetch.backoff.ms; a transport error
// delays every partition of the request. A response is applied to a partition only if
// its state still is what the request was built from (same fetch offset and leader
// epoch), so that a partition removed, re-added or truncated meanwhile is not corrupted
// by a stale answer.
package replication

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/partition"
)

// Local is the follower replica a fetcher writes into (*partition.Partition).
type Local interface {
	LogEndOffset() int64
	LogStartOffset() int64
	LatestEpoch() int32
	LocalEndOffsetForEpoch(epoch int32) (int32, int64)
	AppendAsFollower(records []byte) (partition.FollowerAppend, error)
	FollowerLearned(leaderHW, leaderLogStart int64) error
	TruncateAsFollower(offset int64) error
	TruncateFullyAndStartAt(offset int64) error
}

// Config is a fetcher's configuration, from the broker's keys.
type Config struct {
	LocalID int32 // node.id: the replica ID of the requests
	// BrokerEpoch is this broker's epoch from its registration (KIP-903's ReplicaState),
	// -1 if unknown.
	BrokerEpoch int64
	// FetchVersion is the Fetch version sent: 15+ carries ReplicaState, 12+ the last
	// fetched epoch (truncation on fetch), 13+ topic IDs; below 12 the fetcher truncates
	// with OffsetForLeaderEpoch first. 0 means 16.
	FetchVersion      int16
	MaxWait           time.Duration // replica.fetch.wait.max.ms
	MinBytes          int32         // replica.fetch.min.bytes
	MaxBytes          int32         // replica.fetch.response.max.bytes
	PartitionMaxBytes int32         // replica.fetch.max.bytes
	Backoff           time.Duration // replica.fetch.backoff.ms
	Logger            *slog.Logger  // nil: slog.Default()
	// Throttle is the follower replication quota (throttle.go); nil: none.
	Throttle FollowerThrottle
}

// Defaults are Kafka's.
const (
	DefaultFetchVersion      = 16
	DefaultMaxWait           = 500 * time.Millisecond
	DefaultMaxBytes          = 10 << 20
	DefaultPartitionMaxBytes = 1 << 20
	DefaultBackoff           = time.Second

	offsetForLeaderEpochVersion = 4
	listOffsetsVersion          = 7
)

func (c Config) withDefaults() Config {
	if c.FetchVersion == 0 {
		c.FetchVersion = DefaultFetchVersion
	}
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.MinBytes <= 0 {
		c.MinBytes = 1
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.PartitionMaxBytes <= 0 {
		c.PartitionMaxBytes = DefaultPartitionMaxBytes
	}
	if c.Backoff < 0 {
		c.Backoff = 0
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Key names a partition.
type Key struct {
	Topic     string
	Partition int32
}

func (k Key) String() string { return fmt.Sprintf("%s-%d", k.Topic, k.Partition) }

// State is a partition's fetch state.
type State int8

const (
	Fetching State = iota
	Truncating
	ResettingLatest
	ResettingEarliest
	Failed
)

func (s State) String() string {
	return [...]string{"fetching", "truncating", "resetting (latest)", "resetting (earliest)", "failed"}[s]
}

// Status is what a fetcher says of one partition (tests, metrics, operators).
type Status struct {
	State            State
	FetchOffset      int64
	LeaderEpoch      int32
	LastFetchedEpoch int32
	Delayed          bool
	Failure          string // why it failed
}

type fetchState struct {
	key              Key
	topicID          [16]byte
	local            Local
	state            State
	fetchOffset      int64
	leaderEpoch      int32 // the leader epoch this follower knows
	lastFetchedEpoch int32 // -1: none
	leaderEnd        int64 // ResettingEarliest: the leader's log end found by the first step
	delayUntil       time.Time
	// leaderBehind counts the answers in a row saying the source does not lead at our
	// epoch yet: the metadata reached us first (see delayLeaderBehind).
	leaderBehind int
	failure      string
}

// Fetcher is the state machine of one source broker's fetches. Not safe for concurrent
// use (the Driver guards it).
type Fetcher struct {
	cfg    Config
	source int32
	parts  map[Key]*fetchState
	order  []Key // fetch order: a partition that got data moves to the end
	byID   map[[16]byte]string
}

// NewFetcher returns the fetcher of partitions led by broker source.
func NewFetcher(cfg Config, source int32) *Fetcher {
	return &Fetcher{cfg: cfg.withDefaults(), source: source, parts: map[Key]*fetchState{}, byID: map[[16]byte]string{}}
}

// Source is the broker fetched from.
func (f *Fetcher) Source() int32 { return f.source }

// SetBrokerEpoch records this broker's epoch after it registered again.
func (f *Fetcher) SetBrokerEpoch(epoch int64) { f.cfg.BrokerEpoch = epoch }

// Add starts following k (led by the source in leaderEpoch), or, for one already
// followed, moves it to a new leader epoch. A partition already at that epoch keeps its
// state. A new epoch restarts it from its log end: with Fetch v12+ the first fetch
// names its latest epoch and the leader says where it diverges; before, it truncates by
// OffsetForLeaderEpoch first.
func (f *Fetcher) Add(k Key, topicID [16]byte, local Local, leaderEpoch int32) {
	if st := f.parts[k]; st != nil && st.leaderEpoch == leaderEpoch && st.state != Failed && st.local == local {
		return
	}
	st := &fetchState{key: k, topicID: topicID, local: local, leaderEpoch: leaderEpoch,
		fetchOffset: local.LogEndOffset(), lastFetchedEpoch: local.LatestEpoch()}
	if f.cfg.FetchVersion < 12 && st.lastFetchedEpoch >= 0 {
		st.state = Truncating
	}
	if f.parts[k] == nil {
		f.order = append(f.order, k)
	}
	f.parts[k] = st
	f.byID[topicID] = k.Topic
}

// Remove stops following k.
func (f *Fetcher) Remove(k Key) {
	if f.parts[k] == nil {
		return
	}
	delete(f.parts, k)
	f.order = slices.DeleteFunc(f.order, func(x Key) bool { return x == k })
}

// Len is how many partitions the fetcher follows.
func (f *Fetcher) Len() int { return len(f.parts) }

// Status returns k's fetch state; ok is false if it is not followed.
func (f *Fetcher) Status(k Key, now time.Time) (Status, bool) {
	st := f.parts[k]
	if st == nil {
		return Status{}, false
	}
	return Status{State: st.state, FetchOffset: st.fetchOffset, LeaderEpoch: st.leaderEpoch,
		LastFetchedEpoch: st.lastFetchedEpoch, Delayed: now.Before(st.delayUntil), Failure: st.failure}, true
}

// Next returns the request to send now, or nil and the time at which one may be due
// (zero if nothing will be until the partitions change). Truncation and offset resets
// go before fetches, as in Kafka's fetcher loop.
func (f *Fetcher) Next(now time.Time) (req kmsg.Request, wake time.Time) {
	var truncating, latest, earliest, fetching []*fetchState
	for _, k := range f.order {
		st := f.parts[k]
		if st.state == Failed {
			continue
		}
		if now.Before(st.delayUntil) {
			if wake.IsZero() || st.delayUntil.Before(wake) {
				wake = st.delayUntil
			}
			continue
		}
		switch st.state {
		case Truncating:
			truncating = append(truncating, st)
		case ResettingLatest:
			latest = append(latest, st)
		case ResettingEarliest:
			earliest = append(earliest, st)
		default:
			fetching = append(fetching, st)
		}
	}
	if held := f.holdThrottled(&fetching, now); held && len(truncating)+len(latest)+len(earliest)+len(fetching) == 0 {
		if at := now.Add(max(f.cfg.Backoff, time.Millisecond)); wake.IsZero() || at.Before(wake) {
			wake = at
		}
	}
	switch {
	case len(truncating) > 0:
		return f.offsetForLeaderEpoch(truncating), time.Time{}
	case len(latest) > 0:
		return f.listOffsets(latest, -1), time.Time{}
	case len(earliest) > 0:
		return f.listOffsets(earliest, -2), time.Time{}
	case len(fetching) > 0:
		return f.fetch(fetching), time.Time{}
	}
	return nil, wake
}

func (f *Fetcher) fetch(sts []*fetchState) *kmsg.FetchRequest {
	v := f.cfg.FetchVersion
	req := kmsg.NewPtrFetchRequest()
	req.Version = v
	req.ReplicaID = f.cfg.LocalID
	if v >= 15 {
		req.ReplicaID = -1
		req.ReplicaState.ID, req.ReplicaState.Epoch = f.cfg.LocalID, f.cfg.BrokerEpoch
	}
	req.MaxWaitMillis = int32(f.cfg.MaxWait.Milliseconds())
	req.MinBytes, req.MaxBytes = f.cfg.MinBytes, f.cfg.MaxBytes
	req.IsolationLevel = 0 // followers read to the log end
	req.SessionID, req.SessionEpoch = 0, -1
	topics := map[string]int{}
	for _, st := range sts {
		i, ok := topics[st.key.Topic]
		if !ok {
			i = len(req.Topics)
			topics[st.key.Topic] = i
			t := kmsg.NewFetchRequestTopic()
			t.Topic, t.TopicID = st.key.Topic, st.topicID
			req.Topics = append(req.Topics, t)
		}
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition = st.key.Partition
		p.CurrentLeaderEpoch = st.leaderEpoch
		p.FetchOffset = st.fetchOffset
		p.LastFetchedEpoch = -1
		if v >= 12 {
			p.LastFetchedEpoch = st.lastFetchedEpoch
		}
		p.LogStartOffset = st.local.LogStartOffset()
		p.PartitionMaxBytes = f.cfg.PartitionMaxBytes
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
	}
	return req
}

func (f *Fetcher) offsetForLeaderEpoch(sts []*fetchState) *kmsg.OffsetForLeaderEpochRequest {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = offsetForLeaderEpochVersion
	req.ReplicaID = f.cfg.LocalID
	topics := map[string]int{}
	for _, st := range sts {
		i, ok := topics[st.key.Topic]
		if !ok {
			i = len(req.Topics)
			topics[st.key.Topic] = i
			t := kmsg.NewOffsetForLeaderEpochRequestTopic()
			t.Topic = st.key.Topic
			req.Topics = append(req.Topics, t)
		}
		p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		p.Partition, p.CurrentLeaderEpoch, p.LeaderEpoch = st.key.Partition, st.leaderEpoch, st.local.LatestEpoch()
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
	}
	return req
}

func (f *Fetcher) listOffsets(sts []*fetchState, ts int64) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = listOffsetsVersion
	req.ReplicaID = f.cfg.LocalID // a replica's ListOffsets answers the log end, not the high watermark
	topics := map[string]int{}
	for _, st := range sts {
		i, ok := topics[st.key.Topic]
		if !ok {
			i = len(req.Topics)
			topics[st.key.Topic] = i
			t := kmsg.NewListOffsetsRequestTopic()
			t.Topic = st.key.Topic
			req.Topics = append(req.Topics, t)
		}
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Partition, p.CurrentLeaderEpoch, p.Timestamp = st.key.Partition, st.leaderEpoch, ts
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
	}
	return req
}

// Handle applies the answer to req (resp, or the transport's err) at now.
func (f *Fetcher) Handle(req kmsg.Request, resp kmsg.Response, err error, now time.Time) {
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		fr, _ := resp.(*kmsg.FetchResponse)
		f.handleFetch(r, fr, err, now)
	case *kmsg.OffsetForLeaderEpochRequest:
		or, _ := resp.(*kmsg.OffsetForLeaderEpochResponse)
		f.handleOffsetForLeaderEpoch(r, or, err, now)
	case *kmsg.ListOffsetsRequest:
		lr, _ := resp.(*kmsg.ListOffsetsResponse)
		f.handleListOffsets(r, lr, err, now)
	}
}

// sent is what a request asked of one partition.
type sent struct {
	offset int64
	epoch  int32
}

// current returns k's state if it is still what the request was built from.
func (f *Fetcher) current(k Key, s sent, want State) *fetchState {
	st := f.parts[k]
	if st == nil || st.state != want || st.leaderEpoch != s.epoch || (want == Fetching && st.fetchOffset != s.offset) {
		return nil
	}
	return st
}

func (f *Fetcher) delay(st *fetchState, now time.Time, why string, args ...any) {
	st.delayUntil = now.Add(f.cfg.Backoff)
	f.cfg.Logger.Debug("replica fetch will retry", append([]any{"partition", st.key.String(), "source", f.source, "why", why}, args...)...)
}

// leaderCatchUp is the first retry's delay after the source answered that it does not
// lead at our epoch yet.
const leaderCatchUp = 25 * time.Millisecond

// delayLeaderBehind delays a partition whose source answered NOT_LEADER_OR_FOLLOWER or
// UNKNOWN_LEADER_EPOCH: most often the source is the new leader and has not applied
// the change this follower already has (a controlled shutdown's move, measured: every
// SIGTERM failover waited out a whole replica.fetch.backoff.ms, and acks=all
// producers with it). The delay doubles from leaderCatchUp up to the backoff, so a
// source that really is not the leader is asked as often as Kafka's fetcher asks it
// after a few tries.
func (f *Fetcher) delayLeaderBehind(st *fetchState, now time.Time, err error) {
	d := f.cfg.Backoff
	if st.leaderBehind < 16 {
		d = min(d, leaderCatchUp<<st.leaderBehind)
	}
	st.leaderBehind++
	st.delayUntil = now.Add(d)
	f.cfg.Logger.Debug("replica fetch will retry", "partition", st.key.String(), "source", f.source,
		"why", "the source does not lead at our epoch yet", "err", err, "after", d)
}

func (f *Fetcher) fail(st *fetchState, why string) {
	st.state, st.failure = Failed, why
	f.cfg.Logger.Warn("replica fetch stopped for the partition until the metadata moves it", "partition", st.key.String(),
		"source", f.source, "why", why)
}

// askedOf returns what req (a Fetch, OffsetForLeaderEpoch or ListOffsets the fetcher
// built) asked of each partition, and the state the partitions were in when it was
// built.
func askedOf(req kmsg.Request) (map[Key]sent, State) {
	asked := map[Key]sent{}
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				asked[Key{t.Topic, p.Partition}] = sent{p.FetchOffset, p.CurrentLeaderEpoch}
			}
		}
		return asked, Fetching
	case *kmsg.OffsetForLeaderEpochRequest:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				asked[Key{t.Topic, p.Partition}] = sent{-1, p.CurrentLeaderEpoch}
			}
		}
		return asked, Truncating
	case *kmsg.ListOffsetsRequest:
		want := ResettingLatest
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				asked[Key{t.Topic, p.Partition}] = sent{-1, p.CurrentLeaderEpoch}
				if p.Timestamp == -2 {
					want = ResettingEarliest
				}
			}
		}
		return asked, want
	}
	return asked, Failed
}

// failedWhole delays every partition the request asked of that is still as the request
// found it: the request failed as a whole (err).
func (f *Fetcher) failedWhole(asked map[Key]sent, want State, now time.Time, why string, err error) {
	for k, s := range asked {
		if st := f.current(k, s, want); st != nil {
			f.delay(st, now, why, "err", err)
		}
	}
}

func (f *Fetcher) handleFetch(req *kmsg.FetchRequest, resp *kmsg.FetchResponse, err error, now time.Time) {
	asked, _ := askedOf(req)
	if err == nil && resp == nil {
		err = errors.New("no fetch response")
	}
	if err == nil && resp.ErrorCode != 0 {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		f.failedWhole(asked, Fetching, now, "fetch failed", err)
		return
	}
	for _, t := range resp.Topics {
		topic := t.Topic
		if req.Version >= 13 {
			topic = f.byID[t.TopicID]
		}
		for i := range t.Partitions {
			p := &t.Partitions[i]
			k := Key{topic, p.Partition}
			s, ok := asked[k]
			if !ok {
				continue
			}
			if st := f.current(k, s, Fetching); st != nil {
				f.handlePartition(st, s, p, now)
			}
		}
	}
}

func (f *Fetcher) handlePartition(st *fetchState, s sent, p *kmsg.FetchResponseTopicPartition, now time.Time) {
	switch err := kerr.ErrorForCode(p.ErrorCode); err {
	case nil:
		st.leaderBehind = 0
	case kerr.NotLeaderForPartition, kerr.UnknownLeaderEpoch:
		f.delayLeaderBehind(st, now, err)
		return
	case kerr.OffsetOutOfRange:
		// The leader's log does not hold the fetch offset: ask where it starts and ends.
		st.state = ResettingLatest
		return
	case kerr.FencedLeaderEpoch:
		// The leader knows a newer epoch than ours: wait for the metadata.
		f.fail(st, fmt.Sprintf("the leader fenced leader epoch %d", s.epoch))
		return
	default:
		// UNKNOWN_TOPIC_OR_PARTITION, KAFKA_STORAGE_ERROR on the leader, and the rest:
		// try again after the backoff.
		f.delay(st, now, "partition error", "err", err)
		return
	}
	if p.DivergingEpoch.EndOffset >= 0 && p.DivergingEpoch.Epoch >= 0 {
		// KIP-320: the records are not sent; truncate, then fetch again.
		f.truncate(st, p.DivergingEpoch.Epoch, p.DivergingEpoch.EndOffset, now, true)
		return
	}
	if leo := st.local.LogEndOffset(); leo != st.fetchOffset {
		f.fail(st, fmt.Sprintf("the local log ends at %d, not at the fetch offset %d", leo, st.fetchOffset))
		return
	}
	info, err := st.local.AppendAsFollower(p.RecordBatches)
	if err != nil {
		if errors.Is(err, log.ErrStorage) || errors.Is(err, partition.ErrClosed) || errors.Is(err, partition.ErrNotFollower) {
			f.fail(st, err.Error())
		} else {
			// A corrupt batch (perhaps a transient state of the leader's log): retry.
			f.delay(st, now, "append failed", "err", err)
		}
		return
	}
	if err := st.local.FollowerLearned(p.HighWatermark, p.LogStartOffset); err != nil {
		f.fail(st, err.Error())
		return
	}
	if t := f.cfg.Throttle; t != nil {
		if listed, _ := t.Listed(st.key); listed {
			t.Record(now, int64(len(p.RecordBatches)))
		}
	}
	st.fetchOffset = st.local.LogEndOffset()
	if info.LastEpoch >= 0 {
		st.lastFetchedEpoch = info.LastEpoch
	}
	if info.Batches > 0 {
		f.order = append(slices.DeleteFunc(f.order, func(x Key) bool { return x == st.key }), st.key)
	}
}

// truncate cuts st's log by the leader's answer for its latest epoch (Kafka's
// getOffsetTruncationState): to min(the leader's end of the epoch, the local end of
// it, the local log end). If the leader answered an epoch the local log does not have,
// it cuts to where the local log's largest epoch below it ends and asks again (on
// fetch, the next Fetch does). An answer with no offset is handled as an out-of-range
// offset: the leader's log end and start decide, never the local high watermark alone.
func (f *Fetcher) truncate(st *fetchState, leaderEpoch int32, leaderEnd int64, now time.Time, onFetch bool) {
	local := st.local
	leo := local.LogEndOffset()
	if leaderEnd < 0 {
		st.state = ResettingLatest
		return
	}
	to, complete := min(leaderEnd, leo), true
	if leaderEpoch >= 0 {
		if e, end := local.LocalEndOffsetForEpoch(leaderEpoch); e >= 0 && end >= 0 {
			if e == leaderEpoch {
				to = min(end, leaderEnd, leo)
			} else {
				to, complete = min(end, leo), false
			}
		}
	}
	if err := local.TruncateAsFollower(to); err != nil {
		f.fail(st, fmt.Sprintf("truncate to %d: %v", to, err))
		return
	}
	f.cfg.Logger.Info("follower truncated by leader epoch", "partition", st.key.String(), "source", f.source,
		"leader_epoch", leaderEpoch, "leader_end_offset", leaderEnd, "log_end_before", leo, "log_end", local.LogEndOffset())
	st.fetchOffset, st.lastFetchedEpoch = local.LogEndOffset(), local.LatestEpoch()
	if onFetch || complete {
		st.state = Fetching
	}
}

func (f *Fetcher) handleOffsetForLeaderEpoch(req *kmsg.OffsetForLeaderEpochRequest, resp *kmsg.OffsetForLeaderEpochResponse, err error, now time.Time) {
	asked, _ := askedOf(req)
	if err == nil && resp == nil {
		err = errors.New("no OffsetForLeaderEpoch response")
	}
	if err != nil {
		f.failedWhole(asked, Truncating, now, "OffsetForLeaderEpoch failed", err)
		return
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			k := Key{t.Topic, p.Partition}
			s, ok := asked[k]
			st := f.current(k, s, Truncating)
			if !ok || st == nil {
				continue
			}
			switch err := kerr.ErrorForCode(p.ErrorCode); err {
			case nil:
				f.truncate(st, p.LeaderEpoch, p.EndOffset, now, false)
			case kerr.FencedLeaderEpoch:
				f.fail(st, fmt.Sprintf("the leader fenced leader epoch %d", s.epoch))
			default:
				f.delay(st, now, "OffsetForLeaderEpoch error", "err", err)
			}
		}
	}
}

func (f *Fetcher) handleListOffsets(req *kmsg.ListOffsetsRequest, resp *kmsg.ListOffsetsResponse, err error, now time.Time) {
	asked, want := askedOf(req)
	if err == nil && resp == nil {
		err = errors.New("no ListOffsets response")
	}
	if err != nil {
		f.failedWhole(asked, want, now, "ListOffsets failed", err)
		return
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			k := Key{t.Topic, p.Partition}
			s, ok := asked[k]
			st := f.current(k, s, want)
			if !ok || st == nil {
				continue
			}
			switch err := kerr.ErrorForCode(p.ErrorCode); {
			case err == kerr.FencedLeaderEpoch:
				f.fail(st, fmt.Sprintf("the leader fenced leader epoch %d", s.epoch))
			case err != nil || p.Offset < 0:
				f.delay(st, now, "ListOffsets error", "err", err, "offset", p.Offset)
			case want == ResettingLatest:
				f.resetFromLatest(st, p.Offset)
			default:
				f.resetFromEarliest(st, p.Offset)
			}
		}
	}
}

// resetFromLatest is the first step of Kafka's fetchOffsetAndTruncate: a leader whose
// log ends before ours (an unclean election elected a replica that had less) makes us
// truncate to its end; otherwise its log start decides.
func (f *Fetcher) resetFromLatest(st *fetchState, leaderEnd int64) {
	leo := st.local.LogEndOffset()
	if leaderEnd >= leo {
		st.state, st.leaderEnd = ResettingEarliest, leaderEnd
		return
	}
	if err := st.local.TruncateAsFollower(leaderEnd); err != nil {
		f.fail(st, fmt.Sprintf("truncate to the leader's log end %d: %v", leaderEnd, err))
		return
	}
	f.cfg.Logger.Warn("follower truncated to the leader's log end, which is below its own (unclean leader election)",
		"partition", st.key.String(), "source", f.source, "log_end_before", leo, "leader_log_end", leaderEnd)
	st.state, st.fetchOffset, st.lastFetchedEpoch = Fetching, st.local.LogEndOffset(), st.local.LatestEpoch()
}

// resetFromEarliest is the second step: a log that ends before the leader's log start
// holds nothing the leader keeps and restarts at it; otherwise fetching goes on from
// the local log end.
func (f *Fetcher) resetFromEarliest(st *fetchState, leaderStart int64) {
	leo := st.local.LogEndOffset()
	if leaderStart > leo {
		if err := st.local.TruncateFullyAndStartAt(leaderStart); err != nil {
			f.fail(st, fmt.Sprintf("restart the log at the leader's log start %d: %v", leaderStart, err))
			return
		}
		f.cfg.Logger.Warn("follower restarted its log at the leader's log start, past its own log end",
			"partition", st.key.String(), "source", f.source, "log_end_before", leo, "leader_log_start", leaderStart)
	}
	st.state, st.fetchOffset, st.lastFetchedEpoch = Fetching, st.local.LogEndOffset(), st.local.LatestEpoch()
}

// holdThrottled leaves out of fetching the partitions the follower quota holds back
// (throttle.go): listed, this replica out of the ISR, the quota exceeded. It reports
// whether it held any.
func (f *Fetcher) holdThrottled(fetching *[]*fetchState, now time.Time) bool {
	t := f.cfg.Throttle
	if t == nil || len(*fetching) == 0 || !t.Exceeded(now) {
		return false
	}
	n := len(*fetching)
	*fetching = slices.DeleteFunc(*fetching, func(st *fetchState) bool {
		listed, inSync := t.Listed(st.key)
		return listed && !inSync
	})
	return len(*fetching) < n
}
