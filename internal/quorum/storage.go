// Durable raft state in <data dir>/__cluster_metadata-0/: one live WAL segment and the
// snapshot its marker names.
//
// The live segment is the one with the highest sequence number. It starts with a marker
// naming the latest durable snapshot (index 0: none), then the entries after the
// snapshot, then the HardState, and grows by one write per Ready: the Ready's entries and
// HardState, fsynced before the Ready's messages are sent (raft's MustSync; a HardState
// that changes only the commit index is written without an fsync, as etcd does: a lost
// commit index is learnt again from the leader, unless it covers a membership change).
//
// A snapshot (taken locally, or received from the leader) replaces the segment: the
// snapshot file is made durable first, then a new segment holding the marker, the
// entries after the snapshot and the HardState is written to a temporary name, fsynced,
// renamed into place and the directory fsynced; only then are the older segments and
// snapshots deleted. A crash at any point leaves either the old segment (and perhaps an
// unused newer snapshot, removed at the next open) or the new one: a new segment is
// complete when it exists, so only the live segment's appended tail can be torn.
//
// The first failed write or fsync poisons the storage: the error is kept and answered by
// every later call until the storage is opened again, when recovery truncates the torn
// tail (see walformat.go). Nothing is retried: after a failed fsync the kernel may have
// dropped the dirty pages already.
//
// Entries since the snapshot live in memory too (raft.MemoryStorage, which raft reads);
// the snapshot thresholds bound them.
package quorum

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/vltava/vltava/internal/vfs"
)

// DirName is the metadata log's directory inside a data dir, Kafka's name for it.
const DirName = "__cluster_metadata-0"

// ErrStorage marks the errors of a quorum member whose storage failed: its first failed
// write or fsync, answered from then on until it is opened again.
var ErrStorage = errors.New("metadata log storage failed")

const (
	segSuffix  = ".wal"
	snapSuffix = ".snap"
	tmpSuffix  = ".tmp"
)

func segmentName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, segSuffix) }

func snapshotName(index, term uint64) string {
	return fmt.Sprintf("%020d-%020d%s", index, term, snapSuffix)
}

// isTempName reports whether name is the temporary file of a segment or snapshot.
func isTempName(name string) bool {
	base, ok := strings.CutSuffix(name, tmpSuffix)
	if !ok {
		return false
	}
	_, isSeg := parseSegmentName(base)
	_, _, isSnap := parseSnapshotName(base)
	return isSeg || isSnap
}

func parseSegmentName(name string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	return seq, err == nil
}

func parseSnapshotName(name string) (index, term uint64, ok bool) {
	s, ok := strings.CutSuffix(name, snapSuffix)
	if !ok || len(s) != 41 || s[20] != '-' {
		return 0, 0, false
	}
	index, err1 := strconv.ParseUint(s[:20], 10, 64)
	term, err2 := strconv.ParseUint(s[21:], 10, 64)
	return index, term, err1 == nil && err2 == nil
}

// storage is a member's durable raft state. It is used by one goroutine at a time.
type storage struct {
	fs  vfs.FS
	dir string
	log *slog.Logger
	ms  *raft.MemoryStorage

	seg     vfs.File // the live segment
	segSeq  uint64
	segSize int64

	snapIndex, snapTerm uint64 // the live segment's marker
	hs                  *raftpb.HardState

	err error // the poison
	buf []byte
}

// recovery is what openStorage found.
type recovery struct {
	fresh     bool             // no segment: the caller bootstraps
	snapshot  *raftpb.Snapshot // the live snapshot, nil if none
	hardState *raftpb.HardState
	lastIndex uint64
	confIndex uint64 // the last conf change entry after the snapshot, 0 if none
	tornBytes int    // truncated from the live segment's tail
}

