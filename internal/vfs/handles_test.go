package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

func limitOpen(t *testing.T, l *LimitFS, name string) File {
	t.Helper()
	f, err := l.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readAll(t *testing.T, f File) []byte {
	t.Helper()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

func checkOpen(t *testing.T, l *LimitFS) {
	t.Helper()
	if st := l.Stats(); st.Open > st.Max {
		t.Fatalf("%d files open below, limit %d", st.Open, st.Max)
	}
}

// TestLimitFSKeepsFilesWithinLimit: many handles, few files open below, every handle
// reads and writes its own file, its offset survives being closed underneath.
func TestLimitFSKeepsFilesWithinLimit(t *testing.T) {
	for _, below := range []struct {
		name string
		fs   func(t *testing.T) (FS, string)
	}{
		{"mem", func(t *testing.T) (FS, string) { m := NewMem(); m.MkdirAll("/d", 0o755); return m, "/d" }},
		{"os", func(t *testing.T) (FS, string) { return OS(), t.TempDir() }},
	} {
		t.Run(below.name, func(t *testing.T) {
			fsys, dir := below.fs(t)
			l := LimitOpenFiles(fsys, 4)
			var files []File
			for i := range 20 {
				f := limitOpen(t, l, filepath.Join(dir, fmt.Sprint(i)))
				if _, err := f.Write([]byte(fmt.Sprintf("file %d;", i))); err != nil {
					t.Fatal(err)
				}
				files = append(files, f)
				checkOpen(t, l)
			}
			for i, f := range files {
				// Write continues at the handle's offset, after it was closed underneath.
				if _, err := f.Write([]byte("more")); err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteAt([]byte("F"), 0); err != nil {
					t.Fatal(err)
				}
				checkOpen(t, l)
				j := (i + 7) % len(files)
				if got, want := string(readAll(t, files[j])), fmt.Sprintf("ile %d;", j); got[1:len(want)+1] != want {
					t.Fatalf("file %d holds %q", (i+7)%len(files), got)
				}
			}
			for i, f := range files {
				if got, want := string(readAll(t, f)), fmt.Sprintf("File %d;more", i); got != want {
					t.Fatalf("file %d holds %q, want %q", i, got, want)
				}
				if err := f.Sync(); err != nil {
					t.Fatal(err)
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if st := l.Stats(); st.Open != 0 || st.Evictions == 0 || st.Reopens == 0 {
				t.Fatalf("stats after closing everything: %+v", st)
			}
			if _, err := files[0].ReadAt(make([]byte, 1), 0); err == nil {
				t.Fatal("read through a closed handle")
			}
		})
	}
}

// TestLimitFSSyncsBeforeClosingUnderneath: unsynced writes are fsynced before the file
// is closed underneath, so they survive a crash, and a failed fsync is reported by the
// handle's next Sync, not forgotten with the descriptor.
func TestLimitFSSyncsBeforeClosingUnderneath(t *testing.T) {
	m := NewMem()
	m.MkdirAll("/d", 0o755)
	m.SyncDir("/")
	var failSync bool
	var mu sync.Mutex
	efs := WithErrors(m, InjectorFunc(func(op Op) error {
		mu.Lock()
		defer mu.Unlock()
		if op.Kind == OpSync && failSync && op.Path == "/d/bad" {
			return syscall.EIO
		}
		return nil
	}))
	l := LimitOpenFiles(efs, 1)
	good := limitOpen(t, l, "/d/good")
	m.SyncDir("/d")
	good.Write([]byte("durable"))
	bad := limitOpen(t, l, "/d/bad") // closes good underneath: fsynced first
	m.SyncDir("/d")
	if got, err := ReadFile(m.Crash(), "/d/good", 100); err != nil || string(got) != "durable" {
		t.Fatalf("after a crash good holds %q, %v", got, err)
	}
	bad.Write([]byte("lost"))
	mu.Lock()
	failSync = true
	mu.Unlock()
	if _, err := good.ReadAt(make([]byte, 1), 0); err != nil { // closes bad underneath
		t.Fatal(err)
	}
	mu.Lock()
	failSync = false
	mu.Unlock()
	if err := bad.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync after a failed fsync underneath: %v", err)
	}
	if err := good.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestLimitFSFollowsNames: a handle closed underneath reopens its file under the name a
// rename (of it or of its directory) gave it; a file that loses its name stays readable
// through its handles, as POSIX keeps it, except below a removed directory.
func TestLimitFSFollowsNames(t *testing.T) {
	dir := t.TempDir()
	l := LimitOpenFiles(OS(), 1)
	l.MkdirAll(filepath.Join(dir, "p-0"), 0o755)
	seg := limitOpen(t, l, filepath.Join(dir, "p-0", "seg"))
	seg.Write([]byte("segment"))
	moved := limitOpen(t, l, filepath.Join(dir, "moved")) // closes seg underneath
	moved.Write([]byte("moved"))
	if err := l.Rename(filepath.Join(dir, "p-0", "seg"), filepath.Join(dir, "p-0", "seg.deleted")); err != nil {
		t.Fatal(err)
	}
	if err := l.Rename(filepath.Join(dir, "p-0"), filepath.Join(dir, "p-0.x-stray")); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, seg); string(got) != "segment" {
		t.Fatalf("renamed file reads %q", got)
	}
	// A file renamed over a handle's name is not the handle's file.
	other := limitOpen(t, l, filepath.Join(dir, "other"))
	other.Write([]byte("other"))
	if err := l.Rename(filepath.Join(dir, "other"), filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, moved); string(got) != "moved" {
		t.Fatalf("handle of a file renamed over, closed underneath before, reads %q", got)
	}
	// A removed file stays readable through its handles, open or closed underneath
	// before; one below a removed directory, closed underneath, is gone.
	open := limitOpen(t, l, filepath.Join(dir, "open"))
	open.Write([]byte("open"))
	limitOpen(t, l, filepath.Join(dir, "x")).Close() // closes open underneath
	if err := l.Remove(filepath.Join(dir, "open")); err != nil {
		t.Fatal(err)
	}
	l.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	closed := limitOpen(t, l, filepath.Join(dir, "sub", "closed"))
	limitOpen(t, l, filepath.Join(dir, "y")).Close()
	l.RemoveAll(filepath.Join(dir, "sub"))
	limitOpen(t, l, filepath.Join(dir, "z")).Close() // the held file stays open regardless
	if got := readAll(t, open); string(got) != "open" {
		t.Fatalf("removed file reads %q", got)
	}
	if _, err := closed.ReadAt(make([]byte, 1), 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file of a removed directory, closed underneath: %v", err)
	}
	for _, f := range []File{seg, moved, other, open, closed} {
		f.Close()
	}
	if st := l.Stats(); st.Open != 0 {
		t.Fatalf("%d files still open below", st.Open)
	}
}

// TestLimitFSConcurrent: readers and writers on more files than the limit, at once.
func TestLimitFSConcurrent(t *testing.T) {
	m := NewMem()
	m.MkdirAll("/d", 0o755)
	l := LimitOpenFiles(m, 3)
	const n = 12
	files := make([]File, n)
	for i := range files {
		files[i] = limitOpen(t, l, fmt.Sprintf("/d/%d", i))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 200 {
				i := (g*31 + k*7) % n
				rec := []byte{byte(i), byte(k)}
				if _, err := files[i].WriteAt(rec, int64(g*2)); err != nil {
					t.Error(err)
					return
				}
				got := make([]byte, 2)
				if _, err := files[i].ReadAt(got, int64(g*2)); err != nil || got[0] != byte(i) {
					t.Errorf("file %d: read %v %v", i, got, err)
					return
				}
				if k%50 == 0 {
					files[i].Sync()
				}
			}
		}()
	}
	wg.Wait()
	checkOpen(t, l)
	for _, f := range files {
		f.Close()
	}
}

// TestLimitFSLendsOSFile: the OS file behind a handle is lent for system calls of the
// caller's own, and counts as written.
func TestLimitFSLendsOSFile(t *testing.T) {
	dir := t.TempDir()
	l := LimitOpenFiles(OS(), 1)
	f := limitOpen(t, l, filepath.Join(dir, "a"))
	limitOpen(t, l, filepath.Join(dir, "b")) // closes a underneath
	osf, unpin, ok := PinOSFile(f, true)
	if !ok {
		t.Fatal("no OS file pinned behind a handle of the OS filesystem")
	}
	limitOpen(t, l, filepath.Join(dir, "c")) // cannot close a underneath while pinned
	if _, err := osf.WriteAt([]byte("pwritten"), 0); err != nil {
		t.Fatal(err)
	}
	unpin()
	if osf, ok := OSFile(f); !ok || osf == nil {
		t.Fatal("no OS file behind a handle of the OS filesystem")
	}
	if got := readAll(t, f); !bytes.Equal(got, []byte("pwritten")) {
		t.Fatalf("read %q", got)
	}
	if _, _, ok := PinOSFile(limitOpen(t, LimitOpenFiles(NewMem(), 2), "/m"), false); ok {
		t.Fatal("an in-memory file lent an OS file")
	}
}
