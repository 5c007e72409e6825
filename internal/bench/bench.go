// Package bench is the `vltava bench` load generator: an ordinary franz-go client.
package bench

import "errors"

// Run runs `vltava bench <produce|consume|e2e> [flags]`.
func Run(args []string) error { return errors.New("bench: not yet implemented") }
