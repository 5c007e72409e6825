package broker

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/partition"
)

const ioRateKey = "log.cleaner.io.max.bytes.per.second"

// cleanResult is what the cleaner hook saw of one clean.
type cleanResult struct {
	st  log.CleanStats
	err error
}

// recordCleans makes b's cleaner report each clean on the returned slice (read it after
// CleanNow returns, or after Close for the loop).
func recordCleans(b *Broker) *[]cleanResult {
	var out []cleanResult
	b.cleaner.cleaned = func(_ *partition.Partition, st log.CleanStats, err error) {
		out = append(out, cleanResult{st, err})
	}
	return &out
}

// addUpdates appends another round of updates to fillCompacted's keys, so there is
// something to clean again.
func addUpdates(t *testing.T, b *Broker, topic string) {
	t.Helper()
	p := b.Partition(topic, 0)
	for r := range 20 {
		var recs []batch.Record
		for k := range 3 {
			recs = append(recs, batch.Record{Timestamp: b.Now().UnixMilli(), Key: fmt.Appendf(nil, "k%d", k), Value: fmt.Appendf(nil, "again%d", r)})
		}
		bt, err := batch.Build(batch.BuildOptions{}, recs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Append(bt); err != nil {
			t.Fatal(err)
		}
	}
	// As the flush loop does within a second of a roll: the cleaner compacts only
	// below the recovery point.
	if err := p.Log().Flush(); err != nil {
		t.Fatal(err)
	}
}

// cleanOnce runs a pass that must clean the one partition, and returns its stats.
func cleanOnce(t *testing.T, b *Broker, cleans *[]cleanResult) log.CleanStats {
	t.Helper()
	*cleans = nil
	if n, err := b.CleanNow(); err != nil || n != 1 {
		t.Fatalf("CleanNow = %d, %v; want one partition cleaned", n, err)
	}
	if len(*cleans) != 1 || (*cleans)[0].err != nil {
		t.Fatalf("cleans %+v, want one without an error", *cleans)
	}
	return (*cleans)[0].st
}

// checkThrottled checks that a clean's throttle asked to sleep about its bytes at rate:
// less by at most the debt left below the 10 ms step, give or take float rounding. The
// stats are the throttle's own count: no clock is measured.
func checkThrottled(t *testing.T, st log.CleanStats, rate float64) {
	t.Helper()
	want := time.Duration(float64(st.IOBytes) / rate * float64(time.Second))
	if st.IOBytes == 0 || st.Throttled > want+time.Microsecond || st.Throttled < want-10*time.Millisecond-time.Microsecond {
		t.Fatalf("clean of %d bytes at %v B/s asked for %v of sleep, want about %v", st.IOBytes, rate, st.Throttled, want)
	}
}

// TestCleanerThrottleConfig: the static value reaches the cleaner, a dynamic default
// (AlterConfigs on the broker default) replaces it from the next clean, and deleting it
// brings the static value back. Inside a synctest bubble, so the throttle's sleeps take
// no real time and no work time pays for the bytes: the sleeps add up to bytes / rate.
func TestCleanerThrottleConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := openTestBroker(t, map[string]string{"log.cleaner.enable": "false", ioRateKey: "2000"})
		defer b.Close()
		cleans := recordCleans(b)
		fillCompacted(t, b, "table")
		checkThrottled(t, cleanOnce(t, b, cleans), 2000)

		rate := "500.5"
		if err := b.AlterBrokerConfigs("", []ConfigChange{{Key: ioRateKey, Value: &rate}}, false); err != nil {
			t.Fatal(err)
		}
		addUpdates(t, b, "table")
		checkThrottled(t, cleanOnce(t, b, cleans), 500.5)

		unlimited := "1.7976931348623157E308" // Kafka's default
		if err := b.AlterBrokerConfigs("", []ConfigChange{{Key: ioRateKey, Value: &unlimited}}, false); err != nil {
			t.Fatal(err)
		}
		addUpdates(t, b, "table")
		if st := cleanOnce(t, b, cleans); st.IOBytes == 0 || st.Throttled != 0 {
			t.Fatalf("unlimited clean: %+v, want bytes counted and no sleep", st)
		}

		if err := b.AlterBrokerConfigs("", []ConfigChange{{Key: ioRateKey}}, false); err != nil {
			t.Fatal(err)
		}
		addUpdates(t, b, "table")
		checkThrottled(t, cleanOnce(t, b, cleans), 2000)
	})
}

// TestCleanerThrottleDefaultUnlimited: with the key unset, a clean does not sleep.
func TestCleanerThrottleDefaultUnlimited(t *testing.T) {
	b := openTestBroker(t, map[string]string{"log.cleaner.enable": "false"})
	defer b.Close()
	cleans := recordCleans(b)
	fillCompacted(t, b, "table")
	if st := cleanOnce(t, b, cleans); st.Throttled != 0 {
		t.Fatalf("default config: clean slept %v", st.Throttled)
	}
}

// TestCloseStopsThrottledClean: the cleaner loop's clean sleeping at 1 byte per second
// (over a minute for its first batch alone) is stopped by Close at once: Close returns
// without the bubble's clock moving, the clean ends with ErrCleanAborted, and synctest
// sees no goroutine left.
func TestCloseStopsThrottledClean(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := openTestBroker(t, map[string]string{"log.cleaner.backoff.ms": "1000", ioRateKey: "1"})
		cleans := recordCleans(b)
		fillCompacted(t, b, "table")
		time.Sleep(2 * time.Second) // the loop's first pass starts at 1 s and sleeps
		synctest.Wait()
		start := time.Now()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 0 {
			t.Fatalf("Close waited %v of the throttle sleep", took)
		}
		if len(*cleans) != 1 || !errors.Is((*cleans)[0].err, log.ErrCleanAborted) || (*cleans)[0].st.Throttled < time.Minute {
			t.Fatalf("cleans %+v, want one aborted in a sleep of over a minute", *cleans)
		}
	})
}
