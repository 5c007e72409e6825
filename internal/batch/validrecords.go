// The validation walker: the produce path's check of every record of an uncompressed (or
// decompressed) batch, written for what producers send most, small records whose varints
// are one or two bytes long.
//
// validRun (and validRecords, its predicate form) accepts exactly the inputs walk
// accepts, no more and no fewer, and says only yes or no, with the records' timestamp
// range. When it says no, the caller runs walk over the same
// bytes for the error, so messages and error classes are walk's by construction; a
// rejected batch, rare and already the client's fault, pays for a second walk. refWalk
// (refwalk_test.go) is a frozen copy of the original walker, and the differential tests
// and fuzzers in validrecords_test.go hold validRecords, walk, Validate and ValidateFull
// to it.
//
// It is fast because it decodes nothing it need not: of the timestamps only the smallest
// and largest are kept (Kafka's checks and max timestamp need no more), one and two byte
// varints are decoded inline, and when timestampDelta, offsetDelta and keyLength are one
// byte each one load reads them. Anything longer goes to a slow path that is binary.Varint with exactly walk's
// checks, so the two cannot drift apart on the rare encodings.
package batch

import (
	"encoding/binary"
	"math"
)

// validRecords reports whether walk(data, count, hdr, nil, strict, requireKeys) would
// return nil, where lastDelta is hdr.LastOffsetDelta(). It never allocates.
func validRecords(data []byte, count, lastDelta int32, strict, requireKeys bool) bool {
	st := newRunState()
	used, ok := validRun(data, count, lastDelta, 0, strict, requireKeys, false, &st)
	return ok && st.i == count && used == len(data)
}

// noMinTimestamp is Summary.MinTimestamp when no record has a timestamp other than -1.
const noMinTimestamp = math.MaxInt64

// runState carries a walk of a batch's records across runs of them (the streaming
// walker hands validRun one window of decompressed bytes at a time).
type runState struct {
	i     int32 // records checked so far: the next one's index
	prev  int32 // the offset delta of the last one checked, -1 before the first
	minTS int64 // the smallest timestamp other than -1 (noMinTimestamp: none yet)
	maxTS int64 // the largest timestamp, never below -1 (Kafka's NO_TIMESTAMP start)
}

func newRunState() runState { return runState{prev: -1, minTS: noMinTimestamp, maxTS: -1} }

// validRun checks the records at the start of data, from record st.i on and at most up to
// record count-1, as walk checks them, and accumulates in st their index and timestamps
// (baseTS plus each delta, wrapping as Java's long does). It returns the bytes the
// records it accepted take. ok is false if a record is invalid; st is then not updated.
//
// With partial false, data must hold whole records (walk's view: the first record that
// runs past the end of data is invalid). With partial true, data is a window onto a
// longer stream: validRun stops, ok, before a record whose length or body runs past the
// end of data, and the caller reads on. A length varint that is invalid whatever follows
// (five bytes present) is invalid in both modes.
func validRun(data []byte, count, lastDelta int32, baseTS int64, strict, requireKeys, partial bool, st *runState) (used int, ok bool) {
	if !partial && int64(count-st.i)*minRecordSize > int64(len(data)) {
		return 0, false
	}
	pos := 0
	i, prev := st.i, st.prev
	// The smallest and largest timestamp deltas: cheaper in the loop than timestamps,
	// made timestamps after it.
	minD, maxD := int64(math.MaxInt64), int64(math.MinInt64)
	for ; i < count; i++ {
		length, n := varint12(data, pos)
		if n == 0 {
			if length, n = varint32Slow(data, pos); n == 0 {
				if partial && len(data)-pos < binary.MaxVarintLen32 {
					break
				}
				return 0, false
			}
		}
		// A record has at least six one-byte fields after its length.
		if length < minRecordSize-1 {
			return 0, false
		}
		if int(length) > len(data)-pos-n {
			if partial {
				break
			}
			return 0, false
		}
		pos += n
		end := pos + int(length)
		rec := data[:end]
		// attributes (one byte, any value), timestampDelta (a varlong of any value),
		// offsetDelta and keyLength. The record's six bytes make the load safe.
		var off, kl int32
		var tsd int64
		if w := binary.LittleEndian.Uint32(rec[pos:]); w&0x80808000 == 0 {
			// The usual record: the three varints are one byte each, read with one load
			// rather than three loads that each wait for the previous one's length.
			t, o, k := int64(w>>8&0xff), int32(w>>16&0xff), int32(w>>24)
			tsd, off, kl = t>>1^-(t&1), o>>1^-(o&1), k>>1^-(k&1)
			pos += 4
		} else {
			pos++
			if tsd, n = varlongAt(rec, pos); n == 0 {
				return 0, false
			}
			pos += n
			if off, n = varint12(rec, pos); n == 0 {
				if off, n = varint32Slow(rec, pos); n == 0 {
					return 0, false
				}
			}
			pos += n
			if kl, n = varint12(rec, pos); n == 0 {
				if kl, n = varint32Slow(rec, pos); n == 0 {
					return 0, false
				}
			}
			pos += n
		}
		if strict {
			if off != i {
				return 0, false
			}
		} else if off <= prev || off > lastDelta {
			return 0, false
		}
		prev = off
		maxD = max(maxD, tsd)
		minD = min(minD, tsd)
		// key (nullable unless requireKeys), then value (nullable).
		if kl >= 0 {
			if int(kl) > end-pos {
				return 0, false
			}
			pos += int(kl)
		} else if kl != -1 || requireKeys {
			return 0, false
		}
		vl, n := varint12(rec, pos)
		if n == 0 {
			if vl, n = varint32Slow(rec, pos); n == 0 {
				return 0, false
			}
		}
		pos += n
		if vl >= 0 {
			if int(vl) > end-pos {
				return 0, false
			}
			pos += int(vl)
		} else if vl != -1 {
			return 0, false
		}
		nh, n := varint12(rec, pos)
		if n == 0 {
			if nh, n = varint32Slow(rec, pos); n == 0 {
				return 0, false
			}
		}
		pos += n
		if nh != 0 {
			if nh < 0 || int64(nh) > int64(end-pos)/minHeaderSize {
				return 0, false
			}
			if pos = validHeaders(rec, pos, nh); pos < 0 {
				return 0, false
			}
		}
		if pos != end {
			return 0, false
		}
	}
	if i > st.i {
		lo, hi := baseTS+minD, baseTS+maxD
		if lo <= -1 || (minD < 0) != (lo < baseTS) || (maxD < 0) != (hi < baseTS) {
			// A record at -1 (not counted in the minimum) or below, or sums that wrap:
			// take the timestamps record by record, as Kafka's long arithmetic does.
			lo, hi = exactTimestamps(data[:pos], i-st.i, baseTS)
		}
		st.minTS, st.maxTS = min(st.minTS, lo), max(st.maxTS, hi)
	}
	st.i, st.prev = i, prev
	return pos, true
}

