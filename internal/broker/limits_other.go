//go:build !unix

package broker

// processFileLimit is a conservative guess where the limit cannot be read.
func processFileLimit() int64 { return 1024 }
