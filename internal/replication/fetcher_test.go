package replication

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/partition"
	"github.com/vltava/vltava/internal/vfs"
)

// Step-driven tests of the fetcher against leaders built on real partitions: each step
// is Next, the leader's answer, Handle. No goroutines, no sockets, time by hand.

type world struct {
	t        *testing.T
	now      time.Time
	replicas map[int32]*replica
	leader   int32
	epoch    int32
	pepoch   int32
	fetchers map[int32]*Fetcher // per follower
	version  int16
}

func newWorld(t *testing.T, version int16, ids ...int32) *world {
	w := &world{t: t, now: time.UnixMilli(1_700_000_000_000), replicas: map[int32]*replica{}, fetchers: map[int32]*Fetcher{}, version: version}
	for _, id := range ids {
		w.replicas[id] = openReplica(t, id, vfs.NewMem(), w.clock, -1, 1)
	}
	t.Cleanup(func() {
		for _, r := range w.replicas {
			r.p.Close()
		}
	})
	return w
}

func (w *world) clock() time.Time { return w.now }

func (w *world) ids() []int32 {
	var ids []int32
	for id := range w.replicas {
		ids = append(ids, id)
	}
	return ids
}

// elect makes id the leader in a new epoch with isr, the others followers with fresh
// fetchers.
func (w *world) elect(id int32, isr ...int32) {
	w.t.Helper()
	w.epoch++
	w.pepoch++
	w.leader = id
	st := partition.LeaderAndISR{Leader: id, LeaderEpoch: w.epoch, PartitionEpoch: w.pepoch, Replicas: []int32{1, 2, 3}, ISR: isr}
	if ok, err := w.replicas[id].p.BecomeLeader(st); !ok || err != nil {
		w.t.Fatalf("BecomeLeader %d: %v %v", id, ok, err)
	}
	for rid, r := range w.replicas {
		if rid == id {
			delete(w.fetchers, rid)
			continue
		}
		w.follow(r, st)
	}
}

func (w *world) follow(r *replica, st partition.LeaderAndISR) {
	w.t.Helper()
	if ok, _, err := r.p.BecomeFollower(st); !ok || err != nil {
		w.t.Fatalf("BecomeFollower %d: %v %v", r.id, ok, err)
	}
	f := NewFetcher(Config{LocalID: r.id, BrokerEpoch: -1, FetchVersion: w.version, Backoff: time.Second}, st.Leader)
	f.Add(tkey, topicID, r.p, st.LeaderEpoch)
	w.fetchers[r.id] = f
}

// step runs one request of follower id's fetcher; false if it had none to send.
func (w *world) step(id int32) bool {
	w.t.Helper()
	f := w.fetchers[id]
	req, _ := f.Next(w.now)
	if req == nil {
		return false
	}
	var lp *partition.Partition
	if r := w.replicas[f.Source()]; r != nil {
		lp = r.p
	}
	resp, err := serveReplica(lp, req)
	if err != nil {
		w.t.Fatal(err)
	}
	f.Handle(req, resp, nil, w.now)
	return true
}

// catchUp steps follower id until its log matches the leader's and a fetch changes
// nothing more (the leader has recorded its position and it has learned the high
// watermark).
func (w *world) catchUp(id int32) {
	w.t.Helper()
	l, f := w.replicas[w.leader].p, w.replicas[id].p
	type view struct{ leo, hw, lhw int64 }
	at := func() view { return view{f.LogEndOffset(), f.HighWatermark(), l.HighWatermark()} }
	for i := 0; ; i++ {
		before := at()
		if i > 1000 || !w.step(id) {
			st, _ := w.fetchers[id].Status(tkey, w.now)
			w.t.Fatalf("follower %d stuck at %d (hw %d), leader at %d (hw %d): %+v", id, f.LogEndOffset(), f.HighWatermark(), l.LogEndOffset(), l.HighWatermark(), st)
		}
		if after := at(); after == before && after.leo == l.LogEndOffset() {
			return
		}
	}
}

