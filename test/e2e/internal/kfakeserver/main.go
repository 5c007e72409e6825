// Command kfakeserver runs franz-go's in-memory fake cluster (kfake) behind the
// same command line as `vltava server`, so the e2e harness can be developed and
// cross-checked against a peer that behaves like Kafka. Only the flags the
// harness uses are understood:
//
//	kfakeserver server --data-dir DIR --listen HOST:PORT --ready-file FILE [--override k=v ...]
//
// Once the listener accepts connections it writes "host:port" to the ready
// file (write to a temporary name, then rename, so readers never see half a
// line). SIGTERM or SIGINT closes the cluster. --data-dir enables kfake's own
// persistence with fsync per batch.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

type overrides map[string]string

func (o overrides) String() string { return fmt.Sprint(map[string]string(o)) }
func (o overrides) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("override %q: want key=value", s)
	}
	o[k] = v
	return nil
}

func main() {
	if len(os.Args) < 2 || os.Args[1] != "server" {
		fmt.Fprintln(os.Stderr, "usage: kfakeserver server --listen HOST:PORT --ready-file FILE [--data-dir DIR]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	dataDir := fs.String("data-dir", "", "persist data here")
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	ready := fs.String("ready-file", "", "write host:port here once listening")
	ov := overrides{}
	fs.Var(ov, "override", "broker config key=value (repeatable)")
	_ = fs.Parse(os.Args[2:])

	host, portStr, err := net.SplitHostPort(*listen)
	if err != nil {
		fail(err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		fail(err)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.AllowAutoTopicCreation(),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
	}
	if len(ov) > 0 {
		opts = append(opts, kfake.BrokerConfigs(ov))
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir), kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fail(err)
	}
	addr := c.ListenAddrs()[0]
	if *ready != "" {
		tmp := *ready + ".tmp"
		if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o644); err != nil {
			fail(err)
		}
		if err := os.Rename(tmp, *ready); err != nil {
			fail(err)
		}
	}
	fmt.Fprintf(os.Stderr, "level=INFO msg=listening addr=%s\n", addr)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	c.Close()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kfakeserver:", err)
	os.Exit(1)
}
