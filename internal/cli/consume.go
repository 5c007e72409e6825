// consume.go is `vltava consume`: records to stdout, like kafka-console-consumer and kcat -C.
package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vltava/vltava/internal/cli/cmdflag"
)

func (e Env) consume(ctx context.Context, args []string) error {
	fs, c := e.newFlagSet("consume", "--topic T [flags]", 0,
		"exit once no record has arrived for this long, counted with --group from the member's first assignment\n(0: run until --count or interrupted); also bounds the first metadata lookup")
	topic := fs.String("topic", "", "topic to consume (required)")
	from := fs.String("from", "beginning", "where to start: beginning, end, offset:N (N<0: N before the end), timestamp:MS,\n"+
		"a time (2026-12-04, 2026-12-04T15:04:05 local, 2026-12-04T15:04:05Z) or a time before now (-1h, -30m, -2d);\n"+
		"with --group, only where the group has no committed offset")
	partition := fs.Int("partition", -1, "consume only this partition (-1: all)")
	fromBeginning := fs.Bool("from-beginning", false, "the same as --from beginning (kafka-console-consumer's flag)")
	count := fs.Int("count", 0, "exit after this many records (0: no limit)")
	fs.Alias("max-messages", "count")
	format := fs.String("format", defaultFormat, formatDoc)
	fs.Alias("o", "format")
	group := fs.String("group", "", "consume as a member of this consumer group, committing the offsets of records printed")
	isolation := fs.String("isolation", "read_uncommitted", "read_uncommitted, or read_committed to see only committed transactions")
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fs.Fail(fmt.Errorf("unexpected arguments %q", rest))
	}
	if *topic == "" {
		return fs.Fail(errors.New("--topic is required"))
	}
	if err := validTopicName(*topic); err != nil {
		return err
	}
	if *count < 0 {
		return fmt.Errorf("--count %d: want 0 or more", *count)
	}
	if *group != "" && *partition >= 0 {
		return errors.New("--partition and --group do not mix: a group assigns partitions itself")
	}
	if *fromBeginning {
		if fromSet(fs) {
			return errors.New("--from-beginning and --from: give one")
		}
		*from = "beginning"
	}
	c.clientID = "vltava-consume"
	start, err := parseFrom(*from)
	if err != nil {
		return err
	}
	render, err := parseFormat(*format)
	if err != nil {
		return err
	}

	opts := []kgo.Opt{
		kgo.ConsumeStartOffset(start),
		// kgo waits up to 5s per fetch; Java's 500ms default suits an interactive tool better:
		// partitions whose start offsets resolve after a fetch went out join only the next
		// one, so a long wait delays the first records by that much.
		kgo.FetchMaxWait(500 * time.Millisecond),
	}
	switch *isolation {
	case "read_uncommitted":
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	case "read_committed":
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	default:
		return fmt.Errorf("--isolation %q: want read_uncommitted or read_committed", *isolation)
	}
	var asg *assignment
	if *group != "" {
		// Offsets are committed only for records that were printed, so a consumer stopped by
		// --count does not skip the records it fetched but never showed.
		opts = append(opts, kgo.ConsumerGroup(*group), kgo.ConsumeTopics(*topic), kgo.AutoCommitMarks())
		asg = newAssignment(*topic)
		opts = append(opts, asg.opts()...)
	}
	cl, err := c.client(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	partitions, err := checkTopic(ctx, cl, c, *topic, *partition)
	if err != nil {
		return err
	}
	if asg != nil && c.timeout > 0 {
		// The idle --timeout counts from the assignment, not from the start of the join.
		if err := asg.wait(ctx, *group, max(groupJoinWait, c.timeout)); err != nil {
			return err
		}
	}
	switch {
	case *partition >= 0:
		cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{*topic: {int32(*partition): start}})
	case *group == "":
		cl.AddConsumeTopics(*topic)
	}

	out := bufio.NewWriterSize(e.Stdout, 64<<10)
	var buf []byte
	printed := 0
	loopErr := consumeLoop(ctx, cl, c.timeout, *count, func(r *kgo.Record) error {
		printed++
		buf = render(buf[:0], r)
		_, err := out.Write(buf)
		if err == nil && *group != "" {
			cl.MarkCommitRecords(r)
		}
		return err
	}, func() error { return out.Flush() }, e.warn)
	if err := out.Flush(); err != nil && loopErr == nil {
		loopErr = fmt.Errorf("write: %w", err)
	}
	if asg != nil && printed == 0 && loopErr == nil && ctx.Err() == nil && asg.count() == 0 {
		e.warn(fmt.Errorf("this member of group %s was assigned no partition of %s (the group's other members hold its %d), so it printed nothing",
			*group, *topic, partitions))
	}
	if *group != "" {
		// The parent context may be cancelled (Ctrl-C); the commit still deserves a chance.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultRequestTimeout)
		defer cancel()
		if err := cl.CommitMarkedOffsets(cctx); err != nil && loopErr == nil {
			loopErr = fmt.Errorf("commit offsets for group %s: %w", *group, err)
		}
	}
	return loopErr
}

