// group_reset.go is `vltava group reset-offsets`: move a group's committed offsets, as
// kafka-consumer-groups.sh --reset-offsets does. It is a dry run unless --execute is
// given, and it refuses while the group has members, since a live member would
// overwrite the new offsets with its next commit.
package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func (e Env) groupResetOffsets(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("group reset-offsets", "GROUP (--to-earliest|--to-latest|--to-datetime T|--to-offset N|--shift-by N) [--topic T...] [--execute]")
	toEarliest := fs.Bool("to-earliest", false, "reset to each partition's log start offset")
	toLatest := fs.Bool("to-latest", false, "reset to each partition's end offset")
	toDatetime := fs.String("to-datetime", "", "reset to the first offset at or after this `TIME`: 2026-12-04, 2026-12-04T15:04:05 (local),\n2026-12-04T15:04:05Z or a time before now (-1h, -30m, -2d)")
	toOffset := fs.Int64("to-offset", -1, "reset to this offset (clamped to the partition's range)")
	shiftBy := fs.Int64("shift-by", 0, "move each committed offset by N (negative moves back), clamped to the partition's range")
	execute := fs.Bool("execute", false, "apply the new offsets (without it, only print them)")
	var topics stringList
	fs.Var(&topics, "topic", "only this topic (repeatable); default: every topic the group has offsets for")
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fs.Fail(errors.New("give exactly one group"))
	}
	group := rest[0]
	modes := 0
	for _, set := range []bool{*toEarliest, *toLatest, *toDatetime != "", *toOffset >= 0, *shiftBy != 0} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		return fs.Fail(errors.New("give exactly one of --to-earliest, --to-latest, --to-datetime, --to-offset, --shift-by"))
	}
	var at time.Time
	if *toDatetime != "" {
		now := time.Now()
		if at, err = parseTime(*toDatetime, now); err != nil {
			return fmt.Errorf("--to-datetime %q: %v: want %s", *toDatetime, err, timeHelp(now))
		}
	}

	adm, ctx, done, err := c.admin(ctx)
	if err != nil {
		return err
	}
	defer done()

	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describe group %s: %w", group, c.reachErr(err))
	}
	if g, ok := described[group]; ok {
		// A group the broker does not know has no members, and resetting its offsets
		// creates it, as in Kafka.
		if g.Err != nil && !errors.Is(g.Err, kerr.GroupIDNotFound) {
			return fmt.Errorf("describe group %s: %w", group, g.Err)
		}
		if len(g.Members) > 0 {
			return fmt.Errorf("group %s has %d active members (state %s): stop them first", group, len(g.Members), g.State)
		}
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		committed, err = kadm.OffsetResponses{}, nil // nothing committed yet
	}
	if err != nil {
		return fmt.Errorf("fetch offsets of %s: %w", group, err)
	}
	want := map[string]bool{}
	for _, t := range topics {
		want[t] = true
	}
	var names []string
	if len(want) > 0 {
		names = topics
	} else {
		for t := range committed.Offsets() {
			names = append(names, t)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("group %s has no committed offsets; name the topics with --topic", group)
	}
	sort.Strings(names)
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	var byTime kadm.ListedOffsets
	if !at.IsZero() {
		if byTime, err = adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), names...); err != nil {
			return fmt.Errorf("list offsets by time: %w", err)
		}
	}

	type row struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Current   *int64 `json:"current"` // null: nothing committed
		New       int64  `json:"new"`
	}
	var rows []row
	next := kadm.Offsets{}
	var firstErr error
	ends.Each(func(end kadm.ListedOffset) {
		if end.Err != nil {
			firstErr = errors.Join(firstErr, fmt.Errorf("%s[%d]: %w", end.Topic, end.Partition, end.Err))
			return
		}
		start, _ := starts.Lookup(end.Topic, end.Partition)
		r := row{Topic: end.Topic, Partition: end.Partition}
		if o, ok := committed.Lookup(end.Topic, end.Partition); ok && o.Err == nil && o.At >= 0 {
			r.Current = &o.At
		}
		var target int64
		switch {
		case *toEarliest:
			target = start.Offset
		case *toLatest:
			target = end.Offset
		case !at.IsZero():
			o, _ := byTime.Lookup(end.Topic, end.Partition)
			target = o.Offset
		case *toOffset >= 0:
			target = *toOffset
		default:
			if r.Current == nil {
				return // nothing committed to shift
			}
			target = *r.Current + *shiftBy
		}
		r.New = max(start.Offset, min(target, end.Offset))
		next.AddOffset(end.Topic, end.Partition, r.New, -1)
		rows = append(rows, r)
	})
	if firstErr != nil {
		return firstErr
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	if *execute {
		resp, err := adm.CommitOffsets(ctx, group, next)
		if err != nil {
			return fmt.Errorf("commit offsets: %w", err)
		}
		if err := resp.Error(); err != nil {
			return fmt.Errorf("commit offsets: %w", err)
		}
	}
	if c.output.json() {
		if rows == nil {
			rows = []row{}
		}
		return writeJSON(e.Stdout, struct {
			Group    string `json:"group"`
			Executed bool   `json:"executed"`
			Offsets  []row  `json:"offsets"`
		}{group, *execute, rows})
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT\tNEW")
	for _, r := range rows {
		cur := int64(-1)
		if r.Current != nil {
			cur = *r.Current
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", r.Topic, r.Partition, offsetOrDash(cur), r.New)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !*execute {
		fmt.Fprintln(e.Stderr, "dry run: nothing changed; add --execute to apply")
		return nil
	}
	fmt.Fprintf(e.Stderr, "reset %d partitions of group %s\n", len(rows), group)
	return nil
}

func offsetOrDash(o int64) string {
	if o < 0 {
		return "-"
	}
	return fmt.Sprint(o)
}
