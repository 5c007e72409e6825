// Record walking and decoding for v2 batches.
//
// Each record inside a batch's (decompressed) data is, with Kafka's zigzag varints:
//
//	length         varint  (bytes that follow in this record)
//	attributes     int8    (unused, 0)
//	timestampDelta varlong (from baseTimestamp)
//	offsetDelta    varint  (from baseOffset; record i has delta i in a produced batch)
//	keyLength      varint  (-1 = null key)
//	key            bytes
//	valueLength    varint  (-1 = null value, a tombstone)
//	value          bytes
//	headerCount    varint
//	headers        headerCount times: keyLength varint (>= 0), key, valueLength varint (-1 = null), value
//
// The records must exactly fill the data: no bytes short, no bytes left over. Anything
// wrong inside the records section of a batch whose CRC holds is ErrInvalidRecord
// (INVALID_RECORD), as Kafka's InvalidRecordException is; CORRUPT_MESSAGE is for bytes
// the CRC or the codec refuses.
package batch

import (
	"encoding/binary"
	"fmt"
	"math"
)

// minRecordSize is the smallest encoding of a record including its length varint:
// one byte each for length, attributes, timestampDelta, offsetDelta, keyLength,
// valueLength, headerCount. It bounds how many records a buffer can claim to hold.
const minRecordSize = 7

// minHeaderSize is the smallest header: keyLength and valueLength, one byte each.
const minHeaderSize = 2

// Record is one decoded record; slices alias the (decompressed) batch data.
type Record struct {
	Offset    int64
	Timestamp int64
	Key       []byte // nil for a null key
	Value     []byte // nil for a null value (tombstone)
	Headers   []Header
}

type Header struct {
	Key   string
	Value []byte
}

// reader walks varints and byte strings of a record; it never allocates.
type reader struct {
	buf []byte
	pos int
}

func (r *reader) varlong() (int64, error) {
	if r.pos < len(r.buf) && r.buf[r.pos] < 0x80 {
		x := int64(r.buf[r.pos])
		r.pos++
		return x>>1 ^ -(x & 1), nil
	}
	v, n := binary.Varint(r.buf[r.pos:])
	if n <= 0 {
		return 0, fmt.Errorf("%w: bad varint at byte %d", ErrInvalidRecord, r.pos)
	}
	r.pos += n
	return v, nil
}

