package metadata

// The binary layout of records and batches.
//
// A batch is one entry of the metadata log (one quorum entry): one change, applied whole
// or not at all.
//
//	batch   := magic(1 byte, 0xB1) count(uvarint, 1..MaxBatchRecords) record{count}
//	record  := length(uvarint, 3..maxRecordBytes) type(uint16 big endian) version(1 byte) fields
//
// A record's fields take exactly length-3 bytes; its fields, in the order of the struct
// in record.go, are written as:
//
//	int8, bool        1 byte (a bool is 0 or 1, nothing else)
//	int16/32/64       zigzag varint (Go's binary.AppendVarint), range-checked
//	port              uvarint, 1..65535
//	uuid              16 bytes
//	string            uvarint length, then that many bytes of UTF-8; each field has a cap
//	nullable string   uvarint length+1 (0 is null), then the bytes
//	[]int32, []uuid   uvarint count (capped), then the elements
//	PartitionFields   1 byte; only the fields it names follow, in struct order
//
// Every count and length is checked against its cap and against the bytes left before
// anything is allocated, so a decoder never allocates more than its input's size (and
// its caps); bad input is an error, never a panic. The magic byte cannot begin a JSON
// document, which is how the local store tells this format from its old one.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/google/uuid"
)

const (
	batchMagic = 0xB1
	// MaxBatchRecords bounds the records of one change (Kafka's controller refuses a
	// request that takes more than 10,000 records, MAX_RECORDS_PER_USER_OP).
	MaxBatchRecords = 10000
	maxRecordBytes  = 2 << 20
	// Field caps.
	maxShortString = 255     // names, keys, hosts, racks, cluster IDs
	maxConfigValue = 1 << 20 // a config value
	maxReplicas    = 10000   // a replica list (six of them fit a Partition's uint16 ends)
	maxListeners   = 64
	maxLogDirs     = 256
)

// ErrCorrupt is wrapped by every error about bytes that do not decode.
var ErrCorrupt = errors.New("corrupt metadata")

// ErrTooLarge is wrapped by the error of a change that cannot be encoded within the
// format's caps (a config value over 1 MiB, more than MaxBatchRecords records, ...).
var ErrTooLarge = errors.New("metadata change too large")

// UnsupportedError is a record of a type or version this Vltava cannot read: metadata
// written by a newer version. It cannot be skipped without diverging from the nodes
// that understand it.
type UnsupportedError struct {
	Type    RecordType
	Version uint8
}

func (e *UnsupportedError) Error() string {
	if newRecord(e.Type) == nil {
		return fmt.Sprintf("unknown metadata record type %d (written by a newer version?)", uint16(e.Type))
	}
	return fmt.Sprintf("metadata record %s version %d is newer than this version reads (%d)", e.Type, e.Version, currentVersion(e.Type))
}

// AppendBatch appends the encoding of rs as one batch to dst.
func AppendBatch(dst []byte, rs []Record) ([]byte, error) {
	if len(rs) == 0 || len(rs) > MaxBatchRecords {
		return nil, fmt.Errorf("%w: a batch of %d records (1 to %d)", ErrTooLarge, len(rs), MaxBatchRecords)
	}
	dst = append(dst, batchMagic)
	dst = binary.AppendUvarint(dst, uint64(len(rs)))
	return appendRecords(dst, rs)
}

