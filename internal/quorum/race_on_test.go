//go:build race

package quorum

// raceEnabled: the race detector makes the simulation about 14 times slower, so CI runs
// fewer seeds under it.
const raceEnabled = true
