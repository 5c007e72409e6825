package vfs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	l, err := LockDir(OS(), dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to an open file: a second open in this process conflicts as a
	// second process would.
	_, err = LockDir(WithErrors(OS(), nil), dir)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second lock: %v, want a LockedError", err)
	}
	if want := fmt.Sprintf("pid %d on host", os.Getpid()); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("refusal %q does not name the holder (%q) and the dir", err, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = LockDir(OS(), dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l.Close()
	// In memory there is one process: nothing to lock.
	m := NewMem()
	l1, err1 := LockDir(m, "/")
	l2, err2 := LockDir(m, "/")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	l1.Close()
	l2.Close()
}
