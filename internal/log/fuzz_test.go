package log

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"testing"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// fuzzLog writes files into a fresh in-memory log directory and opens it.
func fuzzLog(t *testing.T, files map[string][]byte) (*Log, error) {
	mem := vfs.NewMem()
	if err := mem.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		f, err := mem.OpenFile(path.Join(dir, name), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(data)
		f.Close()
	}
	return OpenWith(mem, dir, Config{IndexIntervalBytes: 64}, Options{Now: newClock().now, Logger: testLogger(io.Discard)})
}

// checkConsistent asserts what any recovered log must satisfy: reads from the start
// return valid batches with increasing offsets up to the log end, and appends work.
func checkConsistent(t *testing.T, l *Log) {
	got := readBatches(t, l, l.LogStartOffset(), 1<<62, 1<<40, true)
	next := int64(-1)
	for _, b := range got {
		if b.BaseOffset() < next {
			t.Fatalf("batch at %d after one ending at %d", b.BaseOffset(), next)
		}
		next = b.LastOffset() + 1
	}
	if n := len(got); n > 0 && next != l.LogEndOffset() {
		t.Fatalf("last batch ends at %d, log end offset %d", next, l.LogEndOffset())
	}
	for off := l.LogStartOffset(); off < l.LogEndOffset() && off < l.LogStartOffset()+50; off++ {
		if _, err := l.Read(off, 1<<62, 1, true); err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
	}
	if _, _, _, err := l.OffsetForTimestamp(0); err != nil {
		t.Fatalf("OffsetForTimestamp: %v", err)
	}
	if _, _, err := l.MaxTimestamp(); err != nil {
		t.Fatalf("MaxTimestamp: %v", err)
	}
	b := mkBatch(t, l.LogEndOffset(), 1, 0, 3)
	if err := l.Append(b); err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func validSegment(t testing.TB) ([]batch.Batch, []byte) {
	var bs []batch.Batch
	var seg []byte
	var off int64
	for i := range 6 {
		b := mkBatch(t, off, 1+i%3, int64(1000+i*10), 20+i*7)
		bs = append(bs, b)
		seg = append(seg, b...)
		off = b.LastOffset() + 1
	}
	return bs, seg
}

// FuzzRecoverSegment: any bytes in a segment file after an unclean stop.
func FuzzRecoverSegment(f *testing.F) {
	_, seg := validSegment(f)
	f.Add(seg, 0)
	f.Add(seg[:len(seg)-5], 0)
	f.Add(append(bytes.Clone(seg), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 0)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, data []byte, flipAt int) {
		data = bytes.Clone(data)
		if len(data) > 0 && flipAt > 0 {
			data[flipAt%len(data)] ^= 1
		}
		l, err := fuzzLog(t, map[string][]byte{seg0: data})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		checkConsistent(t, l)
	})
}

// FuzzIndexes: any bytes as the index files of a valid, cleanly closed segment.
func FuzzIndexes(f *testing.F) {
	bs, seg := validSegment(f)
	var idx, tidx, marker []byte
	{
		// The real index files of the segment, as seeds, and its clean-shutdown marker.
		mem := vfs.NewMem()
		l, err := Open(mem, dir, Config{IndexIntervalBytes: 64}, newClock().now)
		if err != nil {
			f.Fatal(err)
		}
		for _, b := range bs {
			l.Append(b)
		}
		l.Close()
		idx, _ = vfs.ReadFile(mem, path.Join(dir, "00000000000000000000.index"), 1<<20)
		tidx, _ = vfs.ReadFile(mem, path.Join(dir, "00000000000000000000.timeindex"), 1<<20)
		marker, _ = vfs.ReadFile(mem, path.Join(dir, cleanShutdownFile), 1<<20)
	}
	f.Add(idx, tidx)
	f.Add(idx[:len(idx)/2], tidx[:len(tidx)-1])
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, idx, tidx []byte) {
		l, err := fuzzLog(t, map[string][]byte{
			seg0:                             seg,
			"00000000000000000000.index":     idx,
			"00000000000000000000.timeindex": tidx,
			cleanShutdownFile:                marker,
		})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if rep := l.Recovery(); !rep.CleanShutdown {
			t.Fatalf("the marker of the segment was not trusted: %s", rep.Marker)
		}
		got := readBatches(t, l, 0, 1<<62, 1<<40, true)
		if len(got) != len(bs) {
			t.Fatalf("%d batches, want %d", len(got), len(bs))
		}
		for _, b := range bs {
			for o := b.BaseOffset(); o <= b.LastOffset(); o++ {
				first := readBatches(t, l, o, 1<<62, 1, true)
				if len(first) != 1 || first[0].BaseOffset() != b.BaseOffset() {
					t.Fatalf("Read(%d) does not start at batch %d", o, b.BaseOffset())
				}
			}
			off, _, found, err := l.OffsetForTimestamp(b.BaseTimestamp())
			if err != nil || !found || off != b.BaseOffset() {
				t.Fatalf("OffsetForTimestamp(%d) = %d %v %v, want %d", b.BaseTimestamp(), off, found, err, b.BaseOffset())
			}
		}
		checkConsistent(t, l)
	})
}

