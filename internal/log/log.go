// Package log is one partition's segmented, append-only log on disk: segment files,
// sparse offset and time indexes, roll, retention, log start offset, leader-epoch
// checkpoint and recovery after an unclean stop. It knows nothing of sockets,
// Kafka requests or replication.
package log

// STUB: the storage helper replaces the bodies below; signatures are the contract.

import (
	"errors"
	"io"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// ErrOffsetOutOfRange is returned by Read for an offset below the log start offset
// or above the log end offset.
var ErrOffsetOutOfRange = errors.New("offset out of range")

// Config is the per-log configuration (topic configs with broker defaults applied).
// Zero or negative retention values mean "unlimited" as in Kafka (-1).
type Config struct {
	SegmentBytes          int64         // segment.bytes
	SegmentMs             time.Duration // segment.ms: roll a segment older than this
	RetentionBytes        int64         // retention.bytes, -1 unlimited
	RetentionMs           time.Duration // retention.ms, negative = unlimited
	FlushIntervalMessages int64         // flush.messages: fsync after this many messages
	FlushInterval         time.Duration // flush.ms: fsync when this old (FlushIfDue)
	IndexIntervalBytes    int32         // index.interval.bytes
	SegmentIndexBytes     int32         // segment.index.bytes: max index file size, roll when full
	FileDeleteDelay       time.Duration // file.delete.delay.ms: deleted segments are renamed *.deleted then removed after this
}

// Log is one partition's log. All methods are safe for concurrent use; Append is
// serialised by the caller (the partition) but may run concurrently with Read.
type Log struct{}

// Open opens (creating if needed) the log in dir and recovers it: scans segments after
// the last clean shutdown marker, truncates a torn or corrupt tail, rebuilds missing or
// corrupt indexes.
func Open(fsys vfs.FS, dir string, cfg Config, now func() time.Time) (*Log, error) {
	panic("stub")
}

func (l *Log) Dir() string           { panic("stub") }
func (l *Log) SetConfig(cfg Config)  { panic("stub") }
func (l *Log) LogStartOffset() int64 { panic("stub") }
func (l *Log) LogEndOffset() int64   { panic("stub") }
func (l *Log) Size() int64           { panic("stub") } // bytes in all segments
func (l *Log) Close() error          { panic("stub") } // flushes, writes clean-shutdown marker
func (l *Log) Delete() error         { panic("stub") } // close and remove the directory

// Append appends one validated batch whose BaseOffset equals LogEndOffset(); rolls first if
// the active segment is full (bytes, index) or older than SegmentMs; updates indexes; fsyncs
// per FlushIntervalMessages.
func (l *Log) Append(b batch.Batch) error { panic("stub") }

// Range is a byte range of one segment file holding whole batches.
type Range struct {
	File vfs.File
	Pos  int64
	Len  int64
}

// Read returns the byte ranges that hold whole batches starting with the batch containing
// offset, stopping before any batch whose last offset is >= maxOffset (the high watermark)
// and at maxBytes, except that with minOne the first batch is returned whole even if it is
// larger than maxBytes. Offset == LogEndOffset returns no ranges.
func (l *Log) Read(offset, maxOffset int64, maxBytes int64, minOne bool) ([]Range, error) {
	panic("stub")
}

// WriteRanges copies ranges to w (pread into a pooled buffer).
func WriteRanges(w io.Writer, rs []Range) (int64, error) { panic("stub") }

// OffsetForTimestamp returns the first offset whose record timestamp is >= ts (scanning
// inside the batch found through the time index), and that record's timestamp; found is
// false if no record has such a timestamp.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	panic("stub")
}

// MaxTimestamp returns the offset and timestamp of the record with the largest timestamp
// (ListOffsets MAX_TIMESTAMP, KIP-734); offset -1 if the log is empty.
func (l *Log) MaxTimestamp() (offset, timestamp int64, err error) { panic("stub") }

// SetLogStartOffset advances the log start offset (DeleteRecords), persists it, and deletes
// segments wholly below it. Offsets above LogEndOffset are an error.
func (l *Log) SetLogStartOffset(offset int64) error { panic("stub") }

// EnforceRetention deletes segments by retention.ms and retention.bytes (never the active
// segment) and returns how many it deleted; the owner calls it periodically.
func (l *Log) EnforceRetention() (int, error) { panic("stub") }

// FlushIfDue fsyncs if unflushed data is older than FlushInterval.
func (l *Log) FlushIfDue() error { panic("stub") }
func (l *Log) Flush() error      { panic("stub") }

// TruncateTo removes every batch at or above offset (replication, and undoing a failed append).
func (l *Log) TruncateTo(offset int64) error { panic("stub") }

// Batches calls fn for the header of each batch from offset on (the batch bytes may be just
// the header: use only header getters), until fn returns false. Used to rebuild producer state.
func (l *Log) Batches(from int64, fn func(b batch.Batch) bool) error { panic("stub") }

// Leader epochs (KIP-101): the start offset of each leader epoch, persisted in
// leader-epoch-checkpoint.
func (l *Log) AssignEpoch(epoch int32, startOffset int64) error { panic("stub") }

// EndOffsetForEpoch answers OffsetForLeaderEpoch: the largest epoch <= epoch and the start
// offset of the next larger epoch (or LogEndOffset); (-1, -1) if no such epoch.
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) { panic("stub") }
