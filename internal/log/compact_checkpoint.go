// The cleaner checkpoint (cleaner-offset-checkpoint in the partition directory): where
// the dirty section starts, and when each part of the clean section was first cleaned.
//
// Kafka keeps one cleaner-offset-checkpoint per log dir with the first dirty offset of
// every partition; we keep one per partition (a partition's directory is its unit of
// recovery here) and add the cleaning times that delete.retention.ms counts from: a
// tombstone may go only once delete.retention.ms has passed since the cleaner first
// cleaned it (KIP-534's rule; Kafka stores that horizon in the batch header, we keep it
// beside the log so batches are never touched for it).
//
// Layout, text, written whole and atomically (vfs.WriteFileAtomic):
//
//	line 1: version, "1"
//	line 2: first dirty offset
//	line 3: tombstone due: unix ms when the earliest kept tombstone may go, -1 if none
//	line 4: gap end: the cleaner may have removed offsets below it, nowhere else; -1
//	        if unknown (a version 0 checkpoint's, until the next clean)
//	line 5: entry count n
//	n lines: "<startOffset> <cleanedAtMs>", both increasing
//
// Version 0 (written before the gap end existed) lacks line 4.
//
// Entry i says offsets from its start up to the next entry's start (the last one: up to
// the first dirty offset) were first cleaned at cleanedAtMs. Offsets below the first
// entry were cleaned no later than its time.
//
// The gap end tells recovery where a batch may start past its predecessor's end
// (recovery_checks.go): everywhere else a gap is corruption. A clean that will end at
// offset e writes the checkpoint with a gap end of at least e before it swaps in its
// first segment, so no crash can leave a gap above the gap end; truncation lowers it.
//
// Recovery: a missing checkpoint means nothing was cleaned (first dirty offset = log
// start, no gaps); one that does not parse is treated the same way by the cleaner, which
// only costs a full re-clean and restarts the tombstone clocks (tombstones are kept
// longer, never shorter), but recovery then allows gaps anywhere, as it does for
// version 0 (the gap end is unknown until the next clean writes one). A crash between a
// swap and the checkpoint write leaves the pre-swap checkpoint: the next clean maps that
// range again, which is harmless.
package log

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

const cleanerCheckpointFile = "cleaner-offset-checkpoint"

// maxCleanedRanges bounds the checkpoint: past it, neighbouring ranges are merged keeping
// the later time, which only delays tombstone removal.
const maxCleanedRanges = 512

type cleanedRange struct {
	start     int64
	cleanedAt int64 // unix ms
}

type cleanerCheckpoint struct {
	firstDirty   int64
	tombstoneDue int64
	gapEnd       int64 // gapUnknown: version 0 or unreadable
	ranges       []cleanedRange
}

// gapUnknown is the gap end of a checkpoint that does not say (gaps may be anywhere).
const gapUnknown = -1

// emptyCleanerCheckpoint is the checkpoint of a log never cleaned.
func emptyCleanerCheckpoint() cleanerCheckpoint { return cleanerCheckpoint{tombstoneDue: -1} }

func (c cleanerCheckpoint) format() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "1\n%d\n%d\n%d\n%d\n", c.firstDirty, c.tombstoneDue, c.gapEnd, len(c.ranges))
	for _, r := range c.ranges {
		fmt.Fprintf(&b, "%d %d\n", r.start, r.cleanedAt)
	}
	return b.Bytes()
}

func parseCleanerCheckpoint(data []byte) (cleanerCheckpoint, error) {
	c := emptyCleanerCheckpoint()
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	gapEnd := int64(gapUnknown)
	switch {
	case len(lines) >= 5 && lines[0] == "1":
		g, err := strconv.ParseInt(lines[3], 10, 64)
		if err != nil || g < gapUnknown {
			return c, fmt.Errorf("%w: gap end %q", errBadCheckpoint, lines[3])
		}
		gapEnd = g
		lines = append(lines[:3:3], lines[4:]...) // the rest parses as version 0
	case len(lines) >= 4 && lines[0] == "0":
	default:
		return c, fmt.Errorf("%w: want version 0 or 1", errBadCheckpoint)
	}
	fd, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || fd < 0 {
		return c, fmt.Errorf("%w: first dirty offset %q", errBadCheckpoint, lines[1])
	}
	due, err := strconv.ParseInt(lines[2], 10, 64)
	if err != nil || due < -1 {
		return c, fmt.Errorf("%w: tombstone due %q", errBadCheckpoint, lines[2])
	}
	n, err := strconv.Atoi(lines[3])
	if err != nil || n != len(lines)-4 {
		return c, fmt.Errorf("%w: entry count %q for %d lines", errBadCheckpoint, lines[3], len(lines)-4)
	}
	c.firstDirty, c.tombstoneDue, c.gapEnd = fd, due, gapEnd
	for _, l := range lines[4:] {
		f := strings.Fields(l)
		if len(f) != 2 {
			return c, fmt.Errorf("%w: line %q", errBadCheckpoint, l)
		}
		s, err1 := strconv.ParseInt(f[0], 10, 64)
		t, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || s < 0 || s >= fd {
			return c, fmt.Errorf("%w: line %q", errBadCheckpoint, l)
		}
		if k := len(c.ranges); k > 0 && (s <= c.ranges[k-1].start || t < c.ranges[k-1].cleanedAt) {
			return c, fmt.Errorf("%w: line %q does not follow the previous one", errBadCheckpoint, l)
		}
		c.ranges = append(c.ranges, cleanedRange{s, t})
	}
	return c, nil
}

