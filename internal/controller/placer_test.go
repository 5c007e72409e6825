package controller

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func brokersOn(racks ...string) []usableBroker {
	out := make([]usableBroker, len(racks))
	for i, r := range racks {
		out[i] = usableBroker{id: int32(i + 1), rack: r}
	}
	return out
}

func placeAll(t *testing.T, pl *placer, partitions, rf int) [][]int32 {
	t.Helper()
	var out [][]int32
	for range partitions {
		rs, err := pl.place(rf)
		if err != nil {
			t.Fatalf("place(%d): %v", rf, err)
		}
		if len(rs) != rf {
			t.Fatalf("place(%d) = %v", rf, rs)
		}
		seen := map[int32]bool{}
		for _, r := range rs {
			if seen[r] {
				t.Fatalf("replica %d twice in %v", r, rs)
			}
			seen[r] = true
		}
		out = append(out, rs)
	}
	return out
}

// Without racks, every broker holds the same number of replicas and leads the same
// number of partitions, whatever the seed: the first replica rotates.
func TestPlacerSpreadsReplicasAndLeaders(t *testing.T) {
	for seed := range uint64(20) {
		pl := newPlacer(brokersOn("", "", "", "", ""), rand.New(rand.NewPCG(seed, 1)))
		replicas, leaders := map[int32]int{}, map[int32]int{}
		for _, rs := range placeAll(t, pl, 10, 3) {
			leaders[rs[0]]++
			for _, r := range rs {
				replicas[r]++
			}
		}
		for id := int32(1); id <= 5; id++ {
			if leaders[id] != 2 || replicas[id] != 6 {
				t.Fatalf("seed %d: broker %d leads %d and holds %d (want 2 and 6): %v %v", seed, id, leaders[id], replicas[id], leaders, replicas)
			}
		}
	}
}

// With racks, a partition's replicas are on as many racks as its replication factor
// allows, and racks of different sizes still get one replica each.
func TestPlacerSpreadsOverRacks(t *testing.T) {
	bs := brokersOn("a", "a", "b", "b", "c", "c", "c")
	rackOf := map[int32]string{}
	for _, b := range bs {
		rackOf[b.id] = b.rack
	}
	for seed := range uint64(20) {
		pl := newPlacer(bs, rand.New(rand.NewPCG(seed, 2)))
		for _, rf := range []int{2, 3, 5} {
			for _, rs := range placeAll(t, pl, 12, rf) {
				racks := map[string]bool{}
				for _, r := range rs {
					racks[rackOf[r]] = true
				}
				if want := min(rf, 3); len(racks) != want {
					t.Fatalf("seed %d rf %d: %v spans racks %v, want %d racks", seed, rf, rs, racks, want)
				}
			}
		}
	}
}

// Consecutive partitions start on consecutive racks (the stripes of Kafka's placer).
func TestPlacerStripes(t *testing.T) {
	bs := brokersOn("a", "b", "c")
	pl := newPlacer(bs, rand.New(rand.NewPCG(7, 7)))
	got := placeAll(t, pl, 3, 3)
	for i := 1; i < 3; i++ {
		if got[i][0] != got[i-1][1] {
			t.Fatalf("partition %d starts on %d, want the rack after partition %d's first (%v)", i, got[i][0], i-1, got)
		}
	}
}

func TestPlacerRefusesWhatCannotBePlaced(t *testing.T) {
	for _, c := range []struct {
		brokers []usableBroker
		rf      int
	}{
		{brokersOn("", ""), 3},
		{nil, 1},
		{brokersOn(""), 0},
		{brokersOn(""), -1},
	} {
		t.Run(fmt.Sprint(len(c.brokers), c.rf), func(t *testing.T) {
			_, err := newPlacer(c.brokers, rand.New(rand.NewPCG(1, 1))).place(c.rf)
			if codeOf(err) != kerr.InvalidReplicationFactor.Code {
				t.Fatalf("place(%d) over %d brokers: %v, want INVALID_REPLICATION_FACTOR", c.rf, len(c.brokers), err)
			}
		})
	}
}

// A large topic over many brokers does not repeat one replica set: after each full
// round the order is shuffled.
func TestPlacerVariesReplicaSets(t *testing.T) {
	pl := newPlacer(brokersOn("", "", "", "", "", "", "", ""), rand.New(rand.NewPCG(3, 3)))
	sets := map[string]bool{}
	for _, rs := range placeAll(t, pl, 64, 3) {
		s := slices.Clone(rs)
		slices.Sort(s)
		sets[fmt.Sprint(s)] = true
	}
	if len(sets) < 16 {
		t.Fatalf("64 partitions over 8 brokers use only %d replica sets", len(sets))
	}
}
