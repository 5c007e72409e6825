// topic.go is `vltava topic create|list|describe|delete|alter-config`, all through kadm so the
// same requests a Kafka admin client sends reach the cluster.
package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func topicCommands() []subcommand {
	return []subcommand{
		{"create", "NAME", "create a topic", Env.topicCreate},
		{"list", "", "list topic names", Env.topicList},
		{"describe", "[NAME...]", "partitions, leaders, replicas, ISR and non-default configs", Env.topicDescribe},
		{"delete", "NAME...", "delete topics", Env.topicDelete},
		{"alter-config", "NAME", "set or delete topic configs (incremental alter configs)", Env.topicAlterConfig},
	}
}

func (e Env) topicCreate(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("topic create", "NAME [flags]")
	partitions := fs.Int("partitions", -1, "number of partitions (-1: the broker's num.partitions)")
	rf := fs.Int("replication-factor", -1, "replicas per partition (-1: the broker's default.replication.factor)")
	var configs kvList
	fs.Var(&configs, "config", "topic config k=v (repeatable)")
	validateOnly := fs.Bool("validate-only", false, "ask the broker to validate the request without creating the topic")
	names, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return fs.Fail(fmt.Errorf("want exactly one topic name, got %d", len(names)))
	}
	if *partitions < -1 || *partitions == 0 || *partitions > 1<<31-1 {
		return fmt.Errorf("--partitions %d: want a positive count or -1", *partitions)
	}
	if *rf < -1 || *rf == 0 || *rf > 1<<15-1 {
		return fmt.Errorf("--replication-factor %d: want a positive count or -1", *rf)
	}
	if err := validTopicName(names[0]); err != nil {
		return err
	}
	cfg := make(map[string]*string, len(configs.keys))
	for i, k := range configs.keys {
		cfg[k] = kadm.StringPtr(configs.values[i])
	}

	adm, ctx, done, err := c.admin(ctx)
	if err != nil {
		return err
	}
	defer done()
	create := adm.CreateTopics
	if *validateOnly {
		create = adm.ValidateCreateTopics
	}
	name := names[0]
	rs, err := create(ctx, int32(*partitions), int16(*rf), cfg, name)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", name, c.reachErr(err))
	}
	r, ok := rs[name]
	if !ok {
		return fmt.Errorf("create topic %s: the response did not mention the topic", name)
	}
	if r.Err != nil {
		return fmt.Errorf("create topic %s: %w", name, kafkaErr(r.Err, r.ErrMessage))
	}
	verb := "created"
	if *validateOnly {
		verb = "validated"
	}
	// Brokers before Kafka 2.4 do not echo the counts; fall back to what was asked.
	p, f := r.NumPartitions, r.ReplicationFactor
	if p <= 0 {
		p = int32(*partitions)
	}
	if f <= 0 {
		f = int16(*rf)
	}
	fmt.Fprintf(e.Stdout, "%s topic %s (partitions %d, replication factor %d)\n", verb, name, p, f)
	return nil
}

func (e Env) topicList(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("topic list", "[flags]")
	internal := fs.Bool("internal", false, "include internal topics such as __consumer_offsets")
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
	list := adm.ListTopics
	if *internal {
		list = adm.ListTopicsWithInternal
	}
	topics, err := list(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", c.reachErr(err))
	}
	for _, name := range topics.Names() {
		fmt.Fprintln(e.Stdout, name)
	}
	return nil
}

