package chaos

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDiskFillFreeGrow: in the sandbox a tmpfs disk fills up (the next
// write fails with ENOSPC), frees (writes succeed again), grows, and
// unmounts; the host never sees it.
func TestDiskFillFreeGrow(t *testing.T) {
	if !inSandbox(t) {
		return
	}
	dir := filepath.Join(t.TempDir(), "disk")
	d, err := MountDisk(dir, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Unmount()
	data := filepath.Join(dir, "data")
	if err := os.WriteFile(data, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	taken, err := d.Fill()
	if err != nil || taken < 2<<20 {
		t.Fatalf("fill took %d bytes: %v", taken, err)
	}
	write := func() error {
		f, err := os.OpenFile(data, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.Write(make([]byte, 64<<10))
		return err
	}
	if err := write(); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("write to a full disk: %v, want ENOSPC", err)
	}
	if err := d.Free(); err != nil {
		t.Fatal(err)
	}
	if err := write(); err != nil {
		t.Fatalf("write after freeing: %v", err)
	}
	if err := d.Grow(8 << 20); err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || int64(st.Blocks)*st.Bsize != 8<<20 {
		t.Fatalf("after growing: %d bytes (%v), want %d", int64(st.Blocks)*st.Bsize, err, 8<<20)
	}
	if err := d.Unmount(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the disk's file outlived the unmount: %v", err)
	}
}

// TestDiskRefusesTheHost: outside the sandbox nothing is mounted.
func TestDiskRefusesTheHost(t *testing.T) {
	if InSandbox() {
		return
	}
	if _, err := MountDisk(filepath.Join(t.TempDir(), "disk"), 1<<20); err == nil {
		t.Fatal("a tmpfs mounted outside the sandbox")
	}
}
