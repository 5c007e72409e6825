// What recovery checks of each batch besides its length, magic and CRC (issue 8 item 16).
//
// A batch's base offset and partition leader epoch lie outside its CRC (the CRC covers
// the attributes onwards), so a flipped bit in either passes CRC32C. What the log knows
// catches it:
//
//   - contiguity: every append starts at the log end offset, so a batch's base offset is
//     its predecessor's last offset + 1 (a segment's first batch: the segment's base),
//     except where the cleaner removed offsets. The cleaner checkpoint's gap end bounds
//     that (compact_checkpoint.go; written before a clean swaps anything in): a batch
//     starting at or below it may follow a gap, one above it may not;
//   - where gaps are allowed, offsets must still increase, stay below the next segment's
//     base, and agree with the segment's offset index, which was written and synced with
//     the cleaned segment;
//   - the leader epoch never decreases from batch to batch, and never exceeds the newest
//     epoch of the leader-epoch cache: the cache is written (durably) before the first
//     batch of a new epoch.
//
// A batch that fails is treated like a torn one: the segment is cut before it.
//
// Kafka does less here: LogSegment.recover checks each batch's CRC and sizes
// (ensureValid) and that its last offset fits the segment's index (relative offset within
// 0..Int32.MAX), and assigns any epoch above the cache's latest to the cache; a base
// offset that moves forward is accepted, and one that goes backwards is caught only if it
// happens to be indexed (OffsetIndex.append's InvalidOffsetException, upon which LogLoader
// truncates the whole segment to its base).
package log

import (
	"fmt"
	"math"

	"github.com/vltava/vltava/internal/batch"
)

// batchCheck carries what the next batch of a segment must agree with.
type batchCheck struct {
	segBase int64
	next    int64 // previous batch's last offset + 1 (the segment's base before the first)
	limit   int64 // the next segment's base: every offset stays below it
	// gapEnd returns the offset at or below which a batch may follow offsets the cleaner
	// removed (read from the cleaner checkpoint only when a batch does not follow).
	gapEnd   func() int64
	epoch    int32 // previous batch's leader epoch (-1 before the first of the log)
	maxEpoch int32 // the leader-epoch cache's newest epoch, -1 if the cache is empty
	// witness holds the offset index entries found in the file, consulted where gaps are
	// allowed; dropped once an entry proves unreliable (it points inside a batch).
	witness []indexEntry
}

// check returns why b, found at byte pos of the segment, cannot follow what came before
// ("" if it can).
func (c *batchCheck) check(b batch.Batch, pos int64) string {
	base, last := b.BaseOffset(), b.LastOffset()
	if len(c.witness) > 0 && base <= c.gapEnd() {
		if int64(c.witness[0].pos) < pos {
			c.witness = nil // an entry pointing inside a batch: the index is stale, not evidence
		}
		if len(c.witness) > 0 && int64(c.witness[0].pos) == pos {
			if want := c.segBase + int64(c.witness[0].rel); base != want {
				return fmt.Sprintf("base offset %d differs from the offset index entry for this position (%d)", base, want)
			}
			c.witness = c.witness[1:]
		}
	}
	e := b.PartitionLeaderEpoch()
	switch {
	case b.LastOffsetDelta() < 0:
		return fmt.Sprintf("negative last offset delta %d", b.LastOffsetDelta())
	case base < c.next:
		return fmt.Sprintf("base offset %d below the previous batch's end %d", base, c.next)
	case base > c.next && base > c.gapEnd():
		return fmt.Sprintf("base offset %d does not follow the previous batch's end %d (no compaction gap here)", base, c.next)
	case last >= c.limit:
		return fmt.Sprintf("last offset %d reaches the next segment's base %d", last, c.limit)
	case last-c.segBase > math.MaxInt32:
		return fmt.Sprintf("offset %d too far from segment base %d", last, c.segBase)
	case e < c.epoch:
		return fmt.Sprintf("leader epoch %d below the previous batch's %d", e, c.epoch)
	case c.maxEpoch >= 0 && e > c.maxEpoch:
		return fmt.Sprintf("leader epoch %d above the newest known epoch %d", e, c.maxEpoch)
	}
	return ""
}

// advance records b as the batch the next one must follow.
func (c *batchCheck) advance(b batch.Batch) {
	c.next = b.LastOffset() + 1
	c.epoch = b.PartitionLeaderEpoch()
}

// newBatchCheck starts the checks of segment s, whose successor starts at limit
// (math.MaxInt64 for the last segment); epoch is the last batch's epoch of the segments
// before it.
func (r *recovery) newBatchCheck(s *segment, limit int64, epoch int32) batchCheck {
	return batchCheck{segBase: s.base, next: s.base, limit: limit, gapEnd: r.gapEnd, epoch: epoch, maxEpoch: r.maxEpoch}
}
