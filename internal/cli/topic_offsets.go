// topic_offsets.go is `vltava topic offsets`: each partition's log start offset, high
// watermark and log end offset, the numbers rpk topic describe -p and kafka-get-offsets
// show. The first two come from ListOffsets (earliest, latest); the log end offset, which
// runs ahead of the high watermark while followers catch up, from OffsetForLeaderEpoch
// for the leader's current epoch, whose answer for that epoch is the leader's log end.
package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
)

type jsonOffsets struct {
	Topic          string `json:"topic"`
	Partition      int32  `json:"partition"`
	LogStartOffset int64  `json:"log_start_offset"`
	HighWatermark  int64  `json:"high_watermark"`
	LogEndOffset   *int64 `json:"log_end_offset"` // null when the broker does not say
	Records        int64  `json:"records"`        // high watermark - log start: what a consumer can read
	Error          string `json:"error,omitempty"`
}

func (e Env) topicOffsets(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("topic offsets", "[NAME...] [flags]")
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
		return fmt.Errorf("topic metadata: %w", c.reachErr(err))
	}
	if len(names) == 0 {
		names = topics.Names()
	}
	var errs []error
	var found []string
	epochs := kadm.OffsetForLeaderEpochRequest{}
	for _, name := range names {
		td, ok := topics[name]
		if !ok || td.Err != nil {
			terr := errors.New("missing from the metadata response")
			if ok {
				terr = td.Err
			}
			errs = append(errs, fmt.Errorf("topic %s: %w", name, terr))
			continue
		}
		found = append(found, name)
		for _, p := range td.Partitions {
			if p.LeaderEpoch >= 0 {
				epochs.Add(name, p.Partition, p.LeaderEpoch)
			}
		}
	}
	var out []jsonOffsets
	if len(found) > 0 {
		starts, err := adm.ListStartOffsets(ctx, found...)
		if err != nil {
			return fmt.Errorf("list start offsets: %w", c.reachErr(firstShardErr(err)))
		}
		ends, err := adm.ListEndOffsets(ctx, found...)
		if err != nil {
			return fmt.Errorf("list end offsets: %w", c.reachErr(firstShardErr(err)))
		}
		// Best effort: a broker without OffsetForLeaderEpoch for clients leaves the column empty.
		leos, _ := adm.OffsetForLeaderEpoch(ctx, epochs)
		ends.Each(func(end kadm.ListedOffset) {
			o := jsonOffsets{Topic: end.Topic, Partition: end.Partition, HighWatermark: end.Offset}
			start, _ := starts.Lookup(end.Topic, end.Partition)
			o.LogStartOffset = start.Offset
			if err := errors.Join(start.Err, end.Err); err != nil {
				o.Error = err.Error()
			} else {
				o.Records = end.Offset - start.Offset
			}
			requested := epochs[end.Topic][end.Partition]
			if l, ok := leos[end.Topic][end.Partition]; ok && l.Err == nil && l.LeaderEpoch == requested && l.EndOffset >= 0 {
				o.LogEndOffset = &l.EndOffset
			}
			out = append(out, o)
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	if c.output.json() {
		if out == nil {
			out = []jsonOffsets{}
		}
		if err := writeJSON(e.Stdout, out); err != nil {
			return err
		}
		return errors.Join(errs...)
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tLOG-START-OFFSET\tHIGH-WATERMARK\tLOG-END-OFFSET\tRECORDS")
	for _, o := range out {
		leo := "-"
		if o.LogEndOffset != nil {
			leo = strconv.FormatInt(*o.LogEndOffset, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%d", o.Topic, o.Partition, o.LogStartOffset, o.HighWatermark, leo, o.Records)
		if o.Error != "" {
			fmt.Fprintf(tw, "\terror: %s", o.Error)
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return errors.Join(errs...)
}
