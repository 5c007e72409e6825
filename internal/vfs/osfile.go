package vfs

import "os"

// OSFile returns the operating system's file behind f, for a caller that hands the
// file's bytes to the kernel (sendfile) instead of reading them through f. ok is false
// for a file that lives in memory (MemFS) or whose operations are intercepted (ErrorFS):
// such a caller must read it through f, so that what the file holds and the faults
// injected into it are what the caller gets.
//
// A file of a LimitFS gives the OS file open below it at the time of the call, which the
// LimitFS may close as soon as it returns: a caller duplicating the descriptor must
// expect a closed file (an error), and a caller writing through it uses PinOSFile.
func OSFile(f File) (osf *os.File, ok bool) {
	if h, isHandle := f.(*handle); isHandle {
		return h.osFile()
	}
	osf, ok = f.(*os.File)
	return osf, ok
}
