package chaos

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// inSandbox runs the calling test again in a child process of the test
// binary inside a fresh sandbox (new mount and network namespaces: the
// battery's own, never the host's), and fails with its output if it fails.
// It returns true in the child, where the test should do its work.
func inSandbox(t *testing.T) bool {
	t.Helper()
	if InSandbox() {
		if err := SetUpSandbox(); err != nil {
			t.Fatal(err)
		}
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), SandboxEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in the sandbox (root needed): %v\n%s", err, out)
	}
	t.Logf("in the sandbox:\n%s", out)
	return false
}

// echoServer echoes lines on addr until the test ends.
func echoServer(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadBytes('\n')
					if err != nil {
						return
					}
					if _, err := c.Write(line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln
}

// dialFrom connects from local host to addr.
func dialFrom(host, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(host)}}
	return d.Dial("tcp", addr)
}

// roundTrip sends a line and waits up to wait for its echo.
func roundTrip(c net.Conn, line string, wait time.Duration) error {
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return err
	}
	return readLine(c, line, wait)
}

func readLine(c net.Conn, line string, wait time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		return errors.New("echo " + got)
	}
	return nil
}

// TestFirewallCutsAndHeals: between listeners on 127.0.0.2 and 127.0.0.3 in
// a fresh network namespace, a drop cut stalls an open connection and new
// ones, a heal lets the stalled bytes through and new connections in, a
// reset cut fails both at once, and another pair of addresses is never
// touched.
func TestFirewallCutsAndHeals(t *testing.T) {
	if !inSandbox(t) {
		return
	}
	const a, b, other = "127.0.0.2", "127.0.0.3", "127.0.0.4"
	lnB := echoServer(t, b+":0")
	lnOther := echoServer(t, other+":0")
	conn, err := dialFrom(a, lnB.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := roundTrip(conn, "before", 5*time.Second); err != nil {
		t.Fatalf("before any cut: %v", err)
	}
	fw := NewFirewall()
	defer fw.Heal()

	if err := fw.Cut([]string{a}, []string{b}, Drop); err != nil {
		t.Fatal(err)
	}
	var ne net.Error
	if err := roundTrip(conn, "stalled", 500*time.Millisecond); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("open connection across a drop cut: %v, want a stall (timeout)", err)
	}
	if c, err := dialFrom(a, lnB.Addr().String(), 500*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("new connection across a drop cut succeeded")
	}
	// Traffic from a to a third address still flows.
	if c, err := dialFrom(a, lnOther.Addr().String(), time.Second); err != nil {
		t.Fatalf("a to %s during the cut: %v", other, err)
	} else {
		if err := roundTrip(c, "elsewhere", 5*time.Second); err != nil {
			t.Fatalf("a to %s during the cut: %v", other, err)
		}
		c.Close()
	}

	if err := fw.Heal(); err != nil {
		t.Fatal(err)
	}
	// The stalled line arrives once TCP retransmits it.
	if err := readLine(conn, "stalled", 30*time.Second); err != nil {
		t.Fatalf("after the heal the stalled line: %v", err)
	}
	c2, err := dialFrom(a, lnB.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("new connection after the heal: %v", err)
	}
	defer c2.Close()
	if err := roundTrip(c2, "healed", 5*time.Second); err != nil {
		t.Fatal(err)
	}

	if err := fw.Cut([]string{b}, []string{a}, Reset); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(c2, "reset", 5*time.Second); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("open connection across a reset cut: %v, want ECONNRESET", err)
	}
	if c, err := dialFrom(a, lnB.Addr().String(), 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("new connection across a reset cut: %v, want ECONNREFUSED", err)
	}
	if err := fw.Heal(); err != nil {
		t.Fatal(err)
	}
	c3, err := dialFrom(a, lnB.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("after the second heal: %v", err)
	}
	defer c3.Close()
	if err := roundTrip(c3, "again", 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestFirewallRefusesTheHost: outside the sandbox nft is never run.
func TestFirewallRefusesTheHost(t *testing.T) {
	if InSandbox() {
		return
	}
	if err := NewFirewall().Cut([]string{"127.0.0.2"}, []string{"127.0.0.3"}, Drop); err == nil {
		t.Fatal("a cut outside the sandbox was not refused")
	}
}

// dialEnv makes the test binary a one-shot client: dial the address it
// names, round-trip a line, exit 0 (or 1 on failure). It runs as a node's
// group in TestFirewallCutsByGroup.
const dialEnv = "VLTAVACHAOS_TEST_DIAL"

func TestMain(m *testing.M) {
	if addr := os.Getenv(dialEnv); addr != "" {
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err == nil {
			err = roundTrip(c, "group", 500*time.Millisecond)
			c.Close()
		}
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestFirewallCutsByGroup: a process that dials without binding its address
// (as the nodes' dialers do: every connection leaves from 127.0.0.1) is cut
// from b by its group, while the battery's connections from the same
// address to b still flow, and a heal lets it through again.
func TestFirewallCutsByGroup(t *testing.T) {
	if !inSandbox(t) {
		return
	}
	const gid = nodeGIDBase + 99
	const a, b = "127.0.0.2", "127.0.0.3"
	ln := echoServer(t, b+":0")
	dialAs := func() error {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), dialEnv+"="+ln.Addr().String())
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(os.Geteuid()), Gid: gid}, Pdeathsig: syscall.SIGKILL}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := dialAs(); err != nil {
		t.Fatalf("before the cut: %v", err)
	}
	fw := NewFirewall()
	defer fw.Heal()
	if err := fw.CutEndpoints([]Endpoint{{Host: a, GID: gid}}, []Endpoint{{Host: b}}, Drop); err != nil {
		t.Fatal(err)
	}
	if err := dialAs(); err == nil {
		t.Fatal("the node's group reached b across the cut")
	}
	c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatalf("the battery from 127.0.0.1 to b during the cut: %v", err)
	}
	if err := roundTrip(c, "battery", 5*time.Second); err != nil {
		t.Fatalf("the battery from 127.0.0.1 to b during the cut: %v", err)
	}
	c.Close()
	if err := fw.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := dialAs(); err != nil {
		t.Fatalf("after the heal: %v", err)
	}
}
