// MemFS: an in-memory filesystem that models what survives a crash.
//
// Each file keeps two states: its synced content (what the last File.Sync made durable)
// and the ordered list of writes and truncations since then. The namespace (which name
// points at which file) likewise has a synced view, updated per directory by SyncDir,
// and the ordered list of creations, renames and removals since. A crash (Crash,
// CrashPartial) returns a new MemFS holding the synced state, optionally with an
// arbitrary prefix of the unsynced operations applied, the last write of that prefix
// possibly torn. Directories themselves are durable as soon as MkdirAll returns.
//
// A failed Sync (ErrorFS failing one over a MemFS file) drops the file's unsynced writes:
// its content goes back to what the last successful Sync made durable, for every reader,
// and a later Sync succeeds without bringing them back. Linux may do the same after a
// writeback error (dirty pages marked clean, then evicted), so a log that answers a
// failed fsync by retrying it would find its data gone; the double makes that certain.
//
// An open file stays readable after its name is removed or renamed, as on POSIX: the
// log relies on that for readers of deleted segments.
package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// MemFS is an in-memory FS. All methods are safe for concurrent use.
type MemFS struct {
	mu sync.Mutex
	// ns maps a clean path to its file; dirs holds every directory.
	ns   map[string]*memNode
	dirs map[string]bool
	// syncedNS is the namespace as it would be found after a crash; pending holds the
	// namespace operations not yet made durable by SyncDir, oldest first. syncedDirs are
	// the directories whose entry in their parent is durable: as on Linux, a directory
	// made by MkdirAll is lost in a crash, with every file in it, synced or not, until
	// its parent is synced.
	syncedNS   map[string]*memNode
	syncedDirs map[string]bool
	pending    []nsOp
}

type nsOpKind int

const (
	nsCreate nsOpKind = iota
	nsRename
	nsRemove
	nsMkdir
)

type nsOp struct {
	kind     nsOpKind
	path     string // created or removed path, or rename source
	newPath  string // rename target
	node     *memNode
	dirsSync []string // directories whose SyncDir makes this op durable
}

// memNode is one file's content. Its lock guards data against concurrent ReadAt and Write.
type memNode struct {
	mu     sync.RWMutex
	data   []byte
	synced []byte
	ops    []dataOp // since the last Sync, oldest first
}

type dataOp struct {
	off      int64
	data     []byte // nil for a truncation
	truncate bool
	size     int64 // truncation size
}

// NewMem returns an empty in-memory filesystem with a root directory "/" and ".".
func NewMem() *MemFS {
	return &MemFS{
		ns:         map[string]*memNode{},
		dirs:       map[string]bool{"/": true, ".": true},
		syncedNS:   map[string]*memNode{},
		syncedDirs: map[string]bool{"/": true, ".": true},
	}
}

func clean(name string) string { return path.Clean(name) }

func (m *MemFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dirs[name] {
		return nil, &os.PathError{Op: "open", Path: name, Err: errors.New("is a directory")}
	}
	n, ok := m.ns[name]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case !ok && flag&os.O_CREATE == 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case !ok:
		if !m.dirs[path.Dir(name)] {
			return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		n = &memNode{}
		m.ns[name] = n
		m.pending = append(m.pending, nsOp{kind: nsCreate, path: name, node: n, dirsSync: []string{path.Dir(name)}})
	}
	f := &memFile{node: n, name: name, flag: flag}
	if flag&os.O_TRUNC != 0 && flag&(os.O_WRONLY|os.O_RDWR) != 0 {
		if err := f.Truncate(0); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (m *MemFS) Remove(name string) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dirs[name] {
		for p := range m.ns {
			if path.Dir(p) == name {
				return &os.PathError{Op: "remove", Path: name, Err: errors.New("directory not empty")}
			}
		}
		for d := range m.dirs {
			if d != name && path.Dir(d) == name {
				return &os.PathError{Op: "remove", Path: name, Err: errors.New("directory not empty")}
			}
		}
		delete(m.dirs, name)
		return nil
	}
	if _, ok := m.ns[name]; !ok {
		return &os.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(m.ns, name)
	m.pending = append(m.pending, nsOp{kind: nsRemove, path: name, dirsSync: []string{path.Dir(name)}})
	return nil
}

// RemoveAll removes path and everything below it. Removing directories is made durable
// at once (tests remove whole logs, not parts of them); making them is not (MkdirAll).
func (m *MemFS) RemoveAll(p string) error {
	p = clean(p)
	m.mu.Lock()
	defer m.mu.Unlock()
	under := func(q string) bool { return q == p || strings.HasPrefix(q, p+"/") }
	for q := range m.ns {
		if under(q) {
			delete(m.ns, q)
		}
	}
	for q := range m.syncedNS {
		if under(q) {
			delete(m.syncedNS, q)
		}
	}
	m.pending = slices.DeleteFunc(m.pending, func(op nsOp) bool { return under(op.path) || under(op.newPath) })
	for d := range m.dirs {
		if under(d) && d != "/" && d != "." {
			delete(m.dirs, d)
			delete(m.syncedDirs, d)
		}
	}
	return nil
}

func (m *MemFS) Rename(oldpath, newpath string) error {
	oldpath, newpath = clean(oldpath), clean(newpath)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dirs[oldpath] {
		return m.renameDirLocked(oldpath, newpath) // memdir.go
	}
	n, ok := m.ns[oldpath]
	if !ok {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrNotExist}
	}
	if !m.dirs[path.Dir(newpath)] {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrNotExist}
	}
	delete(m.ns, oldpath)
	m.ns[newpath] = n
	m.pending = append(m.pending, nsOp{kind: nsRename, path: oldpath, newPath: newpath, node: n,
		dirsSync: []string{path.Dir(oldpath), path.Dir(newpath)}})
	return nil
}