// fromSet reports whether --from was given on the command line.
func fromSet(fs *cmdflag.Set) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "from" })
	return set
}

func (e Env) warn(err error) { fmt.Fprintf(e.Stderr, "consume: %v\n", err) }

// checkTopic returns the topic's partition count. It fails fast when the topic or partition
// does not exist or no broker answers;
// otherwise the client would wait for the topic forever (or, with --timeout, exit as if the
// topic were merely quiet).
func checkTopic(ctx context.Context, cl *kgo.Client, c *common, topic string, partition int) (int, error) {
	limit := defaultRequestTimeout
	if c.timeout > 0 {
		limit = c.timeout
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("topic %s metadata: no answer from %s within %s: %w", topic, c.brokers, limit, err)
		}
		return 0, fmt.Errorf("topic %s metadata: %w", topic, err)
	}
	td, ok := topics[topic]
	switch {
	case !ok:
		return 0, fmt.Errorf("topic %s: %w", topic, kerr.UnknownTopicOrPartition)
	case td.Err != nil:
		return 0, fmt.Errorf("topic %s: %w", topic, td.Err)
	}
	if _, ok := td.Partitions[int32(partition)]; partition >= 0 && !ok {
		return 0, fmt.Errorf("topic %s has %d partitions, no partition %d", topic, len(td.Partitions), partition)
	}
	return len(td.Partitions), nil
}

// consumeLoop polls until count records were handed to emit, idle passes with no record,
// or ctx ends; the last two are normal ways to stop, not errors. flush runs after each poll
// so output appears as records arrive rather than when a buffer fills.
func consumeLoop(ctx context.Context, cl *kgo.Client, idle time.Duration, count int,
	emit func(*kgo.Record) error, flush func() error, warn func(error),
) error {
	seen := 0
	for count == 0 || seen < count {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if idle > 0 {
			pctx, cancel = context.WithTimeout(ctx, idle)
		}
		limit := 0 // all buffered
		if count > 0 {
			limit = count - seen
		}
		fetches := cl.PollRecords(pctx, limit)
		cancel()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
				continue
			}
			err := fmt.Errorf("topic %s partition %d: %w", fe.Topic, fe.Partition, fe.Err)
			// Retriable errors (a leader moving, a broker restarting) are the client's to
			// ride out; anything else (authorization, a corrupt batch) will not heal.
			var ke *kerr.Error
			if errors.As(fe.Err, &ke) && !ke.Retriable {
				return err
			}
			warn(err)
		}
		n := 0
		for r := range fetches.RecordsAll() {
			if err := emit(r); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			n++
		}
		seen += n
		if err := flush(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if n == 0 && pctx.Err() != nil {
			return nil // idle for the whole --timeout
		}
	}
	return nil
}
