// Time index (<base>.timeindex): a sparse map from timestamps to offsets, so
// ListOffsets by timestamp reads only a batch or two.
//
// Layout, entries back to back, no header:
//
//	0 timestamp      int64  big endian (largest batch maxTimestamp in the segment so far)
//	8 relativeOffset uint32 big endian (base offset of the batch holding that timestamp
//	                                    - segment base offset)
//
// As in Kafka, an entry is considered whenever an offset index entry is written, and
// once more when the segment stops being active (roll, clean close), and is appended only
// if its timestamp is larger than the last entry's: timestamps strictly increase and
// offsets never decrease. The last entry of an inactive segment holds the segment's
// largest timestamp; the segment also keeps it in memory (segment.maxTs), which
// time-based retention reads.
//
// Memory: as with the offset index (index.go), only the active segment holds its entries
// in memory; a lookup in an inactive segment binary-searches the file.
//
// Recovery: loaded whole and sanity-checked (size a multiple of 12, monotonic fields,
// offsets inside the segment); a torn, corrupt or missing file is rebuilt from the segment.
// A lookup that finds an entry contradicted by the batch it names scans the segment from
// its start instead and, for an inactive segment, rebuilds the index files.
package log

import (
	"encoding/binary"
	"fmt"
	"sort"
)

const timeEntrySize = 12

type timeEntry struct {
	ts  int64
	rel uint32
}

func appendTimeEntry(dst []byte, e timeEntry) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.ts))
	return binary.BigEndian.AppendUint32(dst, e.rel)
}

func decodeTimeEntry(b []byte) timeEntry {
	return timeEntry{ts: int64(binary.BigEndian.Uint64(b)), rel: binary.BigEndian.Uint32(b[8:])}
}

func timeKey(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }

// parseTimeIndex decodes and sanity-checks a time index of a segment whose batches end
// before relative offset nextRel (-1: not known yet).
func parseTimeIndex(data []byte, nextRel int64) ([]timeEntry, error) {
	if len(data)%timeEntrySize != 0 {
		return nil, fmt.Errorf("time index of %d bytes is not a whole number of entries", len(data))
	}
	out := make([]timeEntry, 0, len(data)/timeEntrySize)
	for i := 0; i < len(data); i += timeEntrySize {
		e := decodeTimeEntry(data[i:])
		if n := len(out); n > 0 && (e.ts <= out[n-1].ts || e.rel < out[n-1].rel) {
			return nil, fmt.Errorf("time index entry %d (%d@%d) does not follow (%d@%d)", n, e.ts, e.rel, out[n-1].ts, out[n-1].rel)
		}
		if nextRel >= 0 && int64(e.rel) >= nextRel {
			return nil, fmt.Errorf("time index entry for relative offset %d past the segment's end %d", e.rel, nextRel)
		}
		out = append(out, e)
	}
	return out, nil
}

// lookupTime returns the entry from whose offset to scan for the first batch with
// maxTimestamp >= ts: the last entry whose timestamp is < ts (every batch up to and
// including that one has a smaller maxTimestamp); false if there is none (scan the
// segment from its start).
//
// An entry that passed the sanity check may still lie (a corrupt file that happens to be
// monotonic): the reader checks that the batch at the entry's offset has the entry's
// timestamp before trusting it.
func lookupTime(times []timeEntry, ts int64) (timeEntry, bool) {
	i := sort.Search(len(times), func(i int) bool { return times[i].ts >= ts })
	if i == 0 {
		return timeEntry{}, false
	}
	return times[i-1], true
}
