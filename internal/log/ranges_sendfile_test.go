package log_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vltava/vltava/internal/log"
	"github.com/vltava/vltava/internal/vfs"
)

// TestPinRanges: a pinned range reads the same bytes after its file is closed and
// removed; files that are not the operating system's, or already closed, are not pinned
// (the caller reads them instead), and a failed pin leaves nothing open.
func TestPinRanges(t *testing.T) {
	dir := t.TempDir()
	open := func(fsys vfs.FS, name, content string) vfs.File {
		t.Helper()
		if err := fsys.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := fsys.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte(content), 0); err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b := open(vfs.OS(), "a", "0123456789"), open(vfs.OS(), "b", "abcdefghij")
	pins, ok := log.PinRanges(nil, []log.Range{{File: a, Pos: 2, Len: 3}, {File: b, Pos: 5, Len: 5}})
	if !ok || len(pins) != 2 {
		t.Fatalf("PinRanges = %v, %v", pins, ok)
	}
	a.Close()
	b.Close()
	os.Remove(filepath.Join(dir, "a"))
	os.Remove(filepath.Join(dir, "b"))
	for i, want := range []string{"234", "fghij"} {
		buf := make([]byte, pins[i].Len)
		if _, err := pins[i].File.ReadAt(buf, pins[i].Pos); err != nil || string(buf) != want {
			t.Fatalf("pinned range %d after close and remove: %q, %v; want %q", i, buf, err, want)
		}
		if err := pins[i].Close(); err != nil {
			t.Fatal(err)
		}
	}

	c := open(vfs.OS(), "c", "xyz")
	defer c.Close()
	mem := open(vfs.NewMem(), "m", "xyz")
	errfs := open(vfs.WithErrors(vfs.OS(), vfs.InjectorFunc(func(vfs.Op) error { return nil })), "e", "xyz")
	defer errfs.Close()
	closed := open(vfs.OS(), "d", "xyz")
	closed.Close()
	fds := openFDs(t)
	for _, f := range []vfs.File{mem, errfs, closed} {
		pins, ok := log.PinRanges(nil, []log.Range{{File: c, Pos: 0, Len: 3}, {File: f, Pos: 0, Len: 3}})
		if ok || len(pins) != 0 {
			t.Fatalf("%s: PinRanges = %v, %v; want nothing pinned", f.Name(), pins, ok)
		}
	}
	if n := openFDs(t); n != fds {
		t.Fatalf("%d descriptors open after failed pins, %d before", n, fds)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}