func (e Env) topicDescribe(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("topic describe", "[NAME...] [flags]")
	names, err := fs.Parse(args)
	if err != nil {
		return err
	}
	adm, ctx, done, err := c.admin(ctx)
	if err != nil {
		return err
	}
	defer done()
	topics, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("describe topics: %w", c.reachErr(err))
	}
	if len(names) == 0 {
		names = topics.Names()
	}
	var found []string
	var errs []error
	for _, name := range names {
		if td, ok := topics[name]; !ok || td.Err != nil {
			terr := errors.New("missing from the metadata response")
			if ok {
				terr = td.Err
			}
			errs = append(errs, fmt.Errorf("topic %s: %w", name, terr))
			continue
		}
		found = append(found, name)
	}
	var configs kadm.ResourceConfigs
	if len(found) > 0 {
		configs, err = adm.DescribeTopicConfigs(ctx, found...)
		// Per-topic failures are reported next to the topic; only a wholly failed request
		// stops the describe.
		if err != nil && len(configs) == 0 {
			return fmt.Errorf("describe topic configs: %w", c.reachErr(err))
		}
	}
	w := bufio.NewWriter(e.Stdout)
	for _, name := range found {
		writeTopic(w, topics[name], configs)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// writeTopic prints one topic the way kafka-topics.sh --describe does, which operators know:
// a summary line with the configs set on the topic, then a tab-indented line per partition,
// fields separated by tabs so scripts can cut them.
func writeTopic(w io.Writer, td kadm.TopicDetail, configs kadm.ResourceConfigs) {
	rf := 0
	for _, p := range td.Partitions {
		rf = max(rf, len(p.Replicas))
	}
	cfg := "(none)"
	rc, err := configs.On(td.Topic, nil)
	switch {
	case err != nil:
		cfg = "(not returned)"
	case rc.Err != nil:
		cfg = fmt.Sprintf("(error: %v)", kafkaErr(rc.Err, rc.ErrMessage))
	default:
		if set := nonDefault(rc.Configs); len(set) > 0 {
			cfg = strings.Join(set, ",")
		}
	}
	fmt.Fprintf(w, "Topic: %s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: %s\n",
		td.Topic, topicID(td.ID), len(td.Partitions), rf, cfg)
	for _, p := range td.Partitions.Sorted() {
		fmt.Fprintf(w, "\tPartition: %d\tLeader: %s\tReplicas: %s\tIsr: %s", p.Partition, nodeID(p.Leader), ids(p.Replicas), ids(p.ISR))
		if len(p.OfflineReplicas) > 0 {
			fmt.Fprintf(w, "\tOffline: %s", ids(p.OfflineReplicas))
		}
		if p.Err != nil {
			fmt.Fprintf(w, "\tError: %v", p.Err)
		}
		fmt.Fprintln(w)
	}
}

// nonDefault returns the configs set on the topic itself as sorted k=v strings. Values the
// topic inherits (Kafka's defaults or the broker's static config) are left out, as
// kafka-topics.sh does, since they are the same for every topic.
func nonDefault(cs []kadm.Config) []string {
	var out []string
	for _, c := range cs {
		if c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			continue
		}
		v := c.MaybeValue()
		if c.Sensitive {
			v = "(sensitive)"
		}
		out = append(out, c.Key+"="+v)
	}
	slices.Sort(out)
	return out
}

// topicID prints a topic ID as Kafka's Uuid.toString does (URL-safe base64, no padding), so
// it matches what Kafka's own tools and logs show.
func topicID(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return "(none)"
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

func nodeID(id int32) string {
	if id < 0 {
		return "none"
	}
	return fmt.Sprint(id)
}

func ids(is []int32) string {
	if len(is) == 0 {
		return "(none)"
	}
	s := make([]string, len(is))
	for i, id := range is {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ",")
}

func (e Env) topicDelete(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("topic delete", "NAME... [flags]")
	names, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return fs.Fail(errors.New("want at least one topic name"))
	}
	adm, ctx, done, err := c.admin(ctx)
	if err != nil {
		return err
	}
	defer done()
	rs, err := adm.DeleteTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("delete topics: %w", c.reachErr(err))
	}
	var errs []error
	for _, name := range names {
		r, ok := rs[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("delete topic %s: the response did not mention the topic", name))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("delete topic %s: %w", name, kafkaErr(r.Err, r.ErrMessage)))
		default:
			fmt.Fprintf(e.Stdout, "deleted topic %s\n", name)
		}
	}
	return errors.Join(errs...)
}

func (e Env) topicAlterConfig(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("topic alter-config", "NAME --set k=v ... --delete k ... [flags]")
	var set kvList
	var del stringList
	fs.Var(&set, "set", "set config k=v (repeatable)")
	fs.Var(&del, "delete", "remove config k so the topic falls back to the default (repeatable)")
	validateOnly := fs.Bool("validate-only", false, "ask the broker to validate the change without applying it")
	names, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return fs.Fail(fmt.Errorf("want exactly one topic name, got %d", len(names)))
	}
	if len(set.keys)+len(del) == 0 {
		return fs.Fail(errors.New("nothing to change: give --set or --delete"))
	}
	var alters []kadm.AlterConfig
	for i, k := range set.keys {
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(set.values[i])})
	}
	for _, k := range del {
		alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}

	adm, ctx, done, err := c.admin(ctx)
	if err != nil {
		return err
	}
	defer done()
	alter := adm.AlterTopicConfigs
	if *validateOnly {
		alter = adm.ValidateAlterTopicConfigs
	}
	name := names[0]
	rs, err := alter(ctx, alters, name)
	if err != nil && len(rs) == 0 {
		return fmt.Errorf("alter configs of topic %s: %w", name, c.reachErr(err))
	}
	r, rerr := rs.On(name, nil)
	if rerr != nil {
		return fmt.Errorf("alter configs of topic %s: the response did not mention the topic", name)
	}
	if r.Err != nil {
		return fmt.Errorf("alter configs of topic %s: %w", name, kafkaErr(r.Err, r.ErrMessage))
	}
	verb := "altered"
	if *validateOnly {
		verb = "validated"
	}
	fmt.Fprintf(e.Stdout, "%s configs of topic %s\n", verb, name)
	return nil
}