func (r *reader) varint() (int32, error) {
	if v, n := varint12(r.buf, r.pos); n != 0 {
		r.pos += n
		return v, nil
	}
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

func (r *reader) int8() (int8, error) {
	if r.pos >= len(r.buf) {
		return 0, fmt.Errorf("%w: record truncated at byte %d", ErrInvalidRecord, r.pos)
	}
	v := int8(r.buf[r.pos])
	r.pos++
	return v, nil
}

// bytes reads a varint length and that many bytes; -1 yields nil when nullable.
func (r *reader) bytes(nullable bool, what string) ([]byte, error) {
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

// walkRecords checks that data holds exactly count records with offset deltas 0..count-1,
// as a produced batch must, and with requireKeys that none has a null key. It allocates
// nothing unless it refuses the records: validRecords decides, walk explains.
func walkRecords(data []byte, count int32, hdr Batch, requireKeys bool) error {
	if validRecords(data, count, hdr.LastOffsetDelta(), true, requireKeys) {
		return nil
	}
	return walk(data, count, hdr, nil, true, requireKeys)
}

// walk checks that data holds exactly count records. strict requires offset deltas
// 0..count-1; otherwise they need only increase and stay within lastOffsetDelta, as in a
// compacted batch. With out == nil it allocates nothing; otherwise it appends each decoded
// record to *out with offsets and timestamps made absolute from hdr. requireKeys refuses
// a null key, as a compacted topic must.
func walk(data []byte, count int32, hdr Batch, out *[]Record, strict, requireKeys bool) error {
	if int64(count)*minRecordSize > int64(len(data)) {
		return fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrInvalidRecord, count, len(data))
	}
	pos := 0
	prevDelta := int32(-1)
	for i := int32(0); i < count; i++ {
		end, offDelta, _, err := recordAt(data, pos, i, prevDelta, hdr, out, strict, requireKeys)
		if err != nil {
			return err
		}
		prevDelta, pos = offDelta, end
	}
	if pos != len(data) {
		return fmt.Errorf("%w: %d bytes after the last of %d records", ErrInvalidRecord, len(data)-pos, count)
	}
	return nil
}

// recordAt checks record i at data[pos:], which must lie wholly in data, and returns
// where it ends, its offset delta and its timestamp delta. prevDelta is the offset delta
// of the record before it (-1 for the first); the other arguments are walk's.
func recordAt(data []byte, pos int, i, prevDelta int32, hdr Batch, out *[]Record, strict, requireKeys bool) (end int, offDelta int32, tsDelta int64, err error) {
	lr := reader{buf: data, pos: pos}
	length, err := lr.varint()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("record %d: %w", i, err)
	}
	if length < 0 || int(length) > len(data)-lr.pos {
		return 0, 0, 0, fmt.Errorf("%w: record %d length %d overruns the batch", ErrInvalidRecord, i, length)
	}
	end = lr.pos + int(length)
	// The record's own fields are read from a slice that ends where its length
	// says, so a field that overruns the record is caught as such.
	r := reader{buf: data[:end], pos: lr.pos}
	if _, err := r.int8(); err != nil {
		return 0, 0, 0, fmt.Errorf("record %d attributes: %w", i, err)
	}
	if tsDelta, err = r.varlong(); err != nil {
		return 0, 0, 0, fmt.Errorf("record %d timestamp delta: %w", i, err)
	}
	if offDelta, err = r.varint(); err != nil {
		return 0, 0, 0, fmt.Errorf("record %d offset delta: %w", i, err)
	}
	if strict && offDelta != i || !strict && (offDelta <= prevDelta || offDelta > hdr.LastOffsetDelta()) {
		return 0, 0, 0, fmt.Errorf("%w: record %d has offset delta %d", ErrInvalidRecord, i, offDelta)
	}
	key, err := r.bytes(true, "key")
	if err != nil {
		return 0, 0, 0, fmt.Errorf("record %d: %w", i, err)
	}
	if requireKeys && key == nil {
		return 0, 0, 0, fmt.Errorf("%w: record %d has no key, which a compacted topic requires", ErrInvalidRecord, i)
	}
	value, err := r.bytes(true, "value")
	if err != nil {
		return 0, 0, 0, fmt.Errorf("record %d: %w", i, err)
	}
	nh, err := r.varint()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("record %d header count: %w", i, err)
	}
	if nh < 0 || int64(nh) > int64(end-r.pos)/minHeaderSize {
		return 0, 0, 0, fmt.Errorf("%w: record %d header count %d", ErrInvalidRecord, i, nh)
	}
	var headers []Header
	if out != nil && nh > 0 {
		headers = make([]Header, 0, nh)
	}
	for h := int32(0); h < nh; h++ {
		hk, err := r.bytes(false, "header key")
		if err != nil {
			return 0, 0, 0, fmt.Errorf("record %d header %d: %w", i, h, err)
		}
		hv, err := r.bytes(true, "header value")
		if err != nil {
			return 0, 0, 0, fmt.Errorf("record %d header %d: %w", i, h, err)
		}
		if out != nil {
			headers = append(headers, Header{Key: string(hk), Value: hv})
		}
	}
	if r.pos != end {
		return 0, 0, 0, fmt.Errorf("%w: record %d has %d bytes beyond its fields", ErrInvalidRecord, i, end-r.pos)
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
	return end, offDelta, tsDelta, nil
}

// Records decodes every record of the batch, decompressing if needed. maxDecompressed bounds
// the decompressed size (a decompression bomb yields ErrTooLarge, not an allocation).
func Records(b Batch, maxDecompressed int) ([]Record, error) {
	if err := CheckHeader(b); err != nil {
		return nil, err
	}
	count := b.RecordCount()
	if count < 0 {
		return nil, fmt.Errorf("%w: record count %d", ErrInvalidRecord, count)
	}
	data, err := Decompress(b.Codec(), b[HeaderSize:], maxDecompressed)
	if err != nil {
		return nil, err
	}
	if int64(count)*minRecordSize > int64(len(data)) {
		return nil, fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrInvalidRecord, count, len(data))
	}
	out := make([]Record, 0, count)
	if err := walk(data, count, b, &out, false, false); err != nil {
		return nil, err
	}
	return out, nil
}
