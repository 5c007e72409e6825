// topic_describe.go is `vltava topic describe`: kafka-topics --describe's layout, and with
// --all every effective config with its source, as kafka-configs --describe --all shows.
// kafka-topics' partition filters (--under-replicated-partitions and the others, see
// describeFilter) show only the partitions that match any of them, without the topic
// summary, as kafka-topics.sh does.
package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (e Env) topicDescribe(ctx context.Context, args []string) error {
	fs, c := e.adminFlagSet("topic describe", "[NAME...] [flags]")
	all := fs.Bool("all", false, "also list every effective config and where its value comes from (kafka-configs --describe --all)")
	var filter describeFilter
	fs.BoolVar(&filter.underReplicated, "under-replicated-partitions", false, "only partitions whose ISR is smaller than their replicas")
	fs.BoolVar(&filter.underMinISR, "under-min-isr-partitions", false, "only partitions with no leader or an ISR smaller than min.insync.replicas")
	fs.BoolVar(&filter.atMinISR, "at-min-isr-partitions", false, "only partitions whose ISR is exactly min.insync.replicas")
	fs.BoolVar(&filter.unavailable, "unavailable-partitions", false, "only partitions with no leader or a leader the cluster does not list")
	producers := fs.Bool("producers", false, "also list each partition's idempotent producers, from its leader (DescribeProducers, as kafka-transactions describe-producers)")
	names, err := fs.Parse(args)
	if err != nil {
		return err
	}
	cl, adm, ctx, done, err := c.adminClient(ctx)
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
	// KIP-966's ELR columns, where the cluster serves DescribeTopicPartitions (without it,
	// before Kafka 3.8, the output is what it was); the partitions' state is then taken
	// from the same answer, before the filters look at it.
	elr, err := describeELR(ctx, cl, found)
	if err != nil {
		errs = append(errs, fmt.Errorf("describe topic partitions: %w", c.reachErr(err)))
	}
	elr.overlay(topics)
	if filter.unavailable && len(found) > 0 {
		m, err := adm.BrokerMetadata(ctx)
		if err != nil {
			return fmt.Errorf("list brokers: %w", c.reachErr(err))
		}
		filter.live = map[int32]bool{}
		for _, b := range m.Brokers {
			filter.live[b.NodeID] = true
		}
	}
	if filter.on() {
		// Topics with no partition left are not shown.
		kept := found[:0]
		for _, name := range found {
			td := topics[name]
			td.Partitions = filter.apply(td, configs)
			if topics[name] = td; len(td.Partitions) > 0 {
				kept = append(kept, name)
			}
		}
		found = kept
	}
	var prods kadm.DescribedProducersTopics
	if *producers && len(found) > 0 {
		set := kadm.TopicsSet{}
		for _, name := range found {
			for p := range topics[name].Partitions {
				set.Add(name, p)
			}
		}
		// A partition whose leader did not answer is shown as not returned; the error
		// is reported at the end.
		if prods, err = adm.DescribeProducers(ctx, set); err != nil {
			errs = append(errs, fmt.Errorf("describe producers: %w", c.reachErr(err)))
		}
	}
	if c.output.json() {
		out := []jsonTopic{}
		for _, name := range found {
			jt := topicJSON(topics[name], configs, elr, *all)
			if *producers {
				addProducersJSON(&jt, prods)
			}
			out = append(out, jt)
		}
		if err := writeJSON(e.Stdout, out); err != nil {
			return err
		}
		return errors.Join(errs...)
	}
	w := bufio.NewWriter(e.Stdout)
	for _, name := range found {
		writeTopic(w, topics[name], configs, elr, !filter.on())
		if rc, err := configs.On(name, nil); *all && !filter.on() && err == nil && rc.Err == nil {
			fmt.Fprintf(w, "All configs for topic %s:\n", name)
			writeConfigs(w, rc.Configs)
		}
		if *producers {
			writeProducers(w, topics[name], prods)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// writeProducers prints the idempotent producers of td's partitions as a table, with
// kafka-transactions describe-producers' columns and a partition column first.
func writeProducers(w io.Writer, td kadm.TopicDetail, prods kadm.DescribedProducersTopics) {
	fmt.Fprintf(w, "Producers of topic %s:\n", td.Topic)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  Partition\tProducerId\tProducerEpoch\tLastSequence\tLastTimestamp\tCoordinatorEpoch\tCurrentTransactionStartOffset")
	for _, p := range td.Partitions.Sorted() {
		dp, ok := prods[td.Topic].Partitions[p.Partition]
		switch {
		case !ok:
			fmt.Fprintf(tw, "  %d\t(not returned)\n", p.Partition)
		case dp.Err != nil:
			fmt.Fprintf(tw, "  %d\t(error: %v)\n", p.Partition, kafkaErr(dp.Err, dp.ErrMessage))
		default:
			for _, d := range dp.ActiveProducers.Sorted() {
				fmt.Fprintf(tw, "  %d\t%d\t%d\t%d\t%d\t%d\t%d\n", p.Partition, d.ProducerID, d.ProducerEpoch,
					d.LastSequence, d.LastTimestamp, d.CoordinatorEpoch, d.CurrentTxnStartOffset)
			}
		}
	}
	tw.Flush()
}

// jsonProducer is one producer of a partition in `topic describe --producers -o json`.
type jsonProducer struct {
	ProducerID            int64 `json:"producer_id"`
	ProducerEpoch         int16 `json:"producer_epoch"`
	LastSequence          int32 `json:"last_sequence"`
	LastTimestamp         int64 `json:"last_timestamp"`
	CoordinatorEpoch      int32 `json:"coordinator_epoch"`
	CurrentTxnStartOffset int64 `json:"current_txn_start_offset"`
}

// addProducersJSON sets the producers of jt's partitions from prods.
func addProducersJSON(jt *jsonTopic, prods kadm.DescribedProducersTopics) {
	for i := range jt.Partitions {
		jp := &jt.Partitions[i]
		dp, ok := prods[jt.Name].Partitions[jp.Partition]
		switch {
		case !ok:
			jp.ProducersError = "not returned"
		case dp.Err != nil:
			jp.ProducersError = kafkaErr(dp.Err, dp.ErrMessage).Error()
		default:
			for _, d := range dp.ActiveProducers.Sorted() {
				jp.Producers = append(jp.Producers, jsonProducer{ProducerID: d.ProducerID, ProducerEpoch: d.ProducerEpoch,
					LastSequence: d.LastSequence, LastTimestamp: d.LastTimestamp, CoordinatorEpoch: d.CoordinatorEpoch,
					CurrentTxnStartOffset: d.CurrentTxnStartOffset})
			}
		}
	}
}

// describeFilter is kafka-topics.sh's partition filters, with its meanings
// (TopicCommand's PartitionDescription): with any set, a partition is shown if it
// matches any of them.
type describeFilter struct {
	underReplicated bool // the ISR is smaller than the replicas
	underMinISR     bool // no leader, or the ISR is smaller than min.insync.replicas
	atMinISR        bool // the ISR is exactly min.insync.replicas
	unavailable     bool // no leader, or a leader not among live
	live            map[int32]bool
}

func (f describeFilter) on() bool {
	return f.underReplicated || f.underMinISR || f.atMinISR || f.unavailable
}

// apply returns td's partitions that match the filters. min.insync.replicas is the
// topic's effective value from configs (kafka-topics.sh compares with it as it is, not
// capped by the replica count); a topic whose configs did not come back matches the
// min-ISR filters only by having no leader.
func (f describeFilter) apply(td kadm.TopicDetail, configs kadm.ResourceConfigs) kadm.PartitionDetails {
	minISR := -1
	if rc, err := configs.On(td.Topic, nil); err == nil && rc.Err == nil {
		for _, c := range rc.Configs {
			if n, err := strconv.Atoi(c.MaybeValue()); c.Key == "min.insync.replicas" && err == nil {
				minISR = n
			}
		}
	}
	out := kadm.PartitionDetails{}
	for i, p := range td.Partitions {
		leader := p.Leader >= 0
		switch {
		case f.underReplicated && len(p.ISR) < len(p.Replicas),
			f.underMinISR && (!leader || minISR >= 0 && len(p.ISR) < minISR),
			f.atMinISR && minISR >= 0 && len(p.ISR) == minISR,
			f.unavailable && (!leader || !f.live[p.Leader]):
			out[i] = p
		}
	}
	return out
}

// writeTopic prints one topic the way kafka-topics.sh --describe does, which operators know:
// a summary line with the configs set on the topic (if summary), then a tab-indented line
// per partition, fields separated by tabs so scripts can cut them. With elr (the cluster
// serves DescribeTopicPartitions) each partition line has kafka-topics.sh 4.x's Elr and
// LastKnownElr columns after Isr.
func writeTopic(w io.Writer, td kadm.TopicDetail, configs kadm.ResourceConfigs, elr topicsELR, summary bool) {
	if summary {
		writeTopicSummary(w, td, configs)
	}
	for _, p := range td.Partitions.Sorted() {
		fmt.Fprintf(w, "\tTopic: %s\tPartition: %d\tLeader: %s\tReplicas: %s\tIsr: %s", td.Topic, p.Partition, nodeID(p.Leader), ids(p.Replicas), ids(p.ISR))
		if elr != nil {
			e, ok := elr.of(td.Topic, p.Partition)
			fmt.Fprintf(w, "\tElr: %s\tLastKnownElr: %s", elrIDs(e.elr, ok), elrIDs(e.lastKnown, ok))
		}
		if len(p.OfflineReplicas) > 0 {
			fmt.Fprintf(w, "\tOffline: %s", ids(p.OfflineReplicas))
		}
		if p.Err != nil {
			fmt.Fprintf(w, "\tError: %v", p.Err)
		}
		fmt.Fprintln(w)
	}
}

func writeTopicSummary(w io.Writer, td kadm.TopicDetail, configs kadm.ResourceConfigs) {
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
		td.Topic, topicID(td.ID), len(td.Partitions), replicationFactor(td), cfg)
}

// writeConfigs prints every config as an indented key=value line with its source, aligned.
func writeConfigs(w io.Writer, cs []kadm.Config) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range sortedConfigs(cs) {
		v := c.MaybeValue()
		if c.Sensitive {
			v = "(sensitive)"
		}
		fmt.Fprintf(tw, "  %s=%s \t%s\n", c.Key, v, c.Source)
	}
	tw.Flush()
}

func sortedConfigs(cs []kadm.Config) []kadm.Config {
	cs = slices.Clone(cs)
	slices.SortFunc(cs, func(a, b kadm.Config) int { return strings.Compare(a.Key, b.Key) })
	return cs
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

// jsonTopic is one topic of `topic describe -o json`.
type jsonTopic struct {
	Name              string          `json:"name"`
	ID                string          `json:"id"`
	Internal          bool            `json:"internal"`
	ReplicationFactor int             `json:"replication_factor"`
	Partitions        []jsonPartition `json:"partitions"`
	Configs           []jsonConfig    `json:"configs"`
	ConfigsError      string          `json:"configs_error,omitempty"`
}

type jsonPartition struct {
	Partition       int32   `json:"partition"`
	Leader          int32   `json:"leader"`
	LeaderEpoch     int32   `json:"leader_epoch"`
	Replicas        []int32 `json:"replicas"`
	ISR             []int32 `json:"isr"`
	OfflineReplicas []int32 `json:"offline_replicas,omitempty"`
	// KIP-966, where the cluster serves DescribeTopicPartitions and described the
	// partition; absent otherwise.
	ELR          *[]int32 `json:"elr,omitempty"`
	LastKnownELR *[]int32 `json:"last_known_elr,omitempty"`
	Error        string   `json:"error,omitempty"`
	// With --producers: none if empty.
	Producers      []jsonProducer `json:"producers,omitempty"`
	ProducersError string         `json:"producers_error,omitempty"`
}

// topicJSON is td as JSON: configs set on the topic, or with all every effective one, and
// the partitions' ELR from elr.
func topicJSON(td kadm.TopicDetail, configs kadm.ResourceConfigs, elr topicsELR, all bool) jsonTopic {
	jt := jsonTopic{Name: td.Topic, ID: topicID(td.ID), Internal: td.IsInternal, ReplicationFactor: replicationFactor(td),
		Partitions: []jsonPartition{}, Configs: []jsonConfig{}}
	for _, p := range td.Partitions.Sorted() {
		jp := jsonPartition{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR), OfflineReplicas: p.OfflineReplicas}
		if e, ok := elr.of(td.Topic, p.Partition); ok {
			e, l := nonNil(e.elr), nonNil(e.lastKnown)
			jp.ELR, jp.LastKnownELR = &e, &l
		}
		if p.Err != nil {
			jp.Error = p.Err.Error()
		}
		jt.Partitions = append(jt.Partitions, jp)
	}
	rc, err := configs.On(td.Topic, nil)
	switch {
	case err != nil:
		jt.ConfigsError = "not returned"
	case rc.Err != nil:
		jt.ConfigsError = kafkaErr(rc.Err, rc.ErrMessage).Error()
	default:
		for _, c := range sortedConfigs(rc.Configs) {
			if all || c.Source == kmsg.ConfigSourceDynamicTopicConfig {
				jt.Configs = append(jt.Configs, configJSON(c))
			}
		}
	}
	return jt
}

func configJSON(c kadm.Config) jsonConfig {
	jc := jsonConfig{Name: c.Key, Value: c.Value, Source: c.Source.String(), Sensitive: c.Sensitive}
	if c.Sensitive {
		jc.Value = nil
	}
	return jc
}

func nonNil(is []int32) []int32 {
	if is == nil {
		return []int32{}
	}
	return is
}

func replicationFactor(td kadm.TopicDetail) int {
	rf := 0
	for _, p := range td.Partitions {
		rf = max(rf, len(p.Replicas))
	}
	return rf
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
