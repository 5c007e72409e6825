package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// mkEpochBatch is mkBatch with a partition leader epoch.
func mkEpochBatch(t testing.TB, base int64, n int, epoch int32) batch.Batch {
	t.Helper()
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Timestamp: 1000 + int64(i), Key: []byte{'k', byte(i)}, Value: []byte("value")}
	}
	b, err := batch.Build(batch.BuildOptions{BaseOffset: base, PartitionLeaderEpoch: epoch}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// flipBits XORs mask into the byte at pos.
func flipBits(f vfs.File, pos int64, mask byte) {
	var b [1]byte
	f.ReadAt(b[:], pos)
	b[0] ^= mask
	f.WriteAt(b[:], pos)
}

// TestRecoverRejectsCorruptBaseOffset is issue 8's item 16: the base offset lies outside
// the batch CRC, so a flipped bit in it passes the CRC check. The scan must see that
// the batch does not follow its predecessor and cut the log there, or the records come
// back at offsets 2^25 higher and the next append continues from there.
func TestRecoverRejectsCorruptBaseOffset(t *testing.T) {
	h := newHarness(t, Config{})
	bs := h.appendN(3, 10, 20) // offsets 0-9, 10-19, 20-29
	pos := int64(len(bs[0]) + len(bs[1]))
	// Bit 25 of the big-endian base offset: byte 4, mask 0x02 (20 becomes 33554452).
	h.mutateFile(seg0, func(f vfs.File, size int64) { flipBits(f, pos+4, 0x02) })
	h.kill()
	if got := h.log.LogEndOffset(); got != 20 {
		t.Fatalf("log end offset %d after a corrupt base offset, want 20", got)
	}
	checkContent(t, h.log, bs[:2])
	more := h.appendN(1, 5, 10)
	checkContent(t, h.log, append(bs[:2:2], more...))
}

// TestRecoverRejectsCorruptLeaderEpoch: the partition leader epoch is outside the CRC
// too. A batch whose epoch goes backwards, or past the newest epoch the leader-epoch
// cache knows (the cache is written before a batch of a new epoch), is corrupt.
func TestRecoverRejectsCorruptLeaderEpoch(t *testing.T) {
	for _, tc := range []struct {
		name string
		mask byte
		at   int64 // byte of the big-endian epoch field (offset 12..15)
	}{
		{"epoch past the cache's latest", 0x40, 12}, // 1 -> 1<<30 + 1
		{"epoch going backwards", 0x01, 15},         // 1 -> 0
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			if err := h.log.AssignEpoch(1, 0); err != nil {
				t.Fatal(err)
			}
			var bs []batch.Batch
			for range 3 {
				b := mkEpochBatch(t, h.log.LogEndOffset(), 4, 1)
				if err := h.log.Append(b); err != nil {
					t.Fatal(err)
				}
				bs = append(bs, b)
			}
			pos := int64(len(bs[0]) + len(bs[1]))
			h.mutateFile(seg0, func(f vfs.File, size int64) { flipBits(f, pos+tc.at, tc.mask) })
			h.kill()
			checkContent(t, h.log, bs[:2])
		})
	}
}

// TestCleanShutdownMarkerMismatch is item 17: a batch written behind the clean-shutdown
// marker's back (by a second process on the same directory) must be found by a scan at
// open, not served as it is with a bad CRC.
func TestCleanShutdownMarkerMismatch(t *testing.T) {
	t.Run("appended to the active segment", func(t *testing.T) {
		h := newHarness(t, Config{})
		bs := h.appendN(3, 2, 20)
		if err := h.log.Close(); err != nil {
			t.Fatal(err)
		}
		bad := mkBatch(t, 6, 2, 0, 20)
		bad[len(bad)-1] ^= 0x01 // a record byte: the CRC no longer matches
		h.mutateFile(seg0, func(f vfs.File, size int64) { f.WriteAt(bad, size) })
		h.open()
		checkContent(t, h.log, bs)
	})
	t.Run("a new segment", func(t *testing.T) {
		h := newHarness(t, Config{})
		bs := h.appendN(3, 2, 20)
		if err := h.log.Close(); err != nil {
			t.Fatal(err)
		}
		bad := mkBatch(t, 6, 2, 0, 20)
		bad[len(bad)-1] ^= 0x01
		f, err := h.fs.OpenFile(dir+"/00000000000000000006.log", 0x42, 0o644) // O_RDWR|O_CREATE
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt(bad, 0)
		f.Close()
		h.open()
		checkContent(t, h.log, bs)
	})
}

