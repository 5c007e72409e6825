// Command vltava is the Vltava broker and its operator tools in one binary.
package main

import (
	"fmt"
	"os"

	"github.com/vltava/vltava/internal/cli"
)

const usage = `usage: vltava <command> [flags]

commands:
  server     run a broker node (single-node cluster on 127.0.0.1:9092 with data in ./data by default)
  topic      create|list|describe|delete|alter-config topics
  produce    produce lines from stdin
  consume    consume records to stdout
  group      list|describe|reset-offsets|delete consumer groups
  cluster    info|api-versions: brokers, controller, cluster id, API versions
  bench      produce|consume|e2e load generator

Run "vltava <command> -h" for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "server":
		err = runServer(args)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		var ok bool
		ok, err = cli.Run(cmd, args)
		if !ok {
			fmt.Fprintf(os.Stderr, "vltava: unknown command %q\n\n%s", cmd, usage)
			os.Exit(2)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vltava %s: %v\n", cmd, err)
		os.Exit(1)
	}
}
