// Opening a log and recovering it.
//
// Open finishes compaction swaps a crash interrupted (compact_swap.go), lists the
// directory, removes leftovers (*.deleted, *.tmp, *.cleaned, index files without a
// segment), reads the checkpoints and the clean-shutdown marker (shutdown_marker.go) and
// loads every segment in base offset order:
//
//   - a segment the marker vouches for (same size and mtime as at the clean close), and
//     when there is no marker (an unclean stop) a segment below the recovery point's
//     segment (synced before the stop), is trusted: its indexes are loaded and sanity-checked, and only the
//     batches after its last index entry are walked (headers only, with the checks of
//     recovery_checks.go) to find its end and largest timestamp; an index that fails the
//     check, or a walk that does not end exactly at the file's end, makes the segment go
//     through the full scan instead;
//   - the other segments (possibly torn by the stop, or changed behind the marker's back)
//     get the full scan of segment.go: every batch's length, magic, CRC, offsets and
//     leader epoch are checked, the file is cut at the first bad batch, the indexes are
//     rebuilt and, unless the segment still reaches the next one's base, later segments
//     are dropped. Segments after one that does not end where the next begins are
//     dropped the same way.
//
// What was synced before the stop (below the recovery point, or below the marker's log
// end offset) is never cut without the operator's say: if a scan would cut there, or the
// segments end before it, Open refuses with ErrCorruptBelowRecoveryPoint before changing
// any segment, unless Options.TruncateBelowRecoveryPoint is set; then the cut bytes are
// copied to <segment>.log.cut-<position>.aside and the dropped segments renamed to
// <segment>.log.aside. Unsynced data cut or dropped is deleted, as Kafka does. Files Open
// does not recognise are left where they are (the partition keeps its own files here).
//
// Every segment but the last drops its index entries from memory once loaded.
//
// Then segments wholly below the log start offset are deleted, a lost or malformed
// leader-epoch checkpoint is rebuilt from the batches (the malformed one moved aside),
// leader epochs past the log end offset are dropped, and the clean-shutdown marker is removed (durably) before
// the log accepts a write, so a crash from then on is seen as unclean. Everything done
// is collected in a RecoveryReport, logged at the end (recovery_report.go).
package log

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// Open opens (creating if needed) the log in dir and recovers it, with default Options
// and the given clock.
func Open(fsys vfs.FS, dir string, cfg Config, now func() time.Time) (*Log, error) {
	return OpenWith(fsys, dir, cfg, Options{Now: now})
}

