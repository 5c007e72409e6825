// partition_reassign.go is `vltava partition reassign`, Kafka's kafka-reassign-partitions:
// --generate proposes a plan for topics over a broker list, --execute starts one
// (AlterPartitionReassignments; --throttle sets the replication throttles on the brokers
// and topics involved), --verify reports each partition and, once all are done, removes
// the throttles, --cancel cancels, --list lists the reassignments under way. The JSON
// files and the printed lines are Kafka's, so plans move between the two tools.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The replication throttle configs --throttle sets and --verify removes (Kafka's keys).
const (
	leaderThrottledRate       = "leader.replication.throttled.rate"
	followerThrottledRate     = "follower.replication.throttled.rate"
	leaderThrottledReplicas   = "leader.replication.throttled.replicas"
	followerThrottledReplicas = "follower.replication.throttled.replicas"
)

func (e Env) partitionReassign(ctx context.Context, args []string) error {
	fs, c := e.newFlagSet("partition reassign", "--generate|--execute|--verify|--cancel|--list [flags]", defaultRequestTimeout, "time limit for the whole operation")
	generate := fs.Bool("generate", false, "propose a plan for --topics-to-move-json-file over --broker-list (changes nothing)")
	execute := fs.Bool("execute", false, "start the reassignments of --reassignment-json-file")
	verify := fs.Bool("verify", false, "report the reassignments of --reassignment-json-file; once all are done, remove the throttles")
	cancel := fs.Bool("cancel", false, "cancel the reassignments of --reassignment-json-file that are under way")
	list := fs.Bool("list", false, "list the reassignments under way")
	planFile := fs.String("reassignment-json-file", "", "the plan `FILE` (Kafka's reassignment JSON)")
	topicsFile := fs.String("topics-to-move-json-file", "", "`FILE` naming the topics --generate plans for: {\"version\":1,\"topics\":[{\"topic\":\"a\"}]}")
	brokerList := fs.String("broker-list", "", "the brokers --generate places replicas on: `ID,ID,...`")
	throttle := fs.Int64("throttle", -1, "with --execute: replication throttle in `BYTES/S` for the moving replicas (-1: none)")
	additional := fs.Bool("additional", false, "with --execute: start although other reassignments are under way")
	preserve := fs.Bool("preserve-throttles", false, "with --verify or --cancel: leave the throttles in place")
	noRacks := fs.Bool("disable-rack-aware", false, "with --generate: ignore the brokers' racks")
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	actions := 0
	for _, b := range []bool{*generate, *execute, *verify, *cancel, *list} {
		if b {
			actions++
		}
	}
	if actions != 1 {
		return fs.Fail(errors.New("give exactly one of --generate, --execute, --verify, --cancel and --list"))
	}
	if *throttle < -1 {
		return fs.Fail(fmt.Errorf("--throttle %d: want bytes per second, or -1 for none", *throttle))
	}
	var plan assignmentPlan
	if *execute || *verify || *cancel {
		if *planFile == "" {
			return fs.Fail(errors.New("--reassignment-json-file is required"))
		}
		data, err := os.ReadFile(*planFile)
		if err != nil {
			return err
		}
		if plan, err = parseReassignment(data); err != nil {
			return err
		}
	}
	var topics []string
	var brokers []int32
	if *generate {
		if *topicsFile == "" || *brokerList == "" {
			return fs.Fail(errors.New("--generate needs --topics-to-move-json-file and --broker-list"))
		}
		data, err := os.ReadFile(*topicsFile)
		if err != nil {
			return err
		}
		if topics, err = parseTopicsToMove(data); err != nil {
			return err
		}
		if brokers, err = parseBrokerList(*brokerList); err != nil {
			return err
		}
	}

	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if c.timeout > 0 {
		adm.SetTimeoutMillis(int32(min(c.timeout.Milliseconds(), 1<<31-1)))
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	r := &reassigner{e: e, c: c, cl: cl, adm: adm}
	switch {
	case *generate:
		err = r.generate(ctx, topics, brokers, !*noRacks)
	case *execute:
		err = r.execute(ctx, plan, *throttle, *additional)
	case *verify:
		err = r.verify(ctx, plan, *preserve)
	case *cancel:
		err = r.cancel(ctx, plan, *preserve)
	default:
		err = r.list(ctx)
	}
	return err
}

type reassigner struct {
	e   Env
	c   *common
	cl  *kgo.Client
	adm *kadm.Client
	// racks are the brokers' racks, as the last metadata (current) gave them.
	racks map[int32]string
}

// ongoing lists every reassignment under way: ListPartitionReassignments with null
// topics (kadm sends nothing for an empty set).
func (r *reassigner) ongoing(ctx context.Context) ([]kmsg.ListPartitionReassignmentsResponseTopic, error) {
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	req.TimeoutMillis = int32(min(r.c.timeout.Milliseconds(), 1<<31-1))
	req.Topics = nil
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		return nil, fmt.Errorf("list reassignments: %w", r.c.reachErr(err))
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		msg := ""
		if resp.ErrorMessage != nil {
			msg = *resp.ErrorMessage
		}
		return nil, fmt.Errorf("list reassignments: %w", kafkaErr(err, msg))
	}
	return resp.Topics, nil
}