// FuzzCheckpoints: any bytes in the checkpoint files.
func FuzzCheckpoints(f *testing.F) {
	f.Add([]byte("0\n3\n"), []byte("0\n0\n"), []byte("0\n2\n1 0\n4 5\n"))
	f.Add([]byte("0\n-1\n"), []byte("x"), []byte("0\n1\n"))
	f.Add([]byte("0\n99999999999\n"), []byte("0\n6\n"), []byte("0\n2\n4 0\n1 5\n"))
	f.Add([]byte("0\n0\n"), []byte("0\n40\n"), []byte("0\n1\n0 0\n")) // a recovery point past the log end
	_, seg := validSegment(f)
	f.Fuzz(func(t *testing.T, lso, rp, epochs []byte) {
		parseOffsetCheckpoint(lso)
		if es, err := parseEpochCheckpoint(epochs); err == nil {
			if got, err := parseEpochCheckpoint(formatEpochCheckpoint(es)); err != nil || len(got) != len(es) {
				t.Fatalf("epoch checkpoint does not round trip: %v", err)
			}
		}
		l, err := fuzzLog(t, map[string][]byte{
			seg0:               seg,
			logStartOffsetFile: lso,
			recoveryPointFile:  rp,
			leaderEpochFile:    epochs,
		})
		if errors.Is(err, ErrCorruptBelowRecoveryPoint) {
			// Only a recovery point past the segment's end (12) and the log start offset
			// claims synced records the files do not hold.
			p, perr := parseOffsetCheckpoint(rp)
			s, serr := parseOffsetCheckpoint(lso)
			if perr != nil || p <= 12 || (serr == nil && s >= p) {
				t.Fatalf("Open refused: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if l.LogStartOffset() > l.LogEndOffset() {
			t.Fatalf("log start %d past log end %d", l.LogStartOffset(), l.LogEndOffset())
		}
		checkConsistent(t, l)
	})
}

// FuzzShutdownMarker: any bytes as the clean-shutdown marker and the cleaner checkpoint
// beside a valid segment. Open either recovers a consistent log or refuses because the
// marker claims synced records the segment does not have.
func FuzzShutdownMarker(f *testing.F) {
	_, seg := validSegment(f)
	good := shutdownMarker{logEnd: 12, segments: []markerSegment{{0, int64(len(seg)), 0}}}
	f.Add(good.format(), []byte("1\n0\n-1\n12\n0\n"))
	f.Add([]byte("1\n99\n1\n0 5 0\n"), []byte("0\n3\n-1\n0\n"))
	f.Add([]byte{}, []byte("x"))
	f.Add([]byte("1\n0\n2\n0 1 0\n0 1 0\n"), []byte("1\n5\n-1\n7\n1\n0 1000\n"))
	f.Fuzz(func(t *testing.T, marker, cleaner []byte) {
		if m, err := parseShutdownMarker(marker); err == nil {
			if got, err := parseShutdownMarker(m.format()); err != nil || fmt.Sprint(got) != fmt.Sprint(m) {
				t.Fatalf("marker does not round trip: %v", err)
			}
		}
		if c, err := parseCleanerCheckpoint(cleaner); err == nil {
			if got, err := parseCleanerCheckpoint(c.format()); err != nil || fmt.Sprint(got) != fmt.Sprint(c) {
				t.Fatalf("cleaner checkpoint does not round trip: %v", err)
			}
		}
		l, err := fuzzLog(t, map[string][]byte{seg0: seg, cleanShutdownFile: marker, cleanerCheckpointFile: cleaner})
		if errors.Is(err, ErrCorruptBelowRecoveryPoint) {
			return
		}
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		checkConsistent(t, l)
	})
}
