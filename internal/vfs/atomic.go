// Whole-file helpers over an FS: small checkpoint files are written atomically and read
// whole; directories are made durably.
package vfs

import (
	"fmt"
	"io"
	"os"
	"path"
)

// WriteFileAtomic replaces name with data so that after a crash the file holds either
// its old content or all of data: write a temporary file beside it, fsync it, rename it
// over name, fsync the directory.
func WriteFileAtomic(fsys FS, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	if err := fsys.SyncDir(path.Dir(name)); err != nil {
		return fmt.Errorf("sync dir of %s: %w", name, err)
	}
	return nil
}

// ReadFile reads a whole file, refusing one larger than limit bytes (checkpoint files are
// small; a huge one is corrupt, not something to allocate).
func ReadFile(fsys FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("read %s: larger than %d bytes", name, limit)
	}
	return data, nil
}

// MkdirAllDurable is MkdirAll whose new directories survive a crash: each directory it
// makes is synced into its parent (a file synced in a directory whose own entry never
// was is lost with it, on Linux as in MemFS). Directories that exist cost a Stat.
func MkdirAllDurable(fsys FS, dir string) error {
	dir = path.Clean(dir)
	var made []string
	for d := dir; ; d = path.Dir(d) {
		if _, err := fsys.Stat(d); err == nil {
			break
		}
		made = append(made, d)
		if p := path.Dir(d); p == d {
			break
		}
	}
	if len(made) == 0 {
		return nil
	}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range made { // deepest first: each parent's sync covers the entry below it
		if err := fsys.SyncDir(path.Dir(d)); err != nil {
			return fmt.Errorf("sync %s: %w", path.Dir(d), err)
		}
	}
	return nil
}
