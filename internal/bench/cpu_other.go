//go:build !unix

package bench

// processCPU is not measured where getrusage does not exist.
func processCPU() float64 { return 0 }
