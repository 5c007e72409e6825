package metadata

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// checkTree verifies the AVL invariants (order, heights, sizes, balance).
func checkTree[K, V any](t *testing.T, tr ptree[K, V]) {
	t.Helper()
	var walk func(n *pnode[K, V], lo, hi *K) (int32, int32)
	walk = func(n *pnode[K, V], lo, hi *K) (int32, int32) {
		if n == nil {
			return 0, 0
		}
		if (lo != nil && tr.cmp(n.key, *lo) <= 0) || (hi != nil && tr.cmp(n.key, *hi) >= 0) {
			t.Fatalf("key %v out of order", n.key)
		}
		lh, ls := walk(n.left, lo, &n.key)
		rh, rs := walk(n.right, &n.key, hi)
		if d := lh - rh; d > 1 || d < -1 {
			t.Fatalf("unbalanced at %v: %d vs %d", n.key, lh, rh)
		}
		if n.height != 1+max(lh, rh) || n.size != 1+ls+rs {
			t.Fatalf("node %v: height %d size %d, want %d %d", n.key, n.height, n.size, 1+max(lh, rh), 1+ls+rs)
		}
		return n.height, n.size
	}
	walk(tr.root, nil, nil)
}

func contents[K cmp.Ordered, V any](tr ptree[K, V]) map[K]V {
	m := map[K]V{}
	var last *K
	tr.All(func(k K, v V) bool {
		if last != nil && *last >= k {
			panic("All out of order")
		}
		m[k] = v
		last = &k
		return true
	})
	return m
}

// TestPtreeAgainstMap applies random sets and deletes to the tree and to a map, keeping
// every version of the tree: each must still hold what it held when it was made.
func TestPtreeAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tr := newPtree[int, int](cmp.Compare[int])
	ref := map[int]int{}
	type version struct {
		tr  ptree[int, int]
		ref map[int]int
	}
	var versions []version
	for i := 0; i < 5000; i++ {
		k := rng.IntN(300)
		if rng.IntN(3) == 0 {
			tr = tr.Delete(k)
			delete(ref, k)
		} else {
			tr = tr.Set(k, i)
			ref[k] = i
		}
		if i%97 == 0 {
			checkTree(t, tr)
			versions = append(versions, version{tr, cloneMap(ref)})
		}
		if tr.Len() != len(ref) {
			t.Fatalf("step %d: Len %d, want %d", i, tr.Len(), len(ref))
		}
		want, in := ref[k]
		if v, ok := tr.Get(k); ok != in || v != want {
			t.Fatalf("step %d: Get(%d) = %d %v", i, k, v, ok)
		}
	}
	for i, v := range versions {
		got := contents(v.tr)
		if len(got) != len(v.ref) {
			t.Fatalf("version %d changed: %d keys, want %d", i, len(got), len(v.ref))
		}
		for k, want := range v.ref {
			if got[k] != want {
				t.Fatalf("version %d changed at key %d: %d, want %d", i, k, got[k], want)
			}
		}
	}
}

func cloneMap(m map[int]int) map[int]int {
	c := make(map[int]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func TestPtreeDeleteMissingSharesTree(t *testing.T) {
	tr := newPtree[string, int](cmp.Compare[string])
	for _, k := range []string{"b", "a", "c"} {
		tr = tr.Set(k, 1)
	}
	if tr.Delete("zz").root != tr.root {
		t.Fatal("deleting a missing key copied the tree")
	}
	var keys []string
	tr.All(func(k string, _ int) bool { keys = append(keys, k); return k != "b" })
	if !slices.Equal(keys, []string{"a", "b"}) {
		t.Fatalf("All stopped at %v", keys)
	}
}

// TestPtreeSetCopiesAPath pins what makes images cheap: one Set in a tree of 10,000 keys
// allocates O(log n) nodes.
func TestPtreeSetCopiesAPath(t *testing.T) {
	tr := newPtree[int, int](cmp.Compare[int])
	for i := range 10000 {
		tr = tr.Set(i, i)
	}
	allocs := testing.AllocsPerRun(100, func() { _ = tr.Set(5000, 1) })
	if allocs > 40 {
		t.Fatalf("Set in a tree of 10,000 allocated %.0f nodes", allocs)
	}
}
