// Package batch is a view over the bytes of Kafka v2 record batches (magic 2).
// The broker validates and patches batches in place and never re-encodes records
// it does not need to touch.
//
// Layout of a v2 batch header (61 bytes, big endian):
//
//	 0 baseOffset           int64
//	 8 batchLength          int32  (bytes after this field)
//	12 partitionLeaderEpoch int32
//	16 magic                int8   (= 2)
//	17 crc                  uint32 (CRC32C of bytes 21..end)
//	21 attributes           int16
//	23 lastOffsetDelta      int32
//	27 baseTimestamp        int64
//	35 maxTimestamp         int64
//	43 producerId           int64
//	51 producerEpoch        int16
//	53 baseSequence         int32
//	57 recordCount          int32
//	61 records...
//
// The getters do no bounds checking beyond Go's own: call them only on a slice
// of at least HeaderSize bytes (Next and Validate guarantee that).
package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

const HeaderSize = 61

// Offsets of the header fields, named so that patching code reads like the layout.
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57

	// lengthFieldEnd is where the bytes counted by batchLength start.
	lengthFieldEnd = 12
)

// Attribute bits (Kafka's DefaultRecordBatch).
const (
	codecMask            = 0x07
	timestampTypeBit     = 0x08
	transactionalBit     = 0x10
	controlBit           = 0x20
	deleteHorizonFlagBit = 0x40
)

// Errors returned by validation; the handler maps them to Kafka error codes
// (ErrCorrupt -> CORRUPT_MESSAGE: the CRC or the codec refuses the bytes; ErrTooLarge ->
// MESSAGE_TOO_LARGE: the batch, or its records decompressed, exceed a bound;
// ErrUnsupportedMagic -> UNSUPPORTED_FOR_MESSAGE_FORMAT or CORRUPT_MESSAGE;
// ErrInvalidRecord -> INVALID_RECORD: the records disagree with the format or the header).
var (
	ErrCorrupt          = errors.New("corrupt record batch")
	ErrTooLarge         = errors.New("record batch too large")
	ErrUnsupportedMagic = errors.New("unsupported record batch magic")
	ErrInvalidRecord    = errors.New("invalid record")
)

// Codec is the compression codec in attributes bits 0-2.
type Codec int8

const (
	None Codec = iota
	Gzip
	Snappy
	LZ4
	Zstd
)

func (c Codec) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Snappy:
		return "snappy"
	case LZ4:
		return "lz4"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// castagnoli is immutable after init; crc32.MakeTable picks the SSE4.2 path on amd64.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Batch is one v2 record batch: exactly HeaderSize+records bytes, no trailing bytes.
type Batch []byte

var be = binary.BigEndian

func (b Batch) BaseOffset() int64               { return int64(be.Uint64(b[offBaseOffset:])) }
func (b Batch) SetBaseOffset(o int64)           { be.PutUint64(b[offBaseOffset:], uint64(o)) } // outside the CRC
func (b Batch) BatchLength() int32              { return int32(be.Uint32(b[offBatchLength:])) }
func (b Batch) PartitionLeaderEpoch() int32     { return int32(be.Uint32(b[offLeaderEpoch:])) }
func (b Batch) SetPartitionLeaderEpoch(e int32) { be.PutUint32(b[offLeaderEpoch:], uint32(e)) } // outside the CRC
func (b Batch) Magic() int8                     { return int8(b[offMagic]) }
func (b Batch) CRC() uint32                     { return be.Uint32(b[offCRC:]) }
func (b Batch) Attributes() int16               { return int16(be.Uint16(b[offAttributes:])) }
func (b Batch) Codec() Codec                    { return Codec(b.Attributes() & codecMask) }
func (b Batch) LogAppendTime() bool             { return b.Attributes()&timestampTypeBit != 0 } // attributes bit 3
func (b Batch) Transactional() bool             { return b.Attributes()&transactionalBit != 0 } // bit 4
func (b Batch) Control() bool                   { return b.Attributes()&controlBit != 0 }       // bit 5
func (b Batch) LastOffsetDelta() int32          { return int32(be.Uint32(b[offLastOffsetDelta:])) }
func (b Batch) LastOffset() int64               { return b.BaseOffset() + int64(b.LastOffsetDelta()) }
func (b Batch) BaseTimestamp() int64            { return int64(be.Uint64(b[offBaseTimestamp:])) }
func (b Batch) MaxTimestamp() int64             { return int64(be.Uint64(b[offMaxTimestamp:])) }
func (b Batch) ProducerID() int64               { return int64(be.Uint64(b[offProducerID:])) }
func (b Batch) ProducerEpoch() int16            { return int16(be.Uint16(b[offProducerEpoch:])) }
func (b Batch) BaseSequence() int32             { return int32(be.Uint32(b[offBaseSequence:])) }
func (b Batch) RecordCount() int32              { return int32(be.Uint32(b[offRecordCount:])) }

// Size is the whole batch's size in bytes according to its length field.
func (b Batch) Size() int { return lengthFieldEnd + int(b.BatchLength()) }

