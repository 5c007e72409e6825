// sampler.go is the throughput history behind the console's charts. Kafka's protocol
// has no throughput counters for clients, so the console derives them from what it can
// poll: every interval it lists each topic's high watermarks (records in), the sizes of
// its leaders' logs (bytes in) and every group's committed offsets (records out, as
// consumers commit them), and turns the differences into rates.
//
// A new topic or group, or a topic deleted and created again, starts from its first
// sample rather than showing everything it already held as a burst; offsets that go back
// (a reset, a truncation) and logs that shrink (retention, compaction) count as 0, not as
// negative traffic. Memory is bounded: a ring of SampleCapacity samples, each with at
// most MaxSampledTopics topics (the cluster totals count every topic), and the previous
// observation, which has one number per topic and per group and topic.
package console

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// rates are per second over one interval.
type rates struct {
	In      float64 `json:"in"`      // records produced
	Out     float64 `json:"out"`     // records consumed (committed by groups)
	BytesIn float64 `json:"bytesIn"` // growth of the leaders' logs
}

type sample struct {
	at     time.Time
	total  rates
	topics map[string]rates
}

// observation is what one poll saw: cumulative numbers, not rates.
type observation struct {
	at      time.Time
	ends    map[string]int64                    // topic -> sum of its partitions' high watermarks
	sizes   map[string]int64                    // topic -> bytes in its leaders' logs; nil: unknown
	commits map[string]map[topicPartition]int64 // group -> partition -> committed offset
}

type topicPartition struct {
	topic     string
	partition int32
}

// sampler owns the ring; add is the only writer, series the only reader.
type sampler struct {
	maxTopics int

	mu        sync.Mutex
	ring      []sample // capacity fixed at creation
	next      int      // where the next sample goes
	n         int      // samples held
	prev      *observation
	truncated bool // more topics than maxTopics were seen in the last sample
	lastErr   string
	lastAt    time.Time
}

func newSampler(capacity, maxTopics int) *sampler {
	return &sampler{maxTopics: maxTopics, ring: make([]sample, capacity)}
}

// add turns an observation into a sample of rates against the previous one. The first
// observation (and one not after the previous) only sets the baseline.
func (s *sampler) add(o observation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr, s.lastAt = "", o.at
	prev := s.prev
	s.prev = &o
	if prev == nil || !o.at.After(prev.at) {
		return
	}
	dt := o.at.Sub(prev.at).Seconds()
	per := map[string]*rates{}
	get := func(t string) *rates {
		r := per[t]
		if r == nil {
			r = &rates{}
			per[t] = r
		}
		return r
	}
	for t, end := range o.ends {
		if was, ok := prev.ends[t]; ok {
			get(t).In = float64(max(0, end-was)) / dt
		}
	}
	if o.sizes != nil && prev.sizes != nil {
		for t, size := range o.sizes {
			if was, ok := prev.sizes[t]; ok {
				get(t).BytesIn = float64(max(0, size-was)) / dt
			}
		}
	}
	for g, ps := range o.commits {
		for tp, at := range ps {
			if was, ok := prev.commits[g][tp]; ok {
				get(tp.topic).Out += float64(max(0, at-was)) / dt
			}
		}
	}
	smp := sample{at: o.at, topics: map[string]rates{}}
	names := make([]string, 0, len(per))
	for t, r := range per {
		smp.total.In += r.In
		smp.total.Out += r.Out
		smp.total.BytesIn += r.BytesIn
		names = append(names, t)
	}
	// Keep the busiest topics when there are more than the ring may hold per sample.
	s.truncated = len(names) > s.maxTopics
	if s.truncated {
		slices.SortFunc(names, func(a, b string) int {
			ra, rb := per[a], per[b]
			return cmp.Or(cmp.Compare(rb.In+rb.Out, ra.In+ra.Out), cmp.Compare(a, b))
		})
		names = names[:s.maxTopics]
	}
	for _, t := range names {
		smp.topics[t] = *per[t]
	}
	s.ring[s.next] = smp
	s.next = (s.next + 1) % len(s.ring)
	s.n = min(s.n+1, len(s.ring))
}

func (s *sampler) fail(at time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr, s.lastAt = err.Error(), at
}

// series is the history in columns, oldest first, as charts take it: the totals and the
// top topics by traffic over the whole window.
type series struct {
	IntervalMs      int64              `json:"intervalMs"`
	Capacity        int                `json:"capacity"`
	Times           []int64            `json:"times"` // ms since the epoch
	Total           columns            `json:"total"`
	Topics          map[string]columns `json:"topics"`
	TopicsTruncated bool               `json:"topicsTruncated"`
	LastError       string             `json:"lastError,omitempty"`
	LastPoll        int64              `json:"lastPoll"` // ms; 0: not yet
	Current         map[string]rates   `json:"current"`  // the last sample, every topic it holds
}

