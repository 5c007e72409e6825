package bench

// Parsing of the sizes and rates people type on the command line.

import (
	"strings"

	"github.com/vltava/vltava/internal/cli/cmdflag"
)

// parseSize reads a count or a byte size: "1000", "10K", "64MiB", "1GiB".
func parseSize(s string) (int64, error) { return cmdflag.ParseSize(s) }

// parseRate reads a target rate and returns it in records per second: a plain number is records/s,
// a number with a byte unit ("20MB", "20MB/s", "5MiB/s") is bytes/s, divided by the record size.
func parseRate(s string, recordSize int) (float64, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "/s")
	num, mult, isBytes, err := cmdflag.SplitUnit(s)
	if err != nil {
		return 0, err
	}
	if isBytes {
		return num * mult / float64(recordSize), nil
	}
	return num * mult, nil
}
