package metadata

// The metadata log under storage faults: a failed append is undone so that the changes
// acknowledged after it survive, an undo that fails poisons the store, a torn tail is cut
// and reported, and a bad frame with valid frames after it stops the start.

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/vltava/vltava/internal/vfs"
)

// oneShot fails the next operation of kind on the metadata log once armed, then disarms.
type oneShot struct {
	kind  vfs.OpKind
	err   error
	armed atomic.Bool
}

func (o *oneShot) MaybeError(op vfs.Op) error {
	if op.Kind == o.kind && strings.HasSuffix(op.Path, fileName) && o.armed.CompareAndSwap(true, false) {
		return o.err
	}
	return nil
}

func tryCreate(s *Store, name string) error {
	_, err := s.Apply(func(*Image) ([]Record, error) {
		return topicRecords(name, newID(), 1), nil
	})
	return err
}

func TestFailedAppendDoesNotLoseLaterChanges(t *testing.T) {
	for _, tc := range []struct {
		name  string
		kind  vfs.OpKind
		err   error
		short bool // the failed write wrote half its bytes first
	}{
		{"short write", vfs.OpWrite, vfs.ErrInjected, true},
		{"ENOSPC mid-write", vfs.OpWrite, syscall.ENOSPC, true},
		{"failed write", vfs.OpWrite, syscall.EIO, false},
		{"failed fsync", vfs.OpSync, syscall.EIO, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			inj := &oneShot{kind: tc.kind, err: tc.err}
			fsys := &vfs.ErrorFS{FS: mem, Inj: inj, TornWrites: tc.short}
			s := openTest(t, fsys, "/meta")
			if err := tryCreate(s, "a"); err != nil {
				t.Fatal(err)
			}
			inj.armed.Store(true)
			if err := tryCreate(s, "b"); err == nil {
				t.Fatal("append with a failed write or fsync succeeded")
			}
			if s.Image().Topic("b") != nil {
				t.Fatal("a failed change was published")
			}
			// The store recovered from the failure: this change is acknowledged.
			if err := tryCreate(s, "c"); err != nil {
				t.Fatalf("change after an undone failure: %v", err)
			}
			s2 := openTest(t, mem.Crash(), "/meta")
			im := s2.Image()
			if im.Topic("a") == nil || im.Topic("c") == nil {
				t.Fatalf("acknowledged changes lost after a crash: topics %v", im.TopicNames())
			}
			if im.Topic("b") != nil {
				t.Fatalf("a change answered as failed is there after a crash: topics %v", im.TopicNames())
			}
		})
	}
}

// TestFailedUndoPoisonsStore: when the failed append cannot be cut back, every later
// change is refused (its frame could follow garbage), and the error says storage failed.
func TestFailedUndoPoisonsStore(t *testing.T) {
	mem := vfs.NewMem()
	var broken atomic.Bool
	fsys := &vfs.ErrorFS{FS: mem, TornWrites: true, Inj: vfs.InjectorFunc(func(op vfs.Op) error {
		if broken.Load() && (op.Kind == vfs.OpWrite || op.Kind == vfs.OpTruncate) {
			return syscall.EIO
		}
		return nil
	})}
	s := openTest(t, fsys, "/meta")
	if err := tryCreate(s, "a"); err != nil {
		t.Fatal(err)
	}
	broken.Store(true)
	if err := tryCreate(s, "b"); err == nil {
		t.Fatal("append with a failed write succeeded")
	}
	broken.Store(false)
	err := tryCreate(s, "c")
	if err == nil {
		t.Fatal("a change was accepted after a failed append could not be undone")
	}
	if !errors.Is(err, ErrStorage) {
		t.Fatalf("poisoned store answered %v, want ErrStorage", err)
	}
	if names := s.Image().TopicNames(); len(names) != 1 {
		t.Fatalf("image changed by refused changes: %v", names)
	}
}

