// cluster.go is `vltava cluster info|api-versions`: what Metadata, DescribeCluster,
// DescribeQuorum and ApiVersions say about the cluster itself. Broker configs are in
// cluster_config.go, the quorum's requests and voter changes in cluster_quorum.go.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func clusterCommands() []subcommand {
	return []subcommand{
		{name: "info", summary: "cluster id, controller, brokers (id, host:port, rack, fenced) and the metadata quorum (DescribeQuorum)", run: Env.clusterInfo},
		{name: "add-voter", summary: "add a controller to the metadata quorum (KIP-853 AddRaftVoter; kafka-metadata-quorum add-controller)", run: Env.clusterAddVoter},
		{name: "remove-voter", summary: "remove a controller from the metadata quorum (KIP-853 RemoveRaftVoter)", run: Env.clusterRemoveVoter},
		{name: "unregister", summary: "remove a broker that is gone for good from the cluster's metadata (UnregisterBroker; kafka-cluster unregister)", run: Env.clusterUnregister},
		{name: "api-versions", summary: "the API versions each broker advertises (KIP-511 ApiVersions)", run: Env.clusterAPIVersions},
		{name: "config", summary: "describe or alter broker configs (kafka-configs --entity-type brokers)", subs: clusterConfigCommands()},
	}
}

func (e Env) clusterInfo(ctx context.Context, args []string) error {
	fs, c, f := e.quorumFlagSet("cluster info", "[flags]")
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	// With only --bootstrap-controller, as kafka-metadata-quorum, there is no broker to ask
	// about brokers: show the quorum alone.
	brokersSet := e.getenv(brokersEnv) != ""
	fs.Visit(func(fl *flag.Flag) { brokersSet = brokersSet || fl.Name == "brokers" || fl.Name == "bootstrap-server" })
	controllerOnly := f.bootstrapController != "" && !brokersSet

	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	out := clusterInfoJSON{ClientVersion: Version().String(), Brokers: []brokerInfo{}}
	if !controllerOnly {
		if err := c.brokersInfo(ctx, &out); err != nil {
			return err
		}
	}
	q, _, qerr := c.describeQuorum(ctx, f)
	if qerr != nil {
		if controllerOnly {
			return qerr
		}
		out.QuorumError = qerr.Error()
	} else {
		out.Quorum = &q
	}
	if c.output.json() {
		return writeJSON(e.Stdout, out)
	}
	if !controllerOnly {
		clusterID := out.ClusterID
		if clusterID == "" {
			clusterID = "(none)"
		}
		// The Kafka protocol does not carry a broker's software version, so this is the tool's.
		fmt.Fprintf(e.Stdout, "Cluster ID: %s\nController: %s\nClient: vltava %s\nBrokers:\n", clusterID, nodeID(out.Controller), Version())
		tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tADDRESS\tRACK\tFENCED")
		for _, b := range out.Brokers {
			rack := "-"
			if b.Rack != nil && *b.Rack != "" {
				rack = *b.Rack
			}
			fenced := "?" // the broker does not answer DescribeCluster v2
			if b.Fenced != nil {
				fenced = map[bool]string{true: "yes", false: "no"}[*b.Fenced]
			}
			addr := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", b.ID, addr, rack, fenced)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if qerr != nil {
		fmt.Fprintf(e.Stdout, "Quorum: unavailable: %v\n", qerr)
		return nil
	}
	writeQuorumText(e, q, time.Now())
	return nil
}

type brokerInfo struct {
	ID     int32   `json:"id"`
	Host   string  `json:"host"`
	Port   int32   `json:"port"`
	Rack   *string `json:"rack"`
	Fenced *bool   `json:"fenced"` // null when the broker does not say (DescribeCluster before v2)
}

type clusterInfoJSON struct {
	ClusterID     string       `json:"cluster_id"`
	Controller    int32        `json:"controller"`
	Brokers       []brokerInfo `json:"brokers"`
	Quorum        *quorumInfo  `json:"quorum"`
	QuorumError   string       `json:"quorum_error,omitempty"`
	ClientVersion string       `json:"client_version"`
}

// brokersInfo fills the cluster ID, controller and brokers: from DescribeCluster v2 with
// the fenced brokers where the cluster answers it (Kafka 4.0's), else from Metadata,
// which lists the unfenced brokers only.
func (c *common) brokersInfo(ctx context.Context, out *clusterInfoJSON) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	m, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("cluster metadata: %w", c.reachErr(err))
	}
	out.ClusterID, out.Controller = m.Cluster, m.Controller
	req := kmsg.NewPtrDescribeClusterRequest()
	req.IncludeFencedBrokers = true
	kresp, err := cl.Request(ctx, req)
	if err == nil {
		resp := kresp.(*kmsg.DescribeClusterResponse)
		if kerr.ErrorForCode(resp.ErrorCode) == nil {
			out.ClusterID, out.Controller = resp.ClusterID, resp.ControllerID
			for _, b := range resp.Brokers {
				bi := brokerInfo{ID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack}
				if resp.Version >= 2 {
					bi.Fenced = &b.IsFenced
				}
				out.Brokers = append(out.Brokers, bi)
			}
			return nil
		}
	}
	for _, b := range m.Brokers {
		out.Brokers = append(out.Brokers, brokerInfo{ID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
	}
	return nil
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
