package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"syscall"
	"testing"
)

// TestConformance runs the same operations on the OS filesystem and on MemFS, so the
// in-memory model behaves like the real thing for everything the log uses.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   FS
		root string
	}{
		{"os", OS(), t.TempDir()},
		{"mem", NewMem(), "/data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys, dir := tc.fs, path.Join(tc.root, "p-0")
			must(t, fsys.MkdirAll(dir, 0o755))
			name := path.Join(dir, "a.log")
			f, err := fsys.OpenFile(name, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
			must(t, err)
			write(t, f, "hello ")
			write(t, f, "world")
			if got := readAt(t, f, 6, 5); got != "world" {
				t.Fatalf("ReadAt = %q", got)
			}
			buf := make([]byte, 4)
			if n, err := f.ReadAt(buf, 9); n != 2 || err != io.EOF {
				t.Fatalf("short ReadAt = %d, %v; want 2, EOF", n, err)
			}
			must(t, f.Truncate(5))
			write(t, f, "!") // O_APPEND writes at the new end
			if got := readAt(t, f, 0, 6); got != "hello!" {
				t.Fatalf("after truncate and append: %q", got)
			}
			if st, err := f.Stat(); err != nil || st.Size() != 6 {
				t.Fatalf("Stat = %v, %v", st, err)
			}
			if _, err := fsys.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("O_EXCL on an existing file: %v", err)
			}
			// Renamed and removed names keep the open descriptor readable.
			must(t, fsys.Rename(name, name+".deleted"))
			must(t, fsys.Remove(name+".deleted"))
			if got := readAt(t, f, 0, 5); got != "hello" {
				t.Fatalf("read after remove: %q", got)
			}
			must(t, f.Close())
			if _, err := fsys.Stat(name); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Stat of removed file: %v", err)
			}
			for _, n := range []string{"b", "a", "c"} {
				g, err := fsys.OpenFile(path.Join(dir, n), os.O_CREATE|os.O_WRONLY, 0o644)
				must(t, err)
				must(t, g.Close())
			}
			ents, err := fsys.ReadDir(dir)
			must(t, err)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if got := fmtNames(names); got != "a b c" {
				t.Fatalf("ReadDir = %s", got)
			}
			must(t, WriteFileAtomic(fsys, path.Join(dir, "cp"), []byte("1\n")))
			must(t, WriteFileAtomic(fsys, path.Join(dir, "cp"), []byte("2\n")))
			data, err := ReadFile(fsys, path.Join(dir, "cp"), 10)
			if err != nil || string(data) != "2\n" {
				t.Fatalf("ReadFile = %q, %v", data, err)
			}
			if _, err := ReadFile(fsys, path.Join(dir, "cp"), 1); err == nil {
				t.Fatal("ReadFile over the limit succeeded")
			}
			if _, err := fsys.OpenFile(path.Join(dir, "nope"), os.O_RDONLY, 0); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("open missing: %v", err)
			}
			must(t, fsys.RemoveAll(dir))
			if _, err := fsys.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Stat after RemoveAll: %v", err)
			}
		})
	}
}

func TestCrashKeepsOnlySynced(t *testing.T) {
	m := NewMem()
	must(t, m.MkdirAll("/d", 0o755))
	f, err := m.OpenFile("/d/f", os.O_CREATE|os.O_RDWR, 0o644)
	must(t, err)
	write(t, f, "durable")
	must(t, f.Sync())
	if _, err := m.Crash().Stat("/d/f"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a synced file whose creation was not SyncDir'd survived: %v", err)
	}
	must(t, m.SyncDir("/d"))
	// The file's entry is durable, but /d itself was never synced into /: a crash loses
	// the directory and everything in it, as on Linux.
	if _, err := m.Crash().Stat("/d/f"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file in a directory whose creation was not SyncDir'd survived: %v", err)
	}
	must(t, m.SyncDir("/"))
	write(t, f, " lost")
	c := m.Crash()
	if got := readFile(t, c, "/d/f"); got != "durable" {
		t.Fatalf("after crash: %q", got)
	}
	// The original is untouched and still usable.
	if got := readAt(t, f, 0, 12); got != "durable lost" {
		t.Fatalf("original: %q", got)
	}
	// A rename not followed by SyncDir is undone by a crash.
	must(t, m.Rename("/d/f", "/d/g"))
	c = m.Crash()
	if _, err := c.Stat("/d/f"); err != nil {
		t.Fatalf("unsynced rename was kept: %v", err)
	}
	must(t, m.SyncDir("/d"))
	c = m.Crash()
	if _, err := c.Stat("/d/g"); err != nil {
		t.Fatalf("synced rename lost: %v", err)
	}
	if _, err := c.Stat("/d/f"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("synced rename left the old name: %v", err)
	}
}

