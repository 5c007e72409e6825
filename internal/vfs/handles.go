// LimitFS: a filesystem wrapper that keeps at most a configured number of files open at
// the layer below, whatever number its callers hold open. A broker holds three files per
// segment of every partition; with many partitions that passes any open-file limit, and
// a node that cannot open its files cannot start. Here every File handed out is a handle:
// when a handle must be opened and the limit is reached, the least recently used idle
// handle (CLOCK: a referenced bit, a second chance) is closed underneath, and reopened by
// its name on its next use, at the position it had.
//
// What a handle keeps across being closed underneath:
//   - its name: renames and removals through this FS move the names of the handles they
//     touch (a renamed directory moves every handle below it), so a handle reopens what it
//     had open. A file about to lose its name (removed, or renamed over) is opened first
//     if it was closed underneath, and stays open (its data lives only in the open file,
//     as POSIX keeps it) until its handles close. Files below a removed directory are not
//     reopened: their handles fail with fs.ErrNotExist if they were closed underneath;
//   - its durability: a handle with unsynced writes is fsynced before it is closed
//     underneath, and a failure is returned by its next Sync (after a failed fsync,
//     Linux may have dropped the pages, and a fresh descriptor would not report it);
//   - its file offset, for Read, Write and Seek.
//
// Handles in use (an operation in flight, or an OS file pinned by PinOSFile) are never
// closed underneath. If every open handle is in use the limit is exceeded for the moment
// rather than wait (Stats counts it), and an open that fails with EMFILE or ENFILE closes
// another idle handle and tries again.
package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// LimitFS wraps an FS, keeping at most max of its files open at once (see above).
type LimitFS struct {
	fs  FS
	max int

	mu    sync.Mutex
	nOpen int       // handles with a file open below (ring members and pinned ones)
	ring  []*handle // CLOCK ring: open handles that may be closed underneath
	hand  int
	byDir map[string]map[*handle]struct{} // live handles by the directory of their name

	evictions, reopens, overLimit atomic.Int64
}

// LimitOpenFiles wraps fsys so that at most max files are open below it at once.
func LimitOpenFiles(fsys FS, max int) *LimitFS {
	return &LimitFS{fs: fsys, max: max, byDir: map[string]map[*handle]struct{}{}}
}

// LimitStats counts what a LimitFS did.
type LimitStats struct {
	Open      int   // files open below now
	Max       int   // the limit
	Evictions int64 // files closed underneath to make room
	Reopens   int64 // handles reopened on use
	OverLimit int64 // opens past the limit because every open file was in use
}

// Stats returns the counters.
func (l *LimitFS) Stats() LimitStats {
	l.mu.Lock()
	open := l.nOpen
	l.mu.Unlock()
	return LimitStats{Open: open, Max: l.max, Evictions: l.evictions.Load(), Reopens: l.reopens.Load(), OverLimit: l.overLimit.Load()}
}

// handle is a File whose file below may be closed and reopened.
type handle struct {
	l    *LimitFS
	name string      // as opened: Name()
	flag int         // for reopening: the open flags without O_CREATE, O_EXCL, O_TRUNC
	perm os.FileMode //

	// mu: held shared by an operation using f, exclusively to open or close f and by the
	// operations that use f's offset (Read, Write, Seek).
	mu     sync.RWMutex
	f      File  // nil while closed underneath
	pos    int64 // f's offset, kept while closed underneath
	closed bool
	// syncErr is a failed fsync before closing underneath, for the next Sync.
	syncErr error

	dirty atomic.Bool  // written since the last successful fsync
	ref   atomic.Bool  // used since the CLOCK hand last passed
	pins  atomic.Int32 // holds against closing underneath (holdOpen)

	// Guarded by l.mu.
	path     string // current name: follows renames
	ringIdx  int    // position in l.ring, -1 if not in it
	unlinked bool   // the name was removed while f was open: f stays open
	gone     bool   // the name was removed while f was closed: nothing to reopen
}

func (l *LimitFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	name = filepath.Clean(name)
	f, err := l.openBelow(name, flag, perm)
	if err != nil {
		return nil, err
	}
	h := &handle{l: l, name: name, flag: flag &^ (os.O_CREATE | os.O_EXCL | os.O_TRUNC), perm: perm, f: f, path: name, ringIdx: -1}
	h.ref.Store(true)
	l.mu.Lock()
	l.addRingLocked(h)
	l.indexLocked(h)
	l.mu.Unlock()
	return h, nil
}

