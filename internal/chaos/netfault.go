package chaos

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// Firewall cuts traffic between the nodes' loopback addresses with nftables
// rules in the sandbox's network namespace (never the host's: the rules are
// refused outside the sandbox). A cut either drops packets, so connections
// stall and retransmit until the heal, or rejects them with a TCP reset, so
// they fail at once; both are what a process sees from a real partition.
//
// Rules match source and destination addresses, which is enough for a
// process that binds its own address before it dials. Vltava's inter-node
// dialers do not (every connection leaves from 127.0.0.1, as on a real host
// with one address), so a cluster's nodes each run with a group of their
// own and CutEndpoints matches their packets by the socket's group too.
type Firewall struct {
	// Table is the nftables table the rules live in (inet family).
	Table string
	// run executes nft with a script on stdin; tests may replace it.
	run func(script string) error
}

// NewFirewall returns a firewall that drives nft in this process's network
// namespace.
func NewFirewall() *Firewall {
	return &Firewall{Table: "vltava_chaos", run: runNft}
}

func runNft(script string) error {
	if !InSandbox() {
		return fmt.Errorf("nft: refusing to change the firewall outside the battery's sandbox")
	}
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft: %w: %s\nscript:\n%s", err, out.String(), script)
	}
	return nil
}

// CutMode is how a cut treats packets.
type CutMode string

// Drop stalls connections; Reset fails them with a TCP reset.
const (
	Drop  CutMode = "drop"
	Reset CutMode = "reset"
)

// Cut stops traffic in both directions between every address of a and
// every address of b (IPv4 literals such as 127.0.0.11). Cuts add up until
// Heal.
func (f *Firewall) Cut(a, b []string, mode CutMode) error {
	var ea, eb []Endpoint
	for _, x := range a {
		ea = append(ea, Endpoint{Host: x})
	}
	for _, y := range b {
		eb = append(eb, Endpoint{Host: y})
	}
	return f.CutEndpoints(ea, eb, mode)
}

// Endpoint is a node as the firewall sees it: its address and, when it runs
// as its own group, that group (0: none). A process whose dialer does not
// bind its address sends from 127.0.0.1, so only its socket's group tells
// its packets from another node's.
type Endpoint struct {
	Host string
	GID  int
}

// CutEndpoints stops traffic in both directions between every endpoint of
// a and every endpoint of b: packets from one's address to the other's, and
// packets of sockets owned by one's user to the other's address (a
// connection one dials to the other stalls, or fails, at its first packet;
// the other end's replies need no rule, as nothing of the dialer's reaches
// it). Cuts add up until Heal.
func (f *Firewall) CutEndpoints(a, b []Endpoint, mode CutMode) error {
	var s strings.Builder
	fmt.Fprintf(&s, "add table inet %s\n", f.Table)
	fmt.Fprintf(&s, "add chain inet %s output { type filter hook output priority 0; policy accept; }\n", f.Table)
	if mode == Reset {
		// The reset a reject sends back passes this hook too, between
		// the same two addresses: let resets through, or none arrives.
		fmt.Fprintf(&s, "insert rule inet %s output tcp flags & rst == rst accept\n", f.Table)
	}
	rule := func(match string) {
		if mode == Reset {
			// Reset for TCP; anything else is dropped.
			fmt.Fprintf(&s, "add rule inet %s output %s meta l4proto tcp reject with tcp reset\n", f.Table, match)
		}
		fmt.Fprintf(&s, "add rule inet %s output %s drop\n", f.Table, match)
	}
	for _, x := range a {
		for _, y := range b {
			for _, pair := range [][2]Endpoint{{x, y}, {y, x}} {
				rule(fmt.Sprintf("ip saddr %s ip daddr %s", pair[0].Host, pair[1].Host))
				if pair[0].GID != 0 {
					rule(fmt.Sprintf("meta skgid %d ip daddr %s", pair[0].GID, pair[1].Host))
				}
			}
		}
	}
	return f.run(s.String())
}

// Heal removes every cut.
func (f *Firewall) Heal() error {
	// Adding an existing table is a no-op, so the delete never fails for
	// a table that was not there.
	return f.run(fmt.Sprintf("add table inet %s\ndelete table inet %s\n", f.Table, f.Table))
}