func appendRecords(dst []byte, rs []Record) ([]byte, error) {
	var (
		w   writer
		err error
	)
	for i, r := range rs {
		if isNil(r) {
			return nil, fmt.Errorf("%w: record %d is nil", ErrInvalid, i)
		}
		if dst, err = appendRecord(dst, &w, r); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// appendRecord appends r, length-prefixed, to dst; w is scratch space, reused.
func appendRecord(dst []byte, w *writer, r Record) ([]byte, error) {
	w.b, w.err = w.b[:0], nil
	w.b = binary.BigEndian.AppendUint16(w.b, uint16(r.Type()))
	w.b = append(w.b, currentVersion(r.Type()))
	r.encode(w)
	if w.err != nil {
		return nil, fmt.Errorf("%w: %s record: %w", ErrTooLarge, r.Type(), w.err)
	}
	if len(w.b) > maxRecordBytes {
		return nil, fmt.Errorf("%w: %s record of %d bytes (at most %d)", ErrTooLarge, r.Type(), len(w.b), maxRecordBytes)
	}
	dst = binary.AppendUvarint(dst, uint64(len(w.b)))
	return append(dst, w.b...), nil
}

// DecodeBatch decodes one batch. The error wraps ErrCorrupt, or is an *UnsupportedError.
func DecodeBatch(b []byte) ([]Record, error) {
	if len(b) == 0 || b[0] != batchMagic {
		return nil, fmt.Errorf("%w: not a batch of metadata records", ErrCorrupt)
	}
	r := reader{b: b[1:]}
	n := r.count(MaxBatchRecords, 4, "records in a batch")
	if r.err == nil && n == 0 {
		r.fail("an empty batch")
	}
	rs, err := r.records(n)
	if err != nil {
		return nil, err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last record of a batch", ErrCorrupt, len(r.b))
	}
	return rs, nil
}

// records decodes n length-prefixed records.
func (r *reader) records(n int) ([]Record, error) {
	if r.err != nil {
		return nil, r.err
	}
	rs := make([]Record, 0, n)
	for range n {
		rec, err := r.record()
		if err != nil {
			return nil, err
		}
		rs = append(rs, rec)
	}
	return rs, nil
}

// record decodes one length-prefixed record.
func (r *reader) record() (Record, error) {
	l := r.count(maxRecordBytes, 1, "record length")
	if r.err == nil && l < 3 {
		r.fail("a record of %d bytes", l)
	}
	if r.err != nil {
		return nil, r.err
	}
	body := r.b[:l]
	r.b = r.b[l:]
	return r.decodeRecord(body)
}

// decodeRecord decodes one record's type, version and fields, which must fill b. A
// PartitionRecord is decoded into r.scratch, if set, reusing its slices.
func (r *reader) decodeRecord(b []byte) (Record, error) {
	t := RecordType(binary.BigEndian.Uint16(b))
	v := b[2]
	var rec Record
	if t == TypePartition && r.scratch != nil {
		rec = r.scratch
	} else {
		rec = newRecord(t)
	}
	if rec == nil || v > currentVersion(t) {
		return nil, &UnsupportedError{Type: t, Version: v}
	}
	if r.sub == nil {
		r.sub = &reader{}
	}
	f := r.sub
	*f = reader{b: b[3:]}
	rec.decode(f, v)
	if f.err == nil && len(f.b) != 0 {
		f.fail("%d bytes after the fields", len(f.b))
	}
	if f.err != nil {
		return nil, fmt.Errorf("%s record: %w", t, f.err)
	}
	return rec, nil
}

// writer appends fields; the first field over its cap is kept in err.
type writer struct {
	b   []byte
	err error
}

func (w *writer) i8(v int8) { w.b = append(w.b, byte(v)) }
func (w *writer) boolean(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}
func (w *writer) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) id(v uuid.UUID)   { w.b = append(w.b, v[:]...) }

func (w *writer) str(s string, max int, what string) {
	if len(s) > max && w.err == nil {
		w.err = fmt.Errorf("%s of %d bytes (at most %d)", what, len(s), max)
	}
	w.uvarint(uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *writer) nstr(s *string, max int, what string) {
	if s == nil {
		w.uvarint(0)
		return
	}
	if len(*s) > max && w.err == nil {
		w.err = fmt.Errorf("%s of %d bytes (at most %d)", what, len(*s), max)
	}
	w.uvarint(uint64(len(*s)) + 1)
	w.b = append(w.b, *s...)
}

func (w *writer) int32s(v []int32, what string) {
	if len(v) > maxReplicas && w.err == nil {
		w.err = fmt.Errorf("%s of %d entries (at most %d)", what, len(v), maxReplicas)
	}
	w.uvarint(uint64(len(v)))
	for _, x := range v {
		w.varint(int64(x))
	}
}

func (w *writer) ids(v []uuid.UUID, max int, what string) {
	if len(v) > max && w.err == nil {
		w.err = fmt.Errorf("%s of %d entries (at most %d)", what, len(v), max)
	}
	w.uvarint(uint64(len(v)))
	for _, x := range v {
		w.id(x)
	}
}

// reader consumes fields from b; after the first error every read returns zero values
// and err keeps that error.
type reader struct {
	b   []byte
	err error
	// scratch, if not nil, receives every PartitionRecord decoded (a snapshot's are
	// applied one by one, so the next one can reuse its slices).
	scratch *PartitionRecord
	sub     *reader // reads the fields of a record, reused
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
}

func (r *reader) byte1(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.fail("truncated at %s", what)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) i8(what string) int8 { return int8(r.byte1(what)) }

func (r *reader) boolean(what string) bool {
	switch v := r.byte1(what); v {
	case 0:
		return false
	case 1:
		return true
	default:
		r.fail("%s is %d, not a bool", what, v)
		return false
	}
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint at %s", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(min, max int64, what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint at %s", what)
		return 0
	}
	r.b = r.b[n:]
	if v < min || v > max {
		r.fail("%s %d out of range", what, v)
		return 0
	}
	return v
}