// MkdirAll makes p and its missing parents. A new directory is durable once its parent
// is synced (SyncDir(path.Dir(d))); a crash before that loses it and all below it.
func (m *MemFS) MkdirAll(p string, perm os.FileMode) error {
	p = clean(p)
	m.mu.Lock()
	defer m.mu.Unlock()
	var made []string
	for q := p; !m.dirs[q]; q = path.Dir(q) {
		if _, ok := m.ns[q]; ok {
			return &os.PathError{Op: "mkdir", Path: q, Err: errors.New("not a directory")}
		}
		made = append(made, q)
		if q == "/" || q == "." {
			break
		}
	}
	for _, q := range slices.Backward(made) { // parents first
		m.dirs[q] = true
		if m.syncedDirs[q] {
			// Made again after a removal not yet durable: a new, empty directory, whose
			// predecessor's files must not reappear in it after a crash.
			for f := range m.syncedNS {
				if strings.HasPrefix(f, q+"/") {
					delete(m.syncedNS, f)
				}
			}
			delete(m.syncedDirs, q)
		}
		m.pending = append(m.pending, nsOp{kind: nsMkdir, path: q, dirsSync: []string{path.Dir(q)}})
	}
	return nil
}

func (m *MemFS) ReadDir(name string) ([]os.DirEntry, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[name] {
		return nil, &os.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	var out []os.DirEntry
	for p, n := range m.ns {
		if path.Dir(p) == name {
			out = append(out, memInfo{name: path.Base(p), size: n.size()})
		}
	}
	for d := range m.dirs {
		if d != name && path.Dir(d) == name {
			out = append(out, memInfo{name: path.Base(d), dir: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func (m *MemFS) Stat(name string) (os.FileInfo, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dirs[name] {
		return memInfo{name: path.Base(name), dir: true}, nil
	}
	n, ok := m.ns[name]
	if !ok {
		return nil, &os.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return memInfo{name: path.Base(name), size: n.size()}, nil
}

// SyncDir makes every namespace change in dir durable: the synced view of dir's entries
// becomes the current one.
func (m *MemFS) SyncDir(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[dir] {
		return &os.PathError{Op: "syncdir", Path: dir, Err: fs.ErrNotExist}
	}
	for p := range m.syncedNS {
		if path.Dir(p) == dir {
			delete(m.syncedNS, p)
		}
	}
	for p, n := range m.ns {
		if path.Dir(p) == dir {
			m.syncedNS[p] = n
		}
	}
	for d := range m.syncedDirs {
		if d != dir && path.Dir(d) == dir && !m.dirs[d] {
			delete(m.syncedDirs, d)
		}
	}
	for d := range m.dirs {
		if d != dir && path.Dir(d) == dir {
			m.syncedDirs[d] = true
		}
	}
	// A rename across directories is durable only when both are synced: it stays
	// pending until the other one is.
	kept := m.pending[:0]
	for _, op := range m.pending {
		op.dirsSync = slices.DeleteFunc(slices.Clone(op.dirsSync), func(d string) bool { return d == dir })
		if len(op.dirsSync) > 0 {
			kept = append(kept, op)
		}
	}
	m.pending = kept
	return nil
}

// Crash returns the filesystem as it would be found after a power failure now: only
// synced file content and synced directory entries. The receiver is left unchanged and
// its open files stay usable (they do not see the new filesystem).
func (m *MemFS) Crash() *MemFS { return m.crash(nil) }

// CrashPartial is Crash where an arbitrary (rng-chosen) prefix of each file's unsynced
// writes and of the unsynced namespace operations also survived, the last surviving write
// possibly torn: what a kill of the machine mid-write may leave.
func (m *MemFS) CrashPartial(rng *rand.Rand) *MemFS { return m.crash(rng) }

func (m *MemFS) crash(rng *rand.Rand) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	ns := make(map[string]*memNode, len(m.syncedNS))
	for p, n := range m.syncedNS {
		ns[p] = n
	}
	dirs := make(map[string]bool, len(m.syncedDirs))
	for d := range m.syncedDirs {
		dirs[d] = true
	}
	if rng != nil && len(m.pending) > 0 {
		for _, op := range m.pending[:rng.IntN(len(m.pending)+1)] {
			switch op.kind {
			case nsCreate:
				ns[op.path] = op.node
			case nsRename:
				if n, ok := ns[op.path]; ok {
					delete(ns, op.path)
					ns[op.newPath] = n
				}
			case nsRemove:
				delete(ns, op.path)
			case nsMkdir:
				dirs[op.path] = true
			}
		}
	}
	// A directory survives if its entry and every ancestor's did; a file if its
	// directory did.
	var alive func(d string) bool
	alive = func(d string) bool {
		return d == "/" || d == "." || dirs[d] && alive(path.Dir(d))
	}
	out := NewMem()
	for d := range dirs {
		if alive(d) {
			out.dirs[d] = true
			out.syncedDirs[d] = true
		}
	}
	for p := range ns {
		if !alive(path.Dir(p)) {
			delete(ns, p)
		}
	}
	// A node reachable under two names after a partial replay is copied once so the
	// names keep sharing it.
	// The files are visited in path order: the rng must be drawn from in the same order
	// every time, or a seed would not reproduce its crash.
	copies := map[*memNode]*memNode{}
	for _, p := range slices.Sorted(maps.Keys(ns)) {
		n := ns[p]
		c, ok := copies[n]
		if !ok {
			c = &memNode{data: n.crashContent(rng)}
			c.synced = slices.Clone(c.data)
			copies[n] = c
		}
		out.ns[p] = c
		out.syncedNS[p] = c
	}
	return out
}

// crashContent is the synced content plus, with rng, a prefix of the unsynced ops.
func (n *memNode) crashContent(rng *rand.Rand) []byte {
	n.mu.RLock()
	defer n.mu.RUnlock()
	data := slices.Clone(n.synced)
	if rng == nil || len(n.ops) == 0 {
		return data
	}
	keep := rng.IntN(len(n.ops) + 1)
	for i, op := range n.ops[:keep] {
		if op.truncate {
			data = resize(data, op.size)
			continue
		}
		b := op.data
		if i == keep-1 && len(b) > 0 {
			b = b[:rng.IntN(len(b)+1)] // the last write may be torn
		}
		data = writeAt(data, b, op.off)
	}
	return data
}

// resize sets len(data) to size, zero-filling any growth and growing the capacity
// geometrically so appends are amortised.
func resize(data []byte, size int64) []byte {
	switch {
	case size <= int64(len(data)):
		return data[:size]
	case size <= int64(cap(data)):
		old := len(data)
		data = data[:size]
		clear(data[old:])
		return data
	}
	nd := make([]byte, size, max(size, 2*int64(cap(data))))
	copy(nd, data)
	return nd
}

func writeAt(data, b []byte, off int64) []byte {
	if end := off + int64(len(b)); end > int64(len(data)) {
		data = resize(data, end)
	}
	copy(data[off:], b)
	return data
}

func (n *memNode) size() int64 {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return int64(len(n.data))
}

// memFile is an open file: a node and a position.
type memFile struct {
	node *memNode
	name string
	flag int

	mu     sync.Mutex // guards pos and closed
	pos    int64
	closed bool
}

var errClosed = errors.New("file already closed")

func (f *memFile) check(write bool) error {
	if f.closed {
		return &os.PathError{Op: "use", Path: f.name, Err: errClosed}
	}
	if write && f.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return &os.PathError{Op: "write", Path: f.name, Err: errors.New("file not open for writing")}
	}
	if !write && f.flag&os.O_WRONLY != 0 {
		return &os.PathError{Op: "read", Path: f.name, Err: errors.New("file not open for reading")}
	}
	return nil
}

func (f *memFile) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(false); err != nil {
		return 0, err
	}
	n, err := f.node.readAt(p, f.pos)
	f.pos += int64(n)
	return n, err
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	err := f.check(false)
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &os.PathError{Op: "readat", Path: f.name, Err: errors.New("negative offset")}
	}
	return f.node.readAt(p, off)
}

func (n *memNode) readAt(p []byte, off int64) (int, error) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if off >= int64(len(n.data)) {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	c := copy(p, n.data[off:])
	if c < len(p) {
		return c, io.EOF
	}
	return c, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(true); err != nil {
		return 0, err
	}
	if f.flag&os.O_APPEND != 0 {
		f.pos = f.node.write(p, -1)
	} else {
		f.pos = f.node.write(p, f.pos)
	}
	return len(p), nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	err := f.check(true)
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &os.PathError{Op: "writeat", Path: f.name, Err: errors.New("negative offset")}
	}
	f.node.write(p, off)
	return len(p), nil
}

// write writes p at off (at the end if off < 0) and returns the end of the write.
func (n *memNode) write(p []byte, off int64) int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if off < 0 {
		off = int64(len(n.data))
	}
	n.data = writeAt(n.data, p, off)
	n.ops = append(n.ops, dataOp{off: off, data: slices.Clone(p)})
	return off + int64(len(p))
}

func (f *memFile) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, &os.PathError{Op: "seek", Path: f.name, Err: errClosed}
	}
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = f.pos
	case io.SeekEnd:
		base = f.node.size()
	default:
		return 0, fmt.Errorf("seek %s: bad whence %d", f.name, whence)
	}
	if base+offset < 0 {
		return 0, &os.PathError{Op: "seek", Path: f.name, Err: errors.New("negative position")}
	}
	f.pos = base + offset
	return f.pos, nil
}

