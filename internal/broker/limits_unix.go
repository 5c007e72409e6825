//go:build unix

package broker

import "syscall"

// processFileLimit is the soft RLIMIT_NOFILE of this process.
func processFileLimit() int64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<40 {
		return 1024
	}
	return int64(rl.Cur)
}
