package cmdflag

// Sizes and counts as people type them: 1000, 10K, 64MiB, 1.5KiB.

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// SizeDoc is what the help of a size flag says it accepts.
const SizeDoc = "B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024)"

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

// SplitUnit returns the number in s and the multiplier of its unit, and whether s had a
// byte unit (anything ending in B); a bare K, M or G is a plain count.
func SplitUnit(s string) (num float64, mult float64, isBytes bool, err error) {
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
	if err != nil || math.IsNaN(num) || math.IsInf(num, 0) {
		return 0, 0, false, fmt.Errorf("not a number: %q", s)
	}
	if num < 0 {
		return 0, 0, false, fmt.Errorf("negative: %v", num)
	}
	return num, mult, isBytes, nil
}

// ParseSize reads a count or a byte size: "1000", "10K", "64MiB", "1GiB".
func ParseSize(s string) (int64, error) {
	num, mult, _, err := SplitUnit(s)
	if err != nil {
		return 0, err
	}
	if v := num * mult; v < math.MaxInt64 {
		return int64(v), nil
	}
	return 0, fmt.Errorf("too large: %q", s)
}

// Size is a flag.Value holding a size typed with an optional unit.
type Size int64

func (s *Size) String() string { return strconv.FormatInt(int64(*s), 10) }

func (s *Size) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return fmt.Errorf("want a size such as 1048576, 64KiB or 1MB: %w", err)
	}
	*s = Size(n)
	return nil
}
