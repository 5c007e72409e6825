// ErrorFS: a filesystem wrapper that injects errors, modelled on pebble's vfs/errorfs.
// Every operation is reported to an Injector, which may fail it; tests use it to fail
// the Nth write or sync, or every write after a point (a full disk), and check that the
// log reports the error and stays consistent.
package vfs

import (
	"errors"
	"fmt"
	"os"
	"sync"
)

// ErrInjected is the error an injector returns unless it is given another.
var ErrInjected = errors.New("injected error")

// OpKind is the kind of an operation seen by an Injector.
type OpKind int

const (
	OpOpen OpKind = iota
	OpRead
	OpWrite
	OpSync
	OpTruncate
	OpClose
	OpRemove
	OpRename
	OpMkdir
	OpReadDir
	OpStat
	OpSyncDir
)

func (k OpKind) String() string {
	names := [...]string{"open", "read", "write", "sync", "truncate", "close", "remove", "rename", "mkdir", "readdir", "stat", "syncdir"}
	if int(k) < len(names) {
		return names[k]
	}
	return fmt.Sprintf("op(%d)", int(k))
}

// Op is one operation about to run.
type Op struct {
	Kind OpKind
	Path string
}

// Injector decides whether an operation fails; a nil error lets it run.
type Injector interface {
	MaybeError(op Op) error
}

// InjectorFunc adapts a function to an Injector.
type InjectorFunc func(op Op) error

func (f InjectorFunc) MaybeError(op Op) error { return f(op) }

// Counter fails operations of one kind by their 1-based index among operations of that
// kind: exactly the Nth (From == To == N) or every one from From on (To == 0).
type Counter struct {
	Kind     OpKind
	From, To int64
	Err      error // ErrInjected if nil

	mu sync.Mutex
	n  int64
}

// FailNth fails the nth operation of kind and no other.
func FailNth(kind OpKind, n int64) *Counter { return &Counter{Kind: kind, From: n, To: n} }

// FailFrom fails the nth operation of kind and every later one (a disk that filled up).
func FailFrom(kind OpKind, n int64) *Counter { return &Counter{Kind: kind, From: n} }

func (c *Counter) MaybeError(op Op) error {
	if op.Kind != c.Kind {
		return nil
	}
	c.mu.Lock()
	c.n++
	n := c.n
	c.mu.Unlock()
	if n >= c.From && (c.To == 0 || n <= c.To) {
		err := c.Err
		if err == nil {
			err = ErrInjected
		}
		return fmt.Errorf("%s %s (#%d): %w", op.Kind, op.Path, n, err)
	}
	return nil
}

// Count returns how many operations of the counter's kind it has seen.
func (c *Counter) Count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// ErrorFS wraps an FS, asking inj before every operation.
type ErrorFS struct {
	FS  FS
	Inj Injector
	// TornWrites makes a failed write first write half its bytes, as a write that hit a
	// full disk may.
	TornWrites bool
}

// WithErrors wraps fsys so that inj may fail any operation.
func WithErrors(fsys FS, inj Injector) *ErrorFS { return &ErrorFS{FS: fsys, Inj: inj} }

func (e *ErrorFS) maybe(kind OpKind, path string) error {
	if e.Inj == nil {
		return nil
	}
	return e.Inj.MaybeError(Op{Kind: kind, Path: path})
}

func (e *ErrorFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if err := e.maybe(OpOpen, name); err != nil {
		return nil, err
	}
	f, err := e.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &errorFile{File: f, fs: e}, nil
}

func (e *ErrorFS) Remove(name string) error {
	if err := e.maybe(OpRemove, name); err != nil {
		return err
	}
	return e.FS.Remove(name)
}

func (e *ErrorFS) RemoveAll(path string) error {
	if err := e.maybe(OpRemove, path); err != nil {
		return err
	}
	return e.FS.RemoveAll(path)
}

func (e *ErrorFS) Rename(oldpath, newpath string) error {
	if err := e.maybe(OpRename, oldpath); err != nil {
		return err
	}
	return e.FS.Rename(oldpath, newpath)
}

func (e *ErrorFS) MkdirAll(path string, perm os.FileMode) error {
	if err := e.maybe(OpMkdir, path); err != nil {
		return err
	}
	return e.FS.MkdirAll(path, perm)
}

func (e *ErrorFS) ReadDir(name string) ([]os.DirEntry, error) {
	if err := e.maybe(OpReadDir, name); err != nil {
		return nil, err
	}
	return e.FS.ReadDir(name)
}

func (e *ErrorFS) Stat(name string) (os.FileInfo, error) {
	if err := e.maybe(OpStat, name); err != nil {
		return nil, err
	}
	return e.FS.Stat(name)
}

func (e *ErrorFS) SyncDir(dir string) error {
	if err := e.maybe(OpSyncDir, dir); err != nil {
		return err
	}
	return e.FS.SyncDir(dir)
}

type errorFile struct {
	File
	fs *ErrorFS
}

func (f *errorFile) Read(p []byte) (int, error) {
	if err := f.fs.maybe(OpRead, f.Name()); err != nil {
		return 0, err
	}
	return f.File.Read(p)
}

func (f *errorFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fs.maybe(OpRead, f.Name()); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *errorFile) Write(p []byte) (int, error) {
	if err := f.fs.maybe(OpWrite, f.Name()); err != nil {
		if f.fs.TornWrites && len(p) > 1 {
			n, _ := f.File.Write(p[:len(p)/2])
			return n, err
		}
		return 0, err
	}
	return f.File.Write(p)
}

func (f *errorFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.maybe(OpWrite, f.Name()); err != nil {
		if f.fs.TornWrites && len(p) > 1 {
			n, _ := f.File.WriteAt(p[:len(p)/2], off)
			return n, err
		}
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *errorFile) Sync() error {
	if err := f.fs.maybe(OpSync, f.Name()); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *errorFile) Truncate(size int64) error {
	if err := f.fs.maybe(OpTruncate, f.Name()); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *errorFile) Close() error {
	if err := f.fs.maybe(OpClose, f.Name()); err != nil {
		// The descriptor is released either way, as close(2) does.
		f.File.Close()
		return err
	}
	return f.File.Close()
}
