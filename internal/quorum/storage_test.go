package quorum

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/vltava/vltava/internal/vfs"
)

const testDir = "/data/" + DirName

func ents(term uint64, from, to uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := from; i <= to; i++ {
		out = append(out, &raftpb.Entry{Index: new(i), Term: new(term), Type: raftpb.EntryNormal.Enum(), Data: fmt.Appendf(nil, "e%d-t%d", i, term)})
	}
	return out
}

func hardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}
}

// newBootstrapped returns a storage bootstrapped with voters {1,2,3}: snapshot (1,1).
func newBootstrapped(t *testing.T, fsys vfs.FS, lb *logBuffer) *storage {
	t.Helper()
	s, rec, err := openStorage(fsys, testDir, newTestLogger(t, lb))
	if err != nil || !rec.fresh {
		t.Fatalf("open fresh storage: %v (fresh %v)", err, rec.fresh)
	}
	if err := s.bootstrap([]uint64{1, 2, 3}, encodeSnapshotData(voters(1, 2, 3), nil)); err != nil {
		t.Fatal(err)
	}
	return s
}

func reopen(t *testing.T, fsys vfs.FS, lb *logBuffer) (*storage, recovery) {
	t.Helper()
	s, rec, err := openStorage(fsys, testDir, newTestLogger(t, lb))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	return s, rec
}

// logOf returns index:term:data of the entries a storage holds after its snapshot.
func logOf(t *testing.T, s *storage) string {
	t.Helper()
	first, _ := s.ms.FirstIndex()
	last, _ := s.ms.LastIndex()
	if last < first {
		return ""
	}
	es, err := s.ms.Entries(first, last+1, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	var b []string
	for _, e := range es {
		b = append(b, fmt.Sprintf("%d:%d:%s", e.GetIndex(), e.GetTerm(), e.GetData()))
	}
	return strings.Join(b, " ")
}

func liveSegment(t *testing.T, fsys vfs.FS) string {
	t.Helper()
	des, err := fsys.ReadDir(testDir)
	if err != nil {
		t.Fatal(err)
	}
	var segs []string
	for _, de := range des {
		if _, ok := parseSegmentName(de.Name()); ok {
			segs = append(segs, de.Name())
		}
	}
	if len(segs) != 1 {
		t.Fatalf("segments %v, want exactly one", segs)
	}
	return path.Join(testDir, segs[0])
}

func TestWALReplayFollowsOverwrites(t *testing.T) {
	mem := vfs.NewMem()
	s := newBootstrapped(t, mem, nil)
	// Entries 2..5 of term 2; then a new leader of term 3 overwrites from 4.
	steps := []raft.Ready{
		{Entries: ents(2, 2, 5), HardState: hardState(2, 2, 3), MustSync: true},
		{Entries: ents(3, 4, 4), HardState: hardState(3, 3, 3), MustSync: true},
		{Entries: ents(3, 5, 6), MustSync: true},
	}
	for i := range steps {
		if err := s.save(&steps[i]); err != nil {
			t.Fatal(err)
		}
	}
	want := "2:2:e2-t2 3:2:e3-t2 4:3:e4-t3 5:3:e5-t3 6:3:e6-t3"
	if got := logOf(t, s); got != want {
		t.Fatalf("in memory %q, want %q", got, want)
	}
	s2, rec := reopen(t, mem.Crash(), nil)
	if got := logOf(t, s2); got != want {
		t.Fatalf("after a crash %q, want %q", got, want)
	}
	if hs := rec.hardState; hs.GetTerm() != 3 || hs.GetVote() != 3 || hs.GetCommit() != 3 {
		t.Fatalf("hard state %v", hs)
	}
}

func TestWALTornTailIsTruncatedAndLogged(t *testing.T) {
	mem := vfs.NewMem()
	s := newBootstrapped(t, mem, nil)
	for _, rd := range []raft.Ready{
		{Entries: ents(2, 2, 3), HardState: hardState(2, 1, 2), MustSync: true},
		{Entries: ents(2, 4, 4), MustSync: true},
	} {
		if err := s.save(&rd); err != nil {
			t.Fatal(err)
		}
	}
	seg := liveSegment(t, mem)
	fi, _ := mem.Stat(seg)
	full := fi.Size()
	// The last write (entry 4) was torn: 7 of its bytes are missing.
	f, _ := mem.OpenFile(seg, os.O_RDWR, 0)
	f.Truncate(full - 7)
	f.Close()
	var lb logBuffer
	s2, rec := reopen(t, mem, &lb)
	if got, want := logOf(t, s2), "2:2:e2-t2 3:2:e3-t2"; got != want {
		t.Fatalf("after the torn tail %q, want %q", got, want)
	}
	recLen := int64(entryRecordSize(len("e4-t2")))
	wantLine := fmt.Sprintf("offset=%d bytes_cut=%d", full-recLen, recLen-7)
	if !lb.contains("level=WARN msg=\"metadata log: truncating a torn tail\"") || !lb.contains(wantLine) || rec.tornBytes != int(recLen-7) {
		t.Fatalf("log %q does not report the cut (%s)", lb.String(), wantLine)
	}
	if fi, _ := mem.Stat(seg); fi.Size() != full-recLen {
		t.Fatalf("segment is %d bytes after recovery, want %d", fi.Size(), full-recLen)
	}
	// Appending after the truncation continues the log.
	if err := s2.save(&raft.Ready{Entries: ents(2, 4, 4), MustSync: true}); err != nil {
		t.Fatal(err)
	}
	s3, _ := reopen(t, mem.Crash(), nil)
	if got, want := logOf(t, s3), "2:2:e2-t2 3:2:e3-t2 4:2:e4-t2"; got != want {
		t.Fatalf("after appending again %q, want %q", got, want)
	}
}

func TestWALCorruptionBeforeValidDataRefusesToOpen(t *testing.T) {
	mem := vfs.NewMem()
	s := newBootstrapped(t, mem, nil)
	if err := s.save(&raft.Ready{Entries: ents(2, 2, 4), HardState: hardState(2, 1, 2), MustSync: true}); err != nil {
		t.Fatal(err)
	}
	seg := liveSegment(t, mem)
	b, _ := vfs.ReadFile(mem, seg, 1<<20)
	// Flip a byte of entry 2's data: entries 3 and 4 after it are intact.
	at := strings.Index(string(b), "e2-t2")
	b[at] ^= 0xff
	f, _ := mem.OpenFile(seg, os.O_RDWR, 0)
	f.WriteAt(b, 0)
	f.Close()
	_, _, err := openStorage(mem, testDir, newTestLogger(t, nil))
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("open of a corrupt segment: %v", err)
	}
	recStart := int64(at - entryBodyMin - walRecordHeader)
	if ce.Offset != recStart || ce.Next != recStart+int64(entryRecordSize(5)) || !strings.Contains(err.Error(), seg) {
		t.Fatalf("error %v, want the record at %d followed by one at %d", err, recStart, recStart+int64(entryRecordSize(5)))
	}
	if fi, _ := mem.Stat(seg); fi.Size() != int64(len(b)) {
		t.Fatal("a corrupt segment was truncated")
	}
}

