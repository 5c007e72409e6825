package vfs

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
)

// CrashPartial is rng-chosen: the same filesystem crashed with rngs of the same seed
// must come out the same, or a simulation's failing seed does not replay.
func TestCrashPartialIsDeterministic(t *testing.T) {
	build := func() *MemFS {
		m := NewMem()
		if err := MkdirAllDurable(m, "/d"); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			f, err := m.OpenFile(fmt.Sprintf("/d/f%02d", i), os.O_CREATE|os.O_RDWR, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			for j := 0; j < 5; j++ {
				if _, err := f.Write(bytes.Repeat([]byte{byte('a' + j)}, 10)); err != nil {
					t.Fatal(err)
				}
			}
			f.Close()
		}
		if err := m.SyncDir("/d"); err != nil {
			t.Fatal(err)
		}
		return m
	}
	snapshot := func(m *MemFS) string {
		var b bytes.Buffer
		for i := 0; i < 20; i++ {
			data, err := ReadFile(m, fmt.Sprintf("/d/f%02d", i), 1<<20)
			fmt.Fprintf(&b, "%d:%q:%v\n", i, data, err)
		}
		return b.String()
	}
	want := snapshot(build().CrashPartial(rand.New(rand.NewPCG(7, 7))))
	for i := 0; i < 10; i++ {
		if got := snapshot(build().CrashPartial(rand.New(rand.NewPCG(7, 7)))); got != want {
			t.Fatalf("run %d: the same seed crashed differently", i)
		}
	}
}
