package handler

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/vltava/vltava/internal/vfs"
)

// pooledBytes is the memory of the read buffers a response holds.
func pooledBytes(r *Response) (n int) {
	for _, b := range r.pooled {
		n += cap(b)
	}
	return n
}

// TestLongPollReadsOnce: a long poll woken by many small appends reads the records
// once, when it answers: the buffers it holds are its response's records, not a copy
// per wake-up (the issue saw 415 buffers, 50 MB, held for a 90 KB partition).
func TestLongPollReadsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := newFetchTest(t, vfs.NewMem(), "/data", 1, nil, nil)
		ft.appendBatch(0, 10, 1000) // some records ready at once, fewer than min_bytes
		done := make(chan *Response)
		go func() {
			done <- ft.serve(freq{maxBytes: 50 << 20, minBytes: 90_000, maxWait: 60_000, epoch: -1, parts: []fpart{{0, 0, 1 << 20}}}, false)
		}()
		var resp *Response
		wakes := 0
		for resp == nil {
			synctest.Wait() // the fetch is waiting (or done)
			select {
			case resp = <-done:
			default:
				ft.appendBatch(0, 1, 900)
				wakes++
			}
		}
		defer resp.Release()
		n, _ := recordBytes(decodeFetch(t, resp), 0)
		if n < 90_000 {
			t.Fatalf("answered with %d record bytes, fewer than min_bytes", n)
		}
		// Read once: the buffers hold the response's records, rounded up to the
		// smallest buffer.
		if held := pooledBytes(resp); held > n+minReadChunk-1 {
			t.Fatalf("after %d wake-ups the response holds %d buffers, %d bytes, for %d record bytes",
				wakes, len(resp.pooled), held, n)
		}
	})
}

// TestFetchBudget: the record bytes fetch responses hold in memory, from when they
// are read until the response is written (Release), stay within
// vltava.fetch.max.bytes.in.flight across all fetches. A fetch that finds the budget
// spent waits for it up to its max_wait and then answers with what fits; one that gets
// it back sooner answers in full at once.
func TestFetchBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const budget = 1 << 20
		ft := newFetchTest(t, vfs.NewMem(), "/data", 2, map[string]string{"vltava.fetch.max.bytes.in.flight": "1048576"}, nil)
		for i := 0; i < 48; i++ {
			ft.appendBatch(0, 1, 64<<10)
			ft.appendBatch(1, 1, 64<<10)
		}
		req := func(wait int32) freq {
			return freq{maxBytes: 700 << 10, minBytes: 1, maxWait: wait, epoch: -1, parts: []fpart{{0, 0, 1 << 20}, {1, 0, 1 << 20}}}
		}
		records := func(r *Response) int {
			fr := decodeFetch(t, r)
			a, _ := recordBytes(fr, 0)
			b, _ := recordBytes(fr, 1)
			return a + b
		}
		a := ft.serve(req(0), false)
		full := records(a)
		if full < 600<<10 {
			t.Fatalf("first fetch: %d record bytes", full)
		}
		// The second gets what is left of the budget, at once (max_wait 0).
		b := ft.serve(req(0), false)
		if got := records(b); got == 0 || got >= full {
			t.Fatalf("second fetch: %d record bytes, want some but fewer than %d", got, full)
		}
		if held := pooledBytes(a) + pooledBytes(b); held > budget {
			t.Fatalf("responses hold %d bytes, budget %d", held, budget)
		}
		// A third waits its max_wait for the budget, then answers with what fits.
		start := time.Now()
		c := ft.serve(req(5000), false)
		if waited := time.Since(start); waited != 5*time.Second {
			t.Fatalf("waited %v for the budget, want max_wait", waited)
		}
		if held := pooledBytes(a) + pooledBytes(b) + pooledBytes(c); held > budget {
			t.Fatalf("responses hold %d bytes, budget %d", held, budget)
		}
		c.Release()
		// A fourth waits, and answers in full as soon as the first is written.
		done := make(chan *Response)
		start = time.Now()
		go func() { done <- ft.serve(req(60_000), false) }()
		synctest.Wait()
		a.Release()
		d := <-done
		if got := records(d); got != full || time.Since(start) != 0 {
			t.Fatalf("after the budget came back: %d record bytes after %v, want %d at once", got, time.Since(start), full)
		}
		if held := pooledBytes(b) + pooledBytes(d); held > budget {
			t.Fatalf("responses hold %d bytes, budget %d", held, budget)
		}
		b.Release()
		d.Release()
		checkBudgetBack(t, ft.h)
	})
}

// checkBudgetBack checks every byte of the fetch budget has come back.
func checkBudgetBack(t *testing.T, h *Handler) {
	t.Helper()
	b := h.fetchBudget
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.avail != b.max {
		t.Fatalf("fetch budget: %d of %d bytes free with every response released", b.avail, b.max)
	}
}

// TestFetchBudgetLargeBatch: a batch larger than the whole fetch budget is still sent
// (a consumer must never be stuck behind it), alone: while it is held, another fetch
// gets no records, and once it is written the budget is whole again.
func TestFetchBudgetLargeBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := newFetchTest(t, vfs.NewMem(), "/data", 2, map[string]string{"vltava.fetch.max.bytes.in.flight": "1048576"}, nil)
		big := ft.appendBatch(0, 3, 512<<10) // 1.5 MiB
		ft.appendBatch(1, 1, 1000)
		req := freq{maxBytes: 4 << 20, minBytes: 1, epoch: -1, parts: []fpart{{0, 0, 4 << 20}, {1, 0, 4 << 20}}}
		a := ft.serve(req, false)
		fr := decodeFetch(t, a)
		if n, _ := recordBytes(fr, 0); n != big {
			t.Fatalf("%d record bytes of the large batch, want all %d", n, big)
		}
		if n, _ := recordBytes(fr, 1); n != 0 {
			t.Fatalf("%d record bytes besides the batch larger than the budget", n)
		}
		other := ft.serve(freq{maxBytes: 1 << 20, minBytes: 1, epoch: -1, parts: []fpart{{1, 0, 1 << 20}}}, false)
		if n, _ := recordBytes(decodeFetch(t, other), 1); n != 0 {
			t.Fatalf("%d record bytes read while the budget is overdrawn", n)
		}
		other.Release()
		a.Release()
		checkBudgetBack(t, ft.h)
		c := ft.fetch(freq{maxBytes: 1 << 20, minBytes: 1, epoch: -1, parts: []fpart{{1, 0, 1 << 20}}})
		if n, _ := recordBytes(c, 1); n == 0 {
			t.Fatal("no records once the budget came back")
		}
		checkBudgetBack(t, ft.h)
	})
}