// TestOpenRefusesCorruptionInTheMiddle: a flipped byte in a frame followed by valid
// frames is not a torn write; the start stops and says where, and the file is kept.
func TestOpenRefusesCorruptionInTheMiddle(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, vfs.OS(), dir)
	for _, n := range []string{"first", "second", "third"} {
		if err := tryCreate(s, n); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	path := filepath.Join(dir, fileName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	second := bytes.Index(data, []byte("second"))
	if second < 0 {
		t.Fatalf("no second topic in %q", data)
	}
	data[second+2] ^= 0x01
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(vfs.OS(), dir, testOptions())
	if err == nil {
		t.Fatal("opened a metadata log with a corrupt frame followed by valid ones")
	}
	for _, want := range []string{path, "byte "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, data) {
		t.Fatalf("refused metadata log was modified: %d -> %d bytes", len(data), len(after))
	}
}

// TestOpenCutsTornTailAndSaysSo: a partial frame at the end is a write that was never
// acknowledged; it is cut and logged at WARN with its offset and size.
func TestOpenCutsTornTailAndSaysSo(t *testing.T) {
	for _, tail := range [][]byte{
		{0, 0, 1, 0, 9, 9},                  // a header promising more than there is
		make([]byte, 64),                    // zeros: the size grew but the data never landed
		{0, 0, 0, 5, 1, 2, 3, 4, 'x'},       // a short payload
		append(frameOf(t, "z", 2), 0, 0, 0), // a whole frame with a bad CRC, then bytes
	} {
		dir := t.TempDir()
		s := openTest(t, vfs.OS(), dir)
		if err := tryCreate(s, "kept"); err != nil {
			t.Fatal(err)
		}
		s.Close()
		path := filepath.Join(dir, fileName)
		before, _ := os.ReadFile(path)
		if len(tail) > 8 && tail[8] == entryMagic {
			tail[len(tail)-5] ^= 0xff // break the CRC of the whole frame
		}
		f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		f.Write(tail)
		f.Close()

		var logs bytes.Buffer
		s, err := Open(vfs.OS(), dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), NodeID: 1})
		if err != nil {
			t.Fatalf("tail %x: %v", tail, err)
		}
		if s.Image().Topic("kept") == nil {
			t.Fatalf("tail %x: topic before the torn tail lost", tail)
		}
		s.Close()
		after, _ := os.ReadFile(path)
		if !bytes.Equal(after, before) {
			t.Fatalf("tail %x: file not cut back to its whole frames: %d -> %d bytes", tail, len(before), len(after))
		}
		line := logs.String()
		for _, want := range []string{"level=WARN", "offset=" + itoa(len(before)), "bytes=" + itoa(len(tail))} {
			if !strings.Contains(line, want) {
				t.Errorf("tail %x: log %q lacks %q", tail, line, want)
			}
		}
	}
}

// TestMultiRecordChangeIsAtomic: a change of several records torn by a crash is either
// replayed whole or not at all.
func TestMultiRecordChangeIsAtomic(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, vfs.OS(), dir)
	if err := tryCreate(s, "t"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fileName)
	st, _ := os.Stat(path)
	v1, v2, v3 := "1", "2", "3"
	if _, err := s.Apply(func(*Image) ([]Record, error) {
		return []Record{
			&ConfigRecord{ResourceType: ResourceTopic, ResourceName: "t", Name: "retention.ms", Value: &v1},
			&ConfigRecord{ResourceType: ResourceTopic, ResourceName: "t", Name: "segment.ms", Value: &v2},
			&ConfigRecord{ResourceType: ResourceTopic, ResourceName: "t", Name: "flush.ms", Value: &v3},
		}, nil
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	st2, _ := os.Stat(path)
	// A crash two thirds into the change's bytes.
	cut := st.Size() + (st2.Size()-st.Size())*2/3
	if err := os.Truncate(path, cut); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, vfs.OS(), dir)
	if cfg := s.Image().Topic("t").Configs; len(cfg) != 0 {
		t.Fatalf("half a change replayed: %v", cfg)
	}
}

