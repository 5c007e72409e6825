// ErrorFS: a filesystem wrapper that injects errors, modelled on pebble's vfs/errorfs.
// Every operation is reported to an Injector, which may fail it; tests use it to fail
// the Nth write or sync, or every write after a point (a full disk), and check that the
// log reports the error and stays consistent.
//
// The faults are the ones Linux has, not gentler ones:
//   - a failed write may have written a prefix of its buffer (n < len with an error): an
//     injector returns *Partial to say how much, DiskFull writes what fits and then
//     answers ENOSPC, ShortWrites cuts writes at random points chosen by a seed;
//   - a failed Sync of a MemFS file drops the file's unsynced writes (memFile.dropUnsynced):
//     after a writeback error Linux may mark the dirty pages clean and evict them, and the
//     next fsync reports success ("fsyncgate"), so a caller that retries the fsync has
//     nothing durable to show for it. Over the OS filesystem nothing is dropped: the
//     double cannot reach the page cache.
package vfs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
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
	// Off and Len describe a write: its file offset (-1 for Write, which writes at the
	// file's position) and its length in bytes. Zero for other operations.
	Off int64
	Len int
}

// Partial is an error an Injector returns for a write to make it write only the first N
// bytes of its buffer (at most all of them) and then fail with Err (ErrInjected if nil):
// a short write, or a disk that filled up part way through the buffer.
type Partial struct {
	N   int
	Err error
}

func (p *Partial) Error() string {
	return fmt.Sprintf("write cut after %d bytes: %v", p.N, p.err())
}

func (p *Partial) Unwrap() error { return p.err() }

func (p *Partial) err() error {
	if p.Err == nil {
		return ErrInjected
	}
	return p.Err
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

// DiskFull is an Injector for a disk with a number of free bytes: each write uses up
// its length; the write that does not fit writes the bytes that do and fails with
// ENOSPC, and every later write fails with ENOSPC at once, until SetFree makes room
// (the operator freed space). Other operations are not affected.
type DiskFull struct {
	mu   sync.Mutex
	free int64
}

// NewDiskFull returns a disk with free bytes left.
func NewDiskFull(free int64) *DiskFull { return &DiskFull{free: free} }

// SetFree sets the free bytes left.
func (d *DiskFull) SetFree(free int64) {
	d.mu.Lock()
	d.free = free
	d.mu.Unlock()
}

// Free returns the free bytes left.
func (d *DiskFull) Free() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.free
}

func (d *DiskFull) MaybeError(op Op) error {
	if op.Kind != OpWrite {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if int64(op.Len) <= d.free {
		d.free -= int64(op.Len)
		return nil
	}
	n := int(max(d.free, 0))
	d.free = 0
	return &Partial{N: n, Err: &os.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}}
}

// ShortWrites is an Injector that fails each write with probability P after writing a
// prefix of it (0 to len-1 bytes), with Err (EIO if nil). The choices come from a
// generator seeded by NewShortWrites, so a failing run replays from its seed given the
// same sequence of writes.
type ShortWrites struct {
	P   float64
	Err error

	mu  sync.Mutex
	rng *rand.Rand
}

// NewShortWrites returns a ShortWrites seeded with seed.
func NewShortWrites(seed uint64, p float64) *ShortWrites {
	return &ShortWrites{P: p, rng: rand.New(rand.NewPCG(seed, 0x5eed))}
}

func (s *ShortWrites) MaybeError(op Op) error {
	if op.Kind != OpWrite || op.Len == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rng.Float64() >= s.P {
		return nil
	}
	err := s.Err
	if err == nil {
		err = &os.PathError{Op: "write", Path: op.Path, Err: syscall.EIO}
	}
	return &Partial{N: s.rng.IntN(op.Len), Err: err}
}

// Chain is an Injector that asks each of its injectors in turn and returns the first
// error.
type Chain []Injector

func (c Chain) MaybeError(op Op) error {
	for _, inj := range c {
		if inj == nil {
			continue
		}
		if err := inj.MaybeError(op); err != nil {
			return err
		}
	}
	return nil
}

// ErrorFS wraps an FS, asking inj before every operation.
type ErrorFS struct {
	FS  FS
	Inj Injector
	// TornWrites makes a failed write whose error is not a *Partial first write half its
	// bytes, as a write that hit a full disk may.
	TornWrites bool
}

// WithErrors wraps fsys so that inj may fail any operation.
func WithErrors(fsys FS, inj Injector) *ErrorFS { return &ErrorFS{FS: fsys, Inj: inj} }

func (e *ErrorFS) maybe(kind OpKind, path string) error { return e.ask(Op{Kind: kind, Path: path}) }

func (e *ErrorFS) ask(op Op) error {
	if e.Inj == nil {
		return nil
	}
	return e.Inj.MaybeError(op)
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
	if err := f.fs.ask(Op{Kind: OpWrite, Path: f.Name(), Off: -1, Len: len(p)}); err != nil {
		return f.failWrite(err, p, f.File.Write)
	}
	return f.File.Write(p)
}

func (f *errorFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.ask(Op{Kind: OpWrite, Path: f.Name(), Off: off, Len: len(p)}); err != nil {
		return f.failWrite(err, p, func(b []byte) (int, error) { return f.File.WriteAt(b, off) })
	}
	return f.File.WriteAt(p, off)
}

// failWrite carries out an injected write failure: the prefix a *Partial names (or half
// the buffer with TornWrites) is written, and the error returned with its length.
func (f *errorFile) failWrite(err error, p []byte, write func([]byte) (int, error)) (int, error) {
	n := 0
	var pw *Partial
	switch {
	case errors.As(err, &pw):
		n, err = min(max(pw.N, 0), len(p)), pw.err()
	case f.fs.TornWrites && len(p) > 1:
		n = len(p) / 2
	}
	if n == 0 {
		return 0, err
	}
	m, werr := write(p[:n])
	if werr != nil {
		return m, werr
	}
	return m, err
}

// Sync fails as the injector says; a failed Sync of a MemFS file drops its unsynced
// writes (see the file comment).
func (f *errorFile) Sync() error {
	if err := f.fs.maybe(OpSync, f.Name()); err != nil {
		if d, ok := f.File.(interface{ dropUnsynced() }); ok {
			d.dropUnsynced()
		}
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
