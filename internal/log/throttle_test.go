package log

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vltava/vltava/internal/batch"
)

// fakeThrottleClock is a throttle's clock and sleep for tests: a sleep records what it
// was asked for and moves the clock by it.
type fakeThrottleClock struct {
	clock  *clock
	sleeps []time.Duration
}

func (f *fakeThrottleClock) install(t *throttle) {
	t.now = f.clock.now
	t.sleep = func(d time.Duration, _ abortSignal) bool {
		f.sleeps = append(f.sleeps, d)
		f.clock.add(d)
		return true
	}
}

func (f *fakeThrottleClock) total() time.Duration {
	var sum time.Duration
	for _, d := range f.sleeps {
		sum += d
	}
	return sum
}

// rateTime is how long n bytes take at rate bytes per second.
func rateTime(n int64, rate float64) time.Duration {
	return time.Duration(float64(n) / rate * float64(time.Second))
}

// TestThrottleSleepsAddUpToRate: whatever the report sizes and the work between them,
// work and sleeps together take bytes/rate, less at most one unslept step, more at most
// the credit of the work after the last sleep; each sleep is at least minThrottleSleep;
// and time passed idle before the reports is worth at most maxThrottleCredit.
func TestThrottleSleepsAddUpToRate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rate    float64
		reports []int         // bytes per report, cycled
		count   int           // reports
		work    time.Duration // clock moves this much before each report
		idle    time.Duration // and this much once before the first
	}{
		{name: "no work", rate: 1 << 20, reports: []int{4096}, count: 1000},
		{name: "uneven reports", rate: 1e6, reports: []int{61, 70000, 1, 300, 16384}, count: 997},
		{name: "some work", rate: 1 << 20, reports: []int{4096}, count: 1000, work: time.Millisecond},
		{name: "work slower than rate", rate: 1 << 20, reports: []int{4096}, count: 100, work: 10 * time.Millisecond},
		{name: "idle before", rate: 1e5, reports: []int{1000}, count: 500, idle: time.Hour},
		{name: "slow rate", rate: 1, reports: []int{100}, count: 10},
		{name: "fractional rate", rate: 0.5, reports: []int{3}, count: 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeThrottleClock{clock: newClock()}
			th := newThrottle()
			f.install(th)
			th.setRate(tc.rate)
			start := f.clock.now()
			f.clock.add(tc.idle)
			var bytes int64
			for i := range tc.count {
				f.clock.add(tc.work)
				n := tc.reports[i%len(tc.reports)]
				bytes += int64(n)
				if !th.wait(n, abortSignal{}) {
					t.Fatal("wait reported an abort")
				}
			}
			for i, d := range f.sleeps {
				if d < minThrottleSleep {
					t.Fatalf("sleep %d of %v, below minThrottleSleep", i, d)
				}
			}
			if th.bytes != bytes || th.slept != f.total() {
				t.Fatalf("throttle counted %d bytes, %v slept; want %d, %v", th.bytes, th.slept, bytes, f.total())
			}
			work := time.Duration(tc.count) * tc.work
			want := rateTime(bytes, tc.rate)
			rounding := time.Duration(tc.count) // each report's n/rate is cut to a nanosecond
			if work >= want {
				if len(f.sleeps) != 0 {
					t.Fatalf("work alone (%v) keeps below the rate (%v), yet slept %v", work, want, f.sleeps)
				}
				return
			}
			elapsed := f.clock.now().Sub(start) - tc.idle
			lo, hi := want-minThrottleSleep-rounding, want
			if tc.work > 0 {
				hi += maxThrottleCredit
			}
			if tc.idle > 0 {
				lo -= maxThrottleCredit
			}
			if elapsed < lo || elapsed > hi {
				t.Fatalf("%d bytes at %v B/s: work %v + sleeps %v = %v, want within [%v, %v]",
					bytes, tc.rate, work, f.total(), elapsed, lo, hi)
			}
		})
	}
}

