package log

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// clock is a manual clock for tests.
type clock struct{ t time.Time }

func newClock() *clock               { return &clock{t: time.UnixMilli(1_700_000_000_000)} }
func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }

const dir = "/data/topic-0"

type harness struct {
	t     *testing.T
	fs    vfs.FS
	clock *clock
	cfg   Config
	log   *Log
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, fs: vfs.NewMem(), clock: newClock(), cfg: cfg}
	h.open()
	return h
}

func (h *harness) open() {
	h.t.Helper()
	l, err := Open(h.fs, dir, h.cfg, h.clock.now)
	if err != nil {
		h.t.Fatalf("Open: %v", err)
	}
	h.log = l
	h.t.Cleanup(func() { l.Close() })
}

// reopen closes cleanly and opens again.
func (h *harness) reopen() {
	h.t.Helper()
	if err := h.log.Close(); err != nil {
		h.t.Fatalf("Close: %v", err)
	}
	h.open()
}

// mkBatch builds a batch of n records at base with timestamps ts, ts+1, ...
func mkBatch(t testing.TB, base int64, n int, ts int64, valueSize int) batch.Batch {
	t.Helper()
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{
			Timestamp: ts + int64(i),
			Key:       fmt.Appendf(nil, "k%d", base+int64(i)),
			Value:     bytes.Repeat([]byte{byte('a' + (base+int64(i))%26)}, valueSize),
		}
	}
	b, err := batch.Build(batch.BuildOptions{BaseOffset: base}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// appendN appends count batches of per records each, timestamps from the clock.
func (h *harness) appendN(count, per, valueSize int) []batch.Batch {
	h.t.Helper()
	var out []batch.Batch
	for range count {
		b := mkBatch(h.t, h.log.LogEndOffset(), per, h.clock.now().UnixMilli(), valueSize)
		if err := h.log.Append(b); err != nil {
			h.t.Fatalf("Append at %d: %v", b.BaseOffset(), err)
		}
		out = append(out, b)
	}
	return out
}

// readBatches reads from offset and splits the bytes into batches.
func readBatches(t *testing.T, l *Log, offset, maxOffset, maxBytes int64, minOne bool) []batch.Batch {
	t.Helper()
	out, err := collect(l, offset, maxOffset, maxBytes, minOne)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// collect is readBatches for goroutines other than the test's.
func collect(l *Log, offset, maxOffset, maxBytes int64, minOne bool) ([]batch.Batch, error) {
	rs, err := l.Read(offset, maxOffset, maxBytes, minOne)
	if err != nil {
		return nil, fmt.Errorf("Read(%d): %w", offset, err)
	}
	var buf bytes.Buffer
	if _, err := WriteRanges(&buf, rs); err != nil {
		return nil, fmt.Errorf("WriteRanges: %w", err)
	}
	var out []batch.Batch
	rest := buf.Bytes()
	for len(rest) > 0 {
		b, r, err := batch.Next(rest, 1<<30)
		if err != nil {
			return nil, fmt.Errorf("Read returned bytes that are not whole batches: %w", err)
		}
		// CheckHeader, not Validate: compaction leaves batches with no records.
		if err := batch.CheckHeader(b); err != nil {
			return nil, fmt.Errorf("Read returned an invalid batch: %w", err)
		}
		out = append(out, b)
		rest = r
	}
	return out, nil
}

// checkContent asserts the log holds exactly want, readable from every offset.
func checkContent(t *testing.T, l *Log, want []batch.Batch) {
	t.Helper()
	got := readBatches(t, l, l.LogStartOffset(), 1<<62, 1<<40, true)
	if len(got) != len(want) {
		t.Fatalf("log holds %d batches, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("batch %d differs (base %d, want %d)", i, got[i].BaseOffset(), want[i].BaseOffset())
		}
	}
	if n := len(want); n > 0 && l.LogEndOffset() != want[n-1].LastOffset()+1 {
		t.Fatalf("log end offset %d, want %d", l.LogEndOffset(), want[n-1].LastOffset()+1)
	}
	for _, b := range want {
		for o := b.BaseOffset(); o <= b.LastOffset(); o++ {
			first := readBatches(t, l, o, 1<<62, 1, true)
			if len(first) != 1 || first[0].BaseOffset() != b.BaseOffset() {
				t.Fatalf("Read(%d) does not start with the batch at %d", o, b.BaseOffset())
			}
		}
	}
	checkIndexMemory(t, l)
}

// checkIndexMemory asserts the memory rule of index.go: only the active segment holds
// index entries in memory, and they are the ones its files start with; every segment's
// files hold at least the entries it counts, and those pass the checks of Open.
func checkIndexMemory(t testing.TB, l *Log) {
	t.Helper()
	l.mu.RLock()
	defer l.mu.RUnlock()
	for i, s := range l.segs {
		active := i == len(l.segs)-1
		if !active && (s.index != nil || s.times != nil) {
			t.Fatalf("inactive segment %d holds %d offset and %d time index entries in memory", s.base, len(s.index), len(s.times))
		}
		if active && (len(s.index) != s.nIndex || len(s.times) != s.nTimes) {
			t.Fatalf("active segment %d holds %d+%d entries in memory, counts %d+%d", s.base, len(s.index), len(s.times), s.nIndex, s.nTimes)
		}
		index, times, err := s.readIndexFiles(s.state())
		if err != nil {
			t.Fatalf("index files of segment %d (%d+%d entries): %v", s.base, s.nIndex, s.nTimes, err)
		}
		if active && (!slices.Equal(index, s.index) || !slices.Equal(times, s.times)) {
			t.Fatalf("active segment %d: entries in memory differ from its files", s.base)
		}
	}
}

func segmentFiles(t *testing.T, fsys vfs.FS) []string {
	t.Helper()
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func exists(fsys vfs.FS, name string) bool {
	_, err := fsys.Stat(path.Join(dir, name))
	return !errors.Is(err, fs.ErrNotExist)
}

// abandon drops the log as kill -9 would: no flush, no marker; files are closed so the
// test does not leak them.
func (l *Log) abandon() {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.closed = true
	for _, s := range l.segs {
		s.close()
	}
	for _, p := range l.pendingDeletes {
		p.seg.close()
	}
}

// kill abandons the log and opens it again over the same files (the page cache survives
// a killed process).
func (h *harness) kill() {
	h.t.Helper()
	h.log.abandon()
	h.open()
}

// mutateFile applies f to a file of the log directory.
func (h *harness) mutateFile(name string, f func(file vfs.File, size int64)) {
	h.t.Helper()
	file, err := h.fs.OpenFile(path.Join(dir, name), os.O_RDWR, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		h.t.Fatal(err)
	}
	f(file, st.Size())
}
