// Command kfake runs franz-go's in-memory fake Kafka cluster (kfake, at the version go.mod pins)
// as a single broker on loopback, so bench/compare can measure it the way it measures Vltava: as a
// separate process driven by `vltava bench` over TCP.
//
// It prints "listening on HOST:PORT" once the broker accepts connections and runs until SIGINT
// or SIGTERM. A failure to start is reported on stderr with exit status 1.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "kfake: %v\n", err)
		os.Exit(1)
	}
}

// run serves until a signal; its deferred calls (the CPU profile) run on the way out.
func run() error {
	port := flag.Int("port", 0, "port on 127.0.0.1 to listen on (0 = a free one, printed at start)")
	partitions := flag.Int("partitions", 8, "partitions of topics created without a count")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file, as `vltava server --cpuprofile` does")
	flag.Parse()

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start CPU profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}

	c, err := kfake.NewCluster(
		kfake.Ports(*port), // one port, so one broker
		kfake.DefaultNumPartitions(*partitions),
		kfake.AllowAutoTopicCreation(),
	)
	if err != nil {
		return fmt.Errorf("start cluster on port %d: %w", *port, err)
	}
	defer c.Close()
	fmt.Printf("listening on %s\n", c.ListenAddrs()[0])

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	return nil
}