// LastSequence is the sequence number of the batch's last record, wrapping at
// MaxInt32 as Kafka's DefaultRecordBatch.incrementSequence does.
func (b Batch) LastSequence() int32 {
	seq := b.BaseSequence()
	if seq < 0 {
		return seq
	}
	delta := b.LastOffsetDelta()
	if seq > int32(^uint32(0)>>1)-delta {
		return delta - (int32(^uint32(0)>>1) - seq) - 1
	}
	return seq + delta
}

// SetLogAppendTime sets the timestamp type bit and maxTimestamp (and, as Kafka does, leaves
// baseTimestamp), then recomputes the CRC.
func (b Batch) SetLogAppendTime(ts int64) {
	attrs := be.Uint16(b[offAttributes:]) | timestampTypeBit
	be.PutUint16(b[offAttributes:], attrs)
	be.PutUint64(b[offMaxTimestamp:], uint64(ts))
	be.PutUint32(b[offCRC:], b.ComputeCRC())
}

// SetMaxTimestamp overwrites maxTimestamp (CreateTime batches whose header disagrees with
// their records, as Kafka's LogValidator fixes them) and recomputes the CRC.
func (b Batch) SetMaxTimestamp(ts int64) {
	be.PutUint64(b[offMaxTimestamp:], uint64(ts))
	be.PutUint32(b[offCRC:], b.ComputeCRC())
}

// ComputeCRC returns the CRC32C (Castagnoli, hardware accelerated) of bytes 21..end.
func (b Batch) ComputeCRC() uint32 { return crc32.Checksum(b[offAttributes:], castagnoli) }

// CheckHeader checks what can be checked from the header alone against len(b): the
// length field, magic and CRC. Segment recovery uses it; it never allocates on success.
func CheckHeader(b []byte) error {
	if len(b) < HeaderSize {
		return fmt.Errorf("%w: %d bytes, shorter than the %d byte header", ErrCorrupt, len(b), HeaderSize)
	}
	bb := Batch(b)
	if n := bb.BatchLength(); int64(n)+lengthFieldEnd != int64(len(b)) {
		return fmt.Errorf("%w: length field %d does not match %d bytes", ErrCorrupt, n, len(b))
	}
	if m := bb.Magic(); m != 2 {
		return fmt.Errorf("%w: magic %d", ErrUnsupportedMagic, m)
	}
	if got, want := bb.ComputeCRC(), bb.CRC(); got != want {
		return fmt.Errorf("%w: crc %08x, header says %08x", ErrCorrupt, got, want)
	}
	return nil
}

// Validate checks the framing of one batch: length field matches len(b), magic 2,
// CRC32C, recordCount > 0 and lastOffsetDelta == recordCount-1, and for uncompressed
// batches walks every record (varint lengths, offset deltas 0..n-1 in order, header
// counts) without allocating. Compressed batches are checked at header level only: the
// produce path uses ValidateFull, which also walks them.
func Validate(b []byte) error {
	if err := checkBatch(b); err != nil {
		return err
	}
	bb := Batch(b)
	if bb.Codec() != None {
		return nil
	}
	return walkRecords(b[HeaderSize:], bb.RecordCount(), bb, false)
}

// checkBatch is Validate short of walking the records.
func checkBatch(b []byte) error {
	if err := CheckHeader(b); err != nil {
		return err
	}
	bb := Batch(b)
	n := bb.RecordCount()
	if n <= 0 {
		return fmt.Errorf("%w: record count %d", ErrInvalidRecord, n)
	}
	if d := bb.LastOffsetDelta(); d != n-1 {
		return fmt.Errorf("%w: last offset delta %d with %d records", ErrInvalidRecord, d, n)
	}
	if c := bb.Codec(); c > Zstd {
		return fmt.Errorf("%w: unknown compression codec %d", ErrCorrupt, c)
	}
	return nil
}

// Next splits the first batch off a concatenation of batches (a produce request's record set
// or a log segment). It returns ErrCorrupt if the length field is out of range or the bytes are
// short (a torn tail), ErrTooLarge if the batch is larger than maxSize.
func Next(buf []byte, maxSize int) (b Batch, rest []byte, err error) {
	if len(buf) < HeaderSize {
		return nil, buf, fmt.Errorf("%w: %d bytes left, shorter than a batch header", ErrCorrupt, len(buf))
	}
	n := int64(int32(be.Uint32(buf[offBatchLength:])))
	size := n + lengthFieldEnd
	if size < HeaderSize {
		return nil, buf, fmt.Errorf("%w: length field %d is shorter than a batch header", ErrCorrupt, n)
	}
	if size > int64(maxSize) {
		return nil, buf, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, maxSize)
	}
	if size > int64(len(buf)) {
		return nil, buf, fmt.Errorf("%w: length field says %d bytes, only %d present", ErrCorrupt, size, len(buf))
	}
	return Batch(buf[:size:size]), buf[size:], nil
}
