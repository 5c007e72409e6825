// Directory locks: one process at a time owns a data directory. As Kafka does, the lock
// is flock(2) on a ".lock" file in the directory, taken without waiting and held until
// the process releases it or dies (the kernel drops it then, so a crash leaves no stale
// lock). The file holds the holder's pid, host and start time, so a refusal can name it.
// The file is never removed: removing it while another process waits to lock it would
// let two processes hold "the" lock on two different files.
package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// LockFileName is the lock file in each locked directory.
const LockFileName = ".lock"

// LockedError is a directory another process holds.
type LockedError struct {
	Dir    string
	Holder string // what the lock file says about the holder, "" if unreadable
}

func (e *LockedError) Error() string {
	h := e.Holder
	if h == "" {
		h = "a process that left no note"
	}
	return fmt.Sprintf("%s is in use by another process (%s): %s is locked", e.Dir, h, filepath.Join(e.Dir, LockFileName))
}

// Locker is a filesystem whose directories can be locked between processes.
type Locker interface {
	LockDir(dir string) (io.Closer, error)
}

// LockDir locks dir for this process, failing at once with a *LockedError if another
// process holds it. Close releases it. An in-memory filesystem is private to one
// process: it is not locked.
func LockDir(fsys FS, dir string) (io.Closer, error) {
	switch f := fsys.(type) {
	case Locker:
		return f.LockDir(dir)
	case osFS:
		return lockOSDir(dir)
	case *ErrorFS:
		return LockDir(f.FS, dir)
	}
	return noLock{}, nil
}

type noLock struct{}

func (noLock) Close() error { return nil }

// dirLock is a held lock: the open lock file.
type dirLock struct{ f *os.File }

func (l *dirLock) Close() error {
	if l.f == nil {
		return nil
	}
	// Closing the only descriptor of the open file releases the flock.
	err := l.f.Close()
	l.f = nil
	return err
}

func lockOSDir(dir string) (io.Closer, error) {
	name := filepath.Join(dir, LockFileName)
	// Not O_TRUNC: the holder's note must survive until the lock is ours.
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := flockExclusive(f); err != nil {
		defer f.Close()
		if errors.Is(err, errWouldBlock) {
			note, _ := io.ReadAll(io.LimitReader(f, 1024))
			return nil, &LockedError{Dir: dir, Holder: strings.Join(strings.Fields(string(note)), " ")}
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	host, _ := os.Hostname()
	note := fmt.Sprintf("pid %d on host %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(note), 0)
	}
	// The note is for operators and refusals; the lock itself is the flock, so a failed
	// note does not stop the start.
	return &dirLock{f: f}, nil
}
