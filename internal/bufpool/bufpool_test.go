package bufpool

import "testing"

func TestClasses(t *testing.T) {
	var p Pool
	for _, n := range []int{0, 1, 4096, 4097, 1 << 20, 1<<20 + 1, 16 << 20} {
		b := p.Get(n)
		if len(b) != n || cap(b) < n || cap(b)&(cap(b)-1) != 0 {
			t.Fatalf("Get(%d): len %d cap %d", n, len(b), cap(b))
		}
		p.Put(b)
		if b2 := p.Get(n); cap(b2) != cap(b) {
			t.Fatalf("Get(%d) after Put: cap %d, want %d", n, cap(b2), cap(b))
		}
	}
	if b := p.Get(32 << 20); len(b) != 32<<20 {
		t.Fatal("large buffer")
	}
}

func BenchmarkGetPut(b *testing.B) {
	var p Pool
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf := p.Get(1 << 20)
		p.Put(buf)
	}
}
