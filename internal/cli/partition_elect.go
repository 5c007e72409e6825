// partition_elect.go is `vltava partition elect-leaders`, as kafka-leader-election.sh:
// ElectLeaders (KIP-460) for one partition (--topic and --partition), the partitions a
// JSON file lists ({"partitions": [{"topic": "t", "partition": 0}, ...]}) or every
// partition (--all-topic-partitions), with --election-type preferred or unclean. It
// prints the partitions elected, those whose leader was already the right one, and
// each failure; any failure makes the command fail.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// partitionCommands is the `partition` group's subcommands.
// maxElectionFileBytes bounds the JSON file of --path-to-json-file.
const maxElectionFileBytes = 64 << 20

func (e Env) partitionElectLeaders(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("partition elect-leaders", "--election-type preferred|unclean (--topic T --partition P | --path-to-json-file F | --all-topic-partitions) [flags]")
	typ := fs.String("election-type", "", "`TYPE` of election: preferred (the first replica, if in sync) or unclean (any live replica of a partition without a leader; may lose data)")
	topic := fs.String("topic", "", "the `TOPIC` of the partition to elect a leader for (with --partition)")
	partition := fs.Int("partition", -1, "the `PARTITION` to elect a leader for (with --topic)")
	path := fs.String("path-to-json-file", "", "`FILE` listing the partitions: {\"partitions\": [{\"topic\": \"t\", \"partition\": 0}]}")
	all := fs.Bool("all-topic-partitions", false, "elect leaders for every partition of every topic")
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	var how kadm.ElectLeadersHow
	switch strings.ToLower(*typ) {
	case "preferred":
		how = kadm.ElectPreferredReplica
	case "unclean":
		how = kadm.ElectLiveReplica
	case "":
		return fs.Fail(errors.New("missing required option: --election-type"))
	default:
		return fs.Fail(fmt.Errorf("--election-type %q: want preferred or unclean", *typ))
	}
	given := 0
	for _, b := range []bool{*topic != "", *path != "", *all} {
		if b {
			given++
		}
	}
	switch {
	case given != 1:
		return fs.Fail(errors.New("one and only one of --topic, --all-topic-partitions and --path-to-json-file is required"))
	case *topic != "" && *partition < 0:
		return fs.Fail(errors.New("missing required option: --partition (with --topic)"))
	case *topic == "" && *partition >= 0:
		return fs.Fail(errors.New("--partition is only allowed with --topic"))
	}
	var set kadm.TopicsSet // nil: every partition
	switch {
	case *topic != "":
		set = kadm.TopicsSet{}
		set.Add(*topic, int32(*partition))
	case *path != "":
		if set, err = readElectionFile(*path); err != nil {
			return err
		}
	}

	adm, ctx, done, err := c.admin(ctx)
	if err != nil {
		return err
	}
	defer done()
	rs, err := adm.ElectLeaders(ctx, how, set)
	if err != nil {
		return fmt.Errorf("elect leaders: %w", c.reachErr(err))
	}
	type result struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		// Outcome: elected, not-needed (the right leader already leads) or failed.
		Outcome string `json:"outcome"`
		Error   string `json:"error,omitempty"`
	}
	out := []result{}
	for t, ps := range rs {
		for p, r := range ps {
			res := result{Topic: t, Partition: p, Outcome: "elected"}
			switch {
			case errors.Is(r.Err, kerr.ElectionNotNeeded):
				res.Outcome = "not-needed"
			case r.Err != nil:
				res.Outcome, res.Error = "failed", kafkaErr(r.Err, r.ErrMessage).Error()
			}
			out = append(out, res)
		}
	}
	slices.SortFunc(out, func(a, b result) int {
		if a.Topic != b.Topic {
			return strings.Compare(a.Topic, b.Topic)
		}
		return int(a.Partition - b.Partition)
	})
	failed := 0
	for _, r := range out {
		if r.Outcome == "failed" {
			failed++
		}
	}
	if c.output.json() {
		if err := writeJSON(e.Stdout, out); err != nil {
			return err
		}
	} else {
		name := strings.ToUpper(*typ)
		list := func(outcome string) string {
			var l []string
			for _, r := range out {
				if r.Outcome == outcome {
					l = append(l, fmt.Sprintf("%s-%d", r.Topic, r.Partition))
				}
			}
			return strings.Join(l, ", ")
		}
		if l := list("elected"); l != "" {
			fmt.Fprintf(e.Stdout, "Successfully completed leader election (%s) for partitions %s\n", name, l)
		}
		if l := list("not-needed"); l != "" {
			fmt.Fprintf(e.Stdout, "Valid replica already elected for partitions %s\n", l)
		}
		for _, r := range out {
			if r.Outcome == "failed" {
				fmt.Fprintf(e.Stdout, "Error completing leader election (%s) for partition: %s-%d: %s\n", name, r.Topic, r.Partition, r.Error)
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d replica(s) could not be elected", failed)
	}
	return nil
}

// readElectionFile reads kafka-leader-election's JSON file; a partition listed twice is
// refused, as Kafka refuses it.
func readElectionFile(path string) (kadm.TopicsSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > maxElectionFileBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d an election file may have", path, st.Size(), maxElectionFileBytes)
	}
	var doc struct {
		Partitions *[]struct {
			Topic     *string `json:"topic"`
			Partition *int32  `json:"partition"`
		} `json:"partitions"`
	}
	if err := json.NewDecoder(f).Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if doc.Partitions == nil {
		return nil, fmt.Errorf("%s: replica election data is missing the \"partitions\" field", path)
	}
	set := kadm.TopicsSet{}
	var dups []string
	for i, p := range *doc.Partitions {
		if p.Topic == nil || p.Partition == nil {
			return nil, fmt.Errorf("%s: partition %d needs a \"topic\" and a \"partition\"", path, i)
		}
		if ps, ok := set[*p.Topic]; ok {
			if _, dup := ps[*p.Partition]; dup {
				dups = append(dups, fmt.Sprintf("%s-%d", *p.Topic, *p.Partition))
			}
		}
		set.Add(*p.Topic, *p.Partition)
	}
	if len(dups) > 0 {
		return nil, fmt.Errorf("%s: replica election data contains duplicate partitions: %s", path, strings.Join(dups, ","))
	}
	if len(set) == 0 {
		return nil, fmt.Errorf("%s: replica election data names no partition", path)
	}
	return set, nil
}
