package broker

import (
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/vfs"
)

// A broker that stood still longer than its session refuses writes until its metadata
// has caught up with the quorum's (here its own controller's, a quorum of one); one that
// stood still for less, or ran while its controller did not answer, keeps taking them.
func TestPausedBrokerRefusesWritesUntilCaughtUp(t *testing.T) {
	cfg, err := config.Load("", nil, map[string]string{"log.dirs": "/data"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(cfg, Options{FS: vfs.NewMem(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The process's monotonic clock, which a test moves forward to stand for a pause:
	// the watch's ticks and the heartbeats stop while it jumps.
	var skew atomic.Int64
	real := b.life.clock
	b.life.clock = func() time.Duration { return real() + time.Duration(skew.Load()) }
	if err := b.SetAdvertised(b.Advertised()); err != nil {
		t.Fatal(err)
	}
	waitTaking := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for b.WritesSuspended() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: writes still refused after 10 s", what)
			}
			time.Sleep(10 * time.Millisecond) // the catch-up runs on its own goroutine
		}
	}
	waitTaking("at start")

	// Paused for less than the session: nothing refused.
	skew.Add(int64(5 * time.Second))
	if b.WritesSuspended() {
		t.Fatal("writes refused after a 5 s pause, shorter than the 9 s session")
	}
	waitTaking("after a 5 s pause")
	time.Sleep(3 * pauseTick) // the watch ticks again

	// Paused past the session: refused at once, by the first request, and taken again
	// once the image holds what the controller committed.
	skew.Add(int64(20 * time.Second))
	if !b.WritesSuspended() {
		t.Fatal("writes taken right after a 20 s pause, longer than the 9 s session")
	}
	waitTaking("after a 20 s pause")

	// Running, but the controller has answered no heartbeat for 20 s: no pause, so the
	// broker keeps serving, as Kafka's does.
	time.Sleep(3 * pauseTick)
	b.life.lastAnswered.Store(b.sinceStart() - int64(20*time.Second))
	if b.WritesSuspended() {
		t.Fatal("writes refused by a running broker whose heartbeats went unanswered")
	}
}