// current returns the replicas of every partition of topics (all of them: the plan's
// unknown partitions are left out).
func (r *reassigner) current(ctx context.Context, topics []string) (assignmentPlan, []int32, error) {
	md, err := r.adm.Metadata(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("metadata: %w", r.c.reachErr(err))
	}
	out := assignmentPlan{}
	for _, t := range md.Topics {
		if t.Err != nil {
			continue
		}
		for _, p := range t.Partitions {
			out[topicPartition{t.Topic, p.Partition}] = slices.Clone(p.Replicas)
		}
	}
	var brokers []int32
	r.racks = map[int32]string{}
	for _, b := range md.Brokers {
		brokers = append(brokers, b.NodeID)
		if b.Rack != nil && *b.Rack != "" {
			r.racks[b.NodeID] = *b.Rack
		}
	}
	slices.Sort(brokers)
	return out, brokers, nil
}

func planTopics(plan assignmentPlan) []string {
	var ts []string
	for tp := range plan {
		if !slices.Contains(ts, tp.Topic) {
			ts = append(ts, tp.Topic)
		}
	}
	slices.Sort(ts)
	return ts
}

func (r *reassigner) generate(ctx context.Context, topics []string, brokers []int32, rackAware bool) error {
	cur, known, err := r.current(ctx, topics)
	if err != nil {
		return err
	}
	for _, t := range topics {
		if !slices.ContainsFunc(cur.sorted(), func(tp topicPartition) bool { return tp.Topic == t }) {
			return fmt.Errorf("topic %s does not exist", t)
		}
	}
	for _, b := range brokers {
		if !slices.Contains(known, b) {
			return fmt.Errorf("Unknown broker id %d", b)
		}
	}
	// Kafka's tool places by rack when any of the brokers has one (then all must).
	racks := map[int32]string{}
	for _, b := range brokers {
		if rack, ok := r.racks[b]; ok && rackAware {
			racks[b] = rack
		}
	}
	proposed, err := proposeAssignment(cur, brokers, racks)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.e.Stdout, "Current partition replica assignment\n%s\n\nProposed partition reassignment configuration\n%s\n",
		formatReassignment(cur), formatReassignment(proposed))
	return nil
}

