package console

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

func obs(at time.Time, ends map[string]int64, sizes map[string]int64, commits map[string]map[topicPartition]int64) observation {
	return observation{at: at, ends: ends, sizes: sizes, commits: commits}
}

// TestSamplerRates steps the sampler through observations and checks the rates: the
// first observation is only a baseline, new topics and groups start from their first
// sample, and counters that go back count as nothing, never as negative traffic.
func TestSamplerRates(t *testing.T) {
	s := newSampler(10, 10)
	t0 := time.Unix(1000, 0)
	tp := func(t string, p int32) topicPartition { return topicPartition{t, p} }
	s.add(obs(t0, map[string]int64{"a": 100}, map[string]int64{"a": 1000},
		map[string]map[topicPartition]int64{"g": {tp("a", 0): 10}}))
	if got := s.series(8); len(got.Times) != 0 {
		t.Fatalf("a baseline made a sample: %+v", got)
	}
	// 2 s later: a gained 50 records and 500 bytes, g consumed 20; b appeared with 1,000
	// records and h with a commit far ahead, which must not show as a burst.
	s.add(obs(t0.Add(2*time.Second), map[string]int64{"a": 150, "b": 1000}, map[string]int64{"a": 1500, "b": 9000},
		map[string]map[topicPartition]int64{"g": {tp("a", 0): 30, tp("a", 1): 500}, "h": {tp("a", 0): 5000}}))
	got := s.series(8)
	if len(got.Times) != 1 || got.Times[0] != t0.Add(2*time.Second).UnixMilli() {
		t.Fatalf("times %v", got.Times)
	}
	if a := got.Current["a"]; a.In != 25 || a.BytesIn != 250 || a.Out != 10 {
		t.Errorf("a: %+v, want in 25/s, bytes 250/s, out 10/s", a)
	}
	if b, ok := got.Current["b"]; ok && (b.In != 0 || b.BytesIn != 0) {
		t.Errorf("new topic b counted its history: %+v", b)
	}
	if got.Total.In[0] != 25 || got.Total.Out[0] != 10 {
		t.Errorf("total %+v", got.Total)
	}
	// A reset and retention: offsets and sizes go back.
	s.add(obs(t0.Add(4*time.Second), map[string]int64{"a": 120, "b": 1100}, map[string]int64{"a": 100, "b": 9100},
		map[string]map[topicPartition]int64{"g": {tp("a", 0): 0}}))
	got = s.series(8)
	if a := got.Current["a"]; a.In != 0 || a.BytesIn != 0 || a.Out != 0 {
		t.Errorf("a after going back: %+v", a)
	}
	if b := got.Current["b"]; b.In != 50 || b.BytesIn != 50 {
		t.Errorf("b: %+v", b)
	}
	if len(got.Topics["b"].In) != 2 || got.Topics["b"].In[0] != 0 || got.Topics["b"].In[1] != 50 {
		t.Errorf("b's series %+v", got.Topics["b"])
	}
	// An observation no later than the last one (a clock step back) is a new baseline.
	s.add(obs(t0.Add(3*time.Second), map[string]int64{"a": 1}, nil, nil))
	if n := len(s.series(8).Times); n != 2 {
		t.Errorf("%d samples after a clock step back, want 2", n)
	}
}

// TestSamplerBounded: the ring holds its capacity and no more, each sample at most
// maxTopics topics (the busiest), and the totals still count every topic.
func TestSamplerBounded(t *testing.T) {
	s := newSampler(4, 2)
	t0 := time.Unix(1000, 0)
	for i := range 10 {
		ends := map[string]int64{"quiet": int64(i), "busy": int64(100 * i), "busier": int64(1000 * i)}
		s.add(obs(t0.Add(time.Duration(i)*time.Second), ends, nil, nil))
	}
	got := s.series(8)
	if len(got.Times) != 4 || got.Times[0] != t0.Add(6*time.Second).UnixMilli() || got.Times[3] != t0.Add(9*time.Second).UnixMilli() {
		t.Errorf("times %v, want the last 4 seconds 6..9", got.Times)
	}
	if _, ok := got.Current["quiet"]; ok || len(got.Current) != 2 || !got.TopicsTruncated {
		t.Errorf("current %v truncated %v: want busy and busier only", got.Current, got.TopicsTruncated)
	}
	if got.Total.In[3] != 1101 {
		t.Errorf("total %v, want every topic counted", got.Total.In)
	}
	if got := s.series(1); len(got.Topics) != 1 || got.Topics["busier"].In == nil {
		t.Errorf("top 1: %v", got.Topics)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ring) != 4 {
		t.Errorf("ring grew to %d", len(s.ring))
	}
}

// TestSampleFromCluster polls a real broker twice around some traffic: records in,
// bytes in, and records consumed by a group's commits.
func TestSampleFromCluster(t *testing.T) {
	f := newFixture(t, vltavaBroker(t), Options{})
	f.createTopic("s", 1)
	f.produce(rec("s", 0, "", "x"))
	offs := kadm.Offsets{}
	offs.AddOffset("s", 0, 1, -1)
	if err := f.adm.CommitAllOffsets(f.ctx(), "sg", offs); err != nil {
		t.Fatal(err)
	}
	f.con.sampleOnce(f.ctx())
	for range 4 {
		f.produce(rec("s", 0, "", "0123456789"))
	}
	offs = kadm.Offsets{}
	offs.AddOffset("s", 0, 3, -1)
	if err := f.adm.CommitAllOffsets(f.ctx(), "sg", offs); err != nil {
		t.Fatal(err)
	}
	f.con.sampleOnce(f.ctx())
	var got series
	f.get("/api/throughput", &got)
	if len(got.Times) != 1 || got.LastError != "" {
		t.Fatalf("series %+v", got)
	}
	// Rates are per second over however long the two polls were apart, so compare
	// their ratio: 4 records in for 2 committed.
	s := got.Current["s"]
	if s.In <= 0 || s.Out <= 0 || s.BytesIn <= 0 {
		t.Errorf("s: %+v, want records in, records out and bytes in", s)
	}
	if ratio := s.In / s.Out; ratio < 1.99 || ratio > 2.01 {
		t.Errorf("in %v / out %v = %v, want 4 records in for 2 committed", s.In, s.Out, ratio)
	}
}
