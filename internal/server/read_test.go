package server

import (
	"testing"

	"github.com/vltava/vltava/internal/bufpool"
)

// pooledSize is what the frame pool hands out: the budget is charged the capacity
// that is resident.
func TestPooledSizeIsThePoolsCapacity(t *testing.T) {
	var p bufpool.Pool
	for _, n := range []int{8, 4095, 4096, 4097, 1 << 20, 1<<20 + 1, 3 << 20, pooledMax - 1, pooledMax} {
		if got, want := pooledSize(n), cap(p.Get(n)); got != want {
			t.Errorf("pooledSize(%d) = %d, the pool's buffer has %d", n, got, want)
		}
	}
}
