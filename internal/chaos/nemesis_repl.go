package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The faults of a replicated cluster aim at a role, not a node: the leader
// of a partition, the node leading most of them, the group's coordinator.
// Who holds the role is known only at run time (Metadata, FindCoordinator),
// so the seed's pick chooses the role and the partition, and the fault
// records the node it found.

// offsetsTopic is Kafka's internal topic of the groups' offsets.
const offsetsTopic = "__consumer_offsets"

// partState is one partition as a node's Metadata answers it.
type partState struct {
	leader        int32
	replicas, isr []int32
}

// topicStates asks node n's Metadata for the topics: each partition's
// leader, replicas and ISR, by topic. A topic the node does not know is
// missing from the answer.
func topicStates(ctx context.Context, n *Node, topics ...string) (map[string]map[int32]partState, error) {
	cl, err := kgo.NewClient(clientOpts([]string{n.Addr()})...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int32]partState{}
	for _, t := range resp.(*kmsg.MetadataResponse).Topics {
		if t.Topic == nil || t.ErrorCode != 0 {
			continue
		}
		ps := map[int32]partState{}
		for _, p := range t.Partitions {
			ps[p.Partition] = partState{leader: p.Leader, replicas: p.Replicas, isr: p.ISR}
		}
		out[*t.Topic] = ps
	}
	return out, nil
}

// live are the nodes running and not paused, in id order.
func (n *nemesis) live() []*Node {
	var out []*Node
	for _, nd := range n.nodes {
		if nd.Running() && !nd.Paused() {
			out = append(out, nd)
		}
	}
	return out
}