// TestThrottleRateChange: a new rate applies to the bytes reported after it; switching
// to unlimited and back starts afresh.
func TestThrottleRateChange(t *testing.T) {
	f := &fakeThrottleClock{clock: newClock()}
	th := newThrottle()
	f.install(th)
	th.setRate(1000)
	th.wait(1000, abortSignal{}) // 1 s
	th.setRate(100)
	th.wait(100, abortSignal{}) // 1 s more
	if got := f.total(); got != 2*time.Second {
		t.Fatalf("slept %v (%v), want 2s", got, f.sleeps)
	}
	th.setRate(0)
	th.wait(1<<30, abortSignal{})
	th.setRate(1000)
	th.wait(5, abortSignal{}) // 5 ms owed: no sleep yet
	if got := f.total(); got != 2*time.Second {
		t.Fatalf("slept %v after unlimited bytes, want no more than 2s", got)
	}
}

// TestThrottleUnlimited: no rate, a non-positive one and Kafka's default (Double.MAX_VALUE)
// only count: the clock is not read and nothing sleeps.
func TestThrottleUnlimited(t *testing.T) {
	for _, rate := range []float64{0, -1, math.NaN(), math.Inf(1), math.MaxFloat64, maxThrottleRate} {
		th := newThrottle()
		th.now = func() time.Time { t.Fatalf("rate %v: clock read", rate); return time.Time{} }
		th.sleep = func(time.Duration, abortSignal) bool { t.Fatalf("rate %v: slept", rate); return false }
		th.setRate(rate)
		for range 1000 {
			th.wait(1<<20, abortSignal{})
		}
		if th.bytes != 1000<<20 {
			t.Fatalf("rate %v: counted %d bytes", rate, th.bytes)
		}
	}
}

// TestThrottleHugeDebt: a rate so low that the debt would overflow a Duration is capped.
func TestThrottleHugeDebt(t *testing.T) {
	f := &fakeThrottleClock{clock: newClock()}
	th := newThrottle()
	f.install(th)
	th.setRate(1e-300)
	th.wait(1<<20, abortSignal{})
	th.wait(1<<20, abortSignal{})
	for _, d := range f.sleeps {
		if d <= 0 || d > maxThrottleDebt {
			t.Fatalf("sleeps %v: want positive, at most %v", f.sleeps, maxThrottleDebt)
		}
	}
}

// TestSleepUnlessAborted runs the real sleep on synctest's clock: it sleeps the time
// asked unless aborted, stops at once when the channel closes, and within
// throttleAbortPoll of the log's flag being set.
func TestSleepUnlessAborted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var flag atomic.Bool
		ch := make(chan struct{})
		a := abortSignal{ch: ch, flag: &flag}

		start := time.Now()
		if !sleepUnlessAborted(time.Hour, a) || time.Since(start) != time.Hour {
			t.Fatalf("sleep of an hour: took %v", time.Since(start))
		}

		// Off the poll's 10 ms steps, so an abort seen only by polling shows.
		const wait = time.Minute + 3*time.Millisecond
		done := make(chan bool)
		start = time.Now()
		go func() { done <- sleepUnlessAborted(time.Hour, a) }()
		time.Sleep(wait)
		flag.Store(true)
		if <-done || time.Since(start) > wait+throttleAbortPoll {
			t.Fatalf("flag set after %v: sleep ended after %v", wait, time.Since(start))
		}
		if sleepUnlessAborted(time.Hour, a) {
			t.Fatal("sleep with the flag already set did not report the abort")
		}

		flag.Store(false)
		start = time.Now()
		go func() { done <- sleepUnlessAborted(time.Hour, a) }()
		time.Sleep(wait)
		close(ch)
		if <-done || time.Since(start) != wait {
			t.Fatalf("channel closed after %v: sleep ended after %v", wait, time.Since(start))
		}
	})
}

// throttledLog returns a log of one inactive segment of updates (each batch supersedes
// the one before) and an empty active segment.
func throttledLog(t *testing.T) *harness {
	h := newHarness(t, Config{SegmentBytes: 1 << 20})
	writeUpdates(t, h.log, h.clock.now().UnixMilli(), 40, 5)
	roll(t, h.log)
	flush(t, h.log)
	return h
}

