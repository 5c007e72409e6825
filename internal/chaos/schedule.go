package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// FaultKind names a nemesis action.
type FaultKind string

// The faults. Each is injected, held, then healed; the next starts only
// after the heal, so an outage can be laid at one fault's door.
const (
	// Kill is kill -9 of a node, held down, then a restart on the same data.
	Kill FaultKind = "kill"
	// Pause is SIGSTOP, held, then SIGCONT.
	Pause FaultKind = "pause"
	// DiskFull fills the small tmpfs that is the node's data dir; healing
	// frees the space and restarts the node if it halted.
	DiskFull FaultKind = "diskfull"
	// TornTail is kill -9, then the active segment of one partition loses
	// or garbles bytes after the last acknowledged batch (a power loss that
	// took only what was never synced), then a restart.
	TornTail FaultKind = "torn"
	// TornAcked is TornTail reaching into acknowledged batches on purpose:
	// the records it destroyed must be reported lost, as expected by fault.
	// It proves the checker sees a loss; it is never in a default mix.
	TornAcked FaultKind = "torn-acked"
	// Partition cuts the network between two groups of nodes (nftables
	// rules in the battery's network namespace). Needs 2+ nodes.
	Partition FaultKind = "partition"
	// Slow delays the traffic of one node's links (through the link
	// proxy). Needs 2+ nodes.
	Slow FaultKind = "slow"
	// LeaderKill is kill -9 of a leader of the workload's partitions, as
	// Metadata names it at the time (of the partition the step's pick
	// chooses, or the node leading most of them), then a restart. Needs
	// 2+ nodes.
	LeaderKill FaultKind = "leader-kill"
	// LeaderPause is SIGSTOP of such a leader for longer than
	// broker.session.timeout.ms, so that the controller fences it and
	// elects another; after SIGCONT it must step down and truncate.
	LeaderPause FaultKind = "leader-pause"
	// Rolling is a rolling restart with controlled shutdowns: each node
	// in turn gets SIGTERM, exits, restarts, and the next waits until
	// every replica is in the ISR again. No error may reach an idempotent
	// producer meanwhile (produce-error).
	Rolling FaultKind = "rolling"
	// CoordKill is kill -9 of the workload group's coordinator, as
	// FindCoordinator names it at the time, then a restart.
	CoordKill FaultKind = "coord-kill"
)

// AllFaults lists every kind, for flag help and validation.
var allFaults = []FaultKind{Kill, Pause, DiskFull, TornTail, TornAcked, Partition, Slow, LeaderKill, LeaderPause, Rolling, CoordKill}

// clusterOnly reports whether fault kind f needs 2 or more nodes.
func clusterOnly(f FaultKind) bool {
	switch f {
	case Partition, Slow, LeaderKill, LeaderPause, Rolling, CoordKill:
		return true
	}
	return false
}

// ParseFaults reads a comma-separated list of fault kinds.
func ParseFaults(s string) ([]FaultKind, error) {
	var out []FaultKind
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		ok := false
		for _, k := range allFaults {
			if FaultKind(f) == k {
				ok = true
			}
		}
		if !ok {
			return nil, fmt.Errorf("unknown fault %q (known: %v)", f, allFaults)
		}
		out = append(out, FaultKind(f))
	}
	return out, nil
}

// ScheduleOptions are everything a schedule depends on.
type ScheduleOptions struct {
	Seed     uint64
	Duration time.Duration // the workload's length
	Nodes    int
	Faults   []FaultKind
	// Warmup is the quiet time before the first fault, Cooldown after the
	// last heal; Gap the quiet time between a heal and the next fault is
	// drawn from [Gap/2, 3*Gap/2]; Hold how long a fault lasts, from
	// [Hold/2, 3*Hold/2].
	Warmup, Cooldown, Gap, Hold time.Duration
}

// Step is one scheduled fault: inject at At, heal Hold later.
type Step struct {
	At    time.Duration
	Kind  FaultKind
	Nodes []int // the nodes it hits; for Partition, the side cut off from the rest
	Hold  time.Duration
	// Pick is a seeded number the nemesis uses for its own choices (which
	// partition to tear, how many bytes, what delay), so they too follow
	// from the seed.
	Pick uint64
}

func (s Step) String() string {
	return fmt.Sprintf("%v %s nodes %v hold %v", s.At.Round(time.Millisecond), s.Kind, s.Nodes, s.Hold.Round(time.Millisecond))
}

// Validate reports options no schedule can honour.
func (o ScheduleOptions) Validate() error {
	if o.Nodes < 1 {
		return fmt.Errorf("nodes %d: want at least 1", o.Nodes)
	}
	if o.Duration <= o.Warmup+o.Cooldown {
		return fmt.Errorf("duration %v leaves no time for faults after warmup %v and cooldown %v", o.Duration, o.Warmup, o.Cooldown)
	}
	if o.Gap <= 0 || o.Hold <= 0 {
		return fmt.Errorf("gap %v and hold %v must be positive", o.Gap, o.Hold)
	}
	for _, f := range o.Faults {
		if clusterOnly(f) && o.Nodes < 2 {
			return fmt.Errorf("fault %s needs 2 or more nodes, have %d", f, o.Nodes)
		}
	}
	return nil
}

// Schedule is a pure function of the options: the same seed and options give
// the same steps, so a failing run is replayed by its seed.
func Schedule(o ScheduleOptions) ([]Step, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if len(o.Faults) == 0 {
		return nil, nil
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x76_6c_74_61_76_61)) // "vltava"
	jitter := func(d time.Duration) time.Duration {
		return d/2 + time.Duration(rng.Int64N(int64(d)+1))
	}
	var steps []Step
	at := o.Warmup
	end := o.Duration - o.Cooldown
	for {
		s := Step{At: at, Kind: o.Faults[rng.IntN(len(o.Faults))], Hold: jitter(o.Hold), Pick: rng.Uint64()}
		switch s.Kind {
		case Partition:
			// A random non-empty proper subset of the nodes.
			perm := rng.Perm(o.Nodes)
			k := 1 + rng.IntN(o.Nodes-1)
			for _, n := range perm[:k] {
				s.Nodes = append(s.Nodes, n+1)
			}
			slices.Sort(s.Nodes)
		default:
			s.Nodes = []int{1 + rng.IntN(o.Nodes)}
		}
		if s.At+s.Hold > end {
			return steps, nil
		}
		steps = append(steps, s)
		at = s.At + s.Hold + jitter(o.Gap)
	}
}
