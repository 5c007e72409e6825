//go:build linux

package server

import (
	"strings"
	"syscall"
	"unsafe"
)

// mapFrame returns n bytes outside the Go heap, mapped privately and anonymously: a
// page becomes resident only when the frame's bytes are read into it, so a frame's
// memory grows with what has arrived, and unmapFrame gives it back to the operating
// system at once instead of leaving it to the garbage collector and the scavenger.
func mapFrame(n int) ([]byte, error) {
	return syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
}

// unmapFrame releases a mapping from mapFrame; nothing may refer to it afterwards.
func unmapFrame(b []byte) { _ = syscall.Munmap(b) }

// copyToHeap copies a mapped frame onto the heap a step at a time, giving each step's
// pages back once copied, so that the frame is not resident twice over while it moves.
// The mapping must still be unmapped afterwards.
//
// The heap side must not be zeroed first: make zeroes memory the heap has used before,
// which makes every page resident before the copy reaches it. strings.Builder grows
// its buffer without zeroing; the bytes it holds are handed out writable, the string
// being dropped at once.
func copyToHeap(m []byte) []byte {
	var h strings.Builder
	h.Grow(len(m))
	for off := 0; off < len(m); off += frameStep {
		end := min(off+frameStep, len(m))
		h.Write(m[off:end])
		_ = syscall.Madvise(m[off:end], syscall.MADV_DONTNEED) // off is page aligned: the mapping is, and so is frameStep
	}
	s := h.String()
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
