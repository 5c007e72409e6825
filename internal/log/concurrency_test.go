package log

import (
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// TestReadDuringAppend reads from many goroutines while batches are appended and
// segments roll: every read must return whole, valid, contiguous batches starting at the
// requested offset's batch. Run with -race.
func TestReadDuringAppend(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 4000, IndexIntervalBytes: 200})
	const batches = 400
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan string, 8)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				leo := h.log.LogEndOffset()
				if leo == 0 {
					continue
				}
				off := int64((i*7919 + r*31) % int(leo))
				got, err := collect(h.log, off, leo, 3000, true)
				if err != nil {
					errs <- err.Error()
					return
				}
				if len(got) == 0 || got[0].BaseOffset() > off || got[0].LastOffset() < off {
					errs <- "read does not start at the batch holding the offset"
					return
				}
				for j := 1; j < len(got); j++ {
					if got[j].BaseOffset() != got[j-1].LastOffset()+1 {
						errs <- "batches not contiguous"
						return
					}
				}
				if last := got[len(got)-1].LastOffset(); last >= leo {
					errs <- "read past the high watermark"
					return
				}
			}
		}()
	}
	h.appendN(batches, 3, 60)
	close(done)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// TestReadDuringRetention: segments deleted while readers hold ranges over them stay
// readable until file.delete.delay.ms passes. Run with -race.
func TestReadDuringRetention(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 2000, RetentionBytes: 6000, FileDeleteDelay: time.Hour})
	h.appendN(20, 2, 100)
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 8)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				start, end := h.log.LogStartOffset(), h.log.LogEndOffset()
				rs, err := h.log.Read(start, end, 1<<20, true)
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue // retention moved the start meanwhile
				}
				if err == nil {
					_, err = WriteRanges(io.Discard, rs)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range 50 {
		h.appendN(2, 2, 100)
		if _, err := h.log.EnforceRetention(); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("reader: %v", err)
	}
	if h.log.Size() > 6000+2000 {
		t.Fatalf("retention did not bound the log: %d bytes", h.log.Size())
	}
}