// TestRecoveryKeepsSyncedData is item 5: a segment below the recovery point (synced
// before the stop) found damaged must not be cut, with every later segment dropped,
// without a word: Open refuses, and leaves the files as they were.
func TestRecoveryKeepsSyncedData(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 1000})
	h.appendN(8, 2, 150) // segments 0, 4, 8, 12
	if err := h.log.Flush(); err != nil {
		t.Fatal(err)
	}
	h.mutateFile("00000000000000000004.log", func(f vfs.File, size int64) { f.Truncate(size - 1) })
	h.log.abandon()
	before := segmentFiles(t, h.fs)
	l, err := Open(h.fs, dir, h.cfg, h.clock.now)
	if err == nil {
		l.Close()
		t.Fatalf("Open succeeded with %d segments, log end %d: synced data dropped (files before: %v, after: %v)",
			l.NumSegments(), l.LogEndOffset(), before, segmentFiles(t, h.fs))
	}
	if !errors.Is(err, ErrCorruptBelowRecoveryPoint) || !strings.Contains(err.Error(), TruncateBelowRecoveryPointKey) {
		t.Fatalf("Open = %v, want ErrCorruptBelowRecoveryPoint naming %s", err, TruncateBelowRecoveryPointKey)
	}
	if after := segmentFiles(t, h.fs); !slices.Equal(after, before) {
		t.Fatalf("refused Open changed the directory: %v, was %v", after, before)
	}

	// The operator's flag: the log is cut where the damage is, and what goes is moved
	// aside and reported at WARN.
	var logs bytes.Buffer
	l, err = OpenWith(h.fs, dir, h.cfg, Options{Now: h.clock.now, Logger: testLogger(&logs), TruncateBelowRecoveryPoint: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.LogEndOffset() != 6 {
		t.Fatalf("log end %d, want 6 (segment 4 cut before its second batch)", l.LogEndOffset())
	}
	rep := l.Recovery()
	if len(rep.Truncated) != 1 || rep.Truncated[0].Segment != 4 || rep.Truncated[0].Offset != 6 || !rep.Truncated[0].Synced ||
		!exists(h.fs, rep.Truncated[0].SavedAs) || rep.Truncated[0].Bytes <= 0 {
		t.Fatalf("truncations %+v", rep.Truncated)
	}
	if len(rep.Dropped) != 2 || rep.Dropped[0].Base != 8 || rep.Dropped[0].MovedTo != "00000000000000000008.log.aside" ||
		!exists(h.fs, rep.Dropped[0].MovedTo) || rep.Dropped[1].Base != 12 || !exists(h.fs, rep.Dropped[1].MovedTo) {
		t.Fatalf("dropped %+v: want segments 8 and 12 moved aside", rep.Dropped)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "segment 4 cut at byte") ||
		!strings.Contains(logs.String(), "moved to 00000000000000000008.log.aside") {
		t.Fatalf("recovery log:\n%s", logs.String())
	}
}

// testLogger logs every level as text into w.
func testLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestRecoveryReport: recovery after a torn write says what it cut, where and how much,
// at WARN; the unsynced bytes are deleted, not kept. A clean restart reads no segment
// and logs nothing above DEBUG.
func TestRecoveryReport(t *testing.T) {
	h := newHarness(t, Config{IndexIntervalBytes: 100})
	bs := h.appendN(10, 2, 30)
	h.mutateFile(seg0, func(f vfs.File, size int64) { f.Truncate(size - 10) })
	h.log.abandon()
	var logs bytes.Buffer
	l, err := OpenWith(h.fs, dir, h.cfg, Options{Now: h.clock.now, Logger: testLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	var kept int64
	for _, b := range bs[:9] {
		kept += int64(len(b))
	}
	rep := l.Recovery()
	want := Truncation{Segment: 0, Position: kept, Offset: 18, Bytes: int64(len(bs[9])) - 10}
	if len(rep.Truncated) != 1 || rep.Truncated[0].Reason == "" {
		t.Fatalf("report %+v", rep)
	}
	if got := rep.Truncated[0]; got.Segment != want.Segment || got.Position != want.Position || got.Offset != want.Offset ||
		got.Bytes != want.Bytes || got.Synced || got.SavedAs != "" {
		t.Fatalf("truncation %+v, want %+v", got, want)
	}
	if rep.CleanShutdown || rep.Marker != "none" || rep.SegmentsScanned != 1 || rep.LogEndOffset != 18 || len(rep.Dropped) != 0 {
		t.Fatalf("report %+v", rep)
	}
	line := logs.String()
	if !strings.Contains(line, "level=WARN") || !strings.Contains(line, fmt.Sprintf("segment 0 cut at byte %d (log end 18), %d bytes", want.Position, want.Bytes)) {
		t.Fatalf("recovery log:\n%s", line)
	}
	for _, name := range segmentFiles(t, h.fs) {
		if strings.HasSuffix(name, ".aside") {
			t.Fatalf("unsynced bytes kept aside as %s", name)
		}
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	l, err = OpenWith(h.fs, dir, h.cfg, Options{Now: h.clock.now, Logger: testLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if rep := l.Recovery(); !rep.CleanShutdown || rep.SegmentsScanned != 0 || rep.Lost() {
		t.Fatalf("clean reopen: %+v", rep)
	}
	if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "level=INFO") {
		t.Fatalf("clean reopen logged:\n%s", logs.String())
	}
}

// TestOldShutdownMarkerNotTrusted: the empty marker of earlier versions vouches for no
// file: Open recovers as after an unclean stop (scanning from the recovery point).
func TestOldShutdownMarkerNotTrusted(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 1000})
	bs := h.appendN(7, 2, 150) // segments 0, 4, 8, 12
	h.log.Close()
	h.mutateFile(cleanShutdownFile, func(f vfs.File, size int64) { f.Truncate(0) })
	h.open()
	rep := h.log.Recovery()
	if rep.CleanShutdown || !strings.Contains(rep.Marker, "earlier version") || rep.SegmentsScanned != 1 {
		t.Fatalf("report %+v: want the active segment scanned", rep)
	}
	checkContent(t, h.log, bs)
}

// TestCloseWithoutVouching: a segment whose file another process grew while this one
// had the log open gets no clean-shutdown marker at Close, and a warning says why.
func TestCloseWithoutVouching(t *testing.T) {
	var logs bytes.Buffer
	mem := vfs.NewMem()
	l, err := OpenWith(mem, dir, Config{}, Options{Now: newClock().now, Logger: testLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := l.Append(mkBatch(t, l.LogEndOffset(), 2, 0, 10)); err != nil {
			t.Fatal(err)
		}
		roll(t, l)
	}
	f, err := mem.OpenFile(dir+"/"+seg0, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(mkBatch(t, 2, 2, 0, 10), 1<<10) // beyond segment 0's end
	f.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Stat(dir + "/" + cleanShutdownFile); err == nil {
		t.Fatal("clean-shutdown marker written for files another process changed")
	}
	if !strings.Contains(logs.String(), "not writing the clean-shutdown marker") {
		t.Fatalf("log:\n%s", logs.String())
	}
}

// TestShutdownMarkerMtime runs over the OS filesystem: a segment rewritten in place after
// a clean close (same size, one flipped byte, a later mtime) is scanned, not trusted,
// though it lies below the recovery point; the damage is in data synced at the close, so
// Open refuses to cut it.
func TestShutdownMarkerMtime(t *testing.T) {
	root := t.TempDir()
	fsys := vfs.OS()
	l, err := Open(fsys, root, Config{}, newClock().now)
	if err != nil {
		t.Fatal(err)
	}
	var bs []batch.Batch
	for range 3 {
		b := mkBatch(t, l.LogEndOffset(), 2, 0, 10)
		if err := l.Append(b); err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	roll(t, l) // segment 0 is below the recovery point once closed
	if err := l.Append(mkBatch(t, l.LogEndOffset(), 2, 0, 10)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	name := root + "/" + seg0
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	pos := st.Size() - 1 // a record byte of the last batch: its CRC no longer matches
	f.ReadAt(b[:], pos)
	b[0] ^= 0x20
	f.WriteAt(b[:], pos)
	f.Close()
	// A write lands in the same tick of the kernel's coarse clock as the close only if
	// it follows within milliseconds; set the later time another process would leave.
	if err := os.Chtimes(name, st.ModTime(), st.ModTime().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	r, err := OpenWith(fsys, root, Config{}, Options{Now: newClock().now, Logger: testLogger(&logs)})
	if err == nil {
		defer r.Close()
		t.Fatalf("Open trusted a segment changed after the clean shutdown: %+v", r.Recovery())
	}
	if !errors.Is(err, ErrCorruptBelowRecoveryPoint) || !strings.Contains(err.Error(), "crc") ||
		!strings.Contains(logs.String(), "modified after the clean shutdown") {
		t.Fatalf("Open = %v, log:\n%s", err, logs.String())
	}
	r, err = OpenWith(fsys, root, Config{}, Options{Now: newClock().now, Logger: testLogger(io.Discard), TruncateBelowRecoveryPoint: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.LogEndOffset() != bs[1].LastOffset()+1 {
		t.Fatalf("log end %d, want the damaged last batch cut", r.LogEndOffset())
	}
	if rep := r.Recovery(); len(rep.Dropped) != 1 || rep.Dropped[0].Base != 6 || rep.Dropped[0].MovedTo == "" {
		t.Fatalf("report %+v: want segment 6 moved aside", rep)
	}
}

// TestCutKeepsWholeSegments: bytes found after a segment's last batch are cut, but when
// that batch reaches the next segment's base the segments after it are whole and stay.
func TestCutKeepsWholeSegments(t *testing.T) {
	h := newHarness(t, Config{})
	bs := h.appendN(3, 2, 20)
	roll(t, h.log)
	bs = append(bs, h.appendN(2, 2, 20)...)
	if err := h.log.Close(); err != nil {
		t.Fatal(err)
	}
	// Another process appends to segment 0 after the close: a batch at the next offset
	// with a bad CRC.
	bad := mkBatch(t, 6, 2, 0, 20)
	bad[len(bad)-1] ^= 0x01
	h.mutateFile(seg0, func(f vfs.File, size int64) { f.WriteAt(bad, size) })
	h.open()
	checkContent(t, h.log, bs)
	rep := h.log.Recovery()
	if len(rep.Truncated) != 1 || rep.Truncated[0].Segment != 0 || rep.Truncated[0].Bytes != int64(len(bad)) || len(rep.Dropped) != 0 {
		t.Fatalf("report %+v", rep)
	}
}

// TestRecoverCompactedSegmentChecksIndex: where the cleaner made gaps, a batch need not
// follow its predecessor's last offset, but its base offset must still agree with the
// offset index that was written with it. Here the batch at offset 3 (after the gap the
// cleaner left at 2) has its base offset flipped to 2; a scan that allows the gap would
// serve its record at offset 2.
func TestRecoverCompactedSegmentChecksIndex(t *testing.T) {
	h := newHarness(t, Config{SegmentBytes: 1000, IndexIntervalBytes: 1})
	ts := h.clock.now().UnixMilli()
	for _, kv := range []string{"a=1", "b=1", "a=2", "c=1", "a=3"} {
		appendKV(t, h.log, ts, kv)
	}
	roll(t, h.log)
	appendKV(t, h.log, ts, "d=1")
	cleanAll(t, NewCleaner(1<<20), h.log, CleanOptions{})
	want := contents(t, h.log)
	if len(want) != 4 || want[1] != "3:c=1" {
		t.Fatalf("compacted log holds %v, want b=1 c=1 a=3 d=1 at 1, 3, 4, 5", want)
	}
	if err := h.log.Close(); err != nil {
		t.Fatal(err)
	}
	// The cleaned segment 0 holds the batches at 1, 3 and 4.
	var pos int64
	h.mutateFile(seg0, func(f vfs.File, size int64) {
		var hdr [12]byte
		f.ReadAt(hdr[:], 0)
		pos = int64(binary.BigEndian.Uint32(hdr[8:])) + 12
		flipBits(f, pos+7, 0x01) // base offset 3 -> 2
	})
	// A torn time index makes Open scan the segment.
	h.mutateFile("00000000000000000000.timeindex", func(f vfs.File, size int64) { f.Truncate(size - 5) })
	l, err := Open(h.fs, dir, h.cfg, h.clock.now)
	if err == nil {
		defer l.Close()
		t.Fatalf("Open served %v; the record c=1 at offset 3 moved to 2", contents(t, l))
	}
	// The damage is in data synced before the clean shutdown: only the operator cuts it.
	if !errors.Is(err, ErrCorruptBelowRecoveryPoint) || !strings.Contains(err.Error(), "offset index") {
		t.Fatalf("Open = %v", err)
	}
	l, err = OpenWith(h.fs, dir, h.cfg, Options{Now: h.clock.now, Logger: testLogger(io.Discard), TruncateBelowRecoveryPoint: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := contents(t, l); fmt.Sprint(got) != "[1:b=1]" {
		t.Fatalf("after the cut the log holds %v, want [1:b=1]", got)
	}
	if rep := l.Recovery(); len(rep.Truncated) != 1 || rep.Truncated[0].Position != pos {
		t.Fatalf("report %+v: want segment 0 cut at byte %d", rep, pos)
	}
}

// markerWithoutTimes returns a clean-shutdown marker with its mtimes zeroed.
func markerWithoutTimes(t *testing.T, data []byte) []byte {
	t.Helper()
	m, err := parseShutdownMarker(data)
	if err != nil {
		t.Fatalf("clean-shutdown marker %q: %v", data, err)
	}
	for i := range m.segments {
		m.segments[i].mtime = 0
	}
	return m.format()
}