// openStorage opens (creating if needed) the metadata log in dir and recovers it.
func openStorage(fsys vfs.FS, dir string, logger *slog.Logger) (*storage, recovery, error) {
	s := &storage{fs: fsys, dir: dir, log: logger, ms: raft.NewMemoryStorage(), hs: &raftpb.HardState{}}
	var rec recovery
	if err := vfs.MkdirAllDurable(fsys, dir); err != nil {
		return nil, rec, fmt.Errorf("create %s: %w", dir, err)
	}
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, rec, fmt.Errorf("list %s: %w", dir, err)
	}
	var segs []uint64
	type snapRef struct{ index, term uint64 }
	var snaps []snapRef
	removed := false
	for _, de := range names {
		name := de.Name()
		if seq, ok := parseSegmentName(name); ok && !de.IsDir() {
			segs = append(segs, seq)
			continue
		}
		if i, t, ok := parseSnapshotName(name); ok && !de.IsDir() {
			snaps = append(snaps, snapRef{i, t})
			continue
		}
		if !isTempName(name) || de.IsDir() {
			logger.Warn("metadata log: leaving an unknown file alone", "dir", dir, "file", name)
			continue
		}
		// A temporary file is a write that never completed its rename: nothing refers to it.
		logger.Info("metadata log: removing the temporary file of an interrupted write", "dir", dir, "file", name)
		if err := fsys.Remove(path.Join(dir, name)); err != nil {
			return nil, rec, fmt.Errorf("remove %s: %w", name, err)
		}
		removed = true
	}
	if len(segs) == 0 {
		if len(snaps) > 0 {
			return nil, rec, fmt.Errorf("metadata log %s has snapshot files but no WAL segment: refusing to start without the log's vote and entries", dir)
		}
		rec.fresh = true
		return s, rec, nil
	}
	slices.Sort(segs)
	s.segSeq = segs[len(segs)-1]
	if err := s.replay(&rec); err != nil {
		return nil, rec, err
	}
	// Older segments and other snapshots are superseded by the live segment: their removal
	// was interrupted, or a snapshot was written but never taken up by a segment.
	for _, seq := range segs[:len(segs)-1] {
		logger.Info("metadata log: removing a superseded segment", "dir", dir, "file", segmentName(seq), "live", segmentName(s.segSeq))
		if err := fsys.Remove(path.Join(dir, segmentName(seq))); err != nil {
			return nil, rec, fmt.Errorf("remove %s: %w", segmentName(seq), err)
		}
		removed = true
	}
	for _, sn := range snaps {
		if sn.index == s.snapIndex && sn.term == s.snapTerm {
			continue
		}
		logger.Info("metadata log: removing a snapshot the live segment does not use", "dir", dir, "file", snapshotName(sn.index, sn.term), "live", snapshotName(s.snapIndex, s.snapTerm))
		if err := fsys.Remove(path.Join(dir, snapshotName(sn.index, sn.term))); err != nil {
			return nil, rec, fmt.Errorf("remove %s: %w", snapshotName(sn.index, sn.term), err)
		}
		removed = true
	}
	if removed {
		if err := fsys.SyncDir(dir); err != nil {
			return nil, rec, fmt.Errorf("sync %s: %w", dir, err)
		}
	}
	f, err := fsys.OpenFile(path.Join(dir, segmentName(s.segSeq)), os.O_RDWR, 0)
	if err != nil {
		return nil, rec, fmt.Errorf("open %s: %w", segmentName(s.segSeq), err)
	}
	s.seg = f
	return s, rec, nil
}

