package replication

// Replication throttles, as Kafka's ReplicationQuotaManager applies them (KIP-73): a
// reassignment's operator caps the bytes per second moved for the replicas it names so
// the move does not starve clients.
//
//   - Two quotas per broker, in bytes per second: leader.replication.throttled.rate for
//     what it sends as a leader, follower.replication.throttled.rate for what it fetches
//     as a follower (dynamic broker configs: this broker's own value, else the cluster
//     default; unset is no limit). The rate is measured over
//     replication.quota.window.num samples of replication.quota.window.size.seconds, as
//     Kafka's Rate: the bytes of the live samples over the time they span, counted as at
//     least all but one full sample (so a first burst is measured against the whole
//     window, not the few milliseconds since it began).
//   - Which replicas: a topic's leader.replication.throttled.replicas and
//     follower.replication.throttled.replicas, "partition:broker,..." or "*"; each
//     broker reads the entries that name it. The bytes of every listed replica count
//     against the quota, in sync or not.
//   - Holding back: while a quota is exceeded, a listed replica that is not in the
//     partition's ISR gets no data: the follower leaves it out of its fetches (and waits
//     replica.fetch.backoff.ms when nothing else is due), the leader answers its fetches
//     without records. A replica in the ISR is never held back, so throttling never
//     shrinks the ISR or delays acks=all.
//
// Quota is a pure state machine (time an input) behind a mutex; Throttles binds the two
// quotas to a broker's metadata image.

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vltava/vltava/internal/metadata"
)

// The throttle configs, Kafka's keys.
const (
	LeaderThrottledRateKey       = "leader.replication.throttled.rate"
	FollowerThrottledRateKey     = "follower.replication.throttled.rate"
	LeaderThrottledReplicasKey   = "leader.replication.throttled.replicas"
	FollowerThrottledReplicasKey = "follower.replication.throttled.replicas"
	QuotaWindowNumKey            = "replication.quota.window.num"
	QuotaWindowSizeKey           = "replication.quota.window.size.seconds"
)

// Unlimited is the rate of a quota that never holds anything back (Kafka's default,
// Long.MAX_VALUE).
const Unlimited = math.MaxInt64

// Quota is one replication quota: a byte rate over a window of samples.
type Quota struct {
	mu      sync.Mutex
	rate    int64 // bytes per second; Unlimited: none
	size    time.Duration
	samples []sample // ring; cur is the newest
	cur     int
}

type sample struct {
	start time.Time // zero: unused
	bytes int64
}

// NewQuota returns an unlimited quota measured over windows samples of size each
// (replication.quota.window.num, replication.quota.window.size.seconds).
func NewQuota(windows int, size time.Duration) *Quota {
	return &Quota{rate: Unlimited, size: max(size, time.Millisecond), samples: make([]sample, max(windows, 1))}
}

// SetRate sets the bound in bytes per second; Unlimited (or less than 0) removes it.
func (q *Quota) SetRate(rate int64) {
	if rate < 0 {
		rate = Unlimited
	}
	q.mu.Lock()
	q.rate = rate
	q.mu.Unlock()
}

// Rate returns the bound (Unlimited: none).
func (q *Quota) Rate() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.rate
}

// Record counts n bytes sent or fetched at now.
func (q *Quota) Record(now time.Time, n int64) {
	if n <= 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	s := &q.samples[q.cur]
	if s.start.IsZero() || !now.Before(s.start.Add(q.size)) {
		q.cur = (q.cur + 1) % len(q.samples)
		s = &q.samples[q.cur]
		*s = sample{start: now}
	}
	s.bytes += n
}

// Measured returns the rate in bytes per second measured at now.
func (q *Quota) Measured(now time.Time) float64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.measuredLocked(now)
}

func (q *Quota) measuredLocked(now time.Time) float64 {
	span := time.Duration(len(q.samples)) * q.size
	var total int64
	oldest := now
	for i := range q.samples {
		s := &q.samples[i]
		if s.start.IsZero() {
			continue
		}
		if now.Sub(s.start) >= span { // obsolete: it ended a whole window ago
			*s = sample{}
			continue
		}
		total += s.bytes
		if s.start.Before(oldest) {
			oldest = s.start
		}
	}
	elapsed := now.Sub(oldest)
	if minimum := time.Duration(len(q.samples)-1) * q.size; elapsed < minimum {
		elapsed = minimum
	}
	if elapsed <= 0 {
		elapsed = q.size
	}
	return float64(total) / elapsed.Seconds()
}

// Exceeded reports whether the measured rate is above the bound at now.
func (q *Quota) Exceeded(now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.rate == Unlimited {
		return false
	}
	return q.measuredLocked(now) > float64(q.rate)
}