func (r *reassigner) execute(ctx context.Context, plan assignmentPlan, throttle int64, additional bool) error {
	ongoing, err := r.ongoing(ctx)
	if err != nil {
		return err
	}
	if !additional && len(ongoing) > 0 {
		return errors.New("Cannot execute because there is an existing partition assignment.  Use --additional to override this and create a new partition assignment in addition to the existing one. The --additional flag can also be used to change the throttle by resubmitting the current reassignment.")
	}
	cur, known, err := r.current(ctx, planTopics(plan))
	if err != nil {
		return err
	}
	for _, tp := range plan.sorted() {
		for _, b := range plan[tp] {
			if !slices.Contains(known, b) {
				return fmt.Errorf("Unknown broker id %d", b)
			}
		}
	}
	shown := assignmentPlan{}
	for tp := range plan {
		if rs, ok := cur[tp]; ok {
			shown[tp] = rs
		}
	}
	fmt.Fprintf(r.e.Stdout, "Current partition replica assignment\n\n%s\n\nSave this to use as the --reassignment-json-file option during rollback\n", formatReassignment(shown))
	if throttle >= 0 {
		fmt.Fprintln(r.e.Stdout, "Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is removed.")
		if err := r.setThrottles(ctx, plan, cur, ongoing, throttle); err != nil {
			return err
		}
	}
	req := kadm.AlterPartitionAssignmentsReq{}
	for tp, rs := range plan {
		req.Assign(tp.Topic, tp.Partition, rs)
	}
	resp, err := r.adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return fmt.Errorf("reassign: %w", r.c.reachErr(err))
	}
	var failed []string
	for _, p := range resp.Sorted() {
		if p.Err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", topicPartition{p.Topic, p.Partition}, kafkaErr(p.Err, p.ErrMessage)))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("Error reassigning partition(s):\n%s", strings.Join(failed, "\n"))
	}
	names := make([]string, 0, len(plan))
	for _, tp := range plan.sorted() {
		names = append(names, tp.String())
	}
	fmt.Fprintf(r.e.Stdout, "Successfully started partition reassignment%s for %s\n", plural(len(names)), strings.Join(names, ","))
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// setThrottles sets the topics' throttled replica lists and the rates of the brokers
// taking part, as Kafka's tool does before it starts the reassignments.
func (r *reassigner) setThrottles(ctx context.Context, plan, cur assignmentPlan, ongoing []kmsg.ListPartitionReassignmentsResponseTopic, rate int64) error {
	targets, sources := withOngoing(plan, cur, ongoing)
	leader, follower, brokers := throttleLists(targets, sources)
	for _, t := range planTopics(targets) {
		var cfgs []kadm.AlterConfig
		if v, ok := leader[t]; ok {
			cfgs = append(cfgs, kadm.AlterConfig{Op: kadm.SetConfig, Name: leaderThrottledReplicas, Value: &v})
		}
		if v, ok := follower[t]; ok {
			cfgs = append(cfgs, kadm.AlterConfig{Op: kadm.SetConfig, Name: followerThrottledReplicas, Value: &v})
		}
		if len(cfgs) == 0 {
			continue
		}
		if err := alterErr(r.adm.AlterTopicConfigs(ctx, cfgs, t)); err != nil {
			return fmt.Errorf("set the throttled replicas of topic %s: %w", t, r.c.reachErr(err))
		}
	}
	v := fmt.Sprint(rate)
	cfgs := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: leaderThrottledRate, Value: &v}, {Op: kadm.SetConfig, Name: followerThrottledRate, Value: &v}}
	if len(brokers) > 0 {
		if err := alterErr(r.adm.AlterBrokerConfigs(ctx, cfgs, brokers...)); err != nil {
			return fmt.Errorf("set the replication throttle of brokers %s: %w", joinIDs(brokers), r.c.reachErr(err))
		}
	}
	fmt.Fprintf(r.e.Stdout, "The inter-broker throttle limit was set to %d B/s\n", rate)
	return nil
}

// alterErr is the first error of an AlterConfigs call.
func alterErr(rs kadm.AlterConfigsResponses, err error) error {
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.Err != nil {
			return kafkaErr(r.Err, r.ErrMessage)
		}
	}
	return nil
}