// TestCleanThrottled: a clean reports every byte it reads (map pass, producer walk
// headers, rewrite) and writes to its throttle, and the sleeps it asks for add up to
// those bytes at the rate.
func TestCleanThrottled(t *testing.T) {
	h := throttledLog(t)
	before := contents(t, h.log)
	nBatches := 0
	h.log.Batches(0, func(batch.Batch) bool { nBatches++; return true })
	c := NewCleaner(1 << 20)
	f := &fakeThrottleClock{clock: newClock()}
	f.install(c.throttle)
	const rate = 1000
	st := cleanAll(t, c, h.log, CleanOptions{IOMaxBytesPerSecond: rate})
	if st.Segments != 1 || st.BytesAfter >= st.BytesBefore {
		t.Fatalf("stats %+v: want one segment rewritten smaller", st)
	}
	// The segment is read twice (map, rewrite) and its headers once; the cleaned one written.
	if want := 2*st.BytesBefore + int64(nBatches*batch.HeaderSize) + st.BytesAfter; st.IOBytes != want {
		t.Fatalf("IOBytes %d, want %d (2×%d read, %d headers, %d written)", st.IOBytes, want, st.BytesBefore, nBatches, st.BytesAfter)
	}
	if st.Throttled != f.total() {
		t.Fatalf("stats report %v throttled, sleeps asked %v", st.Throttled, f.total())
	}
	want := rateTime(st.IOBytes, rate)
	if st.Throttled > want || st.Throttled < want-minThrottleSleep-time.Duration(st.IOBytes) {
		t.Fatalf("%d bytes at %d B/s: slept %v, want about %v", st.IOBytes, rate, st.Throttled, want)
	}
	if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(latest(before)) {
		t.Fatalf("throttled clean: got %v, want %v", got, latest(before))
	}

	// Unlimited (Kafka's default): the same counting, no sleep.
	h = throttledLog(t)
	c = NewCleaner(1 << 20)
	c.throttle.sleep = func(time.Duration, abortSignal) bool { t.Fatal("unlimited clean slept"); return false }
	st = cleanAll(t, c, h.log, CleanOptions{IOMaxBytesPerSecond: math.MaxFloat64})
	if st.IOBytes == 0 || st.Throttled != 0 {
		t.Fatalf("unlimited clean: stats %+v", st)
	}
}

// TestThrottledCleanAborted: a clean in a throttle sleep stops when aborted by its
// channel, by Close or by Delete. The sleep here blocks until the abort signal it is
// given fires (TestSleepUnlessAborted shows the real one ends then), so this pins that
// the clean hands the sleep both signals and stops when it reports the abort.
func TestThrottledCleanAborted(t *testing.T) {
	for _, by := range []string{"channel", "Close", "Delete"} {
		t.Run(by, func(t *testing.T) {
			h := throttledLog(t)
			before := contents(t, h.log)
			c := NewCleaner(1 << 20)
			sleeping := make(chan struct{})
			c.throttle.sleep = func(d time.Duration, a abortSignal) bool {
				close(sleeping) // a second sleep would panic: the clean must stop
				for !a.aborted() {
					runtime.Gosched()
				}
				return false
			}
			abort := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				_, err := c.Clean(h.log, CleanOptions{HighWatermark: h.log.LogEndOffset(), Abort: abort, IOMaxBytesPerSecond: 1})
				done <- err
			}()
			<-sleeping
			var err error
			switch by {
			case "channel":
				close(abort)
			case "Close":
				err = h.log.Close()
			case "Delete":
				err = h.log.Delete()
			}
			if err != nil {
				t.Fatalf("%s: %v", by, err)
			}
			if err := <-done; !errors.Is(err, ErrCleanAborted) {
				t.Fatalf("Clean = %v, want ErrCleanAborted", err)
			}
			switch by {
			case "channel":
				if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(before) {
					t.Fatalf("aborted clean changed the log: %v, want %v", got, before)
				}
			case "Close":
				h.open()
				if got := contents(t, h.log); fmt.Sprint(got) != fmt.Sprint(before) {
					t.Fatalf("after the aborted clean and a reopen: %v, want %v", got, before)
				}
			case "Delete":
				if _, err := h.fs.Stat(dir); err == nil {
					t.Fatal("log directory still there")
				}
			}
		})
	}
}
