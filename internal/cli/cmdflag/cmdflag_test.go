package cmdflag

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		n    int
	}{
		{[]string{"a", "-n", "3", "b"}, []string{"a", "b"}, 3},
		{[]string{"-n", "3", "a"}, []string{"a"}, 3},
		{[]string{"a", "--n=4"}, []string{"a"}, 4},
		{[]string{"a", "--", "-n", "5"}, []string{"a", "-n", "5"}, 0},
		{nil, nil, 0},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		n := fs.Int("n", 0, "")
		pos, err := Interspersed(fs, tc.args)
		if err != nil {
			t.Fatalf("Interspersed(%q): %v", tc.args, err)
		}
		if !slices.Equal(pos, tc.pos) || *n != tc.n {
			t.Errorf("Interspersed(%q) = %q, n=%d; want %q, n=%d", tc.args, pos, *n, tc.pos, tc.n)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := Interspersed(fs, []string{"a", "--nope"}); err == nil {
		t.Error("Interspersed accepted an unknown flag after a positional")
	}
}
