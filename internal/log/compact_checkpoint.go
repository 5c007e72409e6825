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
//	line 1: version, "0"
//	line 2: first dirty offset
//	line 3: tombstone due: unix ms when the earliest kept tombstone may go, -1 if none
//	line 4: entry count n
//	n lines: "<startOffset> <cleanedAtMs>", both increasing
//
// Entry i says offsets from its start up to the next entry's start (the last one: up to
// the first dirty offset) were first cleaned at cleanedAtMs. Offsets below the first
// entry were cleaned no later than its time.
//
// Recovery: a missing checkpoint means nothing was cleaned (first dirty offset = log
// start); one that does not parse is treated the same way, which only costs a full
// re-clean and restarts the tombstone clocks (tombstones are kept longer, never shorter).
// A crash between a swap and the checkpoint write leaves the old checkpoint: the next
// clean maps that range again, which is harmless.
package log

import (
	"bytes"
	"fmt"
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
	ranges       []cleanedRange
}

func (c cleanerCheckpoint) format() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n%d\n%d\n", c.firstDirty, c.tombstoneDue, len(c.ranges))
	for _, r := range c.ranges {
		fmt.Fprintf(&b, "%d %d\n", r.start, r.cleanedAt)
	}
	return b.Bytes()
}

func parseCleanerCheckpoint(data []byte) (cleanerCheckpoint, error) {
	c := cleanerCheckpoint{tombstoneDue: -1}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) < 4 || lines[0] != "0" {
		return c, fmt.Errorf("%w: want version 0", errBadCheckpoint)
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
	c.firstDirty, c.tombstoneDue = fd, due
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
// malformed (see the file comment).
func (l *Log) readCleanerCheckpoint() (cleanerCheckpoint, error) {
	data, err := readCheckpoint(l.fsys, l.dir, cleanerCheckpointFile)
	if err != nil || data == nil {
		return cleanerCheckpoint{tombstoneDue: -1}, err
	}
	c, err := parseCleanerCheckpoint(data)
	if err != nil {
		return cleanerCheckpoint{tombstoneDue: -1}, nil
	}
	return c, nil
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
	out := cleanerCheckpoint{firstDirty: end, tombstoneDue: -1}
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
// truncation: what is written there afterwards is new, dirty data. writeMu is held.
func (l *Log) truncateCleanerCheckpointLocked(offset int64) error {
	data, err := readCheckpoint(l.fsys, l.dir, cleanerCheckpointFile)
	if err != nil || data == nil {
		return err
	}
	c, err := parseCleanerCheckpoint(data)
	if err != nil || c.firstDirty <= offset {
		return nil
	}
	c.firstDirty = offset
	for len(c.ranges) > 0 && c.ranges[len(c.ranges)-1].start >= offset {
		c.ranges = c.ranges[:len(c.ranges)-1]
	}
	return writeCheckpoint(l.fsys, l.dir, cleanerCheckpointFile, c.format())
}
