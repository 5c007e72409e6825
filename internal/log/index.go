// Offset index (<base>.index): a sparse map from offsets to positions in the segment's
// .log file, one entry every index.interval.bytes of log.
//
// Layout, entries back to back, no header:
//
//	0 relativeOffset uint32 big endian (batch base offset - segment base offset)
//	4 position       uint32 big endian (byte position of that batch in the .log file)
//
// Both fields strictly increase from entry to entry. The first batch of a segment is
// never indexed (a lookup below the first entry starts at position 0).
//
// Memory: only the active segment holds its entries in memory (appends add to them and
// truncation and roll decisions count them). A segment that stops being active (roll,
// open, compaction) keeps only the number of entries its files hold, and lookups in it
// binary-search the file with small preads (searchFile), so the broker's memory does not
// grow with the data stored (about 2 MiB of entries per GiB of log at the default
// interval). Inactive segments' files change only by truncation, which first loads them
// back into memory (the segment becomes active), and by a rebuild after a lookup found
// them lying (rebuildIndexes); a reader racing either one at worst reads an entry that
// fails the check below.
//
// Recovery: the file is loaded whole and sanity-checked: its size a multiple of 8,
// fields strictly increasing, positions inside the segment, offsets below the segment's
// next offset. A file that fails (a torn last entry after a crash, garbage, entries past
// a truncated log) or is missing is rebuilt from the segment. A lookup also checks that
// the batch found at an entry's position has the entry's offset; if not, it starts from
// the segment's first batch instead, and an inactive segment's index files are rebuilt
// from a walk of its batch headers.
package log

import (
	"encoding/binary"
	"fmt"
	"sort"
)

const indexEntrySize = 8

type indexEntry struct {
	rel uint32
	pos uint32
}

func appendIndexEntry(dst []byte, e indexEntry) []byte {
	dst = binary.BigEndian.AppendUint32(dst, e.rel)
	return binary.BigEndian.AppendUint32(dst, e.pos)
}

func decodeIndexEntry(b []byte) indexEntry {
	return indexEntry{rel: binary.BigEndian.Uint32(b), pos: binary.BigEndian.Uint32(b[4:])}
}

func indexKey(b []byte) int64 { return int64(binary.BigEndian.Uint32(b)) }

// parseIndex decodes and sanity-checks an offset index against a segment of size bytes
// whose batches end before relative offset nextRel (-1: not known yet).
func parseIndex(data []byte, size int64, nextRel int64) ([]indexEntry, error) {
	if len(data)%indexEntrySize != 0 {
		return nil, fmt.Errorf("offset index of %d bytes is not a whole number of entries", len(data))
	}
	out := make([]indexEntry, 0, len(data)/indexEntrySize)
	for i := 0; i < len(data); i += indexEntrySize {
		e := decodeIndexEntry(data[i:])
		if n := len(out); n > 0 && (e.rel <= out[n-1].rel || e.pos <= out[n-1].pos) {
			return nil, fmt.Errorf("offset index entry %d (%d@%d) does not follow (%d@%d)", n, e.rel, e.pos, out[n-1].rel, out[n-1].pos)
		}
		if int64(e.pos) >= size || e.pos == 0 {
			return nil, fmt.Errorf("offset index entry at position %d outside the %d byte segment", e.pos, size)
		}
		if nextRel >= 0 && int64(e.rel) >= nextRel {
			return nil, fmt.Errorf("offset index entry for relative offset %d past the segment's end %d", e.rel, nextRel)
		}
		out = append(out, e)
	}
	return out, nil
}

// lookupIndex returns the entry of the last indexed batch whose base offset is <= rel,
// or the zero entry (the segment's first batch) if there is none.
func lookupIndex(idx []indexEntry, rel int64) (indexEntry, int) {
	i := sort.Search(len(idx), func(i int) bool { return int64(idx[i].rel) > rel })
	if i == 0 {
		return indexEntry{}, -1
	}
	return idx[i-1], i - 1
}
