package replication

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/vltava/vltava/internal/metadata"
)

// The quota's rate is the live samples' bytes over the time they span, at least all
// but one full sample; it is exceeded above the bound and recovers as samples age out.
func TestQuotaRate(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	q := NewQuota(3, time.Second) // rate measured over at least 2 s
	if q.Exceeded(t0) {
		t.Fatal("an unlimited quota is exceeded")
	}
	q.SetRate(1000)
	q.Record(t0, 1500)
	if got := q.Measured(t0); got != 750 {
		t.Fatalf("1500 B at once measure %v B/s, want 750 (over the 2 s minimum)", got)
	}
	if q.Exceeded(t0) {
		t.Fatal("750 B/s exceeds 1000 B/s")
	}
	q.Record(t0.Add(500*time.Millisecond), 1000) // same sample
	if !q.Exceeded(t0.Add(500 * time.Millisecond)) {
		t.Fatalf("2500 B over 2 s (%v B/s) does not exceed 1000 B/s", q.Measured(t0.Add(500*time.Millisecond)))
	}
	q.Record(t0.Add(1500*time.Millisecond), 100) // a new sample
	if got := q.Measured(t0.Add(2500 * time.Millisecond)); got != 2600.0/2.5 {
		t.Fatalf("measured %v, want %v", got, 2600.0/2.5)
	}
	// The first sample ages out 3 s after it began: only the 100 B remain.
	if got := q.Measured(t0.Add(3 * time.Second)); got != 50 {
		t.Fatalf("after the first sample aged out: %v B/s, want 50", got)
	}
	if q.Exceeded(t0.Add(3 * time.Second)) {
		t.Fatal("still exceeded once the burst aged out")
	}
	q.SetRate(-1)
	q.Record(t0.Add(3*time.Second), 1<<40)
	if q.Exceeded(t0.Add(3 * time.Second)) {
		t.Fatal("a quota set back to unlimited is exceeded")
	}
}

func TestThrottledIn(t *testing.T) {
	for _, c := range []struct {
		list              string
		partition, broker int32
		want              bool
	}{
		{"", 0, 1, false},
		{"*", 7, 3, true},
		{"0:1,1:2", 1, 2, true},
		{"0:1, 1:2", 1, 2, true},
		{"0:1,1:2", 0, 2, false},
		{"10:1", 1, 1, false},
	} {
		if got := throttledIn(c.list, c.partition, c.broker); got != c.want {
			t.Errorf("%q has %d:%d: %v, want %v", c.list, c.partition, c.broker, got, c.want)
		}
	}
}

