package log

import (
	"fmt"
	"io"
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
