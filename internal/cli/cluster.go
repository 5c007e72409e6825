// cluster.go is `vltava cluster info|api-versions`: what Metadata and ApiVersions say about
// the cluster itself. Broker configs are in cluster_config.go.
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
		{name: "info", summary: "cluster id, controller and brokers (id, host:port, rack)", run: Env.clusterInfo},
		{name: "api-versions", summary: "the API versions each broker advertises (KIP-511 ApiVersions)", run: Env.clusterAPIVersions},
		{name: "config", summary: "describe or alter broker configs (kafka-configs --entity-type brokers)", subs: clusterConfigCommands()},
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
	if c.output.json() {
		type broker struct {
			ID   int32   `json:"id"`
			Host string  `json:"host"`
			Port int32   `json:"port"`
			Rack *string `json:"rack"`
		}
		out := struct {
			ClusterID     string   `json:"cluster_id"`
			Controller    int32    `json:"controller"`
			Brokers       []broker `json:"brokers"`
			ClientVersion string   `json:"client_version"`
		}{ClusterID: m.Cluster, Controller: m.Controller, Brokers: []broker{}, ClientVersion: Version().String()}
		for _, b := range m.Brokers {
			out.Brokers = append(out.Brokers, broker{b.NodeID, b.Host, b.Port, b.Rack})
		}
		return writeJSON(e.Stdout, out)
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
	type api struct {
		Key  int16  `json:"key"`
		Name string `json:"name"`
		Min  int16  `json:"min"`
		Max  int16  `json:"max"`
	}
	type brokerAPIs struct {
		Broker int32 `json:"broker"`
		APIs   []api `json:"apis"`
	}
	out := []brokerAPIs{}
	var errs []error
	for _, v := range vs.Sorted() {
		if v.Err != nil {
			errs = append(errs, fmt.Errorf("broker %d: %w", v.NodeID, v.Err))
			continue
		}
		b := brokerAPIs{Broker: v.NodeID}
		v.EachKeySorted(func(key, minV, maxV int16) {
			b.APIs = append(b.APIs, api{key, kmsg.NameForKey(key), minV, maxV})
		})
		out = append(out, b)
	}
	if c.output.json() {
		if err := writeJSON(e.Stdout, out); err != nil {
			return err
		}
		return errors.Join(errs...)
	}
	for i, b := range out {
		if i > 0 {
			fmt.Fprintln(e.Stdout)
		}
		// No Kafka-version guess: it keys on APIs a partial implementation may lack on
		// purpose, and then misleads.
		fmt.Fprintf(e.Stdout, "Broker %d:\n", b.Broker)
		tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
		for _, a := range b.APIs {
			fmt.Fprintf(tw, "  %s(%d)\t%d..%d\n", a.Name, a.Key, a.Min, a.Max)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}
