//go:build !unix

package vfs

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("lock held")

// flockExclusive is not implemented here: directories are not locked on this platform.
func flockExclusive(*os.File) error { return nil }
