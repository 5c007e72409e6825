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

// leastAlloc is the least measureAlloc of n runs of f. sync.Pool keeps an object Put in
// the putting P's private slot, which no other P can take, so a goroutine that moved P
// misses a warm pool once; the least of a few runs is what reuse costs.
func leastAlloc(n int, f func()) uint64 {
	least := ^uint64(0)
	for range n {
		least = min(least, measureAlloc(f))
	}
	return least
}
