package partition

import "fmt"

// TakeLeaderEpoch makes a partition opened with Open (not a replica: see BecomeLeader)
// the leader at leaderEpoch, as the metadata elects it: batches appended from now on
// carry that epoch, and the log's leader-epoch cache starts it at the log end offset
// (KIP-101). An epoch not above the current one changes nothing
// (the metadata moved on without a new election).
func (p *Partition) TakeLeaderEpoch(leaderEpoch int32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if leaderEpoch <= p.leaderEpoch {
		return nil
	}
	if err := p.log.AssignEpoch(leaderEpoch, p.log.LogEndOffset()); err != nil {
		return fmt.Errorf("leader epoch %d of %s-%d: %w", leaderEpoch, p.Topic, p.Index, err)
	}
	p.leaderEpoch = leaderEpoch
	return nil
}
