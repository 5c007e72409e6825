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
// Rules match source and destination addresses, so a node's connections to
// another node must come from its own address: the cluster's inter-node
// dialer binds the node's listener host (net.Dialer.LocalAddr), as every
// host of a real cluster has its own.
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
	verdict := "drop"
	if mode == Reset {
		verdict = "reject with tcp reset"
	}
	var s strings.Builder
	fmt.Fprintf(&s, "add table inet %s\n", f.Table)
	fmt.Fprintf(&s, "add chain inet %s output { type filter hook output priority 0; policy accept; }\n", f.Table)
	if mode == Reset {
		// The reset a reject sends back passes this hook too, between
		// the same two addresses: let resets through, or none arrives.
		fmt.Fprintf(&s, "insert rule inet %s output tcp flags & rst == rst accept\n", f.Table)
	}
	for _, x := range a {
		for _, y := range b {
			for _, pair := range [][2]string{{x, y}, {y, x}} {
				if mode == Reset {
					// Reset for TCP; anything else is dropped.
					fmt.Fprintf(&s, "add rule inet %s output ip saddr %s ip daddr %s meta l4proto tcp %s\n", f.Table, pair[0], pair[1], verdict)
				}
				fmt.Fprintf(&s, "add rule inet %s output ip saddr %s ip daddr %s drop\n", f.Table, pair[0], pair[1])
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
