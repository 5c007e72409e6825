package chaos

import (
	"testing"
	"time"
)

// TestProxyDelaysAndHeals: through the proxy an echo takes at least two
// delays once one is set, and is quick again once it is cleared; closing
// the proxy ends its links.
func TestProxyDelaysAndHeals(t *testing.T) {
	ln := echoServer(t, "127.0.0.1:0")
	p, err := NewProxy("127.0.0.1:0", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := dialFrom("127.0.0.1", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rtt := func(line string) time.Duration {
		t.Helper()
		start := time.Now()
		if err := roundTrip(c, line, 10*time.Second); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return time.Since(start)
	}
	fast := rtt("fast")
	const delay = 150 * time.Millisecond
	p.SetDelay(delay)
	if d := rtt("slow"); d < 2*delay {
		t.Fatalf("round trip %v through a link delayed %v each way (unslowed %v)", d, delay, fast)
	}
	p.SetDelay(0)
	if d := rtt("healed"); d >= 2*delay {
		t.Fatalf("round trip %v after the delay was cleared", d)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(c, "closed", 5*time.Second); err == nil {
		t.Fatal("echo through a closed proxy")
	}
}
