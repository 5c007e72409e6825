package partition

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/vfs"
)

// slowWrites counts writes to segment files and makes each take a while, so that
// concurrent appenders queue up behind the one writing.
type slowWrites struct{ writes atomic.Int64 }

func (s *slowWrites) MaybeError(op vfs.Op) error {
	if op.Kind == vfs.OpWrite && strings.HasSuffix(op.Path, ".log") {
		s.writes.Add(1)
		time.Sleep(time.Millisecond)
	}
	return nil
}

// Concurrent idempotent producers, each retrying some batches: every batch lands once, at
// offsets that follow one another, retries are answered with the first offsets, and the
// batches that queued together went to the file in shared writes.
func TestCombinedAppends(t *testing.T) {
	counter := &slowWrites{}
	fsys := vfs.WithErrors(vfs.NewMem(), counter)
	p := openTest(t, fsys, log.Config{})
	l := p.Log()
	defer l.Close()

	const producers, each = 8, 30
	build := func(pid int64, seq int32) batch.Batch {
		recs := []batch.Record{
			{Timestamp: time.Now().UnixMilli(), Value: fmt.Appendf(nil, "p%d-s%d-a", pid, seq)},
			{Timestamp: time.Now().UnixMilli(), Value: fmt.Appendf(nil, "p%d-s%d-b", pid, seq+1)},
		}
		b, err := batch.Build(batch.BuildOptions{Idempotent: true, ProducerID: pid, BaseSequence: seq}, recs)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	type placed struct {
		value  string
		offset int64
	}
	var mu sync.Mutex
	var all []placed
	var wg sync.WaitGroup
	for pid := int64(1); pid <= producers; pid++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				seq := int32(2 * i)
				res, err := p.Append(build(pid, seq))
				if err != nil {
					t.Errorf("producer %d seq %d: %v", pid, seq, err)
					return
				}
				if i%3 == 0 { // a retry of the same batch
					again, err := p.Append(build(pid, seq))
					if err != nil || again.BaseOffset != res.BaseOffset {
						t.Errorf("retry of producer %d seq %d: offset %d, %v; first at %d", pid, seq, again.BaseOffset, err, res.BaseOffset)
						return
					}
				}
				mu.Lock()
				all = append(all, placed{fmt.Sprintf("p%d-s%d-a", pid, seq), res.BaseOffset})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if got, want := p.LogEndOffset(), int64(2*producers*each); got != want || p.HighWatermark() != want {
		t.Fatalf("log end %d, high watermark %d; want %d", got, p.HighWatermark(), want)
	}
	slices.SortFunc(all, func(a, b placed) int { return int(a.offset - b.offset) })
	for i, pl := range all {
		if pl.offset != int64(2*i) {
			t.Fatalf("batch %d at offset %d, want %d", i, pl.offset, 2*i)
		}
		rs, err := p.Read(pl.offset, 1<<10, true, false)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, log.RangesLen(rs))
		if err := log.ReadRanges(buf, rs); err != nil {
			t.Fatal(err)
		}
		recs, err := batch.Records(batch.Batch(buf[:batch.Batch(buf).Size()]), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		rec := recs[0]
		if err != nil || !bytes.Equal(rec.Value, []byte(pl.value)) || rec.Offset != pl.offset {
			t.Fatalf("offset %d holds %q at %d (%v), want %q", pl.offset, rec.Value, rec.Offset, err, pl.value)
		}
	}
	writes := counter.writes.Load()
	t.Logf("%d batches in %d segment writes", producers*each, writes)
	if writes >= producers*each {
		t.Errorf("%d writes for %d concurrent batches: none combined", writes, producers*each)
	}
}