func (w *world) produce(n int, tag string) {
	w.t.Helper()
	l := w.replicas[w.leader].p
	for i := 0; i < n; i++ {
		if _, err := l.Append(record(w.t, -1, 0, fmt.Sprintf("%s-%d", tag, i))); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *world) identical(ids ...int32) {
	w.t.Helper()
	l := w.replicas[w.leader].p
	want := logBytes(w.t, l, l.LogEndOffset())
	for _, id := range ids {
		if got := logBytes(w.t, w.replicas[id].p, l.LogEndOffset()); !bytes.Equal(got, want) {
			w.t.Fatalf("replica %d differs from leader %d: %d bytes, %d", id, w.leader, len(got), len(want))
		}
	}
}

// crash makes replica id lose what it had not synced and reopens it with no role.
func (w *world) crash(id int32) {
	w.t.Helper()
	r := w.replicas[id]
	hw := r.p.HighWatermark()
	fsys := r.fsys.Crash()
	r.p.Close()
	w.replicas[id] = openReplica(w.t, id, fsys, w.clock, hw, 1)
	delete(w.fetchers, id)
}

func forVersions(t *testing.T, f func(t *testing.T, version int16)) {
	for _, v := range []int16{16, 11} {
		t.Run(fmt.Sprintf("fetch v%d", v), func(t *testing.T) { f(t, v) })
	}
}

func TestFollowersCatchUp(t *testing.T) {
	forVersions(t, func(t *testing.T, v int16) {
		w := newWorld(t, v, 1, 2, 3)
		w.elect(1, 1, 2, 3)
		w.produce(50, "a")
		w.catchUp(2)
		w.catchUp(3)
		w.catchUp(2) // learns the high watermark 3's fetches moved
		if l := w.replicas[1].p; l.HighWatermark() != 50 {
			t.Fatalf("leader high watermark %d, want 50", l.HighWatermark())
		}
		w.identical(2, 3)
	})
}

// KIP-101's first scenario: the leader appends a tail only one follower fetched and
// dies; the other follower leads in a new epoch and writes other records at the same
// offsets. Both the follower with the tail and the old leader, back after a crash,
// must drop it.
func TestTruncateTailAfterLeaderCrash(t *testing.T) {
	forVersions(t, func(t *testing.T, v int16) {
		w := newWorld(t, v, 1, 2, 3)
		w.elect(1, 1, 2, 3)
		w.produce(10, "a")
		w.catchUp(2)
		w.catchUp(3)
		w.catchUp(2)
		w.produce(5, "tail")
		w.catchUp(2) // 2 has the tail; 3 does not
		if err := w.replicas[1].p.Log().Flush(); err != nil {
			t.Fatal(err)
		}
		w.crash(1)
		w.elect(3, 2, 3)
		w.produce(3, "new")
		w.catchUp(2)
		w.identical(2)
		st := partition.LeaderAndISR{Leader: 3, LeaderEpoch: w.epoch, PartitionEpoch: w.pepoch, Replicas: []int32{1, 2, 3}, ISR: []int32{2, 3}}
		w.follow(w.replicas[1], st)
		w.catchUp(1)
		w.identical(1, 2)
		if l := w.replicas[3].p; l.LogEndOffset() != 13 {
			t.Fatalf("leader log end %d, want 13", l.LogEndOffset())
		}
	})
}

// KIP-279's scenario: two leader changes in quick succession leave a follower with an
// epoch the leader never had, above one they share. Truncating to the leader's end of
// that epoch (KIP-101) would keep a divergent record; the follower must truncate to
// where the largest epoch both have ends on its own side.
func TestTruncateAfterTwoQuickLeaderChanges(t *testing.T) {
	forVersions(t, func(t *testing.T, v int16) {
		w := newWorld(t, v, 1, 2, 3)
		delete(w.replicas, 3) // two replicas, as in the KIP
		w.elect(1, 1, 2)
		w.produce(1, "m1") // offset 0, epoch 1, replicated
		w.catchUp(2)
		w.catchUp(2)
		w.produce(1, "m2") // offset 1, epoch 1, not replicated
		// 2 becomes leader in epoch 2 and writes m3 at offset 1; nobody fetches it.
		w.elect(2, 1, 2)
		w.produce(1, "m3")
		// 1 becomes leader in epoch 3 (2 went away before 1 fetched) and writes m4 at 2.
		delete(w.fetchers, 1)
		w.epoch++
		w.pepoch++
		w.leader = 1
		if ok, err := w.replicas[1].p.BecomeLeader(partition.LeaderAndISR{Leader: 1, LeaderEpoch: w.epoch, PartitionEpoch: w.pepoch, Replicas: []int32{1, 2}, ISR: []int32{1}}); !ok || err != nil {
			t.Fatal(ok, err)
		}
		w.produce(1, "m4")
		// 2 follows 1: it has [m1(e1), m3(e2)], the leader [m1(e1), m2(e1), m4(e3)].
		w.follow(w.replicas[2], partition.LeaderAndISR{Leader: 1, LeaderEpoch: w.epoch, PartitionEpoch: w.pepoch, Replicas: []int32{1, 2}, ISR: []int32{1}})
		w.catchUp(2)
		w.identical(2)
	})
}

// A replica that became leader and appended nothing before losing leadership keeps
// an epoch entry at its log end; as a follower it must not keep asking about it.
func TestLeaderThatWroteNothingFollows(t *testing.T) {
	forVersions(t, func(t *testing.T, v int16) {
		w := newWorld(t, v, 1, 2, 3)
		w.elect(1, 1, 2, 3)
		w.produce(5, "a")
		w.catchUp(2)
		w.catchUp(3)
		w.elect(2, 1, 2, 3) // epoch 2 at 5, nothing written
		w.elect(3, 1, 2, 3) // epoch 3
		w.produce(4, "b")
		for _, id := range []int32{1, 2} {
			w.catchUp(id)
		}
		w.identical(1, 2)
		if e := w.replicas[2].p.LatestEpoch(); e != 3 {
			t.Fatalf("latest epoch on 2: %d", e)
		}
	})
}

func TestRequestsAsAReplica(t *testing.T) {
	f := NewFetcher(Config{LocalID: 7, BrokerEpoch: 42, MaxBytes: 1000, PartitionMaxBytes: 100, MaxWait: 250 * time.Millisecond, MinBytes: 5}, 1)
	w := newWorld(t, 16, 1, 2)
	w.elect(1, 1, 2)
	w.produce(1, "a")
	st := partition.LeaderAndISR{Leader: 1, LeaderEpoch: w.epoch, PartitionEpoch: w.pepoch, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}
	if _, _, err := w.replicas[2].p.BecomeFollower(st); err != nil {
		t.Fatal(err)
	}
	f.Add(tkey, topicID, w.replicas[2].p, w.epoch)
	req, _ := f.Next(w.now)
	fr := req.(*kmsg.FetchRequest)
	p := fr.Topics[0].Partitions[0]
	if fr.Version != 16 || fr.ReplicaID != -1 || fr.ReplicaState.ID != 7 || fr.ReplicaState.Epoch != 42 ||
		fr.MaxBytes != 1000 || fr.MinBytes != 5 || fr.MaxWaitMillis != 250 || fr.IsolationLevel != 0 ||
		fr.SessionEpoch != -1 || fr.Topics[0].TopicID != topicID || p.PartitionMaxBytes != 100 ||
		p.CurrentLeaderEpoch != w.epoch || p.FetchOffset != 0 || p.LastFetchedEpoch != -1 {
		t.Fatalf("v16 fetch: %+v %+v", fr, p)
	}
	old := NewFetcher(Config{LocalID: 7, FetchVersion: 11}, 1)
	old.Add(tkey, topicID, w.replicas[2].p, w.epoch)
	req, _ = old.Next(w.now)
	if fr := req.(*kmsg.FetchRequest); fr.ReplicaID != 7 || fr.Topics[0].Topic != topic || fr.Topics[0].Partitions[0].LastFetchedEpoch != -1 {
		t.Fatalf("v11 fetch: %+v", fr)
	}
}

// Errors: each is handled as Kafka's fetcher handles it.
func TestFetchErrors(t *testing.T) {
	w := newWorld(t, 16, 1, 2, 3)
	w.elect(1, 1, 2, 3)
	w.produce(3, "a")
	f := w.fetchers[2]
	answer := func(code int16, mod func(*kmsg.FetchResponseTopicPartition)) {
		t.Helper()
		req, _ := f.Next(w.now)
		if req == nil {
			t.Fatalf("no request")
		}
		resp := req.(*kmsg.FetchRequest).ResponseKind().(*kmsg.FetchResponse)
		rt := kmsg.NewFetchResponseTopic()
		rt.TopicID = topicID
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.ErrorCode = code
		if mod != nil {
			mod(&sp)
		}
		rt.Partitions = append(rt.Partitions, sp)
		resp.Topics = append(resp.Topics, rt)
		f.Handle(req, resp, nil, w.now)
	}
	status := func() Status { s, _ := f.Status(tkey, w.now); return s }
	// The source does not lead at our epoch yet (it has not applied the change we
	// have): retried after 25 ms, doubling up to the backoff.
	for i, c := range []*kerr.Error{kerr.UnknownLeaderEpoch, kerr.NotLeaderForPartition, kerr.NotLeaderForPartition,
		kerr.NotLeaderForPartition, kerr.NotLeaderForPartition, kerr.NotLeaderForPartition, kerr.NotLeaderForPartition} {
		answer(c.Code, nil)
		want := min(25*time.Millisecond<<i, time.Second)
		if req, wake := f.Next(w.now); req != nil || !wake.Equal(w.now.Add(want)) {
			t.Fatalf("%v, answer %d: a request during the delay, or wake %v, want %v", c, i, wake.Sub(w.now), want)
		}
		w.now = w.now.Add(want)
	}
	answer(0, nil) // records (none): the next such answer starts at 25 ms again
	answer(kerr.UnknownLeaderEpoch.Code, nil)
	if _, wake := f.Next(w.now); !wake.Equal(w.now.Add(25 * time.Millisecond)) {
		t.Fatalf("after a good answer: wake %v, want 25ms", wake.Sub(w.now))
	}
	w.now = w.now.Add(25 * time.Millisecond)
	for _, c := range []*kerr.Error{kerr.KafkaStorageError, kerr.UnknownTopicOrPartition} {
		answer(c.Code, nil)
		if s := status(); !s.Delayed || s.State != Fetching {
			t.Fatalf("%v: %+v, want delayed", c, s)
		}
		if req, wake := f.Next(w.now); req != nil || !wake.Equal(w.now.Add(time.Second)) {
			t.Fatalf("%v: a request during the backoff (wake %v)", c, wake)
		}
		w.now = w.now.Add(time.Second)
	}
	// A transport error delays every partition of the request.
	req, _ := f.Next(w.now)
	f.Handle(req, nil, errors.New("connection reset"), w.now)
	if s := status(); !s.Delayed {
		t.Fatalf("after a transport error: %+v", s)
	}
	w.now = w.now.Add(time.Second)
	// A stale answer (the partition moved to a new epoch meanwhile) is not applied.
	req, _ = f.Next(w.now)
	f.Add(tkey, topicID, w.replicas[2].p, w.epoch+1)
	resp, _ := serveReplica(w.replicas[1].p, req)
	f.Handle(req, resp, nil, w.now)
	if w.replicas[2].p.LogEndOffset() != 0 {
		t.Fatalf("a stale answer was applied")
	}
	f.Add(tkey, topicID, w.replicas[2].p, w.epoch)
	// FENCED_LEADER_EPOCH: the leader is newer; nothing more until the metadata moves it.
	answer(kerr.FencedLeaderEpoch.Code, nil)
	if s := status(); s.State != Failed {
		t.Fatalf("fenced: %+v", s)
	}
	if req, wake := f.Next(w.now.Add(time.Hour)); req != nil || !wake.IsZero() {
		t.Fatalf("a failed partition is fetched")
	}
	f.Add(tkey, topicID, w.replicas[2].p, w.epoch) // the metadata again
	w.catchUp(2)
	// The local log failing stops the partition too.
	w.fetchers[3].Add(tkey, topicID, w.replicas[3].p, w.epoch)
	w.replicas[3].p.Close()
	w.produce(1, "b")
	w.step(3)
	if s, _ := w.fetchers[3].Status(tkey, w.now); s.State != Failed {
		t.Fatalf("closed local partition: %+v", s)
	}
}

// OFFSET_OUT_OF_RANGE, as Kafka's fetchOffsetAndTruncate: a leader whose log ends
// below ours (an unclean election) makes us cut to its end; a leader whose log starts
// past our end makes us start over there.
func TestOffsetOutOfRangeResets(t *testing.T) {
	t.Run("leader behind", func(t *testing.T) {
		w := newWorld(t, 16, 1, 2, 3)
		w.elect(1, 1, 2, 3)
		w.produce(5, "a")
		w.catchUp(2)
		// 3, empty and out of the ISR, is elected uncleanly and writes 2 records.
		w.elect(3, 3)
		w.produce(2, "unclean")
		// 2 has 5 records of epoch 1; 3's log has epoch 3 from 0. With v16 the leader
		// answers the divergence; make the fetcher meet the out-of-range path instead.
		f := w.fetchers[2]
		req, _ := f.Next(w.now)
		resp := req.(*kmsg.FetchRequest).ResponseKind().(*kmsg.FetchResponse)
		rt := kmsg.NewFetchResponseTopic()
		rt.TopicID = topicID
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.ErrorCode = kerr.OffsetOutOfRange.Code
		rt.Partitions = append(rt.Partitions, sp)
		resp.Topics = append(resp.Topics, rt)
		f.Handle(req, resp, nil, w.now)
		w.step(2) // ListOffsets latest: 2 < 5, truncate to 2
		if got := w.replicas[2].p.LogEndOffset(); got != 2 {
			t.Fatalf("after the reset: log end %d, want 2", got)
		}
	})
	t.Run("leader deleted records", func(t *testing.T) {
		w := newWorld(t, 16, 1, 2, 3)
		w.elect(1, 1, 2)
		w.produce(20, "a")
		w.catchUp(2)
		l := w.replicas[1].p
		if err := l.Log().Roll(); err != nil {
			t.Fatal(err)
		}
		w.produce(5, "b")
		w.catchUp(2)
		if _, err := l.DeleteRecords(22); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Log().EnforceRetention(); err != nil {
			t.Fatal(err)
		}
		// 3 was away, empty: its fetch at 0 is below the leader's log start.
		w.catchUp(3)
		if p := w.replicas[3].p; p.LogStartOffset() != 22 || p.LogEndOffset() != 25 {
			t.Fatalf("3 restarted at %d, ends at %d", p.LogStartOffset(), p.LogEndOffset())
		}
		// 2 learns the leader's log start from the fetches (DeleteRecords propagates).
		w.produce(1, "c")
		w.catchUp(2)
		if p := w.replicas[2].p; p.LogStartOffset() != 22 {
			t.Fatalf("2's log start %d, want 22", p.LogStartOffset())
		}
	})
}

// A transport error on an OffsetForLeaderEpoch or ListOffsets request delays its
// partitions in the state they were in, and the same request goes again after the
// backoff, as a failed Fetch does.
func TestTransportErrorsDelayEveryRequestKind(t *testing.T) {
	w := newWorld(t, 11, 1, 2)
	w.elect(1, 1, 2)
	w.produce(3, "a")
	w.catchUp(2)
	w.elect(1, 1, 2) // a new epoch: v11 truncates with OffsetForLeaderEpoch first
	f := w.fetchers[2]
	failOnce := func(want State, kind string) {
		t.Helper()
		req, _ := f.Next(w.now)
		if got := fmt.Sprintf("%T", req); got != kind {
			t.Fatalf("request %s, want %s", got, kind)
		}
		f.Handle(req, nil, errors.New("connection reset"), w.now)
		if s, _ := f.Status(tkey, w.now); !s.Delayed || s.State != want {
			t.Fatalf("after a transport error on %s: %+v", kind, s)
		}
		if req, wake := f.Next(w.now); req != nil || !wake.Equal(w.now.Add(time.Second)) {
			t.Fatalf("a request during the backoff (wake %v)", wake)
		}
		w.now = w.now.Add(time.Second)
		if req, _ := f.Next(w.now); fmt.Sprintf("%T", req) != kind {
			t.Fatalf("after the backoff: %T, want %s again", req, kind)
		}
	}
	failOnce(Truncating, "*kmsg.OffsetForLeaderEpochRequest")
	w.catchUp(2)
	// An out-of-range answer: the fetcher resets with ListOffsets (latest, then earliest).
	req, _ := f.Next(w.now)
	resp := req.(*kmsg.FetchRequest).ResponseKind().(*kmsg.FetchResponse)
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic = tkey.Topic
	sp := kmsg.NewFetchResponseTopicPartition()
	sp.ErrorCode = kerr.OffsetOutOfRange.Code
	rt.Partitions = append(rt.Partitions, sp)
	resp.Topics = append(resp.Topics, rt)
	f.Handle(req, resp, nil, w.now)
	failOnce(ResettingLatest, "*kmsg.ListOffsetsRequest")
	lreq, _ := f.Next(w.now)
	lresp, err := serveReplica(w.replicas[1].p, lreq)
	if err != nil {
		t.Fatal(err)
	}
	f.Handle(lreq, lresp, nil, w.now)
	failOnce(ResettingEarliest, "*kmsg.ListOffsetsRequest")
	w.catchUp(2)
	w.identical(2)
}
