package log

import (
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/vltava/vltava/internal/vfs"
)

// RangesLen is the number of bytes the ranges cover.
func RangesLen(rs []Range) int64 {
	var n int64
	for _, r := range rs {
		n += r.Len
	}
	return n
}

// ReadRanges reads the ranges, back to back, into dst, which must be RangesLen(rs) long.
func ReadRanges(dst []byte, rs []Range) error {
	off := int64(0)
	for _, r := range rs {
		if off+r.Len > int64(len(dst)) {
			return fmt.Errorf("read ranges: %d bytes do not fit in %d", off+r.Len, len(dst))
		}
		m, err := r.File.ReadAt(dst[off:off+r.Len], r.Pos)
		if int64(m) < r.Len {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read %s at %d: %w", r.File.Name(), r.Pos, err)
		}
		off += r.Len
	}
	return nil
}

// A PinnedRange is a Range of an operating-system file held open by a descriptor of
// its own, a duplicate of the segment file's: the segment may be closed and deleted
// (retention, DeleteRecords, topic deletion) while the bytes wait to be sent, and they
// stay readable, and the same bytes, until Close (a truncation of the file still
// shortens them). It is for handing the bytes to the kernel (sendfile). Read them by
// position, never through File's offset: a duplicate shares it with the segment's
// descriptor and every other duplicate.
type PinnedRange struct {
	File     *os.File // the duplicate, owned by the range
	Pos, Len int64
}

// Close releases the duplicate descriptor.
func (r PinnedRange) Close() error { return r.File.Close() }

// PinRanges pins each of rs, appending to dst. ok is false, with nothing appended, if a
// range's file is not an operating-system file (vfs.OSFile) or cannot be pinned (it
// was closed under the caller, or descriptors ran out): the caller reads rs instead,
// with the errors that brings.
func PinRanges(dst []PinnedRange, rs []Range) ([]PinnedRange, bool) {
	n := len(dst)
	for _, r := range rs {
		f, ok := vfs.OSFile(r.File)
		if !ok {
			return unpin(dst, n), false
		}
		d, err := dupFile(f)
		if err != nil {
			return unpin(dst, n), false
		}
		dst = append(dst, PinnedRange{File: d, Pos: r.Pos, Len: r.Len})
	}
	return dst, true
}

func unpin(rs []PinnedRange, from int) []PinnedRange {
	for _, r := range rs[from:] {
		r.Close()
	}
	clear(rs[from:])
	return rs[:from]
}

// dupFile returns a new *os.File on a duplicate of f's descriptor. The descriptor is
// read inside Control, which keeps it from being closed (and its number reused)
// while it is duplicated; a file already closed is an error.
func dupFile(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var derr error
	err = rc.Control(func(fd uintptr) {
		// As os/exec expects of every descriptor it may inherit: the close-on-exec
		// flag is set before any fork can see the new descriptor.
		syscall.ForkLock.RLock()
		nfd, derr = syscall.Dup(int(fd))
		if derr == nil {
			syscall.CloseOnExec(nfd)
		}
		syscall.ForkLock.RUnlock()
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("pin %s: %w", f.Name(), err)
	}
	return os.NewFile(uintptr(nfd), f.Name()), nil
}