// readCleanerCheckpoint returns the checkpoint, or the empty one if it is missing or
// malformed (see the file comment; a malformed one's gap end is unknown).
func (l *Log) readCleanerCheckpoint() (cleanerCheckpoint, error) {
	data, err := readCheckpoint(l.fsys, l.dir, cleanerCheckpointFile)
	if err != nil || data == nil {
		return emptyCleanerCheckpoint(), err
	}
	c, err := parseCleanerCheckpoint(data)
	if err != nil {
		c = emptyCleanerCheckpoint()
		c.gapEnd = gapUnknown
	}
	return c, nil
}

// cleanerGapEnd returns the offset below which recovery allows gaps between batches:
// 0 when the log was never cleaned, MaxInt64 when the checkpoint does not say.
func (l *Log) cleanerGapEnd() int64 {
	c, err := l.readCleanerCheckpoint()
	if err != nil || c.gapEnd == gapUnknown {
		return math.MaxInt64
	}
	return c.gapEnd
}

// markGapsLocked makes the checkpoint's gap end at least end, durably, before a clean
// ending at end swaps anything in. A checkpoint whose gap end is unknown gets the log end
// offset: gaps may be anywhere in what is there now, and nowhere in what comes after.
// It returns the gap end now in the checkpoint. writeMu is held.
func (l *Log) markGapsLocked(end int64) (int64, error) {
	c, err := l.readCleanerCheckpoint()
	if err != nil {
		return 0, err
	}
	switch {
	case c.gapEnd == gapUnknown:
		c.gapEnd = max(end, l.logEndOffset.Load())
	case c.gapEnd >= end:
		return c.gapEnd, nil
	default:
		c.gapEnd = end
	}
	return c.gapEnd, writeCheckpoint(l.fsys, l.dir, cleanerCheckpointFile, c.format())
}

// cleanedAt returns when offset (below firstDirty) was first cleaned, in unix ms.
func (c cleanerCheckpoint) cleanedAt(offset int64) int64 {
	t := int64(-1)
	for _, r := range c.ranges {
		if r.start > offset {
			break
		}
		t = r.cleanedAt
	}
	if t < 0 && len(c.ranges) > 0 {
		t = c.ranges[0].cleanedAt
	}
	return t
}

// advance records that [c.firstDirty, end) was cleaned at now, and drops what is no
// longer needed: ranges below the log start, and the distinction between ranges whose
// tombstones have all expired (merged into one).
func (c cleanerCheckpoint) advance(end, logStart int64, now time.Time, deleteRetention time.Duration) cleanerCheckpoint {
	nowMs := now.UnixMilli()
	out := cleanerCheckpoint{firstDirty: end, tombstoneDue: -1, gapEnd: max(c.gapEnd, end)}
	rs := append(append([]cleanedRange(nil), c.ranges...), cleanedRange{c.firstDirty, nowMs})
	// Old ranges at or past the new one's start (a checkpoint reset) are replaced by it.
	for k := len(rs); k >= 2 && rs[k-2].start >= rs[k-1].start; k = len(rs) {
		rs = append(rs[:k-2], rs[k-1])
	}
	// Ranges wholly below the log start are gone.
	for len(rs) > 1 && rs[1].start <= logStart {
		rs = rs[1:]
	}
	// Expired ranges form a prefix (times increase): one entry is enough for them.
	expired := 0
	for expired < len(rs) && nowMs-rs[expired].cleanedAt >= deleteRetention.Milliseconds() {
		expired++
	}
	if expired > 1 {
		rs = append([]cleanedRange{{rs[0].start, rs[expired-1].cleanedAt}}, rs[expired:]...)
	}
	for len(rs) > maxCleanedRanges {
		merged := rs[:0:0]
		for i := 0; i < len(rs); i += 2 {
			r := rs[i]
			if i+1 < len(rs) {
				r.cleanedAt = rs[i+1].cleanedAt
			}
			merged = append(merged, r)
		}
		rs = merged
	}
	for i := range rs {
		if rs[i].start >= end {
			rs = rs[:i]
			break
		}
	}
	out.ranges = rs
	return out
}

// truncateCleanerCheckpointLocked lowers the first dirty offset to offset before a
// truncation to offset that leaves the log ending at end (the base of the batch holding
// offset, which may lie past offset in a gap the cleaner made): what is written there
// afterwards is new, dirty data, and gaps remain only below end. writeMu is held.
func (l *Log) truncateCleanerCheckpointLocked(offset, end int64) error {
	data, err := readCheckpoint(l.fsys, l.dir, cleanerCheckpointFile)
	if err != nil || data == nil {
		return err
	}
	c, err := parseCleanerCheckpoint(data)
	if err != nil || (c.firstDirty <= offset && c.gapEnd != gapUnknown && c.gapEnd <= end) {
		return nil
	}
	c.firstDirty = min(c.firstDirty, offset)
	if c.gapEnd == gapUnknown || c.gapEnd > end {
		c.gapEnd = end
	}
	for len(c.ranges) > 0 && c.ranges[len(c.ranges)-1].start >= offset {
		c.ranges = c.ranges[:len(c.ranges)-1]
	}
	return writeCheckpoint(l.fsys, l.dir, cleanerCheckpointFile, c.format())
}
