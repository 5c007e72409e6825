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
package batch

// STUB: the storage helper replaces the bodies below; signatures are the contract.

import "errors"

const HeaderSize = 61

// Errors returned by validation; the handler maps them to Kafka error codes
// (ErrCorrupt -> CORRUPT_MESSAGE, ErrTooLarge -> MESSAGE_TOO_LARGE,
// ErrUnsupportedMagic -> UNSUPPORTED_FOR_MESSAGE_FORMAT or CORRUPT_MESSAGE,
// ErrInvalidRecord -> INVALID_RECORD).
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

// Batch is one v2 record batch: exactly HeaderSize+records bytes, no trailing bytes.
type Batch []byte

func (b Batch) BaseOffset() int64               { panic("stub") }
func (b Batch) SetBaseOffset(o int64)           { panic("stub") } // outside the CRC
func (b Batch) BatchLength() int32              { panic("stub") }
func (b Batch) PartitionLeaderEpoch() int32     { panic("stub") }
func (b Batch) SetPartitionLeaderEpoch(e int32) { panic("stub") } // outside the CRC
func (b Batch) Magic() int8                     { panic("stub") }
func (b Batch) CRC() uint32                     { panic("stub") }
func (b Batch) Attributes() int16               { panic("stub") }
func (b Batch) Codec() Codec                    { panic("stub") }
func (b Batch) LogAppendTime() bool             { panic("stub") } // attributes bit 3
func (b Batch) Transactional() bool             { panic("stub") } // bit 4
func (b Batch) Control() bool                   { panic("stub") } // bit 5
func (b Batch) LastOffsetDelta() int32          { panic("stub") }
func (b Batch) LastOffset() int64               { panic("stub") }
func (b Batch) BaseTimestamp() int64            { panic("stub") }
func (b Batch) MaxTimestamp() int64             { panic("stub") }
func (b Batch) ProducerID() int64               { panic("stub") }
func (b Batch) ProducerEpoch() int16            { panic("stub") }
func (b Batch) BaseSequence() int32             { panic("stub") }
func (b Batch) RecordCount() int32              { panic("stub") }

// SetLogAppendTime sets the timestamp type bit and maxTimestamp (and, as Kafka does, leaves
// baseTimestamp), then recomputes the CRC.
func (b Batch) SetLogAppendTime(ts int64) { panic("stub") }

// ComputeCRC returns the CRC32C (Castagnoli, hardware accelerated) of bytes 21..end.
func (b Batch) ComputeCRC() uint32 { panic("stub") }

// Validate checks one batch as a broker must before appending it: length field matches
// len(b), magic 2, CRC32C, recordCount > 0 and lastOffsetDelta == recordCount-1, and for
// uncompressed batches walks every record (varint lengths, offset deltas 0..n-1 in order,
// header counts) without allocating. Compressed batches are checked at header level only.
func Validate(b []byte) error { panic("stub") }

// Next splits the first batch off a concatenation of batches (a produce request's record set
// or a log segment). It returns ErrCorrupt if the length field is out of range or the bytes are
// short (a torn tail), ErrTooLarge if the batch is larger than maxSize.
func Next(buf []byte, maxSize int) (b Batch, rest []byte, err error) { panic("stub") }

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

// Records decodes every record of the batch, decompressing if needed. maxDecompressed bounds
// the decompressed size (a decompression bomb yields ErrCorrupt, not an allocation).
func Records(b Batch, maxDecompressed int) ([]Record, error) { panic("stub") }
