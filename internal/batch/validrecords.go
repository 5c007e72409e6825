// The validation walker: the produce path's check of every record of an uncompressed (or
// decompressed) batch, written for what producers send most, small records whose varints
// are one or two bytes long.
//
// validRecords is a predicate. It accepts exactly the inputs walk accepts, no more and no
// fewer, and says only yes or no. When it says no, the caller runs walk over the same
// bytes for the error, so messages and error classes are walk's by construction; a
// rejected batch, rare and already the client's fault, pays for a second walk. refWalk
// (refwalk_test.go) is a frozen copy of the original walker, and the differential tests
// and fuzzers in validrecords_test.go hold validRecords, walk, Validate and ValidateFull
// to it.
//
// It is fast because it decodes nothing it need not: the timestamp delta is only skipped
// (its value never matters to validation), one and two byte varints are decoded inline,
// and when timestampDelta, offsetDelta and keyLength are one byte each one load reads
// them. Anything longer goes to a slow path that is binary.Varint with exactly walk's
// checks, so the two cannot drift apart on the rare encodings.
package batch

import (
	"encoding/binary"
	"math"
)

// validRecords reports whether walk(data, count, hdr, nil, strict, requireKeys) would
// return nil, where lastDelta is hdr.LastOffsetDelta(). It never allocates.
func validRecords(data []byte, count, lastDelta int32, strict, requireKeys bool) bool {
	if int64(count)*minRecordSize > int64(len(data)) {
		return false
	}
	pos := 0
	prev := int32(-1)
	for i := int32(0); i < count; i++ {
		length, n := varint12(data, pos)
		if n == 0 {
			if length, n = varint32Slow(data, pos); n == 0 {
				return false
			}
		}
		pos += n
		// A record has at least six one-byte fields after its length.
		if length < minRecordSize-1 || int(length) > len(data)-pos {
			return false
		}
		end := pos + int(length)
		rec := data[:end]
		// attributes (one byte, any value), timestampDelta (a varlong of any value, skipped),
		// offsetDelta and keyLength. The record's six bytes make the load safe.
		var off, kl int32
		if w := binary.LittleEndian.Uint32(rec[pos:]); w&0x80808000 == 0 {
			// The usual record: the three varints are one byte each, read with one load
			// rather than three loads that each wait for the previous one's length.
			o, k := int32(w>>16&0xff), int32(w>>24)
			off, kl = o>>1^-(o&1), k>>1^-(k&1)
			pos += 4
		} else {
			pos++
			if n = varlongLen(rec, pos); n == 0 {
				return false
			}
			pos += n
			if off, n = varint12(rec, pos); n == 0 {
				if off, n = varint32Slow(rec, pos); n == 0 {
					return false
				}
			}
			pos += n
			if kl, n = varint12(rec, pos); n == 0 {
				if kl, n = varint32Slow(rec, pos); n == 0 {
					return false
				}
			}
			pos += n
		}
		if strict {
			if off != i {
				return false
			}
		} else if off <= prev || off > lastDelta {
			return false
		}
		prev = off
		// key (nullable unless requireKeys), then value (nullable).
		if kl >= 0 {
			if int(kl) > end-pos {
				return false
			}
			pos += int(kl)
		} else if kl != -1 || requireKeys {
			return false
		}
		vl, n := varint12(rec, pos)
		if n == 0 {
			if vl, n = varint32Slow(rec, pos); n == 0 {
				return false
			}
		}
		pos += n
		if vl >= 0 {
			if int(vl) > end-pos {
				return false
			}
			pos += int(vl)
		} else if vl != -1 {
			return false
		}
		nh, n := varint12(rec, pos)
		if n == 0 {
			if nh, n = varint32Slow(rec, pos); n == 0 {
				return false
			}
		}
		pos += n
		if nh != 0 {
			if nh < 0 || int64(nh) > int64(end-pos)/minHeaderSize {
				return false
			}
			if pos = validHeaders(rec, pos, nh); pos < 0 {
				return false
			}
		}
		if pos != end {
			return false
		}
	}
	return pos == len(data)
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

// varlongLen returns the length of the varint at b[pos:] as reader.varlong accepts it
// (binary.Varint, any int64), or 0 if reader.varlong would refuse it.
func varlongLen(b []byte, pos int) int {
	if uint(pos) < uint(len(b)) && b[pos] < 0x80 {
		return 1
	}
	return varlongLenSlow(b, pos)
}

func varlongLenSlow(b []byte, pos int) int {
	if uint(pos) > uint(len(b)) {
		return 0
	}
	_, n := binary.Uvarint(b[pos:])
	return max(n, 0)
}