type columns struct {
	In      []float64 `json:"in"`
	Out     []float64 `json:"out"`
	BytesIn []float64 `json:"bytesIn"`
}

func (c *columns) push(r rates) {
	c.In = append(c.In, r.In)
	c.Out = append(c.Out, r.Out)
	c.BytesIn = append(c.BytesIn, r.BytesIn)
}

func (s *sampler) series(top int) series {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := series{Capacity: len(s.ring), Times: []int64{}, Topics: map[string]columns{}, Current: map[string]rates{},
		TopicsTruncated: s.truncated, LastError: s.lastErr, Total: columns{In: []float64{}, Out: []float64{}, BytesIn: []float64{}}}
	if !s.lastAt.IsZero() {
		out.LastPoll = s.lastAt.UnixMilli()
	}
	ordered := make([]sample, 0, s.n)
	for i := range s.n {
		ordered = append(ordered, s.ring[(s.next-s.n+i+len(s.ring))%len(s.ring)])
	}
	busy := map[string]float64{}
	for _, smp := range ordered {
		for t, r := range smp.topics {
			busy[t] += r.In + r.Out
		}
	}
	names := make([]string, 0, len(busy))
	for t, v := range busy {
		if v > 0 {
			names = append(names, t)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(busy[b], busy[a]), cmp.Compare(a, b)) })
	if len(names) > top {
		names = names[:top]
	}
	slices.Sort(names)
	for _, smp := range ordered {
		out.Times = append(out.Times, smp.at.UnixMilli())
		out.Total.push(smp.total)
		for _, t := range names {
			col := out.Topics[t]
			col.push(smp.topics[t])
			out.Topics[t] = col
		}
	}
	if len(ordered) > 0 {
		out.Current = ordered[len(ordered)-1].topics
	}
	return out
}

// maxChartTopics bounds the per-topic series one answer carries.
const maxChartTopics = 20

func (c *Console) getThroughput(_ context.Context, r *http.Request) (any, error) {
	top := 8
	if s := r.URL.Query().Get("top"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, badRequest("top %q: want a number of topics", s)
		}
		top = min(n, maxChartTopics)
	}
	out := c.sampler.series(top)
	out.IntervalMs = c.opts.SampleInterval.Milliseconds()
	return out, nil
}

// sampleLoop polls every SampleInterval until ctx ends.
func (c *Console) sampleLoop(ctx context.Context) {
	t := time.NewTicker(c.opts.SampleInterval)
	defer t.Stop()
	for {
		c.sampleOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Console) sampleOnce(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	o, err := c.observe(ctx)
	if err != nil {
		c.opts.Logger.Debug("console throughput sample failed", "err", err)
		c.sampler.fail(time.Now(), err)
		return
	}
	c.sampler.add(o)
}

// observe polls what one sample needs. The topics are the non-internal ones; the groups
// at most MaxSampledGroups, by name.
func (c *Console) observe(ctx context.Context) (observation, error) {
	o := observation{ends: map[string]int64{}, commits: map[string]map[topicPartition]int64{}}
	td, err := c.adm.ListTopics(ctx)
	if err != nil {
		return o, err
	}
	offs, err := c.offsets(ctx, td)
	if err != nil {
		return o, err
	}
	offs.ends.Each(func(l kadm.ListedOffset) {
		if l.Err == nil {
			o.ends[l.Topic] += l.Offset
		}
	})
	if offs.sizesKnown {
		o.sizes = map[string]int64{}
		for t, ps := range offs.sizes {
			for _, sz := range ps {
				o.sizes[t] += sz
			}
		}
	}
	listed, err := c.adm.ListGroups(ctx)
	if err == nil || len(listed) > 0 {
		names := listed.Groups()
		slices.Sort(names)
		if len(names) > c.opts.MaxSampledGroups {
			names = names[:c.opts.MaxSampledGroups]
		}
		if len(names) > 0 {
			for g, f := range c.adm.FetchManyOffsets(ctx, names...) {
				if f.Err != nil {
					continue
				}
				ps := map[topicPartition]int64{}
				f.Fetched.Each(func(r kadm.OffsetResponse) {
					if r.Err == nil && r.At >= 0 {
						ps[topicPartition{r.Topic, r.Partition}] = r.At
					}
				})
				o.commits[g] = ps
			}
		}
	}
	o.at = time.Now()
	return o, nil
}