// ongoingSet returns the partitions with a reassignment under way.
func (r *reassigner) ongoingSet(ctx context.Context) (map[topicPartition]bool, []kmsg.ListPartitionReassignmentsResponseTopic, error) {
	ls, err := r.ongoing(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := map[topicPartition]bool{}
	for _, t := range ls {
		for _, p := range t.Partitions {
			out[topicPartition{t.Topic, p.Partition}] = true
		}
	}
	return out, ls, nil
}

func (r *reassigner) verify(ctx context.Context, plan assignmentPlan, preserve bool) error {
	ongoing, _, err := r.ongoingSet(ctx)
	if err != nil {
		return err
	}
	cur, known, err := r.current(ctx, planTopics(plan))
	if err != nil {
		return err
	}
	lines, done := verifyLines(plan, cur, ongoing)
	fmt.Fprintln(r.e.Stdout, strings.Join(lines, "\n"))
	if done && !preserve {
		return r.clearThrottles(ctx, plan, known)
	}
	return nil
}

// clearThrottles removes the throttle rates of every broker (those of the cluster and
// those the plan names) and the throttled replica lists of the plan's topics.
func (r *reassigner) clearThrottles(ctx context.Context, plan assignmentPlan, known []int32) error {
	brokers := slices.Clone(known)
	for _, rs := range plan {
		brokers = append(brokers, rs...)
	}
	slices.Sort(brokers)
	brokers = slices.Compact(brokers)
	fmt.Fprintf(r.e.Stdout, "Clearing broker-level throttles on broker%s %s\n", plural(len(brokers)), joinIDs(brokers))
	del := []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: leaderThrottledRate}, {Op: kadm.DeleteConfig, Name: followerThrottledRate}}
	if err := alterErr(r.adm.AlterBrokerConfigs(ctx, del, brokers...)); err != nil {
		return fmt.Errorf("clear the broker throttles: %w", r.c.reachErr(err))
	}
	topics := planTopics(plan)
	fmt.Fprintf(r.e.Stdout, "Clearing topic-level throttles on topic%s %s\n", plural(len(topics)), strings.Join(topics, ","))
	del = []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: leaderThrottledReplicas}, {Op: kadm.DeleteConfig, Name: followerThrottledReplicas}}
	if err := alterErr(r.adm.AlterTopicConfigs(ctx, del, topics...)); err != nil {
		return fmt.Errorf("clear the topic throttles: %w", r.c.reachErr(err))
	}
	return nil
}

func (r *reassigner) cancel(ctx context.Context, plan assignmentPlan, preserve bool) error {
	ongoing, _, err := r.ongoingSet(ctx)
	if err != nil {
		return err
	}
	req := kadm.AlterPartitionAssignmentsReq{}
	var names []string
	for _, tp := range plan.sorted() {
		if ongoing[tp] {
			req.CancelAssign(tp.Topic, tp.Partition)
			names = append(names, tp.String())
		}
	}
	if len(names) == 0 {
		fmt.Fprintln(r.e.Stdout, "None of the specified partition reassignments are active.")
	} else {
		resp, err := r.adm.AlterPartitionAssignments(ctx, req)
		if err != nil {
			return fmt.Errorf("cancel: %w", r.c.reachErr(err))
		}
		var failed []string
		for _, p := range resp.Sorted() {
			if p.Err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", topicPartition{p.Topic, p.Partition}, kafkaErr(p.Err, p.ErrMessage)))
			}
		}
		if len(failed) > 0 {
			return fmt.Errorf("Error cancelling partition reassignment(s):\n%s", strings.Join(failed, "\n"))
		}
		fmt.Fprintf(r.e.Stdout, "Successfully cancelled partition reassignment%s for: %s\n", plural(len(names)), strings.Join(names, ","))
	}
	if preserve {
		return nil
	}
	_, known, err := r.current(ctx, planTopics(plan))
	if err != nil {
		return err
	}
	return r.clearThrottles(ctx, plan, known)
}

func (r *reassigner) list(ctx context.Context) error {
	_, ls, err := r.ongoingSet(ctx)
	if err != nil {
		return err
	}
	if len(ls) == 0 {
		fmt.Fprintln(r.e.Stdout, "No partition reassignments found.")
		return nil
	}
	type entry struct {
		tp topicPartition
		p  kmsg.ListPartitionReassignmentsResponseTopicPartition
	}
	var all []entry
	for _, t := range ls {
		for _, p := range t.Partitions {
			all = append(all, entry{topicPartition{t.Topic, p.Partition}, p})
		}
	}
	slices.SortFunc(all, func(a, b entry) int { return compareTP(a.tp, b.tp) })
	fmt.Fprintln(r.e.Stdout, "Current partition reassignments:")
	for _, e := range all {
		line := fmt.Sprintf("%s: replicas: %s.", e.tp, joinIDs(e.p.Replicas))
		if len(e.p.AddingReplicas) > 0 {
			line += fmt.Sprintf(" adding: %s.", joinIDs(e.p.AddingReplicas))
		}
		if len(e.p.RemovingReplicas) > 0 {
			line += fmt.Sprintf(" removing: %s.", joinIDs(e.p.RemovingReplicas))
		}
		fmt.Fprintln(r.e.Stdout, line)
	}
	return nil
}