// replay reads the live segment into the memory storage.
func (s *storage) replay(rec *recovery) error {
	name := segmentName(s.segSeq)
	full := path.Join(s.dir, name)
	f, err := s.fs.OpenFile(full, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", full, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", full, err)
	}
	buf := make([]byte, fi.Size())
	if _, err := f.ReadAt(buf, 0); err != nil && !(errors.Is(err, io.EOF) && fi.Size() == 0) {
		return fmt.Errorf("read %s: %w", full, err)
	}
	recs, valid, err := scanSegment(full, buf)
	if err != nil {
		return err
	}
	if valid < len(buf) {
		s.log.Warn("metadata log: truncating a torn tail",
			"segment", full, "offset", valid, "bytes_cut", len(buf)-valid, "records_kept", len(recs))
		rec.tornBytes = len(buf) - valid
		if err := f.Truncate(int64(valid)); err != nil {
			return fmt.Errorf("truncate %s: %w", full, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", full, err)
		}
	}
	s.segSize = int64(valid)
	if len(recs) == 0 || recs[0].typ != recMarker {
		return fmt.Errorf("metadata log segment %s is corrupt: it does not start with a snapshot marker", full)
	}
	s.snapIndex, s.snapTerm = recs[0].index, recs[0].term
	var ents []*raftpb.Entry
	hs := &raftpb.HardState{}
	last := func() uint64 { return s.snapIndex + uint64(len(ents)) }
	for i, r := range recs[1:] {
		switch r.typ {
		case recMarker:
			return fmt.Errorf("metadata log segment %s is corrupt: a second snapshot marker (record %d)", full, i+1)
		case recEntry:
			if r.index <= s.snapIndex || r.index > last()+1 {
				return fmt.Errorf("metadata log segment %s is corrupt: entry %d does not follow the log (snapshot %d, last %d)", full, r.index, s.snapIndex, last())
			}
			if r.index <= last() {
				if r.index <= hs.GetCommit() && ents[r.index-s.snapIndex-1].GetTerm() != r.term {
					return fmt.Errorf("metadata log segment %s is corrupt: entry %d of term %d replaces a committed entry (commit %d)", full, r.index, r.term, hs.GetCommit())
				}
				ents = ents[:r.index-s.snapIndex-1]
			}
			ents = append(ents, &raftpb.Entry{Index: new(r.index), Term: new(r.term), Type: r.entryType.Enum(), Data: r.data})
		case recHardState:
			if r.commit > last() {
				return fmt.Errorf("metadata log segment %s is corrupt: commit index %d is beyond the last entry %d", full, r.commit, last())
			}
			hs = &raftpb.HardState{Term: new(r.term), Vote: new(r.vote), Commit: new(r.commit)}
		}
	}
	if hs.GetCommit() < s.snapIndex {
		hs.Commit = new(s.snapIndex) // a snapshot covers only committed entries
	}
	if s.snapIndex > 0 {
		snapFile := path.Join(s.dir, snapshotName(s.snapIndex, s.snapTerm))
		b, err := vfs.ReadFile(s.fs, snapFile, math.MaxInt64-1)
		if err != nil {
			return fmt.Errorf("metadata log: the snapshot segment %s names: %w", name, err)
		}
		sf, err := decodeSnapshotFile(b)
		if err != nil {
			return fmt.Errorf("metadata log snapshot %s is corrupt: %w", snapFile, err)
		}
		if sf.index != s.snapIndex || sf.term != s.snapTerm {
			return fmt.Errorf("metadata log snapshot %s holds index %d term %d", snapFile, sf.index, sf.term)
		}
		snap := &raftpb.Snapshot{Data: sf.data, Metadata: &raftpb.SnapshotMetadata{
			Index: new(sf.index), Term: new(sf.term), ConfState: sf.conf}}
		if err := s.ms.ApplySnapshot(snap); err != nil {
			return fmt.Errorf("metadata log: load snapshot %s: %w", snapFile, err)
		}
		rec.snapshot = snap
	}
	if err := s.ms.Append(ents); err != nil {
		return fmt.Errorf("metadata log: load entries: %w", err)
	}
	if err := s.ms.SetHardState(hs); err != nil {
		return err
	}
	s.hs = hs
	rec.hardState = hs
	rec.lastIndex = last()
	for _, e := range ents {
		if e.GetType() != raftpb.EntryNormal {
			rec.confIndex = e.GetIndex()
		}
	}
	return nil
}

// bootstrap initialises a fresh storage: with a voter set, a snapshot at index 1, term 1
// holding it (the same on every voter, so a node that joins later gets it through a
// snapshot); without, an empty log that waits for the leader.
func (s *storage) bootstrap(voters []uint64, data []byte) error {
	var snap *raftpb.Snapshot
	hs := &raftpb.HardState{}
	if len(voters) > 0 {
		snap = &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{
			Index: new(uint64(1)), Term: new(uint64(1)),
			ConfState: raftpb.EnsureConfState(&raftpb.ConfState{Voters: voters})}}
		if err := s.writeSnapshotFile(snap); err != nil {
			return err
		}
		hs = &raftpb.HardState{Term: new(uint64(1)), Vote: new(uint64(0)), Commit: new(uint64(1))}
	}
	if err := s.replaceSegment(snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm(), hs, nil); err != nil {
		return err
	}
	if snap != nil {
		if err := s.ms.ApplySnapshot(snap); err != nil {
			return err
		}
	}
	s.hs = hs
	return s.ms.SetHardState(hs)
}