// throttledIn reports whether list (a throttled replicas config) names partition on
// broker: "*" names every replica.
func throttledIn(list string, partition, broker int32) bool {
	list = strings.TrimSpace(list)
	if list == "" {
		return false
	}
	if list == "*" {
		return true
	}
	want := strconv.Itoa(int(partition)) + ":" + strconv.Itoa(int(broker))
	for _, e := range strings.Split(list, ",") {
		if strings.TrimSpace(e) == want {
			return true
		}
	}
	return false
}

// Throttles are one broker's two replication quotas and the image that says which
// replicas they apply to. Safe for concurrent use.
type Throttles struct {
	Leader, Follower *Quota
	self             int32
	static           [2]int64 // the rates of the static configuration
	im               atomic.Pointer[metadata.Image]
}

// NewThrottles returns the throttles of broker self; the static rates are those of its
// configuration file (Unlimited if not set), which dynamic configs override.
func NewThrottles(self int32, windows int, size time.Duration, staticLeader, staticFollower int64) *Throttles {
	t := &Throttles{Leader: NewQuota(windows, size), Follower: NewQuota(windows, size), self: self,
		static: [2]int64{staticLeader, staticFollower}}
	t.Leader.SetRate(staticLeader)
	t.Follower.SetRate(staticFollower)
	return t
}

// Apply takes a new metadata image: the rates from its dynamic broker configs (this
// broker's, else the cluster default, else the static ones) and the topics' lists.
func (t *Throttles) Apply(im *metadata.Image) {
	t.im.Store(im)
	own, def := im.BrokerConfigs(strconv.Itoa(int(t.self))), im.BrokerConfigs("")
	rate := func(key string, static int64) int64 {
		for _, m := range []map[string]string{own, def} {
			if v, ok := m[key]; ok {
				if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
					return n
				}
			}
		}
		return static
	}
	t.Leader.SetRate(rate(LeaderThrottledRateKey, t.static[0]))
	t.Follower.SetRate(rate(FollowerThrottledRateKey, t.static[1]))
}

// listed reports whether the topic's list key names partition on broker, and whether
// broker is in the partition's ISR.
func (t *Throttles) listed(key, topic string, partition, broker int32) (listed, inSync bool) {
	im := t.im.Load()
	if im == nil {
		return false, false
	}
	tp := im.Topic(topic)
	if tp == nil {
		return false, false
	}
	p := tp.Partition(partition)
	if p == nil || !throttledIn(tp.Configs[key], partition, broker) {
		return false, false
	}
	return true, slices.Contains(p.ISR(), broker)
}

// LeaderHold is the leader's decision for a follower's fetch of a partition it leads:
// listed says its records count against the leader quota (the topic's leader list names
// the partition on this broker); hold that they are left out of this answer (listed,
// the follower out of the ISR, the quota exceeded).
func (t *Throttles) LeaderHold(topic string, partition, follower int32, now time.Time) (listed, hold bool) {
	if t == nil {
		return false, false
	}
	if listed, _ = t.listed(LeaderThrottledReplicasKey, topic, partition, t.self); !listed {
		return false, false
	}
	return true, !t.inISR(topic, partition, follower) && t.Leader.Exceeded(now)
}

// inISR reports whether broker is in the ISR of the partition.
func (t *Throttles) inISR(topic string, partition, broker int32) bool {
	im := t.im.Load()
	if im == nil {
		return false
	}
	tp := im.Topic(topic)
	if tp == nil {
		return false
	}
	p := tp.Partition(partition)
	return p != nil && slices.Contains(p.ISR(), broker)
}

// FollowerThrottle is what a fetcher asks of the follower quota.
type FollowerThrottle interface {
	// Listed reports whether k's fetched bytes count against the quota, and whether
	// this broker is in k's ISR (then it is never held back).
	Listed(k Key) (listed, inSync bool)
	Exceeded(now time.Time) bool
	Record(now time.Time, n int64)
}

// FollowerSide is the follower quota as a fetcher uses it (nil if t is nil).
func (t *Throttles) FollowerSide() FollowerThrottle {
	if t == nil {
		return nil
	}
	return followerSide{t}
}

type followerSide struct{ t *Throttles }

func (f followerSide) Listed(k Key) (bool, bool) {
	return f.t.listed(FollowerThrottledReplicasKey, k.Topic, k.Partition, f.t.self)
}
func (f followerSide) Exceeded(now time.Time) bool   { return f.t.Follower.Exceeded(now) }
func (f followerSide) Record(now time.Time, n int64) { f.t.Follower.Record(now, n) }