// throttleImage is an image with topic t: partition 0 on replicas 1,2,3 with ISR 1,2,
// the given throttle lists, and broker configs.
func throttleImage(t *testing.T, leaderList, followerList string, brokerConfigs map[string]map[string]string) *metadata.Image {
	t.Helper()
	id := uuid.NewSHA1(uuid.Nil, []byte("t"))
	rs := []metadata.Record{&metadata.ClusterIDRecord{ID: "c"}, &metadata.TopicRecord{Name: "t", ID: id},
		&metadata.PartitionRecord{TopicID: id, Partition: 0, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}, Leader: 1}}
	if leaderList != "" {
		rs = append(rs, &metadata.ConfigRecord{ResourceType: metadata.ResourceTopic, ResourceName: "t", Name: LeaderThrottledReplicasKey, Value: &leaderList})
	}
	if followerList != "" {
		rs = append(rs, &metadata.ConfigRecord{ResourceType: metadata.ResourceTopic, ResourceName: "t", Name: FollowerThrottledReplicasKey, Value: &followerList})
	}
	for b, kv := range brokerConfigs {
		for k, v := range kv {
			rs = append(rs, &metadata.ConfigRecord{ResourceType: metadata.ResourceBroker, ResourceName: b, Name: k, Value: &v})
		}
	}
	im, _, err := metadata.Empty().Apply(metadata.Offset{Index: 1, Term: 1}, rs)
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// The leader holds back a listed partition for a follower out of the ISR while its
// quota is spent, never for one in the ISR; rates come from this broker's dynamic
// config before the cluster default.
func TestLeaderHold(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	th := NewThrottles(1, 2, time.Second, Unlimited, Unlimited)
	th.Apply(throttleImage(t, "0:1", "0:3", map[string]map[string]string{
		"": {LeaderThrottledRateKey: "500", FollowerThrottledRateKey: "700"}, "1": {LeaderThrottledRateKey: "100"}}))
	if th.Leader.Rate() != 100 || th.Follower.Rate() != 700 {
		t.Fatalf("rates %d/%d, want 100 (broker 1's own) and 700 (the default)", th.Leader.Rate(), th.Follower.Rate())
	}
	if listed, hold := th.LeaderHold("t", 0, 3, now); !listed || hold {
		t.Fatalf("under quota: listed %v hold %v", listed, hold)
	}
	th.Leader.Record(now, 1000)
	if listed, hold := th.LeaderHold("t", 0, 3, now); !listed || !hold {
		t.Fatalf("quota spent, follower 3 out of the ISR: listed %v hold %v", listed, hold)
	}
	if listed, hold := th.LeaderHold("t", 0, 2, now); !listed || hold {
		t.Fatalf("follower 2 in the ISR: listed %v hold %v", listed, hold)
	}
	if listed, hold := th.LeaderHold("u", 0, 3, now); listed || hold {
		t.Fatal("an unknown topic is throttled")
	}
	// Broker 2 as leader: the list names only broker 1.
	th2 := NewThrottles(2, 2, time.Second, 1, Unlimited)
	th2.Apply(throttleImage(t, "0:1", "", nil))
	th2.Leader.Record(now, 1000)
	if listed, _ := th2.LeaderHold("t", 0, 3, now); listed {
		t.Fatal("a leader not named in the list counts the partition")
	}
	var nilT *Throttles
	if listed, hold := nilT.LeaderHold("t", 0, 3, now); listed || hold || nilT.FollowerSide() != nil {
		t.Fatal("nil throttles throttle")
	}
}

// The follower leaves a throttled partition out of its fetches while the quota is
// spent and this replica is out of the ISR, waits a backoff if nothing else is due,
// and counts what it fetched for listed partitions.
func TestFollowerHoldsThrottled(t *testing.T) {
	w := newWorld(t, 16, 1, 3)
	w.elect(1, 1)
	w.produce(20, "a")
	th := NewThrottles(3, 2, time.Second, Unlimited, 100)
	th.Apply(throttleImage(t, "", "0:3", nil)) // broker 3 out of the ISR {1,2}
	f := w.fetchers[3]
	f.cfg.Throttle = th.FollowerSide()
	if !w.step(3) {
		t.Fatal("the first fetch (quota not spent) was not sent")
	}
	if got := th.Follower.Measured(w.now); got <= 100 {
		t.Fatalf("the fetched bytes were not counted: %v B/s", got)
	}
	req, wake := f.Next(w.now)
	if req != nil || !wake.Equal(w.now.Add(time.Second)) {
		t.Fatalf("quota spent: request %v, wake %v (want none, and a wake after the backoff)", req, wake)
	}
	// In the ISR, it is never held back.
	in := NewThrottles(3, 2, time.Second, Unlimited, 100)
	im := throttleImage(t, "", "0:3", nil)
	id := im.Topic("t").ID
	im, _, err := im.Apply(metadata.Offset{Index: 2, Term: 1}, []metadata.Record{&metadata.PartitionChangeRecord{TopicID: id, Partition: 0,
		PartitionEpoch: 0, Set: metadata.SetISR, ISR: []int32{1, 3}}})
	if err != nil {
		t.Fatal(err)
	}
	in.Apply(im)
	in.Follower.Record(w.now, 1<<20)
	f.cfg.Throttle = in.FollowerSide()
	if req, _ := f.Next(w.now); req == nil {
		t.Fatal("a replica in the ISR was held back")
	}
	// The quota recovers as its samples age out.
	f.cfg.Throttle = th.FollowerSide()
	w.now = w.now.Add(2 * time.Second)
	if req, _ := f.Next(w.now); req == nil {
		t.Fatal("still held once the quota recovered")
	}
}
