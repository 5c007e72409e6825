//go:build race

package batch

// raceEnabled: the race detector's sync.Pool drops pooled items at random, so tests
// that measure what pooling saves check their bounds only without it.
const raceEnabled = true