// TestCrashPartialIsAPrefix: whatever CrashPartial keeps is the synced content followed
// by a prefix of the unsynced writes, never bytes from a later write without the earlier.
func TestCrashPartialIsAPrefix(t *testing.T) {
	m := NewMem()
	f, err := m.OpenFile("/f", os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	must(t, err)
	must(t, m.SyncDir("/"))
	write(t, f, "base:")
	must(t, f.Sync())
	full := "base:"
	for _, s := range []string{"one,", "two,", "three,"} {
		write(t, f, s)
		full += s
	}
	seen := map[string]bool{}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		got := readFile(t, m.CrashPartial(rng), "/f")
		if len(got) < len("base:") || full[:len(got)] != got {
			t.Fatalf("crash left %q, not a prefix of %q extending the synced part", got, full)
		}
		seen[got] = true
	}
	if len(seen) < 5 {
		t.Fatalf("only %d distinct crash states in 300 tries", len(seen))
	}
}

func TestErrorFS(t *testing.T) {
	c := FailNth(OpWrite, 2)
	e := WithErrors(NewMem(), c)
	f, err := e.OpenFile("/f", os.O_CREATE|os.O_RDWR, 0o644)
	must(t, err)
	write(t, f, "a")
	if _, err := f.Write([]byte("bc")); !errors.Is(err, ErrInjected) {
		t.Fatalf("second write: %v", err)
	}
	write(t, f, "d")
	if got := readAt(t, f, 0, 2); got != "ad" {
		t.Fatalf("content %q", got)
	}
	if c.Count() != 3 {
		t.Fatalf("count %d", c.Count())
	}

	e = WithErrors(NewMem(), FailFrom(OpSync, 1))
	e.TornWrites = true
	f, err = e.OpenFile("/f", os.O_CREATE|os.O_RDWR, 0o644)
	must(t, err)
	for range 2 {
		if err := f.Sync(); !errors.Is(err, ErrInjected) {
			t.Fatalf("sync: %v", err)
		}
	}
	e.Inj = FailNth(OpWrite, 1)
	if n, err := f.Write([]byte("abcd")); n != 2 || !errors.Is(err, ErrInjected) {
		t.Fatalf("torn write = %d, %v", n, err)
	}
}

// TestFailedSyncDropsUnsyncedWrites: a failed fsync loses the writes it was for, as Linux
// may (dirty pages marked clean after a writeback error), for every descriptor of the
// file; the next fsync succeeds and does not bring them back, and a crash finds only
// what the last good fsync made durable.
func TestFailedSyncDropsUnsyncedWrites(t *testing.T) {
	mem := NewMem()
	var failSync bool
	e := WithErrors(mem, InjectorFunc(func(op Op) error {
		if failSync && op.Kind == OpSync {
			return ErrInjected
		}
		return nil
	}))
	must(t, e.MkdirAll("/d", 0o755))
	must(t, e.SyncDir("/"))
	f, err := e.OpenFile("/d/f", os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	must(t, err)
	must(t, e.SyncDir("/d"))
	other, err := mem.OpenFile("/d/f", os.O_RDONLY, 0)
	must(t, err)
	write(t, f, "durable")
	must(t, f.Sync())
	write(t, f, " lost")
	must(t, f.Truncate(3)) // a truncation since the good sync is forgotten too
	write(t, f, "ABLE lost")
	failSync = true
	if err := f.Sync(); !errors.Is(err, ErrInjected) {
		t.Fatalf("sync: %v", err)
	}
	failSync = false
	for _, g := range []File{f, other} {
		if got := readAt(t, g, 0, 32); got != "durable" {
			t.Fatalf("after a failed sync the file holds %q, want the synced %q", got, "durable")
		}
	}
	if st, err := e.Stat("/d/f"); err != nil || st.Size() != 7 {
		t.Fatalf("Stat after a failed sync = %v, %v; want size 7", st, err)
	}
	must(t, f.Sync()) // succeeds, as the second fsync does on Linux
	if got := readFile(t, mem.Crash(), "/d/f"); got != "durable" {
		t.Fatalf("after crash: %q", got)
	}
	// Writes after the failure are kept and made durable as usual.
	write(t, f, "+new")
	must(t, f.Sync())
	if got := readFile(t, mem.Crash(), "/d/f"); got != "durable+new" {
		t.Fatalf("after crash: %q", got)
	}
}

// TestPartialWrite: an injector's *Partial makes a write put a prefix of its buffer and
// fail, through Write and WriteAt.
func TestPartialWrite(t *testing.T) {
	e := WithErrors(NewMem(), InjectorFunc(func(op Op) error {
		if op.Kind == OpWrite && op.Len == 6 {
			return &Partial{N: 3, Err: syscall.ENOSPC}
		}
		return nil
	}))
	f, err := e.OpenFile("/f", os.O_CREATE|os.O_RDWR, 0o644)
	must(t, err)
	if n, err := f.Write([]byte("abcdef")); n != 3 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write = %d, %v; want 3, ENOSPC", n, err)
	}
	if n, err := f.WriteAt([]byte("uvwxyz"), 10); n != 3 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WriteAt = %d, %v; want 3, ENOSPC", n, err)
	}
	if got := readAt(t, f, 0, 20); got != "abc\x00\x00\x00\x00\x00\x00\x00uvw" {
		t.Fatalf("content %q", got)
	}
}