// OpenWith opens (creating if needed) the log in dir and recovers it: scans what may
// hold unsynced or foreign writes, cuts a torn or corrupt tail, rebuilds missing or
// corrupt indexes, and logs a report of what it did (Recovery returns it).
func OpenWith(fsys vfs.FS, dir string, cfg Config, opts Options) (*Log, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	l := &Log{fsys: fsys, dir: dir, now: opts.Now, cfg: cfg.withDefaults(), logger: opts.Logger, timings: opts.Timings}
	l.indexInterval.Store(l.cfg.IndexIntervalBytes)
	l.report.Dir = dir
	if err := vfs.MkdirAllDurable(fsys, dir); err != nil {
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	r := &recovery{l: l, opts: opts, rep: &l.report}
	err := r.run()
	logReport(opts.Logger, &l.report, err)
	if err != nil {
		for _, s := range l.segs {
			s.close()
		}
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	return l, nil
}

// Recovery returns what Open found and did.
func (l *Log) Recovery() RecoveryReport { return l.report }

// recovery is one Open's state.
type recovery struct {
	l    *Log
	opts Options
	rep  *RecoveryReport
	// syncedEnd: offsets below it were synced before the stop; lso is the persisted log
	// start offset (nothing below it is lost by dropping it).
	syncedEnd, lso int64
	maxEpoch       int32 // newest epoch of the leader-epoch cache, -1 if none
	gapEndVal      int64 // the cleaner checkpoint's gap end, read when first needed
	gapEndRead     bool
}

func (r *recovery) run() error {
	l, rep := r.l, r.rep
	if err := l.completeSwaps(rep); err != nil {
		return err
	}
	files, err := l.cleanDir(rep)
	if err != nil {
		return err
	}
	marker, why := l.readShutdownMarker()

	lso, err := l.readOffsetCheckpoint(logStartOffsetFile)
	if err != nil {
		return err
	}
	rp, err := l.readOffsetCheckpoint(recoveryPointFile)
	if err != nil {
		return err
	}
	l.recoveryPoint = rp
	// A missing or malformed leader-epoch checkpoint is rebuilt from the batches once
	// the segments are loaded (rebuildEpochs); until then no epoch check is possible.
	epochsLost := ""
	if data, err := readCheckpoint(l.fsys, l.dir, leaderEpochFile); err != nil {
		return err
	} else if data == nil {
		epochsLost = "missing"
	} else if l.epochs, err = parseEpochCheckpoint(data); err != nil {
		l.epochs = nil
		epochsLost = err.Error()
	}
	r.lso, r.syncedEnd, r.maxEpoch = lso, rp, -1
	if n := len(l.epochs); n > 0 {
		r.maxEpoch = l.epochs[n-1].Epoch
	}
	var vouched map[int64]bool
	if marker != nil {
		vouched, rep.Marker = marker.vouched(files)
		rep.CleanShutdown = rep.Marker == ""
		r.syncedEnd = max(rp, marker.logEnd)
	} else {
		rep.Marker = why
	}
	rep.RecoveryPoint, rep.SyncedEnd = rp, r.syncedEnd

	epoch := int32(-1)
	for i, f := range files {
		limit := int64(math.MaxInt64)
		if i+1 < len(files) {
			limit = files[i+1].base
		}
		// A clean-shutdown marker decides which segments are trusted; without one,
		// segments wholly below the recovery point were synced before the stop.
		synced := vouched[f.base] || (marker == nil && limit <= rp)
		s, err := openSegmentFiles(l.fsys, l.dir, f.base, false)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
		rep.Segments++
		cut, err := r.loadSegment(s, synced, limit, &epoch)
		if err != nil {
			return err
		}
		if i+1 == len(files) {
			break
		}
		if s.next != limit {
			// A segment is rolled at its predecessor's end (and compaction keeps a group's
			// last batch), so the segments after one that ends elsewhere do not continue
			// the log: after a cut they were written after the torn batch; without one,
			// this segment lost batches or the next one is foreign.
			reason := "after a segment cut short"
			if !cut {
				reason = fmt.Sprintf("segment %d ends at offset %d, not where this one starts", s.base, s.next)
				if r.lost(s.next) && !r.opts.TruncateBelowRecoveryPoint {
					return r.refuse(fmt.Sprintf("segment %d ends at offset %d but the next segment starts at %d", s.base, s.next, limit), s.next)
				}
			}
			// After a cut below what was synced (the operator's flag) everything dropped
			// is kept aside; after an ordinary torn tail it held only unsynced data.
			if err := r.drop(files[i+1:], reason, r.lost(s.next)); err != nil {
				return err
			}
			break
		}
		// Not the active segment: lookups read its index files (index.go).
		s.publishInactive(s.state())
	}
	if len(l.segs) == 0 {
		s, err := l.createEmptySegment(lso)
		if err != nil {
			return err
		}
		l.segs = []*segment{s}
	}
	leo := l.active().next
	if r.lost(leo) && !rep.Lost() {
		// Nothing was cut, yet the files end before what was synced.
		reason := fmt.Sprintf("the segments end at offset %d: a segment or its tail is missing", leo)
		if !r.opts.TruncateBelowRecoveryPoint {
			return r.refuse(reason, leo)
		}
		rep.Missing = fmt.Sprintf("offsets %d to %d were synced before the stop but %s", leo, r.syncedEnd, reason)
	}
	switch {
	case lso > leo:
		// Everything up to lso was deleted (DeleteRecords) but the log now ends before it
		// (data lost in the crash): start empty at lso, as Kafka does.
		for _, s := range l.segs {
			rep.Dropped = append(rep.Dropped, DroppedSegment{Base: s.base, Bytes: s.size,
				Reason: fmt.Sprintf("the log ends at %d, before the log start offset %d", leo, lso)})
			s.close()
			for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
				if err := l.fsys.Remove(s.path(l.dir, suf)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("remove segment %d below the log start offset: %w", s.base, err)
				}
			}
		}
		s, err := l.createEmptySegment(lso)
		if err != nil {
			return err
		}
		l.segs, leo = []*segment{s}, lso
	case lso < l.segs[0].base:
		lso = l.segs[0].base
	}
	l.logStartOffset = lso
	l.logEndOffset.Store(leo)
	rep.LogStartOffset, rep.LogEndOffset = lso, leo
	if err := l.loadRollBase(l.active()); err != nil {
		return err
	}

	if k := l.belowStartLocked(); k > 0 {
		gone := append([]*segment(nil), l.segs[:k]...)
		for _, s := range gone {
			rep.Dropped = append(rep.Dropped, DroppedSegment{Base: s.base, Bytes: s.size,
				Reason: fmt.Sprintf("wholly below the log start offset %d", lso)})
		}
		l.segs = l.segs[k:]
		if err := l.deleteSegmentsLocked(gone); err != nil {
			return err
		}
	}
	if epochsLost != "" && leo > lso {
		if err := r.rebuildEpochs(epochsLost); err != nil {
			return err
		}
	}
	n := len(l.epochs)
	if err := l.truncateEpochsFromEndLocked(leo + 1); err != nil {
		return err
	}
	rep.EpochsDropped = n - len(l.epochs)
	if why != "none" {
		if err := l.fsys.Remove(path.Join(l.dir, cleanShutdownFile)); err != nil {
			return fmt.Errorf("remove clean shutdown marker: %w", err)
		}
		l.dirDirty = true
	}
	if l.dirDirty {
		if err := l.fsys.SyncDir(l.dir); err != nil {
			return fmt.Errorf("sync log dir: %w", err)
		}
		l.dirDirty = false
	}
	return nil
}

// rebuildEpochs rebuilds the leader-epoch cache from the batches' leader epochs (the
// first offset of each epoch), as Kafka's segment recovery assigns the epochs it reads,
// when its checkpoint was missing or malformed (why): without it a follower could not
// learn where its epochs end on the leader and would keep a tail the leader never had.
// A malformed checkpoint is moved aside first, not overwritten.
func (r *recovery) rebuildEpochs(why string) error {
	l := r.l
	if why != "missing" {
		to, err := l.uniqueName(leaderEpochFile + ".aside")
		if err == nil {
			err = l.fsys.Rename(path.Join(l.dir, leaderEpochFile), path.Join(l.dir, to))
		}
		if err != nil {
			return fmt.Errorf("move the malformed leader-epoch checkpoint aside: %w", err)
		}
		why = fmt.Sprintf("%s (moved to %s)", why, to)
		l.dirDirty = true
	}
	var rebuilt []epochEntry
	err := l.Batches(l.logStartOffset, func(b batch.Batch) bool {
		e := b.PartitionLeaderEpoch()
		if n := len(rebuilt); e >= 0 && (n == 0 || e > rebuilt[n-1].Epoch) {
			rebuilt = append(rebuilt, epochEntry{Epoch: e, StartOffset: b.BaseOffset()})
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("rebuild the leader-epoch cache: %w", err)
	}
	if err := l.setEpochsLocked(rebuilt); err != nil {
		return err
	}
	r.rep.EpochCache = fmt.Sprintf("leader-epoch-checkpoint %s: rebuilt %d entries from the batches", why, len(rebuilt))
	return nil
}

// lost reports whether a log ending at end lacks records that were synced before the
// stop (records below the log start offset were deleted anyway).
func (r *recovery) lost(end int64) bool { return max(end, r.lso) < r.syncedEnd }

func (r *recovery) refuse(reason string, end int64) error {
	return fmt.Errorf("%w: %s: recovery would leave the log ending at offset %d, below offset %d which was synced before the stop; "+
		"the segments are left as they are (set %s=true to cut the log there, moving the cut data aside)",
		ErrCorruptBelowRecoveryPoint, reason, end, r.syncedEnd, TruncateBelowRecoveryPointKey)
}

func (r *recovery) gapEnd() int64 {
	if !r.gapEndRead {
		r.gapEndVal, r.gapEndRead = r.l.cleanerGapEnd(), true
	}
	return r.gapEndVal
}

// loadSegment fills s's state from its files, trusting the indexes only if synced and
// they pass their checks, else scanning it (and cutting it at the first invalid batch);
// it reports whether the segment was cut. limit is the next segment's base; epoch the
// last batch's leader epoch so far.
func (r *recovery) loadSegment(s *segment, synced bool, limit int64, epoch *int32) (bool, error) {
	l := r.l
	if synced {
		ok, err := r.loadIndexes(s, limit, epoch)
		if err != nil || ok {
			return false, err
		}
		r.rep.IndexesRebuilt++
	}
	chk := r.newBatchCheck(s, limit, *epoch)
	if r.gapEnd() > s.base { // the cleaner may have made gaps here: the index is evidence
		chk.witness = l.indexWitness(s)
	}
	res, err := s.scan(l.cfg.IndexIntervalBytes, &chk)
	if err != nil {
		return false, err
	}
	r.rep.SegmentsScanned++
	r.rep.BytesScanned += res.fileSize
	if res.truncated {
		t := Truncation{Segment: s.base, Position: res.st.size, Offset: res.st.next, Bytes: res.fileSize - res.st.size, Reason: res.reason}
		// A segment whose batches reach its successor's base loses nothing by the cut:
		// the log goes on in the next segment.
		if r.lost(res.st.next) && res.st.next != limit {
			if !r.opts.TruncateBelowRecoveryPoint {
				return false, r.refuse(fmt.Sprintf("segment %d at byte %d: %s", s.base, res.st.size, res.reason), res.st.next)
			}
			t.Synced = true
			if t.SavedAs, err = r.saveAside(s, res.st.size, res.fileSize); err != nil {
				return false, err
			}
		}
		if err := s.log.Truncate(res.st.size); err != nil {
			return false, fmt.Errorf("truncate segment %d at %d (%s): %w", s.base, res.st.size, res.reason, err)
		}
		s.dirty = true
		r.rep.Truncated = append(r.rep.Truncated, t)
	}
	// A rebuilt index is complete up to the last batch; give an inactive segment its
	// final time entry too (a no-op for the active one until it rolls).
	if err := s.writeIndexes(res.st.index, res.st.times); err != nil {
		return false, err
	}
	s.publish(res.st)
	*epoch = chk.epoch
	return res.truncated, nil
}

// drop removes the segments of files (those after a cut): renamed aside if aside or if
// they held synced data (either only with TruncateBelowRecoveryPoint), else deleted.
func (r *recovery) drop(files []segmentFile, reason string, aside bool) error {
	l := r.l
	for _, f := range files {
		d := DroppedSegment{Base: f.base, Bytes: f.size, Reason: reason}
		name := segmentName(f.base, logSuffix)
		if aside || f.base < r.syncedEnd {
			to, err := l.uniqueName(name + ".aside")
			if err == nil {
				err = l.fsys.Rename(path.Join(l.dir, name), path.Join(l.dir, to))
			}
			if err != nil {
				return fmt.Errorf("move segment %d aside: %w", f.base, err)
			}
			d.MovedTo = to
		} else if err := l.fsys.Remove(path.Join(l.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove segment %d after a cut: %w", f.base, err)
		}
		// The index files are derived from the segment.
		for _, suf := range []string{indexSuffix, timeIndexSuffix} {
			if err := l.fsys.Remove(path.Join(l.dir, segmentName(f.base, suf))); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove index of segment %d: %w", f.base, err)
			}
		}
		r.rep.Dropped = append(r.rep.Dropped, d)
		l.dirDirty = true
	}
	return nil
}

// saveAside copies bytes [from, to) of segment s to a new file beside it, synced, and
// returns its name: what recovery cuts from synced data is kept for the operator.
func (r *recovery) saveAside(s *segment, from, to int64) (string, error) {
	l := r.l
	name, err := l.uniqueName(fmt.Sprintf("%s.cut-%d.aside", segmentName(s.base, logSuffix), from))
	if err != nil {
		return "", err
	}
	f, err := l.fsys.OpenFile(path.Join(l.dir, name), os.O_CREATE|os.O_RDWR|os.O_EXCL, 0o644)
	if err != nil {
		return "", fmt.Errorf("save the cut of segment %d: %w", s.base, err)
	}
	_, err = io.Copy(f, io.NewSectionReader(s.log, from, to-from))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("save the cut of segment %d: %w", s.base, err)
	}
	l.dirDirty = true
	return name, nil
}

// uniqueName returns name, or name.1, name.2, ... whichever does not exist yet.
func (l *Log) uniqueName(name string) (string, error) {
	for i := 0; i < 1000; i++ {
		n := name
		if i > 0 {
			n = fmt.Sprintf("%s.%d", name, i)
		}
		if _, err := l.fsys.Stat(path.Join(l.dir, n)); errors.Is(err, fs.ErrNotExist) {
			return n, nil
		} else if err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("no free name for %s", name)
}
