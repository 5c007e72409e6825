package bench

// Parsing of the sizes and rates people type on the command line.

import (
	"fmt"
	"strconv"
	"strings"
)

// unitSuffixes are checked longest first so "MiB" is not read as "B" after a number "20Mi".
var unitSuffixes = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"K", 1e3}, {"M", 1e6}, {"G", 1e9},
	{"B", 1},
}

// splitUnit returns the number in s and the multiplier of its unit, and whether s had a byte unit
// (anything ending in B); a bare K, M or G is a plain count.
func splitUnit(s string) (num float64, mult float64, isBytes bool, err error) {
	s = strings.TrimSpace(s)
	mult = 1
	for _, u := range unitSuffixes {
		if strings.HasSuffix(s, u.suffix) {
			s = strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			mult = u.mult
			isBytes = strings.HasSuffix(u.suffix, "B")
			break
		}
	}
	num, err = strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, 0, false, fmt.Errorf("not a number: %q", s)
	}
	if num < 0 {
		return 0, 0, false, fmt.Errorf("negative: %v", num)
	}
	return num, mult, isBytes, nil
}

// parseSize reads a count or a byte size: "1000", "10K", "64MiB", "1GiB".
func parseSize(s string) (int64, error) {
	num, mult, _, err := splitUnit(s)
	if err != nil {
		return 0, err
	}
	return int64(num * mult), nil
}

// parseRate reads a target rate and returns it in records per second: a plain number is records/s,
// a number with a byte unit ("20MB", "20MB/s", "5MiB/s") is bytes/s, divided by the record size.
func parseRate(s string, recordSize int) (float64, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "/s")
	num, mult, isBytes, err := splitUnit(s)
	if err != nil {
		return 0, err
	}
	if isBytes {
		return num * mult / float64(recordSize), nil
	}
	return num * mult, nil
}
