// Building v2 batches, for tests across the project and for internal topics
// (__consumer_offsets, __transaction_state) whose records the broker writes itself.
package batch

import (
	"encoding/binary"
	"fmt"
	"math"
)

// BuildOptions are the header fields of a batch to build.
type BuildOptions struct {
	BaseOffset           int64
	PartitionLeaderEpoch int32
	Codec                Codec
	// RawSnappy writes snappy as one raw block instead of the Java producer's xerial framing.
	RawSnappy bool
	// LogAppendTime sets the timestamp type bit; maxTimestamp is then LogAppendTimeMs
	// (if non-zero) or the largest record timestamp.
	LogAppendTime   bool
	LogAppendTimeMs int64
	Transactional   bool
	Control         bool
	Idempotent      bool // when false, producerId, producerEpoch and baseSequence are -1
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
}

// Build encodes records into one v2 batch. Offset deltas are the records' indexes
// (Record.Offset is ignored); baseTimestamp is the first record's timestamp and
// maxTimestamp the largest, as the Java producer writes them.
func Build(opts BuildOptions, records []Record) ([]byte, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("build batch: %w: no records", ErrInvalidRecord)
	}
	if opts.Transactional && !opts.Idempotent {
		return nil, fmt.Errorf("build batch: transactional batches need a producer id")
	}
	baseTs := records[0].Timestamp
	maxTs := baseTs
	var body []byte
	for i, r := range records {
		maxTs = max(maxTs, r.Timestamp)
		body = appendRecord(body, int32(i), r.Timestamp-baseTs, r)
	}
	comp, err := compress(opts.Codec, body, opts.RawSnappy)
	if err != nil {
		return nil, fmt.Errorf("build batch: %w", err)
	}
	size := HeaderSize + len(comp)
	if size > math.MaxInt32 {
		return nil, fmt.Errorf("build batch: %w: %d bytes", ErrTooLarge, size)
	}
	b := Batch(make([]byte, HeaderSize, size))
	b = append(b, comp...)
	attrs := uint16(opts.Codec) & codecMask
	if opts.LogAppendTime {
		attrs |= timestampTypeBit
		if opts.LogAppendTimeMs != 0 {
			maxTs = opts.LogAppendTimeMs
		}
	}
	if opts.Transactional {
		attrs |= transactionalBit
	}
	if opts.Control {
		attrs |= controlBit
	}
	pid, epoch, seq := int64(-1), int16(-1), int32(-1)
	if opts.Idempotent {
		pid, epoch, seq = opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence
	}
	be.PutUint64(b[offBaseOffset:], uint64(opts.BaseOffset))
	be.PutUint32(b[offBatchLength:], uint32(size-lengthFieldEnd))
	be.PutUint32(b[offLeaderEpoch:], uint32(opts.PartitionLeaderEpoch))
	b[offMagic] = 2
	be.PutUint16(b[offAttributes:], attrs)
	be.PutUint32(b[offLastOffsetDelta:], uint32(len(records)-1))
	be.PutUint64(b[offBaseTimestamp:], uint64(baseTs))
	be.PutUint64(b[offMaxTimestamp:], uint64(maxTs))
	be.PutUint64(b[offProducerID:], uint64(pid))
	be.PutUint16(b[offProducerEpoch:], uint16(epoch))
	be.PutUint32(b[offBaseSequence:], uint32(seq))
	be.PutUint32(b[offRecordCount:], uint32(len(records)))
	be.PutUint32(b[offCRC:], b.ComputeCRC())
	return b, nil
}

func appendRecord(dst []byte, offsetDelta int32, tsDelta int64, r Record) []byte {
	var body []byte
	body = append(body, 0) // attributes
	body = binary.AppendVarint(body, tsDelta)
	body = binary.AppendVarint(body, int64(offsetDelta))
	body = appendNullable(body, r.Key)
	body = appendNullable(body, r.Value)
	body = binary.AppendVarint(body, int64(len(r.Headers)))
	for _, h := range r.Headers {
		body = binary.AppendVarint(body, int64(len(h.Key)))
		body = append(body, h.Key...)
		body = appendNullable(body, h.Value)
	}
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// Control record types (the key's type field), Kafka's ControlRecordType.
const (
	ControlAbort  int16 = 0
	ControlCommit int16 = 1
)

// EndTxnMarker is the single record of a transaction marker control batch (build it with
// Control and Transactional set): key version 0 and type, value version 0 and the
// coordinator epoch.
func EndTxnMarker(commit bool, coordinatorEpoch int32, timestamp int64) Record {
	typ := ControlAbort
	if commit {
		typ = ControlCommit
	}
	key := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), uint16(typ))
	value := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(nil, 0), uint32(coordinatorEpoch))
	return Record{Timestamp: timestamp, Key: key, Value: value}
}

// ControlType returns the type of a control record from its key (ControlAbort,
// ControlCommit, or another type Kafka defines), or an error if the key is too short.
func ControlType(key []byte) (int16, error) {
	if len(key) < 4 {
		return 0, fmt.Errorf("%w: control record key of %d bytes", ErrCorrupt, len(key))
	}
	return int16(binary.BigEndian.Uint16(key[2:])), nil
}
