// The log cleaner's I/O throttle (log.cleaner.io.max.bytes.per.second), after Kafka's
// Throttler: the cleaner reports the bytes it reads and writes, together, and the
// throttle sleeps whenever they get ahead of the rate.
//
// It keeps a debt: the time the bytes reported so far need at the rate, less the time
// that has passed. A report of n bytes adds n/rate; time passing (the work of reading or
// writing them, or a sleep) pays the debt down, to a credit of at most
// maxThrottleCredit, so the work between reports counts but time spent idle between
// cleans buys no long burst later. When the debt reaches minThrottleSleep the throttle
// sleeps it off in one go (timers are coarse, so sleeps come in steps of at least that).
// Over any stretch of a clean, bytes / elapsed time thus stays within one step (and the
// credit) of the rate.
//
// An unlimited throttle (rate <= 0, NaN, or at least maxThrottleRate, which takes in
// Kafka's default of Double.MAX_VALUE) only counts the bytes: no clock read, no sleep.
//
// A sleep ends early when the clean is aborted: at once when CleanOptions.Abort closes
// (broker shutdown), and within throttleAbortPoll when Log.Close or Log.Delete sets the
// log's abort flag (a flag, not a channel, so the sleep polls it). Neither thus waits
// for a long throttle sleep to end.
package log

import (
	"math"
	"sync/atomic"
	"time"
)

const (
	// minThrottleSleep is the least debt worth a sleep.
	minThrottleSleep = 10 * time.Millisecond
	// maxThrottleRate and above is unlimited: no device moves an exabyte a second.
	maxThrottleRate = 1e18
	// maxThrottleDebt bounds the debt, so a tiny rate cannot overflow a Duration.
	maxThrottleDebt = time.Duration(math.MaxInt64 / 4)
	// maxThrottleCredit bounds how far time passing without reports lowers the debt
	// below zero (as Kafka's Throttler credits time within its 300 ms check period).
	maxThrottleCredit = 100 * time.Millisecond
	// throttleAbortPoll is how often a throttle sleep checks the log's abort flag.
	throttleAbortPoll = 10 * time.Millisecond
)

// abortSignal is what stops a clean: the caller's channel or the log's flag (either may
// be nil).
type abortSignal struct {
	ch   <-chan struct{}
	flag *atomic.Bool
}

func (a abortSignal) aborted() bool {
	select {
	case <-a.ch:
		return true
	default:
	}
	return a.flag != nil && a.flag.Load()
}

// throttle limits the bytes a cleaner reads and writes per second. It is not safe for
// concurrent use; its Cleaner's owner serialises cleans.
type throttle struct {
	rate float64 // bytes per second; see limited
	// now and sleep are the clock and the sleep (time.Now and sleepUnlessAborted; tests
	// inject fakes). sleep returns false if the clean was aborted while it slept.
	now   func() time.Time
	sleep func(d time.Duration, a abortSignal) bool

	last  time.Time     // when debt was last brought up to date
	debt  time.Duration // time the reported bytes still need at rate; >= -maxThrottleCredit
	bytes int64         // bytes reported, limited or not
	slept time.Duration // sleeps asked for
}

func newThrottle() *throttle {
	return &throttle{now: time.Now, sleep: sleepUnlessAborted}
}

// setRate sets the rate for the next reports; a change of rate keeps the debt owed.
func (t *throttle) setRate(bytesPerSecond float64) {
	if limited(bytesPerSecond) && !limited(t.rate) {
		t.last, t.debt = t.now(), 0
	}
	t.rate = bytesPerSecond
}

// limited reports whether a rate limits anything.
func limited(rate float64) bool {
	return rate > 0 && rate < maxThrottleRate
}

// wait reports n bytes read or written and sleeps off the debt if it has reached
// minThrottleSleep. It returns false if the clean was aborted (before or during the
// sleep).
func (t *throttle) wait(n int, a abortSignal) bool {
	t.bytes += int64(n)
	if !limited(t.rate) {
		return true
	}
	now := t.now()
	if passed := now.Sub(t.last); passed > 0 {
		t.debt = max(t.debt-passed, -maxThrottleCredit)
	}
	t.last = now
	if add := float64(n) / t.rate * float64(time.Second); add >= float64(maxThrottleDebt-t.debt) {
		t.debt = maxThrottleDebt
	} else {
		t.debt += time.Duration(add)
	}
	if t.debt < minThrottleSleep {
		return true
	}
	// The sleep pays the debt: the next report subtracts the time it took.
	t.slept += t.debt
	return t.sleep(t.debt, a)
}

// sleepUnlessAborted sleeps d, or less if the clean is aborted: at once on the channel,
// within throttleAbortPoll on the log's flag. It returns false if aborted.
func sleepUnlessAborted(d time.Duration, a abortSignal) bool {
	if a.aborted() {
		return false
	}
	deadline := time.Now().Add(d)
	timer := time.NewTimer(min(d, throttleAbortPoll))
	defer timer.Stop()
	for {
		select {
		case <-a.ch:
			return false
		case <-timer.C:
		}
		if a.aborted() {
			return false
		}
		left := time.Until(deadline)
		if left <= 0 {
			return true
		}
		timer.Reset(min(left, throttleAbortPoll))
	}
}