// fail poisons the storage with err unless it is poisoned already and returns the error
// it answers from now on.
func (s *storage) fail(err error) error {
	if s.err == nil {
		s.err = fmt.Errorf("%w: %s: %w", ErrStorage, s.dir, err)
		s.log.Error("metadata log: storage failed; this member stops participating until it is opened again", "dir", s.dir, "err", err)
	}
	return s.err
}

// save makes a Ready's snapshot, entries and HardState durable (fsynced when the Ready
// must sync) and hands them to the memory storage.
func (s *storage) save(rd *raft.Ready) error {
	if s.err != nil {
		return s.err
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		return s.saveSnapshot(rd)
	}
	buf := s.buf[:0]
	for _, e := range rd.Entries {
		buf = appendEntry(buf, e)
	}
	hs := rd.HardState
	if !raft.IsEmptyHardState(hs) {
		buf = appendHardState(buf, hs)
	}
	s.keepBuf(buf)
	if len(buf) > 0 {
		n, err := s.seg.WriteAt(buf, s.segSize)
		if err == nil && n < len(buf) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return s.fail(fmt.Errorf("write %s: %w", segmentName(s.segSeq), err))
		}
		s.segSize += int64(n)
	}
	// A commit index that covers a membership change is made durable before the change is
	// applied: a member that forgot it would reopen with the old voters and could wait
	// forever for the vote of one that was removed.
	if rd.MustSync || hasConfChange(rd.CommittedEntries) {
		if err := s.seg.Sync(); err != nil {
			return s.fail(fmt.Errorf("sync %s: %w", segmentName(s.segSeq), err))
		}
	}
	if err := s.ms.Append(rd.Entries); err != nil {
		return s.fail(err)
	}
	if !raft.IsEmptyHardState(hs) {
		s.hs = cloneHardState(hs)
		return s.ms.SetHardState(s.hs)
	}
	return nil
}

// saveSnapshot handles a Ready that carries a snapshot from the leader: the snapshot and
// then a segment restarting the log after it are made durable before anything is
// acknowledged.
func (s *storage) saveSnapshot(rd *raft.Ready) error {
	snap := rd.Snapshot
	hs := s.hs
	if !raft.IsEmptyHardState(rd.HardState) {
		hs = cloneHardState(rd.HardState)
	}
	if err := s.writeSnapshotFile(snap); err != nil {
		return s.fail(err)
	}
	md := snap.GetMetadata()
	if err := s.replaceSegment(md.GetIndex(), md.GetTerm(), hs, rd.Entries); err != nil {
		return s.fail(err)
	}
	if err := s.ms.ApplySnapshot(snap); err != nil {
		return s.fail(err)
	}
	if err := s.ms.Append(rd.Entries); err != nil {
		return s.fail(err)
	}
	s.hs = hs
	return s.ms.SetHardState(hs)
}

// createSnapshot takes a local snapshot at index (applied, with the ConfState as of it),
// restarts the WAL after it, and drops from memory the entries before it except the last
// keep.
func (s *storage) createSnapshot(index uint64, cs *raftpb.ConfState, data []byte, keep uint64) error {
	if s.err != nil {
		return s.err
	}
	term, err := s.ms.Term(index)
	if err != nil {
		return fmt.Errorf("snapshot at %d: %w", index, err)
	}
	snap := &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{
		Index: new(index), Term: new(term), ConfState: cs}}
	if err := s.writeSnapshotFile(snap); err != nil {
		return s.fail(err)
	}
	last, _ := s.ms.LastIndex()
	var after []*raftpb.Entry
	if last > index {
		if after, err = s.ms.Entries(index+1, last+1, math.MaxUint64); err != nil {
			return s.fail(fmt.Errorf("entries after snapshot %d: %w", index, err))
		}
	}
	if err := s.replaceSegment(index, term, s.hs, after); err != nil {
		return s.fail(err)
	}
	if _, err := s.ms.CreateSnapshot(index, cs, data); err != nil {
		return s.fail(err)
	}
	if index > keep {
		if err := s.ms.Compact(index - keep); err != nil && !errors.Is(err, raft.ErrCompacted) {
			return s.fail(err)
		}
	}
	return nil
}