// TestDiskFull: the write that does not fit writes what does and answers ENOSPC; later
// writes fail at once until space is freed.
func TestDiskFull(t *testing.T) {
	disk := NewDiskFull(10)
	e := WithErrors(NewMem(), disk)
	f, err := e.OpenFile("/f", os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	must(t, err)
	write(t, f, "012345")
	if n, err := f.Write([]byte("6789AB")); n != 4 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write past the free space = %d, %v; want 4, ENOSPC", n, err)
	}
	if n, err := f.Write([]byte("C")); n != 0 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write on a full disk = %d, %v; want 0, ENOSPC", n, err)
	}
	must(t, f.Sync()) // syncing needs no space
	disk.SetFree(100)
	write(t, f, "C")
	if got := readAt(t, f, 0, 20); got != "0123456789C" {
		t.Fatalf("content %q", got)
	}
	if disk.Free() != 99 {
		t.Fatalf("free %d, want 99", disk.Free())
	}
}

// TestShortWritesReplay: seeded short writes cut writes at points that replay from the
// seed, always a strict prefix, and the file holds exactly what the writes reported.
func TestShortWritesReplay(t *testing.T) {
	run := func(seed uint64) (string, []int) {
		e := WithErrors(NewMem(), NewShortWrites(seed, 0.5))
		f, err := e.OpenFile("/f", os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
		must(t, err)
		var want bytes.Buffer
		var ns []int
		for i := range 40 {
			p := bytes.Repeat([]byte{byte('a' + i%26)}, 1+i%7)
			n, err := f.Write(p)
			if (err == nil) != (n == len(p)) || n > len(p) {
				t.Fatalf("write of %d = %d, %v", len(p), n, err)
			}
			if err != nil && !errors.Is(err, syscall.EIO) {
				t.Fatalf("short write error %v, want EIO", err)
			}
			want.Write(p[:n])
			ns = append(ns, n)
		}
		got := readAt(t, f, 0, 1000)
		if got != want.String() {
			t.Fatalf("file %q, writes reported %q", got, want.String())
		}
		return got, ns
	}
	a, an := run(7)
	b, bn := run(7)
	if a != b || fmt.Sprint(an) != fmt.Sprint(bn) {
		t.Fatalf("seed 7 did not replay: %v vs %v", an, bn)
	}
	short := 0
	for i, n := range an {
		if n < 1+i%7 {
			short++
		}
	}
	if short == 0 || short == len(an) {
		t.Fatalf("%d of %d writes short with p=0.5", short, len(an))
	}
	if _, cn := run(8); fmt.Sprint(cn) == fmt.Sprint(an) {
		t.Fatalf("seeds 7 and 8 cut the same writes")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, f File, s string) {
	t.Helper()
	if n, err := f.Write([]byte(s)); err != nil || n != len(s) {
		t.Fatalf("write %q: %d, %v", s, n, err)
	}
}

func readAt(t *testing.T, f File, off int64, n int) string {
	t.Helper()
	buf := make([]byte, n)
	got, err := f.ReadAt(buf, off)
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return string(buf[:got])
}

func readFile(t *testing.T, fsys FS, name string) string {
	t.Helper()
	data, err := ReadFile(fsys, name, 1<<20)
	must(t, err)
	return string(data)
}

func fmtNames(names []string) string {
	var b bytes.Buffer
	for i, n := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(n)
	}
	return b.String()
}