// openBelow opens a file below, making room first; the new file counts as open.
func (l *LimitFS) openBelow(name string, flag int, perm os.FileMode) (File, error) {
	l.makeRoom()
	for try := 0; ; try++ {
		f, err := l.fs.OpenFile(name, flag, perm)
		if err == nil {
			return f, nil
		}
		if try < 8 && (errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) {
			// The process (sockets, pinned files) or the system is out of descriptors:
			// give one of ours back and try again.
			if l.evictOne() {
				continue
			}
		}
		l.mu.Lock()
		l.nOpen--
		l.mu.Unlock()
		return nil, err
	}
}

// makeRoom closes idle files below until one more fits, and counts it.
func (l *LimitFS) makeRoom() {
	for {
		l.mu.Lock()
		if l.nOpen < l.max {
			l.nOpen++
			l.mu.Unlock()
			return
		}
		v := l.victimLocked()
		if v == nil {
			l.nOpen++
			l.mu.Unlock()
			l.overLimit.Add(1)
			return
		}
		l.mu.Unlock()
		v.closeBelow()
	}
}

// evictOne closes one idle file below, if there is one.
func (l *LimitFS) evictOne() bool {
	l.mu.Lock()
	v := l.victimLocked()
	l.mu.Unlock()
	if v == nil {
		return false
	}
	v.closeBelow()
	return true
}

// victimLocked picks an idle handle by CLOCK, takes its lock (never waiting for it: a
// handle in use is skipped) and takes it out of the ring and the count. The caller
// closes it with closeBelow.
func (l *LimitFS) victimLocked() *handle {
	for scanned := 0; scanned < 2*len(l.ring); scanned++ {
		if l.hand >= len(l.ring) {
			l.hand = 0
		}
		h := l.ring[l.hand]
		l.hand++
		if h.ref.Swap(false) || h.pins.Load() > 0 {
			continue
		}
		if !h.mu.TryLock() {
			continue
		}
		l.removeRingLocked(h)
		l.nOpen--
		return h
	}
	return nil
}

func (l *LimitFS) addRingLocked(h *handle) {
	h.ringIdx = len(l.ring)
	l.ring = append(l.ring, h)
}

func (l *LimitFS) removeRingLocked(h *handle) {
	i := h.ringIdx
	if i < 0 {
		return
	}
	last := len(l.ring) - 1
	l.ring[i] = l.ring[last]
	l.ring[i].ringIdx = i
	l.ring[last] = nil
	l.ring = l.ring[:last]
	h.ringIdx = -1
}

// closeBelow syncs (if written) and closes h's file below. h.mu is held by the caller
// (victimLocked) and released here.
func (h *handle) closeBelow() {
	defer h.mu.Unlock()
	f := h.f
	h.f = nil
	if h.dirty.Load() {
		if err := f.Sync(); err != nil && h.syncErr == nil {
			h.syncErr = err
		}
		h.dirty.Store(false)
	}
	if pos, err := f.Seek(0, io.SeekCurrent); err == nil {
		h.pos = pos
	}
	f.Close()
	h.l.evictions.Add(1)
}

var errHandleClosed = errors.New("file already closed")

// reopenLocked opens h's file below again. h.mu is held exclusively.
func (h *handle) reopenLocked() error {
	l := h.l
	l.mu.Lock()
	p, gone := h.path, h.gone
	l.mu.Unlock()
	if gone {
		return &os.PathError{Op: "reopen", Path: h.name, Err: fs.ErrNotExist}
	}
	f, err := l.openBelow(p, h.flag, h.perm)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", p, err)
	}
	if h.pos != 0 {
		if _, err := f.Seek(h.pos, io.SeekStart); err != nil {
			f.Close()
			l.mu.Lock()
			l.nOpen--
			l.mu.Unlock()
			return fmt.Errorf("reopen %s: %w", p, err)
		}
	}
	l.mu.Lock()
	if h.unlinked || h.gone {
		// Removed while we opened it: what we opened is not the file any more.
		l.nOpen--
		l.mu.Unlock()
		f.Close()
		return &os.PathError{Op: "reopen", Path: h.name, Err: fs.ErrNotExist}
	}
	l.addRingLocked(h)
	l.mu.Unlock()
	h.f = f
	l.reopens.Add(1)
	return nil
}

// use returns h's open file with h.mu held shared; the caller calls h.mu.RUnlock.
func (h *handle) use() (File, error) {
	for {
		h.mu.RLock()
		if h.f != nil {
			h.ref.Store(true)
			return h.f, nil
		}
		closed := h.closed
		h.mu.RUnlock()
		if closed {
			return nil, &os.PathError{Op: "use", Path: h.name, Err: errHandleClosed}
		}
		h.mu.Lock()
		var err error
		if h.f == nil && !h.closed {
			err = h.reopenLocked()
		}
		h.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
}

// useExclusive is use with h.mu held exclusively (for the file offset).
func (h *handle) useExclusive() (File, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, &os.PathError{Op: "use", Path: h.name, Err: errHandleClosed}
	}
	if h.f == nil {
		if err := h.reopenLocked(); err != nil {
			h.mu.Unlock()
			return nil, err
		}
	}
	h.ref.Store(true)
	return h.f, nil
}

