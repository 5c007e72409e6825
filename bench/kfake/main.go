// Command kfake runs franz-go's in-memory fake Kafka cluster (kfake, at the version go.mod pins)
// as a single broker on loopback, so bench/compare can measure it the way it measures Vltava: as a
// separate process driven by `vltava bench` over TCP.
//
// It prints "listening on HOST:PORT" once the broker accepts connections and runs until SIGINT
// or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 0, "port on 127.0.0.1 to listen on (0 = a free one, printed at start)")
	partitions := flag.Int("partitions", 8, "partitions of topics created without a count")
	flag.Parse()

	c, err := kfake.NewCluster(
		kfake.Ports(*port), // one port, so one broker
		kfake.DefaultNumPartitions(*partitions),
		kfake.AllowAutoTopicCreation(),
	)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfake: start cluster on port %d: %v\n", *port, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", c.ListenAddrs()[0])

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	c.Close()
}