// TestCrashUnderHarshFaults: writes cut short at random points, fsyncs that fail (and,
// as on Linux, drop the file's unsynced writes), then a crash: every acknowledged change
// is there after it, no failed one is, and the log opens without being called corrupt.
func TestCrashUnderHarshFaults(t *testing.T) {
	var totalAcked, totalFailed, poisoned int
	defer func() {
		// The faults must have done their work: failed changes, stores poisoned by a
		// failed undo, and acknowledged changes to lose.
		t.Logf("%d acknowledged, %d failed, %d stores poisoned", totalAcked, totalFailed, poisoned)
		if !t.Failed() && (totalAcked == 0 || totalFailed == 0 || poisoned == 0) {
			t.Fatalf("faults too gentle: %d acknowledged, %d failed, %d stores poisoned", totalAcked, totalFailed, poisoned)
		}
	}()
	for seed := uint64(1); seed <= 40; seed++ {
		mem := vfs.NewMem()
		rng := rand.New(rand.NewPCG(seed, 7))
		failSync := vfs.InjectorFunc(func(op vfs.Op) error {
			if op.Kind == vfs.OpSync && rng.Float64() < 0.04 {
				return syscall.EIO
			}
			return nil
		})
		fsys := vfs.WithErrors(mem, vfs.Chain{vfs.NewShortWrites(seed, 0.1), failSync})
		s, err := Open(fsys, "/meta", testOptions())
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		acked, failed := map[string]bool{}, map[string]bool{}
		for i := range 40 {
			name := fmt.Sprintf("t%d", i)
			if err := tryCreate(s, name); err != nil {
				if !errors.Is(err, ErrStorage) {
					t.Fatalf("seed %d: %s: %v", seed, name, err)
				}
				failed[name] = true
			} else {
				acked[name] = true
			}
		}
		totalAcked, totalFailed = totalAcked+len(acked), totalFailed+len(failed)
		if s.err != nil {
			poisoned++
		}
		for _, partial := range []bool{false, true} {
			crashed := mem.Crash()
			if partial {
				crashed = mem.CrashPartial(rand.New(rand.NewPCG(seed, 8)))
			}
			s2, err := Open(crashed, "/meta", testOptions())
			if err != nil {
				t.Fatalf("seed %d, partial crash %v: %v", seed, partial, err)
			}
			im := s2.Image()
			for name := range acked {
				if im.Topic(name) == nil {
					t.Fatalf("seed %d, partial crash %v: acknowledged %s lost (%d acknowledged, %d failed)", seed, partial, name, len(acked), len(failed))
				}
			}
			for _, name := range im.TopicNames() {
				if !acked[name] {
					t.Fatalf("seed %d, partial crash %v: %s is there but its creation failed", seed, partial, name)
				}
			}
			s2.Close()
		}
		s.Close()
	}
}

// TestDiskFullMidFrame: the disk fills part way through a change; it fails and is cut,
// later changes fail at once, and once space is freed they succeed and survive a crash.
func TestDiskFullMidFrame(t *testing.T) {
	mem := vfs.NewMem()
	disk := vfs.NewDiskFull(int64(len(frameOf(t, "a", 1)) * 3 / 2)) // one frame and part of the next
	s := openTest(t, vfs.WithErrors(mem, disk), "/meta")
	if err := tryCreate(s, "a"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b", "c"} {
		if err := tryCreate(s, name); !errors.Is(err, ErrStorage) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("%s on a full disk: %v", name, err)
		}
	}
	disk.SetFree(1 << 20)
	if err := tryCreate(s, "d"); err != nil {
		t.Fatalf("after space was freed: %v", err)
	}
	im := openTest(t, mem.Crash(), "/meta").Image()
	if got := im.TopicNames(); len(got) != 2 || im.Topic("a") == nil || im.Topic("d") == nil {
		t.Fatalf("after a crash: %v", got)
	}
}

// TestOpenRefusesADamagedSnapshot: the snapshot a log starts with was written whole and
// synced before it replaced the log, so damage to it is not a torn write, even with no
// entry after it: cutting it would start the node with no metadata at all.
func TestOpenRefusesADamagedSnapshot(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, vfs.OS(), dir)
	for i := range 3 {
		createTopic(t, s, fmt.Sprintf("t%d", i), 2)
	}
	s.Close()
	path := filepath.Join(dir, fileName)
	s2 := &Store{fsys: vfs.OS(), dir: dir}
	if _, err := s2.rewrite(s.Image()); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	data[len(data)-3] ^= 0x40
	os.WriteFile(path, data, 0o644)
	_, err := Open(vfs.OS(), dir, testOptions())
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Offset != 0 {
		t.Fatalf("opened a log whose snapshot is damaged: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
		t.Fatalf("the damaged log was modified: %d -> %d bytes", len(data), len(after))
	}
}
