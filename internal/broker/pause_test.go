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

// openUnadvertised opens a single node's broker, its lifecycle not started (SetAdvertised
// starts it); it is closed when the test ends.
func openUnadvertised(t *testing.T) *Broker {
	t.Helper()
	cfg, err := config.Load("", nil, map[string]string{"log.dirs": "/data"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(cfg, Options{FS: vfs.NewMem(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// A broker that stood still longer than its session refuses writes until its metadata
// has caught up with the quorum's (here its own controller's, a quorum of one); one that
// stood still for less, or ran while its controller did not answer, keeps taking them.
func TestPausedBrokerRefusesWritesUntilCaughtUp(t *testing.T) {
	b := openUnadvertised(t)
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
		for b.writesSuspended() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: writes still refused after 10 s", what)
			}
			time.Sleep(10 * time.Millisecond) // the catch-up runs on its own goroutine
		}
	}
	waitTaking("at start")

	// Paused for less than the session: nothing refused.
	skew.Add(int64(5 * time.Second))
	if b.writesSuspended() {
		t.Fatal("writes refused after a 5 s pause, shorter than the 9 s session")
	}
	waitTaking("after a 5 s pause")
	time.Sleep(3 * pauseTick) // the watch ticks again

	// Paused past the session: refused at once, by the first request, and taken again
	// once the image holds what the controller committed.
	skew.Add(int64(20 * time.Second))
	if !b.writesSuspended() {
		t.Fatal("writes taken right after a 20 s pause, longer than the 9 s session")
	}
	waitTaking("after a 20 s pause")

	// Running, but the controller has answered no heartbeat for 20 s: no pause, so the
	// broker keeps serving, as Kafka's does.
	time.Sleep(3 * pauseTick)
	b.life.lastAnswered.Store(b.sinceStart() - int64(20*time.Second))
	if b.writesSuspended() {
		t.Fatal("writes refused by a running broker whose heartbeats went unanswered")
	}
}

// A broker takes writes only once it has registered, the controller has unfenced it and
// its reconciled image holds its registration: before, the image it recovered may still
// name it the leader of partitions the controller is moving away.
func TestWritesWaitForTheRegistration(t *testing.T) {
	b := openUnadvertised(t)
	if err := b.WriteRefusal(); err != nil {
		t.Fatalf("a broker without a lifecycle refuses writes: %v", err)
	}
	b.life.started.Store(true) // as SetAdvertised's start, before the registration
	if err := b.WriteRefusal(); err != ErrNotCaughtUp {
		t.Fatalf("before its registration: %v, want ErrNotCaughtUp", err)
	}
	b.life.epoch.Store(int64(b.Image().Offset().Index) + 100) // registered, the entry not applied yet
	b.life.fenced.Store(false)
	if err := b.WriteRefusal(); err != ErrNotCaughtUp {
		t.Fatalf("before its image holds its registration: %v, want ErrNotCaughtUp", err)
	}
	b.life.started.Store(false)
	b.life.epoch.Store(-1)
	b.life.fenced.Store(true)
	if err := b.SetAdvertised(b.Advertised()); err != nil { // a quorum of one: returns once unfenced
		t.Fatal(err)
	}
	if err := b.WriteRefusal(); err != nil {
		t.Fatalf("registered, unfenced and caught up: %v", err)
	}
}
