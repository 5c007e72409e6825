package chaos

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func scheduleOptions(seed uint64) ScheduleOptions {
	return ScheduleOptions{Seed: seed, Duration: 5 * time.Minute, Nodes: 3,
		Faults: []FaultKind{Kill, Pause, DiskFull, TornTail, Partition, Slow},
		Warmup: 5 * time.Second, Cooldown: 10 * time.Second, Gap: 4 * time.Second, Hold: 3 * time.Second}
}

// TestScheduleIsAFunctionOfTheSeed: the same seed and options give the same
// steps; another seed gives others.
func TestScheduleIsAFunctionOfTheSeed(t *testing.T) {
	a, err := Schedule(scheduleOptions(7))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Schedule(scheduleOptions(7))
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("seed 7 twice gave different schedules:\n%v\n%v", a, b)
	}
	c, _ := Schedule(scheduleOptions(8))
	if reflect.DeepEqual(a, c) {
		t.Fatalf("seeds 7 and 8 gave the same schedule: %v", a)
	}
	if len(a) < 20 {
		t.Fatalf("only %d steps in 5 minutes: %v", len(a), a)
	}
}

// TestScheduleShape: steps follow one another without overlap, stay inside
// warmup and cooldown, use every kind asked for and only those, hit real
// nodes, and a partition cuts off a proper subset.
func TestScheduleShape(t *testing.T) {
	o := scheduleOptions(42)
	steps, err := Schedule(o)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[FaultKind]int{}
	var prevEnd time.Duration
	for _, s := range steps {
		kinds[s.Kind]++
		if s.At < o.Warmup || s.At+s.Hold > o.Duration-o.Cooldown {
			t.Errorf("%v outside [%v, %v]", s, o.Warmup, o.Duration-o.Cooldown)
		}
		if s.At < prevEnd+o.Gap/2 {
			t.Errorf("%v starts before the previous fault healed (%v) plus half a gap", s, prevEnd)
		}
		if s.Hold < o.Hold/2 || s.Hold > 3*o.Hold/2 {
			t.Errorf("%v: hold outside [%v, %v]", s, o.Hold/2, 3*o.Hold/2)
		}
		prevEnd = s.At + s.Hold
		if len(s.Nodes) == 0 || len(s.Nodes) >= o.Nodes && s.Kind == Partition {
			t.Errorf("%v: nodes %v", s, s.Nodes)
		}
		for _, n := range s.Nodes {
			if n < 1 || n > o.Nodes {
				t.Errorf("%v: node %d of %d", s, n, o.Nodes)
			}
		}
	}
	for _, k := range o.Faults {
		if kinds[k] == 0 {
			t.Errorf("no %s in %d steps", k, len(steps))
		}
	}
	if len(kinds) != len(o.Faults) {
		t.Errorf("kinds %v, asked for %v", kinds, o.Faults)
	}
}

func TestScheduleRefusesNetworkFaultsOnOneNode(t *testing.T) {
	o := scheduleOptions(1)
	o.Nodes = 1
	if _, err := Schedule(o); err == nil {
		t.Fatal("partition and slow on one node: no error")
	}
	o.Faults = []FaultKind{Kill}
	if _, err := Schedule(o); err != nil {
		t.Fatal(err)
	}
}

// TestScheduleRefusesRoleFaultsOnOneNode: a leader, a rolling restart or a
// coordinator fault needs a cluster, and their names parse.
func TestScheduleRefusesRoleFaultsOnOneNode(t *testing.T) {
	ks, err := ParseFaults("leader-kill,leader-pause,rolling,coord-kill")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		o := scheduleOptions(1)
		o.Nodes, o.Faults = 1, []FaultKind{k}
		if _, err := Schedule(o); err == nil || !strings.Contains(err.Error(), string(k)) {
			t.Errorf("%s on one node: %v", k, err)
		}
		o.Nodes = 3
		if steps, err := Schedule(o); err != nil || len(steps) == 0 {
			t.Errorf("%s on three nodes: %d steps, %v", k, len(steps), err)
		}
	}
}
