package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
)

// renameDirLocked renames the directory oldpath, and everything below it, to newpath,
// which must not exist. Like the creation and removal of directories in MemFS, it is
// durable at once: the synced namespace and the pending operations move with it, so a
// crash finds the tree under its new name with exactly the files it would have found
// under the old one. Open files keep working (they hold their nodes, not names).
func (m *MemFS) renameDirLocked(oldpath, newpath string) error {
	lerr := func(err error) error { return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err} }
	if newpath == oldpath || strings.HasPrefix(newpath, oldpath+"/") {
		return lerr(errors.New("cannot move a directory into itself"))
	}
	if !m.dirs[path.Dir(newpath)] {
		return lerr(fs.ErrNotExist)
	}
	if _, ok := m.ns[newpath]; ok || m.dirs[newpath] {
		return lerr(fs.ErrExist)
	}
	move := func(p string) (string, bool) {
		if p == oldpath {
			return newpath, true
		}
		if rest, ok := strings.CutPrefix(p, oldpath+"/"); ok {
			return newpath + "/" + rest, true
		}
		return p, false
	}
	for _, tbl := range []map[string]*memNode{m.ns, m.syncedNS} {
		moved := map[string]*memNode{}
		for p, n := range tbl {
			if q, ok := move(p); ok {
				delete(tbl, p)
				moved[q] = n
			}
		}
		for q, n := range moved {
			tbl[q] = n
		}
	}
	for _, tbl := range []map[string]bool{m.dirs, m.syncedDirs} {
		var dirs []string
		for d := range tbl {
			if q, ok := move(d); ok {
				delete(tbl, d)
				dirs = append(dirs, q)
			}
		}
		for _, d := range dirs {
			tbl[d] = true
		}
	}
	for i := range m.pending {
		op := &m.pending[i]
		op.path, _ = move(op.path)
		op.newPath, _ = move(op.newPath)
		for j, d := range op.dirsSync {
			op.dirsSync[j], _ = move(d)
		}
	}
	return nil
}