func TestSnapshotFileCorruptOrMissingRefusesToOpen(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(fsys vfs.FS, snap string)
		want   string
	}{
		{"bit flip", func(fsys vfs.FS, snap string) {
			f, _ := fsys.OpenFile(snap, os.O_RDWR, 0)
			f.WriteAt([]byte{0xff}, 10)
			f.Close()
		}, "CRC mismatch"},
		{"missing", func(fsys vfs.FS, snap string) { fsys.Remove(snap) }, "file does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			s := newBootstrapped(t, mem, nil)
			if err := s.save(&raft.Ready{Entries: ents(2, 2, 4), HardState: hardState(2, 1, 4), MustSync: true}); err != nil {
				t.Fatal(err)
			}
			if err := s.createSnapshot(3, raftpb.EnsureConfState(&raftpb.ConfState{Voters: []uint64{1, 2, 3}}), encodeSnapshotData(nil, []byte("state")), 0); err != nil {
				t.Fatal(err)
			}
			snap := path.Join(testDir, snapshotName(3, 2))
			tc.damage(mem, snap)
			_, _, err := openStorage(mem, testDir, newTestLogger(t, nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), snapshotName(3, 2)) {
				t.Fatalf("open: %v, want an error naming %s with %q", err, snapshotName(3, 2), tc.want)
			}
		})
	}
}

func TestSnapshotsWithoutWALRefuseToOpen(t *testing.T) {
	mem := vfs.NewMem()
	newBootstrapped(t, mem, nil)
	mem.Remove(liveSegment(t, mem))
	if _, _, err := openStorage(mem, testDir, newTestLogger(t, nil)); err == nil || !strings.Contains(err.Error(), "no WAL segment") {
		t.Fatalf("open without the WAL: %v", err)
	}
}

