// The record walker as it was before the fast validation walker (validrecords.go) was
// written, frozen here as the reference the differential fuzzer compares against. Do not
// optimise it: its value is that it is the plain reading of the format. (Its one change:
// errors inside the records section are ErrInvalidRecord, as Kafka answers them, where
// they were ErrCorrupt.)
package batch

import (
	"encoding/binary"
	"fmt"
	"math"
)

// refReader walks varints and byte strings of a record; it never allocates.
type refReader struct {
	buf []byte
	pos int
}

func (r *refReader) varlong() (int64, error) {
	v, n := binary.Varint(r.buf[r.pos:])
	if n <= 0 {
		return 0, fmt.Errorf("%w: bad varint at byte %d", ErrInvalidRecord, r.pos)
	}
	r.pos += n
	return v, nil
}

func (r *refReader) varint() (int32, error) {
	start := r.pos
	v, err := r.varlong()
	if err != nil {
		return 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 || r.pos-start > binary.MaxVarintLen32 {
		return 0, fmt.Errorf("%w: varint at byte %d overflows int32", ErrInvalidRecord, start)
	}
	return int32(v), nil
}

func (r *refReader) int8() (int8, error) {
	if r.pos >= len(r.buf) {
		return 0, fmt.Errorf("%w: record truncated at byte %d", ErrInvalidRecord, r.pos)
	}
	v := int8(r.buf[r.pos])
	r.pos++
	return v, nil
}

// bytes reads a varint length and that many bytes; -1 yields nil when nullable.
func (r *refReader) bytes(nullable bool, what string) ([]byte, error) {
	n, err := r.varint()
	if err != nil {
		return nil, err
	}
	if n < 0 {
		if n == -1 && nullable {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: %s length %d", ErrInvalidRecord, what, n)
	}
	if int(n) > len(r.buf)-r.pos {
		return nil, fmt.Errorf("%w: %s of %d bytes overruns the record", ErrInvalidRecord, what, n)
	}
	end := r.pos + int(n)
	b := r.buf[r.pos:end:end]
	r.pos = end
	return b, nil
}

// refWalk checks that data holds exactly count records. strict requires offset deltas
// 0..count-1; otherwise they need only increase and stay within lastOffsetDelta, as in a
// compacted batch. With out == nil it allocates nothing; otherwise it appends each decoded
// record to *out with offsets and timestamps made absolute from hdr. requireKeys refuses
// a null key, as a compacted topic must.
func refWalk(data []byte, count int32, hdr Batch, out *[]Record, strict, requireKeys bool) error {
	if int64(count)*minRecordSize > int64(len(data)) {
		return fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrInvalidRecord, count, len(data))
	}
	pos := 0
	prevDelta, lastDelta := int32(-1), hdr.LastOffsetDelta()
	for i := int32(0); i < count; i++ {
		lr := refReader{buf: data, pos: pos}
		length, err := lr.varint()
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if length < 0 || int(length) > len(data)-lr.pos {
			return fmt.Errorf("%w: record %d length %d overruns the batch", ErrInvalidRecord, i, length)
		}
		end := lr.pos + int(length)
		// The record's own fields are read from a slice that ends where its length
		// says, so a field that overruns the record is caught as such.
		r := refReader{buf: data[:end], pos: lr.pos}
		if _, err := r.int8(); err != nil {
			return fmt.Errorf("record %d attributes: %w", i, err)
		}
		tsDelta, err := r.varlong()
		if err != nil {
			return fmt.Errorf("record %d timestamp delta: %w", i, err)
		}
		offDelta, err := r.varint()
		if err != nil {
			return fmt.Errorf("record %d offset delta: %w", i, err)
		}
		if strict && offDelta != i || !strict && (offDelta <= prevDelta || offDelta > lastDelta) {
			return fmt.Errorf("%w: record %d has offset delta %d", ErrInvalidRecord, i, offDelta)
		}
		prevDelta = offDelta
		key, err := r.bytes(true, "key")
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if requireKeys && key == nil {
			return fmt.Errorf("%w: record %d has no key, which a compacted topic requires", ErrInvalidRecord, i)
		}
		value, err := r.bytes(true, "value")
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		nh, err := r.varint()
		if err != nil {
			return fmt.Errorf("record %d header count: %w", i, err)
		}
		if nh < 0 || int64(nh) > int64(end-r.pos)/minHeaderSize {
			return fmt.Errorf("%w: record %d header count %d", ErrInvalidRecord, i, nh)
		}
		var headers []Header
		if out != nil && nh > 0 {
			headers = make([]Header, 0, nh)
		}
		for h := int32(0); h < nh; h++ {
			hk, err := r.bytes(false, "header key")
			if err != nil {
				return fmt.Errorf("record %d header %d: %w", i, h, err)
			}
			hv, err := r.bytes(true, "header value")
			if err != nil {
				return fmt.Errorf("record %d header %d: %w", i, h, err)
			}
			if out != nil {
				headers = append(headers, Header{Key: string(hk), Value: hv})
			}
		}
		if r.pos != end {
			return fmt.Errorf("%w: record %d has %d bytes beyond its fields", ErrInvalidRecord, i, end-r.pos)
		}
		if out != nil {
			ts := hdr.BaseTimestamp() + tsDelta
			if hdr.LogAppendTime() {
				ts = hdr.MaxTimestamp()
			}
			*out = append(*out, Record{
				Offset:    hdr.BaseOffset() + int64(offDelta),
				Timestamp: ts,
				Key:       key,
				Value:     value,
				Headers:   headers,
			})
		}
		pos = end
	}
	if pos != len(data) {
		return fmt.Errorf("%w: %d bytes after the last of %d records", ErrInvalidRecord, len(data)-pos, count)
	}
	return nil
}
