// topic_alter.go changes topics: `topic alter` adds partitions (kafka-topics --alter
// --partitions), `topic alter-config` sets and deletes configs (kafka-configs --alter),
// `topic trim` deletes the records before an offset or a time (kafka-delete-records,
// rpk topic trim-prefix).
package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

func (e Env) topicAlter(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("topic alter", "NAME --partitions N [flags]")
	partitions := fs.Int("partitions", 0, "the new total number of partitions (more than now: Kafka never removes partitions)")
	validateOnly := fs.Bool("validate-only", false, "ask the broker to validate the change without applying it")
	names, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return fs.Fail(fmt.Errorf("want exactly one topic name, got %d", len(names)))
	}
	if *partitions <= 0 || *partitions > 1<<31-1 {
		return fs.Fail(errors.New("--partitions: give the new total, a positive count"))
	}
	adm, ctx, done, err := c.admin(ctx)
	if err != nil {
		return err
	}
	defer done()
	update := adm.UpdatePartitions
	if *validateOnly {
		update = adm.ValidateUpdatePartitions
	}
	name := names[0]
	rs, err := update(ctx, *partitions, name)
	if err != nil && len(rs) == 0 {
		return fmt.Errorf("add partitions to topic %s: %w", name, c.reachErr(err))
	}
	r, ok := rs[name]
	switch {
	case !ok:
		return fmt.Errorf("add partitions to topic %s: the response did not mention the topic", name)
	case r.Err != nil:
		return fmt.Errorf("add partitions to topic %s: %w", name, kafkaErr(r.Err, r.ErrMessage))
	}
	if c.output.json() {
		return writeJSON(e.Stdout, struct {
			Topic        string `json:"topic"`
			Partitions   int    `json:"partitions"`
			ValidateOnly bool   `json:"validate_only,omitempty"`
		}{name, *partitions, *validateOnly})
	}
	if *validateOnly {
		fmt.Fprintf(e.Stdout, "validated: topic %s can have %d partitions\n", name, *partitions)
	} else {
		fmt.Fprintf(e.Stdout, "topic %s now has %d partitions\n", name, *partitions)
	}
	return nil
}

func (e Env) topicAlterConfig(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("topic alter-config", "NAME --set k=v ... --delete k ... [flags]")
	var set kvList
	var del stringList
	fs.Var(&set, "set", "set config `k=v` (repeatable)")
	fs.Var(&del, "delete", "remove config `k` so the topic falls back to the default (repeatable)")
	validateOnly := fs.Bool("validate-only", false, "ask the broker to validate the change without applying it")
	names, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return fs.Fail(fmt.Errorf("want exactly one topic name, got %d", len(names)))
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
	if c.output.json() {
		return writeJSON(e.Stdout, struct {
			Topic        string `json:"topic"`
			ValidateOnly bool   `json:"validate_only,omitempty"`
		}{name, *validateOnly})
	}
	verb := "altered"
	if *validateOnly {
		verb = "validated"
	}
	fmt.Fprintf(e.Stdout, "%s configs of topic %s\n", verb, name)
	return nil
}

// configAlters turns --set and --delete into incremental alter operations.
func configAlters(fs interface{ Fail(error) error }, set kvList, del stringList) ([]kadm.AlterConfig, error) {
	if len(set.keys)+len(del) == 0 {
		return nil, fs.Fail(errors.New("nothing to change: give --set or --delete"))
	}
	var alters []kadm.AlterConfig
	for i, k := range set.keys {
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(set.values[i])})
	}
	for _, k := range del {
		alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	return alters, nil
}

func (e Env) topicTrim(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("topic trim", "NAME --before OFFSET|end|TIME [--partition P...] [flags]")
	before := fs.String("before", "", "delete the records before this `POSITION`: an offset, end (everything), or a time\n"+
		"(2026-12-04, 2026-12-04T15:04:05 local, 2026-12-04T15:04:05Z, -1h): the records older than it")
	var parts stringList
	fs.Var(&parts, "partition", "only this `PARTITION` (repeatable; default: every partition)")
	names, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return fs.Fail(fmt.Errorf("want exactly one topic name, got %d", len(names)))
	}
	if *before == "" {
		return fs.Fail(errors.New("--before is required: trimming deletes records"))
	}
	var only []int32
	for _, p := range parts {
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil || n < 0 {
			return fmt.Errorf("--partition %q: want a partition number", p)
		}
		only = append(only, int32(n))
	}
	topic := names[0]
	now := time.Now()
	offset, errOffset := strconv.ParseInt(*before, 10, 64)
	var at time.Time
	if *before != "end" && errOffset != nil {
		if at, err = parseTime(*before, now); err != nil {
			return fmt.Errorf("--before %q: %v: want an offset, end, or %s", *before, err, timeHelp(now))
		}
	}
	if errOffset == nil && offset < 0 {
		return fmt.Errorf("--before %d: want an offset of 0 or more", offset)
	}

	adm, ctx, done, err := c.admin(ctx)
	if err != nil {
		return err
	}
	defer done()
	var listed kadm.ListedOffsets
	switch {
	case *before == "end":
		listed, err = adm.ListEndOffsets(ctx, topic)
	case errOffset != nil:
		// The first offset at or after the time; where there is none, the end.
		listed, err = adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), topic)
	default:
		listed, err = adm.ListEndOffsets(ctx, topic) // for the partition list
	}
	if err != nil {
		return fmt.Errorf("topic %s offsets: %w", topic, c.reachErr(firstShardErr(err)))
	}
	if errs := listed.Error(); errs != nil {
		return fmt.Errorf("topic %s: %w", topic, errs)
	}
	target := kadm.Offsets{}
	listed.Each(func(o kadm.ListedOffset) {
		if len(only) > 0 && !slices.Contains(only, o.Partition) {
			return
		}
		to := o.Offset
		if errOffset == nil {
			to = offset
		}
		target.AddOffset(topic, o.Partition, to, -1)
	})
	for _, p := range only {
		if _, ok := target.Lookup(topic, p); !ok {
			return fmt.Errorf("topic %s has no partition %d", topic, p)
		}
	}
	rs, err := adm.DeleteRecords(ctx, target)
	if err != nil && len(rs) == 0 {
		return fmt.Errorf("delete records of topic %s: %w", topic, c.reachErr(firstShardErr(err)))
	}
	type trimmed struct {
		Topic          string `json:"topic"`
		Partition      int32  `json:"partition"`
		LogStartOffset int64  `json:"log_start_offset"`
	}
	out := []trimmed{}
	var errs []error
	for _, o := range target.Sorted() {
		r, ok := rs.Lookup(topic, o.Partition)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("partition %d: no answer", o.Partition))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("partition %d: delete records before %d: %w", o.Partition, o.At, r.Err))
		default:
			out = append(out, trimmed{topic, o.Partition, r.LowWatermark})
		}
	}
	if c.output.json() {
		if err := writeJSON(e.Stdout, out); err != nil {
			return err
		}
		return errors.Join(errs...)
	}
	if len(out) > 0 {
		tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tLOG-START-OFFSET")
		for _, t := range out {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", t.Topic, t.Partition, t.LogStartOffset)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}