func TestOpenRemovesTemporaryFilesAndLeavesUnknownOnes(t *testing.T) {
	mem := vfs.NewMem()
	newBootstrapped(t, mem, nil)
	for _, name := range []string{segmentName(9) + tmpSuffix, "notes.txt"} {
		f, _ := mem.OpenFile(path.Join(testDir, name), os.O_CREATE|os.O_WRONLY, 0o644)
		f.Write([]byte("x"))
		f.Sync()
		f.Close()
	}
	var lb logBuffer
	reopen(t, mem, &lb)
	if _, err := mem.Stat(path.Join(testDir, segmentName(9)+tmpSuffix)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left: %v", err)
	}
	if _, err := mem.Stat(path.Join(testDir, "notes.txt")); err != nil {
		t.Fatalf("unknown file removed: %v", err)
	}
	if !lb.contains("removing the temporary file of an interrupted write") || !lb.contains("leaving an unknown file alone") {
		t.Fatalf("log: %s", lb.String())
	}
}

// TestSnapshotReplacesSegmentSafelyAtEveryStep fails each file operation of a local
// snapshot in turn, then crashes: the reopened log holds the same entries whether the
// new segment made it or not, and the failure poisoned the storage.
func TestSnapshotReplacesSegmentSafelyAtEveryStep(t *testing.T) {
	cs := raftpb.EnsureConfState(&raftpb.ConfState{Voters: []uint64{1, 2, 3}})
	want := "2:2:e2-t2 3:2:e3-t2 4:2:e4-t2 5:2:e5-t2"
	prepare := func(inj vfs.Injector) (*vfs.MemFS, *storage) {
		mem := vfs.NewMem()
		s := newBootstrapped(t, vfs.WithErrors(mem, inj), nil)
		if err := s.save(&raft.Ready{Entries: ents(2, 2, 5), HardState: hardState(2, 1, 4), MustSync: true}); err != nil {
			t.Fatal(err)
		}
		return mem, s
	}
	// Count the operations a snapshot does.
	var ops []vfs.Op
	counting := false
	_, s := prepare(vfs.InjectorFunc(func(op vfs.Op) error {
		if counting {
			ops = append(ops, op)
		}
		return nil
	}))
	counting = true
	if err := s.createSnapshot(4, cs, encodeSnapshotData(nil, []byte("state")), 0); err != nil {
		t.Fatal(err)
	}
	counting = false
	if len(ops) < 10 {
		t.Fatalf("only %d operations: %v", len(ops), ops)
	}
	for k := range ops {
		if ops[k].Kind == vfs.OpClose || ops[k].Kind == vfs.OpOpen {
			continue
		}
		t.Run(fmt.Sprintf("%d-%v-%s", k, ops[k].Kind, path.Base(ops[k].Path)), func(t *testing.T) {
			n, armed := 0, false
			mem, s := prepare(vfs.InjectorFunc(func(op vfs.Op) error {
				if armed {
					if n == k {
						return vfs.ErrInjected
					}
					n++
				}
				return nil
			}))
			armed = true
			err := s.createSnapshot(4, cs, encodeSnapshotData(nil, []byte("state")), 0)
			if k < len(ops)-2 || err != nil { // the last steps are removals of what is superseded
				if !errors.Is(err, ErrStorage) {
					t.Fatalf("snapshot with op %d failing: %v", k, err)
				}
				if err2 := s.save(&raft.Ready{Entries: ents(2, 6, 6), MustSync: true}); !errors.Is(err2, ErrStorage) {
					t.Fatalf("save after a failure: %v", err2)
				}
			}
			s2, _ := reopen(t, mem.Crash(), nil)
			first, _ := s2.ms.FirstIndex()
			if got := logOf(t, s2); !strings.HasSuffix(want, got) || first > 5 {
				t.Fatalf("after the failure and a crash %q (first %d), want a suffix of %q from at most 5", got, first, want)
			}
			if s2.snapIndex != 1 && s2.snapIndex != 4 {
				t.Fatalf("snapshot index %d", s2.snapIndex)
			}
		})
	}
}

// TestSnapshotBelowCommitReopens: a snapshot at an applied index below the commit index
// (raft hands committed entries over in pages) restarts the segment with entries after
// it; the log must open again.
func TestSnapshotBelowCommitReopens(t *testing.T) {
	mem := vfs.NewMem()
	s := newBootstrapped(t, mem, nil)
	if err := s.save(&raft.Ready{Entries: ents(2, 2, 6), HardState: hardState(2, 1, 5), MustSync: true}); err != nil {
		t.Fatal(err)
	}
	cs := raftpb.EnsureConfState(&raftpb.ConfState{Voters: []uint64{1, 2, 3}})
	if err := s.createSnapshot(3, cs, encodeSnapshotData(nil, []byte("state")), 0); err != nil {
		t.Fatal(err)
	}
	s2, rec := reopen(t, mem.Crash(), nil)
	if got, want := logOf(t, s2), "4:2:e4-t2 5:2:e5-t2 6:2:e6-t2"; got != want || rec.hardState.GetCommit() != 5 {
		t.Fatalf("after reopening: %q commit %d, want %q commit 5", got, rec.hardState.GetCommit(), want)
	}
}
