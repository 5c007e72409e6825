//go:build unix

package bench

import "syscall"

// processCPU returns the user+system CPU time this process has used, in seconds: on a machine
// where client and broker share the cores, the client's share explains part of the broker's.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}