func (r *reader) i16(what string) int16 {
	return int16(r.varint(math.MinInt16, math.MaxInt16, what))
}
func (r *reader) i32(what string) int32 {
	return int32(r.varint(math.MinInt32, math.MaxInt32, what))
}
func (r *reader) i64(what string) int64 { return r.varint(math.MinInt64, math.MaxInt64, what) }

func (r *reader) id(what string) uuid.UUID {
	var u uuid.UUID
	if r.err != nil {
		return u
	}
	if len(r.b) < 16 {
		r.fail("truncated at %s", what)
		return u
	}
	copy(u[:], r.b)
	r.b = r.b[16:]
	return u
}

// count reads a count of at most max items of at least each bytes each, checked against
// the bytes left so that what it sizes is never larger than the input.
func (r *reader) count(max, each int, what string) int {
	v := r.uvarint(what)
	if r.err != nil {
		return 0
	}
	if v > uint64(max) {
		r.fail("%s %d over the limit of %d", what, v, max)
		return 0
	}
	if v*uint64(each) > uint64(len(r.b)) {
		r.fail("%s %d with %d bytes left", what, v, len(r.b))
		return 0
	}
	return int(v)
}

func (r *reader) take(n int, what string) string {
	s := string(r.b[:n])
	r.b = r.b[n:]
	if !utf8.ValidString(s) {
		r.fail("%s is not UTF-8", what)
		return ""
	}
	return s
}

func (r *reader) str(max int, what string) string {
	n := r.count(max, 1, what+" length")
	if r.err != nil {
		return ""
	}
	return r.take(n, what)
}

func (r *reader) nstr(max int, what string) *string {
	v := r.uvarint(what + " length")
	if r.err != nil || v == 0 {
		return nil
	}
	if n := v - 1; n > uint64(max) || n > uint64(len(r.b)) {
		r.fail("%s of %d bytes with %d left (at most %d)", what, n, len(r.b), max)
		return nil
	}
	s := r.take(int(v-1), what)
	return &s
}

// int32s reads a list of int32 into dst's array if it has room (dst[:0] when empty).
func (r *reader) int32s(dst []int32, what string) []int32 {
	n := r.count(maxReplicas, 1, what)
	if r.err != nil || n == 0 {
		return dst[:0]
	}
	dst = slices.Grow(dst[:0], n)
	for range n {
		dst = append(dst, r.i32(what))
	}
	return dst
}

func (r *reader) ids(max int, what string) []uuid.UUID {
	n := r.count(max, 16, what)
	if r.err != nil || n == 0 {
		return nil
	}
	v := make([]uuid.UUID, n)
	for i := range v {
		v[i] = r.id(what)
	}
	return v
}

// The fields of each record type, version 0.

func (x *ClusterIDRecord) encode(w *writer) { w.str(x.ID, maxShortString, "cluster ID") }
func (x *ClusterIDRecord) decode(r *reader, _ uint8) {
	x.ID = r.str(maxShortString, "cluster ID")
}

func (x *FeatureLevelRecord) encode(w *writer) {
	w.str(x.Name, maxShortString, "feature name")
	w.varint(int64(x.Level))
}
func (x *FeatureLevelRecord) decode(r *reader, _ uint8) {
	x.Name = r.str(maxShortString, "feature name")
	x.Level = r.i16("feature level")
}

