// cluster_config.go is `vltava cluster config describe|alter`: broker configs, as
// kafka-configs --entity-type brokers shows and changes them. A change applies to one
// broker (--broker) or, by default, to the whole cluster (Kafka's --entity-default: the
// dynamic default every broker falls back to).
package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func clusterConfigCommands() []subcommand {
	return []subcommand{
		{name: "describe", summary: "the configs set on each broker (--all: every effective one)", run: Env.clusterConfigDescribe},
		{name: "alter", summary: "set or delete broker configs, cluster-wide or for one --broker", run: Env.clusterConfigAlter},
	}
}

func (e Env) clusterConfigDescribe(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("cluster config describe", "[flags]")
	broker := fs.Int("broker", -1, "only this broker `ID` (-1: every broker)")
	clusterDefault := fs.Bool("default", false, "the cluster-wide dynamic defaults instead of a broker's configs (kafka-configs --entity-default)")
	all := fs.Bool("all", false, "every effective config, also those at Kafka's default (kafka-configs --describe --all)")
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	if *clusterDefault && *broker >= 0 {
		return fs.Fail(errors.New("--broker and --default: give one"))
	}
	adm, ctx, done, err := c.admin(ctx)
	if err != nil {
		return err
	}
	defer done()
	var ids []int32
	switch {
	case *clusterDefault:
	case *broker >= 0:
		ids = []int32{int32(*broker)}
	default:
		m, err := adm.BrokerMetadata(ctx)
		if err != nil {
			return fmt.Errorf("cluster metadata: %w", c.reachErr(err))
		}
		for _, b := range m.Brokers {
			ids = append(ids, b.NodeID)
		}
	}
	rcs, err := adm.DescribeBrokerConfigs(ctx, ids...)
	if err != nil && len(rcs) == 0 {
		return fmt.Errorf("describe broker configs: %w", c.reachErr(firstShardErr(err)))
	}
	var errs []error
	if err != nil {
		errs = append(errs, firstShardErr(err))
	}
	type brokerConfigs struct {
		Broker  string       `json:"broker"` // empty for the cluster-wide defaults
		Configs []jsonConfig `json:"configs"`
	}
	out := []brokerConfigs{}
	w := bufio.NewWriter(e.Stdout)
	for _, rc := range rcs {
		what := "broker " + rc.Name
		if rc.Name == "" {
			what = "the cluster-wide defaults"
		}
		if rc.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, kafkaErr(rc.Err, rc.ErrMessage)))
			continue
		}
		var shown []kadm.Config
		for _, cfg := range rc.Configs {
			if *all || cfg.Source != kmsg.ConfigSourceDefaultConfig {
				shown = append(shown, cfg)
			}
		}
		if c.output.json() {
			bc := brokerConfigs{Broker: rc.Name, Configs: []jsonConfig{}}
			for _, cfg := range sortedConfigs(shown) {
				bc.Configs = append(bc.Configs, configJSON(cfg))
			}
			out = append(out, bc)
			continue
		}
		if rc.Name == "" {
			fmt.Fprintln(w, "Cluster-wide default configs:")
		} else {
			fmt.Fprintf(w, "Configs for broker %s:\n", rc.Name)
		}
		if len(shown) == 0 {
			fmt.Fprintln(w, "  (none)")
		}
		writeConfigs(w, shown)
	}
	if c.output.json() {
		if err := writeJSON(e.Stdout, out); err != nil {
			return err
		}
	} else if err := w.Flush(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func (e Env) clusterConfigAlter(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("cluster config alter", "--set k=v ... --delete k ... [--broker ID] [flags]")
	var set kvList
	var del stringList
	fs.Var(&set, "set", "set config `k=v` (repeatable)")
	fs.Var(&del, "delete", "remove the dynamic value of config `k` (repeatable)")
	broker := fs.Int("broker", -1, "change only this broker `ID` (-1: the cluster-wide default, kafka-configs --entity-default)")
	validateOnly := fs.Bool("validate-only", false, "ask the broker to validate the change without applying it")
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	alters, err := configAlters(fs, set, del)
	if err != nil {
		return err
	}
	adm, ctx, done, err := c.admin(ctx)
	if err != nil {
		return err
	}
	defer done()
	var ids []int32
	what := "cluster-wide broker configs"
	if *broker >= 0 {
		ids = []int32{int32(*broker)}
		what = "configs of broker " + strconv.Itoa(*broker)
	}
	alter := adm.AlterBrokerConfigs
	if *validateOnly {
		alter = adm.ValidateAlterBrokerConfigs
	}
	rs, err := alter(ctx, alters, ids...)
	if err != nil && len(rs) == 0 {
		return fmt.Errorf("alter %s: %w", what, c.reachErr(firstShardErr(err)))
	}
	var errs []error
	for _, r := range rs {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("alter %s: %w", what, kafkaErr(r.Err, r.ErrMessage)))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if c.output.json() {
		out := struct {
			Broker       *int `json:"broker"` // null for the cluster-wide default
			ValidateOnly bool `json:"validate_only,omitempty"`
		}{ValidateOnly: *validateOnly}
		if *broker >= 0 {
			out.Broker = broker
		}
		return writeJSON(e.Stdout, out)
	}
	verb := "altered"
	if *validateOnly {
		verb = "validated"
	}
	fmt.Fprintf(e.Stdout, "%s %s\n", verb, what)
	return nil
}
