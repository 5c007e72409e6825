// cluster.go is `vltava cluster info`: what a Metadata response says about the cluster itself.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"text/tabwriter"
)

const clusterUsage = `usage: vltava cluster <subcommand> [flags]

subcommands:
  info    cluster id, controller and brokers (id, host:port, rack)
`

func (e Env) cluster(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.Stderr, clusterUsage)
		return errors.New("missing subcommand")
	}
	switch args[0] {
	case "info":
		return e.clusterInfo(ctx, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.Stderr, clusterUsage)
		return flag.ErrHelp
	default:
		fmt.Fprint(e.Stderr, clusterUsage)
		return fmt.Errorf("unknown subcommand %q", args[0])
	}
}

func (e Env) clusterInfo(ctx context.Context, args []string) error {
	fs, c := e.newFlagSet("cluster", "cluster info [flags]", defaultRequestTimeout, "time limit for the request")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments %q", rest)
	}
	adm, ctx, done, err := c.admin(ctx)
	if err != nil {
		return err
	}
	defer done()
	m, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("cluster metadata: %w", c.reachErr(err))
	}
	clusterID := m.Cluster
	if clusterID == "" {
		clusterID = "(none)"
	}
	fmt.Fprintf(e.Stdout, "Cluster ID: %s\nController: %s\nBrokers:\n", clusterID, nodeID(m.Controller))
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tADDRESS\tRACK")
	for _, b := range m.Brokers {
		rack := "-"
		if b.Rack != nil && *b.Rack != "" {
			rack = *b.Rack
		}
		addr := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
		fmt.Fprintf(tw, "  %d\t%s\t%s\n", b.NodeID, addr, rack)
	}
	return tw.Flush()
}