func (x *RegisterBrokerRecord) encode(w *writer) {
	w.varint(int64(x.BrokerID))
	w.id(x.IncarnationID)
	w.varint(x.BrokerEpoch)
	if len(x.Listeners) > maxListeners && w.err == nil {
		w.err = fmt.Errorf("%d listeners (at most %d)", len(x.Listeners), maxListeners)
	}
	w.uvarint(uint64(len(x.Listeners)))
	for _, l := range x.Listeners {
		w.str(l.Name, maxShortString, "listener name")
		w.str(l.Host, maxShortString, "listener host")
		w.uvarint(uint64(l.Port))
		w.varint(int64(l.SecurityProtocol))
	}
	w.str(x.Rack, maxShortString, "rack")
	w.boolean(x.Fenced)
	w.boolean(x.InControlledShutdown)
	w.ids(x.LogDirs, maxLogDirs, "log dirs")
}
func (x *RegisterBrokerRecord) decode(r *reader, _ uint8) {
	x.BrokerID = r.i32("broker ID")
	x.IncarnationID = r.id("incarnation ID")
	x.BrokerEpoch = r.i64("broker epoch")
	n := r.count(maxListeners, 4, "listeners")
	if n > 0 {
		x.Listeners = make([]Listener, n)
	}
	for i := range x.Listeners {
		l := &x.Listeners[i]
		l.Name = r.str(maxShortString, "listener name")
		l.Host = r.str(maxShortString, "listener host")
		l.Port = uint16(r.varintU(1, math.MaxUint16, "listener port"))
		l.SecurityProtocol = r.i16("security protocol")
	}
	x.Rack = r.str(maxShortString, "rack")
	x.Fenced = r.boolean("fenced")
	x.InControlledShutdown = r.boolean("in controlled shutdown")
	x.LogDirs = r.ids(maxLogDirs, "log dirs")
}

// varintU reads a uvarint in [min, max].
func (r *reader) varintU(min, max uint64, what string) uint64 {
	v := r.uvarint(what)
	if r.err == nil && (v < min || v > max) {
		r.fail("%s %d out of range", what, v)
		return 0
	}
	return v
}

func (x *BrokerRegistrationChangeRecord) encode(w *writer) {
	w.varint(int64(x.BrokerID))
	w.varint(x.BrokerEpoch)
	w.i8(x.Fenced)
	w.boolean(x.InControlledShutdown)
}
func (x *BrokerRegistrationChangeRecord) decode(r *reader, _ uint8) {
	x.BrokerID = r.i32("broker ID")
	x.BrokerEpoch = r.i64("broker epoch")
	x.Fenced = r.i8("fencing change")
	x.InControlledShutdown = r.boolean("in controlled shutdown")
}

func (x *UnregisterBrokerRecord) encode(w *writer) {
	w.varint(int64(x.BrokerID))
	w.varint(x.BrokerEpoch)
}
func (x *UnregisterBrokerRecord) decode(r *reader, _ uint8) {
	x.BrokerID = r.i32("broker ID")
	x.BrokerEpoch = r.i64("broker epoch")
}

func (x *TopicRecord) encode(w *writer) {
	w.str(x.Name, maxShortString, "topic name")
	w.id(x.ID)
}
func (x *TopicRecord) decode(r *reader, _ uint8) {
	x.Name = r.str(maxShortString, "topic name")
	x.ID = r.id("topic ID")
}

func (x *PartitionRecord) encode(w *writer) {
	w.id(x.TopicID)
	w.varint(int64(x.Partition))
	w.int32s(x.Replicas, "replicas")
	w.int32s(x.ISR, "ISR")
	w.int32s(x.RemovingReplicas, "removing replicas")
	w.int32s(x.AddingReplicas, "adding replicas")
	w.varint(int64(x.Leader))
	w.varint(int64(x.LeaderEpoch))
	w.varint(int64(x.PartitionEpoch))
	w.int32s(x.ELR, "eligible leader replicas")
	w.int32s(x.LastKnownELR, "last known ELR")
}
func (x *PartitionRecord) decode(r *reader, _ uint8) {
	x.TopicID = r.id("topic ID")
	x.Partition = r.i32("partition")
	x.Replicas = r.int32s(x.Replicas, "replicas")
	x.ISR = r.int32s(x.ISR, "ISR")
	x.RemovingReplicas = r.int32s(x.RemovingReplicas, "removing replicas")
	x.AddingReplicas = r.int32s(x.AddingReplicas, "adding replicas")
	x.Leader = r.i32("leader")
	x.LeaderEpoch = r.i32("leader epoch")
	x.PartitionEpoch = r.i32("partition epoch")
	x.ELR = r.int32s(x.ELR, "eligible leader replicas")
	x.LastKnownELR = r.int32s(x.LastKnownELR, "last known ELR")
}

