package metadata

// ptree is a persistent ordered map: an AVL tree whose updates copy only the path from
// the root to the changed node and share every other node with the tree they came from.
// It is what keeps an image cheap to publish: changing one topic of 10,000 copies about
// 2*log2(10,000) ≈ 28 nodes, not the map. Trees are never modified once returned, so
// any number of images share nodes and readers need no lock.

type pnode[K, V any] struct {
	key         K
	val         V
	left, right *pnode[K, V]
	height      int32
	size        int32 // nodes in this subtree (for Len without a walk)
}

type ptree[K, V any] struct {
	root *pnode[K, V]
	cmp  func(a, b K) int
}

func newPtree[K, V any](cmp func(a, b K) int) ptree[K, V] { return ptree[K, V]{cmp: cmp} }

func (n *pnode[K, V]) h() int32 {
	if n == nil {
		return 0
	}
	return n.height
}

func (n *pnode[K, V]) n() int32 {
	if n == nil {
		return 0
	}
	return n.size
}

// Len returns the number of keys.
func (t ptree[K, V]) Len() int { return int(t.root.n()) }

// Get returns the value of key and whether it is there.
func (t ptree[K, V]) Get(key K) (V, bool) {
	n := t.root
	for n != nil {
		switch c := t.cmp(key, n.key); {
		case c < 0:
			n = n.left
		case c > 0:
			n = n.right
		default:
			return n.val, true
		}
	}
	var zero V
	return zero, false
}

// Set returns a tree with key set to val; t is unchanged.
func (t ptree[K, V]) Set(key K, val V) ptree[K, V] {
	t.root = t.set(t.root, key, val)
	return t
}

// Delete returns a tree without key; t is unchanged. A missing key returns t itself.
func (t ptree[K, V]) Delete(key K) ptree[K, V] {
	root, ok := t.del(t.root, key)
	if ok {
		t.root = root
	}
	return t
}

// All calls fn for every key in order until fn returns false.
func (t ptree[K, V]) All(fn func(K, V) bool) { t.root.walk(fn) }

func (n *pnode[K, V]) walk(fn func(K, V) bool) bool {
	for n != nil {
		if !n.left.walk(fn) || !fn(n.key, n.val) {
			return false
		}
		n = n.right // the right subtree in a loop: depth stays O(log n)
	}
	return true
}

func mk[K, V any](key K, val V, l, r *pnode[K, V]) *pnode[K, V] {
	return &pnode[K, V]{key: key, val: val, left: l, right: r,
		height: 1 + max(l.h(), r.h()), size: 1 + l.n() + r.n()}
}

// balance builds a node from key, val, l and r, whose heights differ by at most 2, and
// rotates it back into AVL balance. Every node it returns is new.
func balance[K, V any](key K, val V, l, r *pnode[K, V]) *pnode[K, V] {
	switch {
	case l.h() > r.h()+1:
		if l.left.h() >= l.right.h() {
			return mk(l.key, l.val, l.left, mk(key, val, l.right, r))
		}
		lr := l.right
		return mk(lr.key, lr.val, mk(l.key, l.val, l.left, lr.left), mk(key, val, lr.right, r))
	case r.h() > l.h()+1:
		if r.right.h() >= r.left.h() {
			return mk(r.key, r.val, mk(key, val, l, r.left), r.right)
		}
		rl := r.left
		return mk(rl.key, rl.val, mk(key, val, l, rl.left), mk(r.key, r.val, rl.right, r.right))
	}
	return mk(key, val, l, r)
}

func (t ptree[K, V]) set(n *pnode[K, V], key K, val V) *pnode[K, V] {
	if n == nil {
		return mk[K, V](key, val, nil, nil)
	}
	switch c := t.cmp(key, n.key); {
	case c < 0:
		return balance(n.key, n.val, t.set(n.left, key, val), n.right)
	case c > 0:
		return balance(n.key, n.val, n.left, t.set(n.right, key, val))
	}
	return mk(key, val, n.left, n.right)
}

func (t ptree[K, V]) del(n *pnode[K, V], key K) (*pnode[K, V], bool) {
	if n == nil {
		return nil, false
	}
	switch c := t.cmp(key, n.key); {
	case c < 0:
		l, ok := t.del(n.left, key)
		if !ok {
			return n, false
		}
		return balance(n.key, n.val, l, n.right), true
	case c > 0:
		r, ok := t.del(n.right, key)
		if !ok {
			return n, false
		}
		return balance(n.key, n.val, n.left, r), true
	}
	switch {
	case n.left == nil:
		return n.right, true
	case n.right == nil:
		return n.left, true
	}
	// Replace n by the smallest node of its right subtree.
	m := n.right
	for m.left != nil {
		m = m.left
	}
	r, _ := t.del(n.right, m.key)
	return balance(m.key, m.val, n.left, r), true
}
