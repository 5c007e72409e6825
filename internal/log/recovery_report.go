// What recovery did, for the operator: Open fills a RecoveryReport as it goes and logs it
// once it is done (or has refused to go on), so nothing is truncated, dropped or moved
// without a line saying what, where and how much.
package log

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Options are what the log's owner gives OpenWith besides the topic's configuration.
type Options struct {
	// Now is the clock; time.Now if nil.
	Now func() time.Time
	// Logger receives the recovery report; slog.Default() if nil.
	Logger *slog.Logger
	// TruncateBelowRecoveryPoint is Vltava's vltava.log.recovery.truncate.below.recovery.point:
	// let recovery cut the log below what was synced before the stop (the recovery point,
	// or the log end offset of a clean shutdown) when it finds the data there corrupt or
	// missing. Without it Open refuses with ErrCorruptBelowRecoveryPoint and leaves the
	// files as they are; with it the cut bytes and dropped segments are moved aside
	// (*.aside), not deleted.
	TruncateBelowRecoveryPoint bool
	// Timings receive the durations of the log's writes and flushes (the broker's
	// metrics); nil funcs are skipped.
	Timings Timings
}

// Timings are callbacks that receive how long the log's I/O took. They run on the
// appending or flushing goroutine with the log's locks held, so they must be quick
// (an atomic add).
type Timings struct {
	// Append is one write of batches into the active segment (Append, AppendDeferred or
	// AppendBatches; a roll it needed included, no fsync).
	Append func(time.Duration)
	// Flush is one flush: the fsyncs of the segments and directory it covered.
	Flush func(time.Duration)
}

// TruncateBelowRecoveryPointKey is the broker key that sets Options.TruncateBelowRecoveryPoint,
// named in the error that asks the operator for it.
const TruncateBelowRecoveryPointKey = "vltava.log.recovery.truncate.below.recovery.point"

// ErrCorruptBelowRecoveryPoint is returned by Open when recovery would have to cut the
// log below what was synced before the stop: records the producer was told are durable.
var ErrCorruptBelowRecoveryPoint = errors.New("corrupt or missing data below the recovery point")

// RecoveryReport is what Open found and did to a log's files.
type RecoveryReport struct {
	Dir string
	// CleanShutdown: a clean-shutdown marker was found and every segment matched it, so no
	// segment had to be scanned. Marker is "" then; else "none" after an unclean stop, or
	// why the marker was not trusted, or where it did not match the files (those segments
	// were scanned).
	CleanShutdown bool
	Marker        string
	// RecoveryPoint is the persisted recovery point; SyncedEnd the offset below which the
	// log was known synced (the recovery point, or the marker's log end offset).
	RecoveryPoint, SyncedEnd     int64
	LogStartOffset, LogEndOffset int64 // after recovery

	Segments        int   // segments opened
	SegmentsScanned int   // read batch by batch (CRC, offsets, epochs checked)
	BytesScanned    int64 // their bytes
	IndexesRebuilt  int   // synced segments whose index files failed their checks

	Truncated     []Truncation     // segments cut at their first invalid batch
	Missing       string           // synced offsets found missing (accepted with TruncateBelowRecoveryPoint)
	Dropped       []DroppedSegment // whole segments removed or moved aside
	SwapsFinished []int64          // compaction swaps a crash interrupted, finished
	Removed       []string         // leftover files removed (*.deleted, *.tmp, *.cleaned, orphan index files, stray *.swap)
	EpochsDropped int              // leader-epoch entries past the log end offset
	// EpochCache says why the leader-epoch cache was rebuilt from the batches (its
	// checkpoint missing or malformed), "" if it was read.
	EpochCache string
}

// Truncation is one segment cut by recovery.
type Truncation struct {
	Segment  int64  // base offset
	Position int64  // bytes kept
	Offset   int64  // the segment's end offset after the cut
	Bytes    int64  // bytes cut
	Reason   string // why the batch at Position is not valid
	// Synced: the cut bytes were below the synced end (only with TruncateBelowRecoveryPoint);
	// SavedAs names the file they were copied to first.
	Synced  bool
	SavedAs string
}

