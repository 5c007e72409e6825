package batch

import "runtime"

// measureAlloc returns the bytes allocated while f runs (approximate: other goroutines
// of the test binary are idle).
func measureAlloc(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
