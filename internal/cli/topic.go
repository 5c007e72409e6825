// topic.go is `vltava topic create|list|delete` and the list of topic subcommands, all
// through kadm so the same requests a Kafka admin client sends reach the cluster. describe
// is in topic_describe.go, alter, alter-config and trim in topic_alter.go, offsets in
// topic_offsets.go.
package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func topicCommands() []subcommand {
	return []subcommand{
		{name: "create", args: "NAME", summary: "create a topic", run: Env.topicCreate},
		{name: "list", summary: "list topic names", run: Env.topicList},
		{name: "describe", args: "[NAME...]", summary: "partitions, leaders, replicas, ISR and configs (--all: every effective one)", run: Env.topicDescribe},
		{name: "offsets", args: "[NAME...]", summary: "log start offset, high watermark and log end offset per partition", run: Env.topicOffsets},
		{name: "alter", args: "NAME", summary: "add partitions (--partitions sets the new total, as kafka-topics --alter)", run: Env.topicAlter},
		{name: "alter-config", args: "NAME", summary: "set or delete topic configs (incremental alter configs)", run: Env.topicAlterConfig},
		{name: "trim", args: "NAME", summary: "delete the records before an offset or time (DeleteRecords)", run: Env.topicTrim},
		{name: "delete", args: "NAME...", summary: "delete topics", run: Env.topicDelete},
	}
}

func (e Env) topicCreate(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("topic create", "NAME [flags]")
	partitions := fs.Int("partitions", -1, "number of partitions (-1: the broker's num.partitions)")
	rf := fs.Int("replication-factor", -1, "replicas per partition (-1: the broker's default.replication.factor)")
	var configs kvList
	fs.Var(&configs, "config", "topic config `k=v` (repeatable)")
	validateOnly := fs.Bool("validate-only", false, "ask the broker to validate the request without creating the topic")
	ifNotExists := fs.Bool("if-not-exists", false, "succeed without changing anything if the topic exists (kafka-topics --if-not-exists)")
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
	out := struct {
		Topic             string `json:"topic"`
		ID                string `json:"id,omitempty"`
		Created           bool   `json:"created"`
		ValidateOnly      bool   `json:"validate_only,omitempty"`
		Partitions        int32  `json:"partitions,omitempty"`
		ReplicationFactor int16  `json:"replication_factor,omitempty"`
	}{Topic: name, ValidateOnly: *validateOnly}
	switch {
	case *ifNotExists && errors.Is(r.Err, kerr.TopicAlreadyExists):
		if c.output.json() {
			return writeJSON(e.Stdout, out)
		}
		fmt.Fprintf(e.Stdout, "topic %s already exists\n", name)
		return nil
	case r.Err != nil:
		return fmt.Errorf("create topic %s: %w", name, kafkaErr(r.Err, r.ErrMessage))
	}
	// Brokers before Kafka 2.4 do not echo the counts; fall back to what was asked.
	out.Partitions, out.ReplicationFactor = r.NumPartitions, r.ReplicationFactor
	if out.Partitions <= 0 {
		out.Partitions = int32(*partitions)
	}
	if out.ReplicationFactor <= 0 {
		out.ReplicationFactor = int16(*rf)
	}
	out.Created = !*validateOnly
	if r.ID != (kadm.TopicID{}) {
		out.ID = topicID(r.ID)
	}
	if c.output.json() {
		return writeJSON(e.Stdout, out)
	}
	verb := "created"
	if *validateOnly {
		verb = "validated"
	}
	fmt.Fprintf(e.Stdout, "%s topic %s (partitions %d, replication factor %d)\n", verb, name, out.Partitions, out.ReplicationFactor)
	return nil
}

func (e Env) topicList(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("topic list", "[flags]")
	internal := fs.Bool("internal", false, "include internal topics such as __consumer_offsets")
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
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
	if c.output.json() {
		type topic struct {
			Name              string `json:"name"`
			ID                string `json:"id"`
			Partitions        int    `json:"partitions"`
			ReplicationFactor int    `json:"replication_factor"`
			Internal          bool   `json:"internal"`
		}
		out := []topic{}
		for _, td := range topics.Sorted() {
			out = append(out, topic{td.Topic, topicID(td.ID), len(td.Partitions), replicationFactor(td), td.IsInternal})
		}
		return writeJSON(e.Stdout, out)
	}
	for _, name := range topics.Names() {
		fmt.Fprintln(e.Stdout, name)
	}
	return nil
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
	type deleted struct {
		Topic string `json:"topic"`
	}
	out := []deleted{}
	var errs []error
	for _, name := range names {
		r, ok := rs[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("delete topic %s: the response did not mention the topic", name))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("delete topic %s: %w", name, kafkaErr(r.Err, r.ErrMessage)))
		case c.output.json():
			out = append(out, deleted{name})
		default:
			fmt.Fprintf(e.Stdout, "deleted topic %s\n", name)
		}
	}
	if c.output.json() {
		if err := writeJSON(e.Stdout, out); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}