// exactTimestamps returns the smallest timestamp other than -1 (noMinTimestamp if none)
// and the largest (at least -1) of the n records data holds, which validRun has accepted.
func exactTimestamps(data []byte, n int32, baseTS int64) (lo, hi int64) {
	lo, hi = noMinTimestamp, -1
	pos := 0
	for range n {
		r := reader{buf: data, pos: pos}
		length, _ := r.varint()
		end := r.pos + int(length)
		r.pos++ // attributes
		tsd, _ := r.varlong()
		ts := baseTS + tsd
		hi = max(hi, ts)
		if ts != -1 {
			lo = min(lo, ts)
		}
		pos = end
	}
	return lo, hi
}

// validHeaders checks nh headers at rec[pos:] and returns the position after them, or -1.
// Kept out of validRecords so the loop without headers, the common one, stays small.
func validHeaders(rec []byte, pos int, nh int32) int {
	end := len(rec)
	for range nh {
		kl, n := varint12(rec, pos)
		if n == 0 {
			if kl, n = varint32Slow(rec, pos); n == 0 {
				return -1
			}
		}
		if kl < 0 {
			return -1 // a header key is never null
		}
		pos += n
		if int(kl) > end-pos {
			return -1
		}
		pos += int(kl)
		vl, n := varint12(rec, pos)
		if n == 0 {
			if vl, n = varint32Slow(rec, pos); n == 0 {
				return -1
			}
		}
		pos += n
		if vl >= 0 {
			if int(vl) > end-pos {
				return -1
			}
			pos += int(vl)
		} else if vl != -1 {
			return -1
		}
	}
	return pos
}

// varint12 decodes a one or two byte zigzag varint at b[pos:] (the length of any record,
// key or value below 8 KiB), returning its value and length, or length 0 for anything
// else (longer or truncated): the caller then asks varint32Slow. Split so that this part
// inlines.
func varint12(b []byte, pos int) (int32, int) {
	if uint(pos) >= uint(len(b)) {
		return 0, 0
	}
	u, n := uint32(b[pos]), 1
	if u >= 0x80 {
		if pos+1 >= len(b) || b[pos+1] >= 0x80 {
			return 0, 0
		}
		u, n = u&0x7f|uint32(b[pos+1])<<7, 2
	}
	return int32(u>>1) ^ -int32(u&1), n
}

// varint32Slow decodes the zigzag varint at b[pos:] as reader.varint accepts it (at most
// five bytes, within int32), returning its value and length, or length 0 if reader.varint
// would refuse it.
func varint32Slow(b []byte, pos int) (int32, int) {
	if uint(pos) > uint(len(b)) {
		return 0, 0
	}
	// Two bytes, the length of a 64..8191 byte record or value, without the loop.
	if pos+1 < len(b) {
		if x, y := b[pos], b[pos+1]; x >= 0x80 && y < 0x80 {
			u := uint32(x&0x7f) | uint32(y)<<7
			return int32(u>>1) ^ -int32(u&1), 2
		}
	}
	v, n := binary.Varint(b[pos:])
	if n <= 0 || n > binary.MaxVarintLen32 || v < math.MinInt32 || v > math.MaxInt32 {
		return 0, 0
	}
	return int32(v), n
}

// varlongAt decodes the zigzag varint at b[pos:] as reader.varlong accepts it
// (binary.Varint, any int64), returning its value and length, or length 0 if
// reader.varlong would refuse it.
func varlongAt(b []byte, pos int) (int64, int) {
	if uint(pos) < uint(len(b)) && b[pos] < 0x80 {
		x := int64(b[pos])
		return x>>1 ^ -(x & 1), 1
	}
	return varlongSlow(b, pos)
}

func varlongSlow(b []byte, pos int) (int64, int) {
	if uint(pos) > uint(len(b)) {
		return 0, 0
	}
	v, n := binary.Varint(b[pos:])
	return v, max(n, 0)
}
