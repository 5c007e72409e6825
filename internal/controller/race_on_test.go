//go:build race

package controller

// raceEnabled: the race detector makes the simulation many times slower, so fewer seeds
// and steps run under it.
const raceEnabled = true
