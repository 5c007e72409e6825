package vfs

import "os"

// OSFile returns the operating system's file behind f, for a caller that hands the
// file's bytes to the kernel (sendfile) instead of reading them through f. ok is false
// for a file that lives in memory (MemFS) or whose operations are intercepted (ErrorFS):
// such a caller must read it through f, so that what the file holds and the faults
// injected into it are what the caller gets.
func OSFile(f File) (osf *os.File, ok bool) {
	osf, ok = f.(*os.File)
	return osf, ok
}
