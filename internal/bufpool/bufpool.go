// Package bufpool recycles byte buffers in power-of-two size classes, so the
// request and response paths neither allocate nor zero a buffer per request.
package bufpool

import (
	"math/bits"
	"sync"
)

const (
	minShift = 12 // 4 KiB
	maxShift = 24 // 16 MiB: larger buffers are allocated and left to the GC
)

// Pool is a set of size-classed buffer pools. The zero value is ready to use.
type Pool struct {
	classes [maxShift - minShift + 1]sync.Pool
}

func class(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minShift
}

// Get returns a buffer of length n. Its contents are arbitrary.
func (p *Pool) Get(n int) []byte {
	c := class(n)
	if c >= len(p.classes) {
		return make([]byte, n)
	}
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, 1<<(c+minShift))
}

// Put returns a buffer obtained from Get (or any buffer whose capacity is a class size).
func (p *Pool) Put(b []byte) {
	c := cap(b)
	if c < 1<<minShift || c&(c-1) != 0 {
		return
	}
	k := bits.Len(uint(c)) - 1 - minShift
	if k >= len(p.classes) {
		return
	}
	b = b[:0]
	p.classes[k].Put(&b)
}