func (h *handle) Read(p []byte) (int, error) {
	f, err := h.useExclusive()
	if err != nil {
		return 0, err
	}
	defer h.mu.Unlock()
	return f.Read(p)
}

func (h *handle) Write(p []byte) (int, error) {
	f, err := h.useExclusive()
	if err != nil {
		return 0, err
	}
	defer h.mu.Unlock()
	h.dirty.Store(true)
	return f.Write(p)
}

func (h *handle) Seek(offset int64, whence int) (int64, error) {
	f, err := h.useExclusive()
	if err != nil {
		return 0, err
	}
	defer h.mu.Unlock()
	return f.Seek(offset, whence)
}

func (h *handle) ReadAt(p []byte, off int64) (int, error) {
	f, err := h.use()
	if err != nil {
		return 0, err
	}
	defer h.mu.RUnlock()
	return f.ReadAt(p, off)
}

func (h *handle) WriteAt(p []byte, off int64) (int, error) {
	f, err := h.use()
	if err != nil {
		return 0, err
	}
	defer h.mu.RUnlock()
	h.dirty.Store(true)
	return f.WriteAt(p, off)
}

func (h *handle) Truncate(size int64) error {
	f, err := h.use()
	if err != nil {
		return err
	}
	defer h.mu.RUnlock()
	h.dirty.Store(true)
	return f.Truncate(size)
}

func (h *handle) Stat() (os.FileInfo, error) {
	f, err := h.use()
	if err != nil {
		return nil, err
	}
	defer h.mu.RUnlock()
	return f.Stat()
}

func (h *handle) Name() string { return h.name }

// Sync fsyncs the file. A handle closed underneath was fsynced then; if that fsync
// failed, this Sync returns its error, once, as a failed writeback is reported to the
// next fsync of a descriptor (the caller's own failed Sync is its to keep).
func (h *handle) Sync() error {
	h.mu.RLock()
	if h.closed {
		h.mu.RUnlock()
		return &os.PathError{Op: "sync", Path: h.name, Err: errHandleClosed}
	}
	if h.f == nil || h.syncErr != nil {
		h.mu.RUnlock()
		h.mu.Lock()
		err := h.syncErr
		h.syncErr = nil
		h.mu.Unlock()
		return err
	}
	f := h.f
	h.ref.Store(true)
	// Cleared before the fsync: a write racing with it sets it again.
	h.dirty.Store(false)
	err := f.Sync()
	h.mu.RUnlock()
	if err != nil {
		h.dirty.Store(true)
	}
	return err
}

func (h *handle) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return &os.PathError{Op: "close", Path: h.name, Err: errHandleClosed}
	}
	h.closed = true
	f := h.f
	h.f = nil
	l := h.l
	l.mu.Lock()
	l.removeRingLocked(h)
	if f != nil {
		l.nOpen--
	}
	l.unindexLocked(h)
	l.mu.Unlock()
	if f == nil {
		return nil
	}
	return f.Close()
}

// osFile returns the operating-system file open below h now (see OSFile).
func (h *handle) osFile() (*os.File, bool) {
	f, err := h.use()
	if err != nil {
		return nil, false
	}
	defer h.mu.RUnlock()
	return OSFile(f)
}

// PinOSFile returns the operating-system file behind f, kept open until unpin is
// called, for a caller that makes its own system calls on it (pwritev). write says the
// caller writes to it (so the file counts as unsynced). ok is false if f has no OS file
// behind it; unpin is then a no-op.
func PinOSFile(f File, write bool) (osf *os.File, unpin func(), ok bool) {
	h, isHandle := f.(*handle)
	if !isHandle {
		osf, ok = OSFile(f)
		return osf, func() {}, ok
	}
	below, err := h.use()
	if err != nil {
		return nil, func() {}, false
	}
	osf, ok = OSFile(below)
	if !ok {
		h.mu.RUnlock()
		return nil, func() {}, false
	}
	if write {
		h.dirty.Store(true)
	}
	return osf, h.mu.RUnlock, true
}

