package group

// Which groups this coordinator serves. A group is coordinated by the leader of its
// __consumer_offsets partition (PartitionFor), as in Kafka: the node loads a partition
// when it becomes its leader (LoadPartition replays the partition and rebuilds its
// groups and offsets) and unloads it when it stops leading it (UnloadPartition drops
// them, answering waiting joins and syncs NOT_COORDINATOR). A request for a group of a
// partition not loaded here answers NOT_COORDINATOR, of one being loaded
// COORDINATOR_LOAD_IN_PROGRESS; clients find the coordinator again and retry.
//
// Load loads every partition: a single node leads them all.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

type partState uint8

const (
	partNotOwned partState = iota
	partLoading
	partLoaded
)

// partOwnership is one __consumer_offsets partition's state here, under mu.
type partOwnership struct {
	state partState
	epoch uint64 // bumped by every load and unload, so a load that lost its race ends quietly
}

// unavailableLocked returns why the group cannot be served here now, nil if it can.
func (c *Coordinator) unavailableLocked(groupID string) *kerr.Error {
	return c.partitionUnavailableLocked(c.PartitionFor(groupID))
}

func (c *Coordinator) partitionUnavailableLocked(p int32) *kerr.Error {
	switch c.owned[p].state {
	case partNotOwned:
		return kerr.NotCoordinator
	case partLoading:
		return kerr.CoordinatorLoadInProgress
	}
	return nil
}

// anyLoadingLocked reports whether a partition is being loaded.
func (c *Coordinator) anyLoadingLocked() bool {
	for _, o := range c.owned {
		if o.state == partLoading {
			return true
		}
	}
	return false
}

// LoadPartition makes this coordinator serve the groups of __consumer_offsets partition
// p: it replays the partition, rebuilding its groups and offsets, and arms their
// timers. Requests for those groups answer COORDINATOR_LOAD_IN_PROGRESS meanwhile.
func (c *Coordinator) LoadPartition(ctx context.Context, p int32) error {
	if p < 0 || p >= c.cfg.NumPartitions {
		return fmt.Errorf("load __consumer_offsets partition %d: there are %d", p, c.cfg.NumPartitions)
	}
	c.mu.Lock()
	c.dropPartitionLocked(p) // a partition loaded again starts afresh
	c.owned[p].state = partLoading
	c.owned[p].epoch++
	epoch := c.owned[p].epoch
	c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		c.UnloadPartition(p)
		return fmt.Errorf("load __consumer_offsets partition %d: %w", p, err)
	}
	// Replay takes mu per record: nothing else touches the partition's groups before it
	// is loaded, but timers armed by restored groups may fire.
	err := c.store.Replay(p, func(r Record) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.owned[p].epoch != epoch {
			return nil // unloaded meanwhile: the rest does not matter
		}
		return c.replayRecord(p, r)
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.owned[p].epoch != epoch {
		return nil
	}
	if err != nil {
		c.dropPartitionLocked(p)
		c.owned[p].state = partNotOwned
		c.notifyOwnershipLocked()
		return fmt.Errorf("load __consumer_offsets partition %d: %w", p, err)
	}
	c.owned[p].state = partLoaded
	for _, g := range c.groups {
		if g.partition == p {
			c.restoreTimersLocked(g)
		}
	}
	c.notifyOwnershipLocked()
	c.cfg.Logger.Debug("loaded group coordination", "partition", p)
	return nil
}

// UnloadPartition stops serving the groups of __consumer_offsets partition p: they are
// dropped from memory (their state is in the partition, for its next leader), their
// timers stopped and the requests they have waiting answered NOT_COORDINATOR.
func (c *Coordinator) UnloadPartition(p int32) {
	if p < 0 || p >= c.cfg.NumPartitions {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropPartitionLocked(p)
	c.owned[p].state = partNotOwned
	c.owned[p].epoch++
	c.notifyOwnershipLocked()
}

// dropPartitionLocked removes the groups of partition p.
func (c *Coordinator) dropPartitionLocked(p int32) {
	for id, g := range c.groups {
		if g.partition != p {
			continue
		}
		for _, m := range g.members {
			c.removeMember(g, m, kerr.NotCoordinator)
		}
		if g.typ == typeConsumer {
			c.dropConsumerTimersLocked(g)
		}
		c.sched.cancelGroup(id)
		delete(c.groups, id)
	}
}

// AwaitPartition returns once partition p is loaded here, or ctx ends.
func (c *Coordinator) AwaitPartition(ctx context.Context, p int32) error {
	for {
		c.mu.Lock()
		if p < 0 || p >= c.cfg.NumPartitions {
			c.mu.Unlock()
			return fmt.Errorf("no __consumer_offsets partition %d", p)
		}
		loaded, ch := c.owned[p].state == partLoaded, c.ownershipCh
		c.mu.Unlock()
		if loaded {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closed:
			return errClosed
		}
	}
}

func (c *Coordinator) notifyOwnershipLocked() {
	close(c.ownershipCh)
	c.ownershipCh = make(chan struct{})
}
