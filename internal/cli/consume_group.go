// consume_group.go follows what a group gave `vltava consume --group`: the idle --timeout
// must not start before the member has partitions (a join takes the broker's
// group.initial.rebalance.delay.ms, 3 s by default, and a rebalance as long as the other
// members take to rejoin), and a member given nothing says so rather than exiting as if
// the topic were empty.
package cli

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// groupJoinWait bounds how long consume --group --timeout waits for its first assignment:
// kgo's default rebalance timeout, the longest a healthy rebalance of kgo members takes.
const groupJoinWait = time.Minute

// assignment is the set of partitions of one topic the group currently gives this member.
// kgo calls its methods from its group goroutine.
type assignment struct {
	topic string
	first chan struct{} // closed at the first assignment, even an empty one

	mu    sync.Mutex
	held  map[int32]bool
	ready bool
}

func newAssignment(topic string) *assignment {
	return &assignment{topic: topic, first: make(chan struct{}), held: map[int32]bool{}}
}

// opts are the kgo options that keep the assignment current.
func (a *assignment) opts() []kgo.Opt {
	return []kgo.Opt{
		kgo.OnPartitionsAssigned(a.assigned),
		kgo.OnPartitionsRevoked(a.removed),
		kgo.OnPartitionsLost(a.removed),
	}
}

// assigned is called at every assignment, also an empty one, with the partitions added.
func (a *assignment) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range m[a.topic] {
		a.held[p] = true
	}
	if !a.ready {
		a.ready = true
		close(a.first)
	}
}

func (a *assignment) removed(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range m[a.topic] {
		delete(a.held, p)
	}
}

func (a *assignment) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.held)
}

// wait returns once the member has its first assignment or ctx ends (an interrupt, which
// is not an error); after limit it fails, saying what it waited for.
func (a *assignment) wait(ctx context.Context, group string, limit time.Duration) error {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-a.first:
	case <-ctx.Done():
	case <-t.C:
		return fmt.Errorf("group %s gave this member no assignment within %s: a rebalance waits for every member to rejoin, "+
			"up to its rebalance timeout (see vltava group describe %s)", group, limit, group)
	}
	return nil
}