// writeSnapshotFile writes a snapshot file durably: a temporary file, fsynced, renamed
// into place, the directory fsynced.
func (s *storage) writeSnapshotFile(snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	name := path.Join(s.dir, snapshotName(md.GetIndex(), md.GetTerm()))
	tmp := name + tmpSuffix
	f, err := s.fs.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	head := encodeSnapshotHeader(md.GetIndex(), md.GetTerm(), md.GetConfState(), len(snap.GetData()))
	crc := crc32.Update(crc32.Checksum(head, castagnoli), castagnoli, snap.GetData())
	var tail [4]byte
	tail[0], tail[1], tail[2], tail[3] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	for _, b := range [][]byte{head, snap.GetData(), tail[:]} {
		if _, err := f.Write(b); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", tmp, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := s.fs.Rename(tmp, name); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return fmt.Errorf("sync %s: %w", s.dir, err)
	}
	return nil
}

// replaceSegment writes a new live segment (marker, entries, HardState) durably, then
// removes the segments and snapshots it supersedes.
func (s *storage) replaceSegment(index, term uint64, hs *raftpb.HardState, ents []*raftpb.Entry) error {
	seq := s.segSeq + 1
	name := path.Join(s.dir, segmentName(seq))
	// The HardState goes after the entries: its commit index may be among them, and
	// replay checks a commit index against the entries before it.
	buf := appendMarker(s.buf[:0], index, term)
	for _, e := range ents {
		buf = appendEntry(buf, e)
	}
	if !raft.IsEmptyHardState(hs) {
		buf = appendHardState(buf, hs)
	}
	s.keepBuf(buf)
	tmp := name + tmpSuffix
	f, err := s.fs.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	n, err := f.WriteAt(buf, 0)
	if err == nil && n < len(buf) {
		err = io.ErrShortWrite
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := s.fs.Rename(tmp, name); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return fmt.Errorf("sync %s: %w", s.dir, err)
	}
	// Appends go through a handle of the final name, so errors name the right file.
	if f, err = s.fs.OpenFile(name, os.O_RDWR, 0); err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	// The new segment is durable: what it supersedes can go.
	old, oldSeq := s.seg, s.segSeq
	oldSnapIndex, oldSnapTerm := s.snapIndex, s.snapTerm
	s.seg, s.segSeq, s.segSize = f, seq, int64(len(buf))
	s.snapIndex, s.snapTerm = index, term
	if old != nil {
		old.Close()
		if err := s.fs.Remove(path.Join(s.dir, segmentName(oldSeq))); err != nil {
			return fmt.Errorf("remove %s: %w", segmentName(oldSeq), err)
		}
	}
	if oldSnapIndex > 0 && (oldSnapIndex != index || oldSnapTerm != term) {
		if err := s.fs.Remove(path.Join(s.dir, snapshotName(oldSnapIndex, oldSnapTerm))); err != nil {
			return fmt.Errorf("remove %s: %w", snapshotName(oldSnapIndex, oldSnapTerm), err)
		}
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return fmt.Errorf("sync %s: %w", s.dir, err)
	}
	s.log.Debug("metadata log: new segment", "segment", name, "snapshot_index", index, "entries", len(ents), "bytes", len(buf))
	return nil
}

// close releases the live segment, syncing it first unless the storage is poisoned (a
// HardState that only moved the commit index may be unsynced).
func (s *storage) close() error {
	if s.seg == nil {
		return nil
	}
	var err error
	if s.err == nil {
		if err = s.seg.Sync(); err != nil {
			err = s.fail(fmt.Errorf("sync %s: %w", segmentName(s.segSeq), err))
		}
	}
	if cerr := s.seg.Close(); err == nil && cerr != nil && s.err == nil {
		err = cerr
	}
	s.seg = nil
	return err
}

func hasConfChange(ents []*raftpb.Entry) bool {
	for _, e := range ents {
		if e.GetType() != raftpb.EntryNormal {
			return true
		}
	}
	return false
}

// keepBuf keeps buf for reuse unless a snapshot's rewrite made it large.
func (s *storage) keepBuf(buf []byte) {
	if cap(buf) > 4<<20 {
		buf = nil
	}
	s.buf = buf
}

func cloneHardState(hs *raftpb.HardState) *raftpb.HardState {
	return &raftpb.HardState{Term: new(hs.GetTerm()), Vote: new(hs.GetVote()), Commit: new(hs.GetCommit())}
}
