package server

// max.connections.per.ip and max.connections.per.ip.overrides, as Kafka applies them:
// a connection from an address that already has its limit open is closed as soon as
// it is accepted. Overrides are host:count pairs; a host name is resolved once, at
// start, and the count applies to every address it resolves to (Kafka takes the first).
// As in Kafka, max.connections.per.ip may be 0 only if overrides are set (then only
// the addresses they name may connect). Rejections are logged at most once per
// rejectLogEvery, with the number left unlogged since the last line.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vltava/vltava/internal/config"
)

const rejectLogEvery = 10 * time.Second

type connLimits struct {
	perIP     int
	overrides map[netip.Addr]int

	now        func() time.Time
	mu         sync.Mutex
	lastLog    time.Time
	unreported int // rejections since lastLog that were not logged
}

func parseConnLimits(cfg config.Broker) (*connLimits, error) {
	l := &connLimits{perIP: int(^uint(0) >> 1), overrides: map[netip.Addr]int{}, now: time.Now}
	const key, okey = "max.connections.per.ip", "max.connections.per.ip.overrides"
	if v, ok := cfg.Values[key]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return nil, &config.Error{Key: key, Value: v, Reason: "must be a non-negative integer"}
		}
		l.perIP = n
	}
	spec := strings.TrimSpace(cfg.Values[okey])
	if spec != "" {
		for _, item := range strings.Split(spec, ",") {
			item = strings.TrimSpace(item)
			i := strings.LastIndex(item, ":")
			if i <= 0 {
				return nil, &config.Error{Key: okey, Value: spec, Reason: fmt.Sprintf("entry %q is not host:count", item)}
			}
			host := strings.Trim(item[:i], "[]")
			n, err := strconv.Atoi(strings.TrimSpace(item[i+1:]))
			if err != nil || n < 0 {
				return nil, &config.Error{Key: okey, Value: spec, Reason: fmt.Sprintf("entry %q: the count must be a non-negative integer", item)}
			}
			addrs, err := resolveHost(strings.TrimSpace(host))
			if err != nil {
				return nil, &config.Error{Key: okey, Value: spec, Reason: fmt.Sprintf("entry %q: %v", item, err)}
			}
			for _, a := range addrs {
				l.overrides[a] = n
			}
		}
	}
	if l.perIP == 0 && len(l.overrides) == 0 {
		return nil, &config.Error{Key: key, Value: "0", Reason: "can be set to zero only if " + okey + " is set"}
	}
	return l, nil
}

func resolveHost(host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap()
	}
	return addrs, nil
}

// limit is the most connections the address may have open.
func (l *connLimits) limit(ip netip.Addr) int {
	if n, ok := l.overrides[ip]; ok {
		return n
	}
	return l.perIP
}

// rejected logs a connection closed for being over its address's limit, at most once
// per rejectLogEvery.
func (l *connLimits) rejected(logger *slog.Logger, ip netip.Addr, limit int) {
	l.mu.Lock()
	now := l.now()
	if !l.lastLog.IsZero() && now.Sub(l.lastLog) < rejectLogEvery {
		l.unreported++
		l.mu.Unlock()
		return
	}
	more := l.unreported
	l.lastLog, l.unreported = now, 0
	l.mu.Unlock()
	logger.Warn("rejected a connection: the address already has the maximum connections (max.connections.per.ip)",
		"client", ip.String(), "max", limit, "also_rejected_since_last_line", more)
}

// remoteIP is the address a connection comes from (IPv4 in IPv6 unmapped), the key of
// the per-address count.
func remoteIP(nc net.Conn) netip.Addr {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, err := netip.ParseAddrPort(nc.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
