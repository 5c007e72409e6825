package vfs

import (
	"os"
	"testing"
)

func TestMemRenameDir(t *testing.T) {
	m := NewMem()
	if err := m.MkdirAll("/d/a/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"/", "/d", "/d/a"} {
		m.SyncDir(d)
	}
	write := func(name, data string, sync bool) File {
		f, err := m.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(data))
		if sync {
			f.Sync()
			m.SyncDir("/d/a")
		}
		return f
	}
	write("/d/a/synced", "s", true)
	open := write("/d/a/sub/pending", "p", false)
	if err := m.Rename("/d/a", "/d/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Stat("/d/a/synced"); err == nil {
		t.Fatal("old name still there")
	}
	if got, err := ReadFile(m, "/d/b/sub/pending", 10); err != nil || string(got) != "p" {
		t.Fatalf("moved file: %q %v", got, err)
	}
	if _, err := open.Write([]byte("q")); err != nil {
		t.Fatalf("open file after its directory moved: %v", err)
	}
	if err := m.Rename("/d/b", "/d/b/x"); err == nil {
		t.Fatal("moved a directory into itself")
	}
	c := m.Crash()
	if got, err := ReadFile(c, "/d/b/synced", 10); err != nil || string(got) != "s" {
		t.Fatalf("synced file after a crash: %q %v", got, err)
	}
	if _, err := c.Stat("/d/b/sub/pending"); err == nil {
		t.Fatal("a file never made durable survived the crash")
	}
	if _, err := c.Stat("/d/a"); err == nil {
		t.Fatal("old directory back after a crash")
	}
}