func (f *memFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return &os.PathError{Op: "close", Path: f.name, Err: errClosed}
	}
	f.closed = true
	return nil
}

func (f *memFile) Sync() error {
	f.mu.Lock()
	err := f.check(false)
	if err != nil && f.flag&os.O_WRONLY != 0 {
		err = nil // a write-only file may still be synced
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	n := f.node
	n.mu.Lock()
	defer n.mu.Unlock()
	n.synced = slices.Clone(n.data)
	n.ops = nil
	return nil
}

// dropUnsynced is what a failed Sync does to the file (see the package comment): every
// write and truncation since the last successful Sync is forgotten.
func (f *memFile) dropUnsynced() {
	n := f.node
	n.mu.Lock()
	defer n.mu.Unlock()
	n.data = slices.Clone(n.synced)
	n.ops = nil
}

func (f *memFile) Truncate(size int64) error {
	f.mu.Lock()
	err := f.check(true)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if size < 0 {
		return &os.PathError{Op: "truncate", Path: f.name, Err: errors.New("negative size")}
	}
	n := f.node
	n.mu.Lock()
	defer n.mu.Unlock()
	n.data = resize(n.data, size)
	n.ops = append(n.ops, dataOp{truncate: true, size: size})
	return nil
}

func (f *memFile) Stat() (os.FileInfo, error) {
	return memInfo{name: path.Base(f.name), size: f.node.size()}, nil
}

func (f *memFile) Name() string { return f.name }

// memInfo is both the os.FileInfo and the os.DirEntry of a MemFS entry.
type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return i.size }
func (i memInfo) Mode() os.FileMode {
	if i.dir {
		return os.ModeDir | 0o755
	}
	return 0o644
}
func (i memInfo) ModTime() time.Time         { return time.Time{} }
func (i memInfo) IsDir() bool                { return i.dir }
func (i memInfo) Sys() any                   { return nil }
func (i memInfo) Type() os.FileMode          { return i.Mode().Type() }
func (i memInfo) Info() (os.FileInfo, error) { return i, nil }
