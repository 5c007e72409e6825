// cluster.go is `vltava cluster info`: what a Metadata response says about the cluster itself.
package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func clusterCommands() []subcommand {
	return []subcommand{
		{"info", "", "cluster id, controller and brokers (id, host:port, rack)", Env.clusterInfo},
		{"api-versions", "", "the API versions each broker advertises (KIP-511 ApiVersions)", Env.clusterAPIVersions},
	}
}

func (e Env) clusterInfo(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("cluster info", "[flags]")
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fs.Fail(fmt.Errorf("unexpected arguments %q", rest))
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
	// The Kafka protocol does not carry a broker's software version, so this is the tool's.
	fmt.Fprintf(e.Stdout, "Cluster ID: %s\nController: %s\nClient: vltava %s\nBrokers:\n", clusterID, nodeID(m.Controller), Version())
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

// clusterAPIVersions prints what each broker answers to ApiVersions, which is what every
// client negotiates against: the quickest check of what a broker claims to support.
func (e Env) clusterAPIVersions(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("cluster api-versions", "[flags]")
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fs.Fail(fmt.Errorf("unexpected arguments %q", rest))
	}
	adm, ctx, done, err := c.admin(ctx)
	if err != nil {
		return err
	}
	defer done()
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		return fmt.Errorf("api versions: %w", c.reachErr(err))
	}
	var errs []error
	for i, v := range vs.Sorted() {
		if v.Err != nil {
			errs = append(errs, fmt.Errorf("broker %d: %w", v.NodeID, v.Err))
			continue
		}
		if i > 0 {
			fmt.Fprintln(e.Stdout)
		}
		// No Kafka-version guess: it keys on APIs a partial implementation may lack on
		// purpose, and then misleads.
		fmt.Fprintf(e.Stdout, "Broker %d:\n", v.NodeID)
		tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
		v.EachKeySorted(func(key, minV, maxV int16) {
			fmt.Fprintf(tw, "  %s(%d)\t%d..%d\n", kmsg.NameForKey(key), key, minV, maxV)
		})
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}
