package server

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/config"
)

// Rejections at the per-address limit are logged at most once per rejectLogEvery,
// the next line counting those left out.
func TestConnLimitRejectionsRateLimited(t *testing.T) {
	clock := time.Unix(1000, 0)
	l, err := parseConnLimits(config.Broker{Values: map[string]string{"max.connections.per.ip": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	l.now = func() time.Time { return clock }
	var out bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&out, nil))
	ip := netip.MustParseAddr("192.0.2.7")
	for range 5 {
		l.rejected(logger, ip, 1)
	}
	if got := strings.Count(out.String(), "rejected a connection"); got != 1 {
		t.Fatalf("%d lines for 5 rejections within %v:\n%s", got, rejectLogEvery, out.String())
	}
	clock = clock.Add(rejectLogEvery)
	l.rejected(logger, ip, 1)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "also_rejected_since_last_line=4") || !strings.Contains(lines[1], "client=192.0.2.7") {
		t.Fatalf("after %v:\n%s", rejectLogEvery, out.String())
	}
}

func TestConnLimitsOverrides(t *testing.T) {
	l, err := parseConnLimits(config.Broker{Values: map[string]string{
		"max.connections.per.ip":           "3",
		"max.connections.per.ip.overrides": " 192.0.2.1:5, [2001:db8::1]:0 ,::ffff:192.0.2.9:2",
	}})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]int{"192.0.2.1": 5, "2001:db8::1": 0, "192.0.2.9": 2, "192.0.2.2": 3} {
		if got := l.limit(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: limit %d, want %d", addr, got, want)
		}
	}
}
