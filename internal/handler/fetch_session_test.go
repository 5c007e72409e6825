package handler

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/vfs"
)

// fakeClock is a broker clock moved by hand (read by the broker's own goroutines too).
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestFetchSessionCacheEviction: the session cache evicts as Kafka's FetchSessionCache
// does. A full cache of sessions in use is not churned by new full fetches: those get
// no session (ID 0) and fetch without one. A session unused for two minutes is stale
// and the first to go; a session older than two minutes (at its last use) may be
// evicted by a new one with more partitions, the smallest such first.
func TestFetchSessionCacheEviction(t *testing.T) {
	clock := newFakeClock()
	ft := newFetchTest(t, vfs.NewMem(), "/data", 2, nil, clock.now)
	one := []fpart{{0, 0, 1 << 20}}
	open := func(parts []fpart) int32 {
		t.Helper()
		fr := ft.fetch(freq{maxBytes: 1 << 20, epoch: 0, parts: parts})
		if fr.ErrorCode != 0 {
			t.Fatalf("full fetch: error %d", fr.ErrorCode)
		}
		return fr.SessionID
	}
	use := func(id, epoch int32) int16 {
		t.Helper()
		return ft.fetch(freq{maxBytes: 1 << 20, session: id, epoch: epoch}).ErrorCode
	}

	// max.incremental.fetch.session.cache.slots is 1000 by default.
	ids := make([]int32, 1000)
	for i := range ids {
		if ids[i] = open(one); ids[i] == 0 {
			t.Fatalf("session %d not created in a cache with room", i)
		}
	}
	if id := open(one); id != 0 {
		t.Fatalf("a full cache of fresh sessions made room for a new one (%d)", id)
	}
	for _, id := range ids[:3] {
		if code := use(id, 1); code != 0 {
			t.Fatalf("session %d: error %d after a new fetch found the cache full", id, code)
		}
	}

	// Two minutes later all but the three just used are stale: a new session takes the
	// place of the least recently used of them.
	clock.advance(2*time.Minute + time.Second)
	for _, id := range ids[:3] {
		if code := use(id, 2); code != 0 {
			t.Fatalf("session %d: error %d", id, code)
		}
	}
	if id := open(one); id == 0 {
		t.Fatal("no session created in place of a stale one")
	}
	if code := use(ids[3], 1); code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("the least recently used stale session answered %d, want FETCH_SESSION_ID_NOT_FOUND", code)
	}
	if code := use(ids[4], 1); code != 0 {
		t.Fatalf("a stale session other than the least recently used was evicted: %d", code)
	}
}

// TestFetchSessionEvictionBySize: with no stale session, a new session may evict one
// that was older than two minutes when last used and has fewer partitions.
func TestFetchSessionEvictionBySize(t *testing.T) {
	clock := newFakeClock()
	ft := newFetchTest(t, vfs.NewMem(), "/data", 2, map[string]string{"max.incremental.fetch.session.cache.slots": "2"}, clock.now)
	open := func(parts []fpart) int32 {
		t.Helper()
		return ft.fetch(freq{maxBytes: 1 << 20, epoch: 0, parts: parts}).SessionID
	}
	use := func(id, epoch int32) int16 {
		t.Helper()
		return ft.fetch(freq{maxBytes: 1 << 20, session: id, epoch: epoch}).ErrorCode
	}
	one := []fpart{{0, 0, 1 << 20}}
	two := []fpart{{0, 0, 1 << 20}, {1, 0, 1 << 20}}
	a, b := open(one), open(one)
	if a == 0 || b == 0 {
		t.Fatal("sessions not created")
	}
	clock.advance(2*time.Minute + time.Second)
	if use(a, 1) != 0 || use(b, 1) != 0 {
		t.Fatal("sessions lost")
	}
	if id := open(one); id != 0 {
		t.Fatal("a session evicted one of the same size")
	}
	if id := open(two); id == 0 {
		t.Fatal("a larger session did not evict a smaller one older than two minutes")
	}
	lost := min(a, b) // of equal sizes, the smaller ID goes first
	kept := max(a, b)
	if code := use(lost, 2); code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("evicted session answered %d", code)
	}
	if code := use(kept, 2); code != 0 {
		t.Fatalf("kept session answered %d", code)
	}
}

// BenchmarkFetchSessionCreate: creating a session in a full cache costs the same
// whatever the number of sessions (no scan): with every session stale (the least
// recently used is evicted) and with every session fresh (none can be).
func BenchmarkFetchSessionCreate(b *testing.B) {
	for _, n := range []int{1000, 100_000} {
		for _, stale := range []bool{true, false} {
			name := fmt.Sprintf("sessions=%d/stale=%v", n, stale)
			b.Run(name, func(b *testing.B) {
				clock := newFakeClock()
				fs := newFetchSessions(n, clock.now)
				for i := 0; i < n; i++ {
					fs.create(nil, map[tp]*sessionPartition{})
				}
				if stale {
					clock.advance(time.Hour)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if s := fs.create(nil, map[tp]*sessionPartition{}); (s != nil) != stale {
						b.Fatalf("created %v", s != nil)
					}
					if stale {
						clock.advance(sessionEvictAfter + time.Second) // the new one is stale too
					}
				}
			})
		}
	}
}