// workloadLeaders is the leader of each of the workload's partitions as the
// first live node that answers names it.
func (n *nemesis) workloadLeaders(ctx context.Context) (map[int32]int32, error) {
	var errs []error
	for _, nd := range n.live() {
		st, err := topicStates(ctx, nd, n.cfg.Workload.Topic)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out := map[int32]int32{}
		for p, s := range st[n.cfg.Workload.Topic] {
			out[p] = s.leader
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return nil, fmt.Errorf("no node named the leaders of %s: %w", n.cfg.Workload.Topic, errors.Join(errs...))
}

// leaderTarget picks the node a leader-kill or leader-pause hits: by a bit
// of the step's pick, the leader of the partition the pick chooses or the
// node leading most of the workload's partitions (the lowest id among
// equals). Without an answer it falls back to the scheduled node.
func (n *nemesis) leaderTarget(ctx context.Context, s Step, f *Fault) int {
	ls, err := n.workloadLeaders(ctx)
	if err != nil {
		f.Detail = "no leader known (" + err.Error() + "); the scheduled node"
		return s.Nodes[0]
	}
	if (s.Pick>>12)%2 == 0 {
		p := int32(s.Pick % uint64(n.cfg.Workload.Partitions))
		if id := int(ls[p]); id >= 1 && id <= len(n.nodes) {
			f.Detail = fmt.Sprintf("node %d, the leader of p%d", id, p)
			return id
		}
	}
	count := map[int]int{}
	for _, l := range ls {
		count[int(l)]++
	}
	best := 0
	for id := 1; id <= len(n.nodes); id++ {
		if count[id] > count[best] {
			best = id
		}
	}
	if best == 0 {
		f.Detail = "no partition had a leader; the scheduled node"
		return s.Nodes[0]
	}
	f.Detail = fmt.Sprintf("node %d, the leader of %d of %d partitions", best, count[best], len(ls))
	return best
}

// coordinator is the node FindCoordinator names for the workload's group,
// asked of each live node in turn (-1: none answered).
func (n *nemesis) coordinator(ctx context.Context) int {
	for _, nd := range n.live() {
		cl, err := kgo.NewClient(clientOpts([]string{nd.Addr()})...)
		if err != nil {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey = n.cfg.Workload.Group
		req.CoordinatorKeys = []string{n.cfg.Workload.Group}
		resp, err := cl.SeedBrokers()[0].Request(rctx, req)
		cancel()
		cl.Close()
		if err != nil {
			continue
		}
		r := resp.(*kmsg.FindCoordinatorResponse)
		id, code := r.NodeID, r.ErrorCode
		if len(r.Coordinators) == 1 {
			id, code = r.Coordinators[0].NodeID, r.Coordinators[0].ErrorCode
		}
		if code == 0 && id >= 1 && int(id) <= len(n.nodes) {
			return int(id)
		}
	}
	return -1
}

// sessionTimeout is the nodes' broker.session.timeout.ms (Kafka's default
// 9 s unless an override sets it): a leader paused for longer is fenced.
func (c Config) sessionTimeout() time.Duration {
	d := 9 * time.Second
	for _, o := range c.NodeOverrides {
		if v, ok := strings.CutPrefix(o, "broker.session.timeout.ms="); ok {
			if ms, err := strconv.Atoi(v); err == nil {
				d = time.Duration(ms) * time.Millisecond
			}
		}
	}
	return d
}

// isrFull waits, up to wait, until every live node's Metadata shows every
// partition of the workload's topic and of __consumer_offsets with a leader
// and all its replicas in the ISR; it returns how long that took.
func (n *nemesis) isrFull(ctx context.Context, wait time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var why string
	for {
		why = n.isrShort(ctx)
		if why == "" {
			return time.Since(start), nil
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return time.Since(start), fmt.Errorf("ISR not full after %v: %s", wait, why)
		case <-t.C:
		}
	}
}

// isrShort says what is not yet fully replicated ("" when nothing is).
func (n *nemesis) isrShort(ctx context.Context) string {
	live := n.live()
	if len(live) < len(n.nodes) {
		return fmt.Sprintf("%d of %d nodes running", len(live), len(n.nodes))
	}
	for _, nd := range live {
		st, err := topicStates(ctx, nd, n.cfg.Workload.Topic, offsetsTopic)
		if err != nil {
			return fmt.Sprintf("node %d: %v", nd.ID, err)
		}
		if len(st[n.cfg.Workload.Topic]) < int(n.cfg.Workload.Partitions) {
			return fmt.Sprintf("node %d knows %d partitions of %s", nd.ID, len(st[n.cfg.Workload.Topic]), n.cfg.Workload.Topic)
		}
		for _, t := range []string{n.cfg.Workload.Topic, offsetsTopic} {
			for p, s := range st[t] {
				if s.leader < 0 || len(s.isr) < len(s.replicas) {
					return fmt.Sprintf("node %d: %s-%d leader %d replicas %v ISR %v", nd.ID, t, p, s.leader, s.replicas, s.isr)
				}
			}
		}
	}
	return ""
}

// leaderPause pauses the leader for the session timeout plus the step's
// hold, so that it is fenced and replaced before it thaws. A leader that is
// also the active controller is paused for an election longer: the
// controller elected meanwhile gives every broker a fresh session (as
// Kafka's does), so it fences the paused one a session timeout after it
// took over.
func (n *nemesis) leaderPause(ctx context.Context, s Step, f *Fault) error {
	nd := n.node(f.Nodes[0])
	d := n.cfg.sessionTimeout() + s.Hold
	why := fmt.Sprintf("broker.session.timeout.ms %v + %v", n.cfg.sessionTimeout(), s.Hold.Round(time.Millisecond))
	if controllerID(ctx, n.nodes) == nd.ID {
		d += electionAllowance
		why = fmt.Sprintf("the controller: an election %v + broker.session.timeout.ms %v + %v", electionAllowance, n.cfg.sessionTimeout(), s.Hold.Round(time.Millisecond))
	}
	f.Detail += fmt.Sprintf("; paused %v (%s)", d.Round(time.Millisecond), why)
	if err := nd.Pause(); err != nil {
		return err
	}
	hold(ctx, d)
	return nd.Resume()
}

// electionAllowance is the time the metadata quorum takes to elect a new
// leader when its leader stops answering (a few election timeouts).
const electionAllowance = 3 * time.Second

// stopGrace is how long a controlled shutdown may take before the battery
// calls it hung.
const stopGrace = 20 * time.Second

// rolling restarts every node in turn, from the scheduled one on, with a
// controlled shutdown (SIGTERM, wait for the exit), and before each next
// node waits until every replica is back in the ISR. The fault's window
// (Start to End) is where an idempotent producer must see no error; it
// starts once the ISR is full, so that an earlier fault's damage is not
// laid to it.
func (n *nemesis) rolling(ctx context.Context, s Step, f *Fault) error {
	const bound = 60 * time.Second
	var parts []string
	if took, err := n.isrFull(ctx, bound); err != nil {
		parts = append(parts, "before: "+err.Error())
	} else if took > time.Second {
		parts = append(parts, fmt.Sprintf("waited %v for a full ISR first", took.Round(time.Millisecond)))
	}
	f.Start = n.rec.Now()
	f.Nodes = nil
	defer func() { f.Detail = strings.Join(parts, "; ") }()
	for i := range n.nodes {
		nd := n.nodes[(s.Nodes[0]-1+i)%len(n.nodes)]
		f.Nodes = append(f.Nodes, nd.ID)
		t0 := time.Now()
		// A controlled shutdown is bounded by the broker (9 s to be let
		// go); what takes longer than stopGrace hangs.
		if err := nd.Stop(stopGrace); err != nil {
			return err
		}
		stopped := time.Since(t0)
		if err := nd.Start(bound); err != nil {
			return err
		}
		started := time.Since(t0) - stopped
		took, err := n.isrFull(ctx, bound)
		parts = append(parts, fmt.Sprintf("node %d stopped in %v, up %v later, ISR full %v after",
			nd.ID, stopped.Round(time.Millisecond), started.Round(time.Millisecond), took.Round(time.Millisecond)))
		if err != nil {
			return fmt.Errorf("after node %d's restart: %w", nd.ID, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// roleFault carries out leader-kill, leader-pause and coord-kill once
// their target is chosen.
func (n *nemesis) roleFault(ctx context.Context, s Step, f *Fault) error {
	switch s.Kind {
	case LeaderKill, CoordKill:
		nd := n.node(f.Nodes[0])
		if err := nd.Kill(); err != nil {
			return err
		}
		hold(ctx, s.Hold)
		return nd.Start(60 * time.Second)
	case LeaderPause:
		return n.leaderPause(ctx, s, f)
	}
	return fmt.Errorf("not a role fault: %s", s.Kind)
}

// roleTarget picks the node of a leader or coordinator fault.
func (n *nemesis) roleTarget(ctx context.Context, s Step, f *Fault) int {
	if s.Kind == CoordKill {
		if id := n.coordinator(ctx); id >= 1 {
			f.Detail = fmt.Sprintf("node %d, the coordinator of %s", id, n.cfg.Workload.Group)
			return id
		}
		f.Detail = "no coordinator known; the scheduled node"
		return s.Nodes[0]
	}
	return n.leaderTarget(ctx, s, f)
}

var roleFaults = []FaultKind{LeaderKill, LeaderPause, CoordKill}

func isRoleFault(k FaultKind) bool { return slices.Contains(roleFaults, k) }