// DroppedSegment is one whole segment recovery removed.
type DroppedSegment struct {
	Base   int64
	Bytes  int64
	Reason string
	// MovedTo is the segment's new name when it held synced data (or, with
	// TruncateBelowRecoveryPoint, data recovery could not place); "" means deleted.
	MovedTo string
}

// Lost reports whether recovery removed records (truncated or dropped segments).
func (r *RecoveryReport) Lost() bool {
	return len(r.Truncated) > 0 || len(r.Dropped) > 0 || r.Missing != ""
}

// changed reports whether recovery did anything an operator should hear about.
func (r *RecoveryReport) changed() bool {
	return r.Lost() || r.SegmentsScanned > 0 || r.IndexesRebuilt > 0 || len(r.SwapsFinished) > 0 ||
		len(r.Removed) > 0 || r.EpochsDropped > 0 || r.EpochCache != "" || (r.Marker != "" && r.Marker != "none")
}

// attrs renders the report as log attributes; lists are spelled out, one item per entry.
// done: recovery finished, so the log's offsets are known.
func (r *RecoveryReport) attrs(done bool) []any {
	a := []any{"dir", r.Dir, "clean_shutdown", r.CleanShutdown}
	if r.Marker != "" {
		a = append(a, "marker", r.Marker)
	}
	a = append(a, "recovery_point", r.RecoveryPoint, "synced_end", r.SyncedEnd)
	if done {
		a = append(a, "log_start_offset", r.LogStartOffset, "log_end_offset", r.LogEndOffset)
	}
	a = append(a, "segments", r.Segments, "segments_scanned", r.SegmentsScanned, "bytes_scanned", r.BytesScanned)
	if r.IndexesRebuilt > 0 {
		a = append(a, "indexes_rebuilt", r.IndexesRebuilt)
	}
	if len(r.Truncated) > 0 {
		var parts []string
		for _, t := range r.Truncated {
			s := fmt.Sprintf("segment %d cut at byte %d (log end %d), %d bytes: %s", t.Segment, t.Position, t.Offset, t.Bytes, t.Reason)
			if t.Synced {
				s += "; the bytes were synced"
			}
			if t.SavedAs != "" {
				s += "; saved as " + t.SavedAs
			}
			parts = append(parts, s)
		}
		a = append(a, "truncated", strings.Join(parts, "; "))
	}
	if len(r.Dropped) > 0 {
		var parts []string
		for _, d := range r.Dropped {
			s := fmt.Sprintf("segment %d (%d bytes): %s", d.Base, d.Bytes, d.Reason)
			if d.MovedTo != "" {
				s += "; moved to " + d.MovedTo
			} else {
				s += "; deleted"
			}
			parts = append(parts, s)
		}
		a = append(a, "dropped", strings.Join(parts, "; "))
	}
	if r.Missing != "" {
		a = append(a, "missing", r.Missing)
	}
	if len(r.SwapsFinished) > 0 {
		a = append(a, "compaction_swaps_finished", fmt.Sprint(r.SwapsFinished))
	}
	if len(r.Removed) > 0 {
		a = append(a, "leftovers_removed", strings.Join(r.Removed, " "))
	}
	if r.EpochsDropped > 0 {
		a = append(a, "leader_epochs_dropped", r.EpochsDropped)
	}
	if r.EpochCache != "" {
		a = append(a, "leader_epoch_cache", r.EpochCache)
	}
	return a
}

// logReport logs the report: WARN when records were removed, Open refused, or the
// files were not what the clean-shutdown marker said; INFO when recovery had other work
// (an unclean stop); DEBUG for a clean open.
func logReport(logger *slog.Logger, r *RecoveryReport, err error) {
	attrs := r.attrs(err == nil)
	switch {
	case err != nil:
		logger.Error("log recovery failed", append(attrs, "err", err)...)
	case r.Lost() || (r.Marker != "" && r.Marker != "none" && r.Marker != markerOfEarlierVersion):
		logger.Warn("log recovery removed or distrusted data", attrs...)
	case r.changed():
		logger.Info("log recovered", attrs...)
	default:
		logger.Debug("log opened", attrs...)
	}
}
