package group

import (
	"slices"
	"testing"
)

// CommittedOffsets lists the committed offsets in group, topic, partition order, and
// cuts at max the same way every time.
func TestCommittedOffsets(t *testing.T) {
	e := newEnv(t, testConfig())
	for _, c := range []struct {
		group, topic string
		partition    int32
		offset       int64
	}{{"g2", "b", 0, 7}, {"g1", "b", 1, 5}, {"g1", "a", 2, 3}, {"g1", "a", 0, 1}, {"g1", "b", 0, 4}} {
		if err := e.commit(c.group, "", -1, c.topic, c.partition, c.offset); err != nil {
			t.Fatal(err)
		}
	}
	want := []Committed{{"g1", "a", 0, 1}, {"g1", "a", 2, 3}, {"g1", "b", 0, 4}, {"g1", "b", 1, 5}, {"g2", "b", 0, 7}}
	got, total := e.c.CommittedOffsets(100)
	if !slices.Equal(got, want) || total != 5 {
		t.Fatalf("CommittedOffsets(100) = %v, %d; want %v, 5", got, total, want)
	}
	for range 5 {
		got, total = e.c.CommittedOffsets(3)
		if !slices.Equal(got, want[:3]) || total != 5 {
			t.Fatalf("CommittedOffsets(3) = %v, %d; want %v, 5", got, total, want[:3])
		}
	}
	if g, o := e.c.Counts(); g != 2 || o != 5 {
		t.Fatalf("Counts = %d groups, %d offsets; want 2, 5", g, o)
	}
}