// under reports whether p is dir or below it.
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// forgetLocked records that the file of h lost its name.
func (l *LimitFS) forgetLocked(h *handle) {
	if h.ringIdx >= 0 {
		// Open: keep it open, outside the ring, for as long as it is used.
		l.removeRingLocked(h)
		h.unlinked = true
		return
	}
	if !h.unlinked {
		// Either closed underneath, or being reopened (reopenLocked sees gone).
		h.gone = true
	}
}

// moveLocked renames the handles at from (a file) or below it (a directory) to to.
func (l *LimitFS) moveLocked(from, to string, dir bool) {
	var moved []*handle
	for h := range l.byDir[filepath.Dir(from)] {
		if h.path == from {
			moved = append(moved, h)
		}
	}
	if dir {
		for d, hs := range l.byDir {
			if under(d, from) {
				for h := range hs {
					moved = append(moved, h)
				}
			}
		}
	}
	for _, h := range moved {
		l.unindexLocked(h)
		h.path = to + strings.TrimPrefix(h.path, from)
		l.indexLocked(h)
	}
}

func (l *LimitFS) indexLocked(h *handle) {
	d := filepath.Dir(h.path)
	if l.byDir[d] == nil {
		l.byDir[d] = map[*handle]struct{}{}
	}
	l.byDir[d][h] = struct{}{}
}

func (l *LimitFS) unindexLocked(h *handle) {
	d := filepath.Dir(h.path)
	delete(l.byDir[d], h)
	if len(l.byDir[d]) == 0 {
		delete(l.byDir, d)
	}
}

// forgetNameLocked forgets the handles of the file named p.
func (l *LimitFS) forgetNameLocked(p string) {
	for h := range l.byDir[filepath.Dir(p)] {
		if h.path == p {
			l.forgetLocked(h)
		}
	}
}

// holdOpen opens the handles of the file named p that are closed underneath and keeps
// every handle of it from being closed underneath until release: the file is about to
// lose its name, and only an open file can still be read then. (A removed directory's
// files are not held: their handles are closed first by those who remove them.)
func (l *LimitFS) holdOpen(p string) (release func()) {
	l.mu.Lock()
	var hs []*handle
	for h := range l.byDir[filepath.Dir(p)] {
		if h.path == p && !h.unlinked && !h.gone {
			h.pins.Add(1)
			hs = append(hs, h)
		}
	}
	l.mu.Unlock()
	for _, h := range hs {
		if _, err := h.use(); err == nil {
			h.mu.RUnlock()
		}
	}
	return func() {
		for _, h := range hs {
			h.pins.Add(-1)
		}
	}
}

func (l *LimitFS) Rename(oldpath, newpath string) error {
	oldpath, newpath = filepath.Clean(oldpath), filepath.Clean(newpath)
	release := l.holdOpen(newpath)
	defer release()
	if err := l.fs.Rename(oldpath, newpath); err != nil {
		return err
	}
	st, err := l.fs.Stat(newpath)
	dir := err == nil && st.IsDir()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !dir {
		l.forgetNameLocked(newpath) // a file renamed over: its handles lost their name
	}
	l.moveLocked(oldpath, newpath, dir)
	return nil
}

func (l *LimitFS) Remove(name string) error {
	name = filepath.Clean(name)
	release := l.holdOpen(name)
	defer release()
	if err := l.fs.Remove(name); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgetNameLocked(name)
	return nil
}

func (l *LimitFS) RemoveAll(p string) error {
	p = filepath.Clean(p)
	err := l.fs.RemoveAll(p)
	l.mu.Lock()
	var hs []*handle
	for d, m := range l.byDir {
		if under(d, p) || d == filepath.Dir(p) {
			for h := range m {
				if under(h.path, p) {
					hs = append(hs, h)
				}
			}
		}
	}
	l.mu.Unlock()
	if err != nil {
		// Some files may be left: forget only those that are gone.
		kept := hs[:0]
		for _, h := range hs {
			if _, serr := l.fs.Stat(h.path); serr != nil {
				kept = append(kept, h)
			}
		}
		hs = kept
	}
	l.mu.Lock()
	for _, h := range hs {
		l.forgetLocked(h)
	}
	l.mu.Unlock()
	return err
}

func (l *LimitFS) MkdirAll(path string, perm os.FileMode) error { return l.fs.MkdirAll(path, perm) }
func (l *LimitFS) ReadDir(name string) ([]os.DirEntry, error)   { return l.fs.ReadDir(name) }
func (l *LimitFS) Stat(name string) (os.FileInfo, error)        { return l.fs.Stat(name) }
func (l *LimitFS) SyncDir(dir string) error                     { return l.fs.SyncDir(dir) }

// LockDir locks dir in the filesystem below (lock.go).
func (l *LimitFS) LockDir(dir string) (io.Closer, error) { return LockDir(l.fs, dir) }