func (x *PartitionChangeRecord) encode(w *writer) {
	w.id(x.TopicID)
	w.varint(int64(x.Partition))
	w.varint(int64(x.PartitionEpoch))
	if x.Set&^allPartitionFields != 0 && w.err == nil {
		w.err = fmt.Errorf("unknown changed fields %#x", uint8(x.Set))
	}
	w.b = append(w.b, byte(x.Set))
	if x.Set&SetReplicas != 0 {
		w.int32s(x.Replicas, "replicas")
	}
	if x.Set&SetISR != 0 {
		w.int32s(x.ISR, "ISR")
	}
	if x.Set&SetLeader != 0 {
		w.varint(int64(x.Leader))
	}
	if x.Set&SetRemovingReplicas != 0 {
		w.int32s(x.RemovingReplicas, "removing replicas")
	}
	if x.Set&SetAddingReplicas != 0 {
		w.int32s(x.AddingReplicas, "adding replicas")
	}
	if x.Set&SetELR != 0 {
		w.int32s(x.ELR, "eligible leader replicas")
	}
	if x.Set&SetLastKnownELR != 0 {
		w.int32s(x.LastKnownELR, "last known ELR")
	}
}
func (x *PartitionChangeRecord) decode(r *reader, _ uint8) {
	x.TopicID = r.id("topic ID")
	x.Partition = r.i32("partition")
	x.PartitionEpoch = r.i32("partition epoch")
	x.Set = PartitionFields(r.byte1("changed fields"))
	if x.Set&^allPartitionFields != 0 {
		r.fail("unknown changed fields %#x", uint8(x.Set))
		return
	}
	if x.Set&SetReplicas != 0 {
		x.Replicas = r.int32s(nil, "replicas")
	}
	if x.Set&SetISR != 0 {
		x.ISR = r.int32s(nil, "ISR")
	}
	if x.Set&SetLeader != 0 {
		x.Leader = r.i32("leader")
	}
	if x.Set&SetRemovingReplicas != 0 {
		x.RemovingReplicas = r.int32s(nil, "removing replicas")
	}
	if x.Set&SetAddingReplicas != 0 {
		x.AddingReplicas = r.int32s(nil, "adding replicas")
	}
	if x.Set&SetELR != 0 {
		x.ELR = r.int32s(nil, "eligible leader replicas")
	}
	if x.Set&SetLastKnownELR != 0 {
		x.LastKnownELR = r.int32s(nil, "last known ELR")
	}
}

func (x *RemoveTopicRecord) encode(w *writer)          { w.id(x.ID) }
func (x *RemoveTopicRecord) decode(r *reader, _ uint8) { x.ID = r.id("topic ID") }

func (x *ConfigRecord) encode(w *writer) {
	w.i8(x.ResourceType)
	w.str(x.ResourceName, maxShortString, "config resource name")
	w.str(x.Name, maxShortString, "config name")
	w.nstr(x.Value, maxConfigValue, "config value")
}
func (x *ConfigRecord) decode(r *reader, _ uint8) {
	x.ResourceType = r.i8("resource type")
	x.ResourceName = r.str(maxShortString, "config resource name")
	x.Name = r.str(maxShortString, "config name")
	x.Value = r.nstr(maxConfigValue, "config value")
}

func (x *ProducerIDsRecord) encode(w *writer) {
	w.varint(int64(x.BrokerID))
	w.varint(x.BrokerEpoch)
	w.varint(x.FirstID)
	w.varint(int64(x.Size))
}
func (x *ProducerIDsRecord) decode(r *reader, _ uint8) {
	x.BrokerID = r.i32("broker ID")
	x.BrokerEpoch = r.i64("broker epoch")
	x.FirstID = r.i64("first producer ID")
	x.Size = r.i32("block size")
}

func (*NoOpRecord) encode(*writer)        {}
func (*NoOpRecord) decode(*reader, uint8) {}
