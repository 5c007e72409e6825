// Command vltava is the Vltava broker and its operator tools in one binary.
package main

import (
	"fmt"
	"os"

	"github.com/vltava/vltava/internal/cli"
	"github.com/vltava/vltava/internal/cli/cmdflag"
)

// serverCommand describes `vltava server` to the tools' usage and shell completion.
func serverCommand() cli.Extra {
	return cli.Extra{
		Name:    "server",
		Summary: "run a broker node (single-node cluster on 127.0.0.1:9092 with data in ./data by default)",
		Flags: func() *cmdflag.Set {
			fs, _ := serverFlags(os.Stdout, os.Stderr)
			return fs
		},
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, cli.Usage(serverCommand(), storageCommand()))
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "server":
		err = runServer(args)
	case "storage":
		err = runStorage(args, os.Stdout, os.Stderr)
	case "-h", "--help", "-help", "help":
		fmt.Print(cli.Usage(serverCommand(), storageCommand()))
		return
	default:
		var ok bool
		ok, err = cli.Run(cmd, args, serverCommand(), storageCommand())
		if !ok {
			fmt.Fprintf(os.Stderr, "vltava: unknown command %q\n\n%s", cmd, cli.Usage(serverCommand(), storageCommand()))
			os.Exit(2)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vltava %s: %v\n", cmd, err)
		os.Exit(1)
	}
}
