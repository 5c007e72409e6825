package broker

// A broker whose whole process stood still (SIGSTOP, a frozen VM, a stalled host) for
// longer than its session may have been fenced, and its partitions given to other
// leaders, without hearing of it. When it runs again, the produce requests queued on its
// sockets are read before its metadata catches up, and it would append them as the
// leader it no longer is: Kafka's broker does, and acknowledges acks=1 writes that the
// truncation to the new leader's log then removes (the fault battery saw 722-2002 a
// pause). Vltava refuses writes instead (NOT_LEADER_OR_FOLLOWER, which clients retry
// after refreshing their metadata) from the moment it notices such a pause until the
// image it has reconciled holds everything the metadata quorum had committed when it
// asked after the pause (DescribeQuorum's high watermark, as a forwarded change waits
// for: writer.go), so that its leaderships are as the controller decided them.
//
// A pause is a gap of pauseGap in the watch's ticks, or between its last tick and a
// produce request (requests may run before the watch does after a thaw), at a time when
// the last heartbeat the controller answered was sent more than broker.session.timeout.ms
// ago. A broker that runs but cannot reach the controller has no such gap: it keeps
// serving as Kafka's does, whatever the controller decides meanwhile (acks=all writes
// are safe either way: its followers stop fetching from a replaced leader).

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
)

// pauseTick is the pause watch's period.
const pauseTick = 100 * time.Millisecond

// pauseGap is how long the process must have stood still to count as paused: a pause
// outlasts the session only if it is longer than the session timeout less a heartbeat
// interval, and a third of the session timeout is far above the scheduling delays of a
// loaded machine.
func (b *Broker) pauseGap() time.Duration { return max(b.sessionTimeout()/3, time.Second) }

// sessionTimeout is broker.session.timeout.ms.
func (b *Broker) sessionTimeout() time.Duration {
	if d := b.cfg.BrokerSessionTimeout; d > 0 {
		return d
	}
	return 9 * time.Second
}

// sinceStart is the time since Open on the system's monotonic clock (not the broker's
// clock, which tests move by hours: a pause is the process's own standing still).
func (b *Broker) sinceStart() int64 { return int64(b.life.clock()) }

// WriteRefusal is why this broker refuses produce requests now, nil if it takes them:
// it has not caught up with its own registration since it started (register.go's
// caughtUpToRegistration), or it stood still past its session (the top of this file).
// Both are NOT_LEADER_OR_FOLLOWER, which clients retry after refreshing their metadata.
func (b *Broker) WriteRefusal() error {
	if !b.caughtUpToRegistration() {
		return ErrNotCaughtUp
	}
	if b.writesSuspended() {
		return ErrPausedBroker
	}
	return nil
}

// writesSuspended reports whether this broker refuses writes after a pause, noticing
// one itself.
func (b *Broker) writesSuspended() bool {
	now := b.sinceStart()
	tick := b.life.lastTick.Load() // before suspended: watchPauses stores it after
	if b.life.suspended.Load() {
		return true
	}
	if tick == 0 || time.Duration(now-tick) < b.pauseGap() {
		return false
	}
	return b.notePause(now, tick)
}

// ErrPausedBroker is the produce error of a broker that refuses writes after a pause.
var ErrPausedBroker = fmt.Errorf("%w: this broker stood still for longer than its session and has not caught up with the controller's metadata yet", kerr.NotLeaderForPartition)

// ErrNotCaughtUp is the produce error of a broker whose metadata does not hold its own
// registration yet.
var ErrNotCaughtUp = fmt.Errorf("%w: this broker has not caught up with the metadata since it registered", kerr.NotLeaderForPartition)

// notePause suspends writes if the pause from tick to now may have outlasted the
// session, and reports whether they are suspended.
func (b *Broker) notePause(now, tick int64) bool {
	if time.Duration(now-b.life.lastAnswered.Load()) <= b.sessionTimeout() {
		return false
	}
	if b.life.suspended.CompareAndSwap(false, true) {
		b.logger.Warn("this broker stood still for longer than its session; refusing writes until its metadata has caught up",
			"paused", time.Duration(now-tick).Round(time.Millisecond),
			"last_heartbeat_answered_ago", time.Duration(now-b.life.lastAnswered.Load()).Round(time.Millisecond))
		select {
		case b.life.catchUp <- struct{}{}:
		default:
		}
	}
	return true
}

// noteAnswered records that the controller answered a heartbeat or registration sent at
// sent (sinceStart).
func (b *Broker) noteAnswered(sent int64) {
	for {
		old := b.life.lastAnswered.Load()
		if sent <= old || b.life.lastAnswered.CompareAndSwap(old, sent) {
			return
		}
	}
}

// watchPauses ticks until the broker stops, noticing pauses between its ticks.
func (b *Broker) watchPauses() {
	defer b.wg.Done()
	t := time.NewTicker(pauseTick)
	defer t.Stop()
	b.life.lastTick.Store(b.sinceStart())
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		now := b.sinceStart()
		if tick := b.life.lastTick.Load(); time.Duration(now-tick) >= b.pauseGap() {
			b.notePause(now, tick)
		}
		b.life.lastTick.Store(now)
	}
}

// resumeAfterPauses takes writes again once the metadata has caught up after a pause.
func (b *Broker) resumeAfterPauses() {
	defer b.wg.Done()
	for {
		select {
		case <-b.stop:
			return
		case <-b.life.catchUp:
		}
		start := time.Now()
		for b.life.suspended.Load() {
			ctx, cancel := context.WithTimeout(b.ctx, b.requestTimeout())
			err := b.catchUpAfterPause(ctx)
			cancel()
			if err == nil {
				b.life.suspended.Store(false)
				b.logger.Info("caught up with the metadata after a pause; taking writes again",
					"took", time.Since(start).Round(time.Millisecond))
				break
			}
			b.logger.Debug("catching up after a pause", "err", err)
			select {
			case <-b.stop:
				return
			case <-time.After(pauseTick):
			}
		}
	}
}

// catchUpAfterPause waits until the reconciled image holds what the metadata quorum had
// committed when asked. If this node led the quorum before the pause, it first waits for
// a new leader or term (unless it is the only voter): a leader that was paused answers
// from its own log until it hears that it was replaced. Raft's check-quorum makes a
// leader without a majority step down within an election timeout, so one still leading
// after two of them kept its majority, and its log is the quorum's.
func (b *Broker) catchUpAfterPause(ctx context.Context) error {
	if li, changed := b.quorum.Leader(); li.LeaderID == uint64(b.cfg.NodeID) && !b.quorumOfOne() {
		paused := li.Term
		t := time.NewTimer(2 * b.electionTimeout())
		defer t.Stop()
	wait:
		for li.LeaderID == uint64(b.cfg.NodeID) && li.Term == paused {
			select {
			case <-changed:
			case <-t.C:
				break wait
			case <-ctx.Done():
				return fmt.Errorf("still the quorum's leader of term %d: %w", paused, ctx.Err())
			}
			li, changed = b.quorum.Leader()
		}
	}
	return b.awaitCommitted(ctx, b.lifeChannel)
}

// electionTimeout is controller.quorum.election.timeout.ms.
func (b *Broker) electionTimeout() time.Duration {
	if n, err := strconv.ParseInt(b.cfg.Values["controller.quorum.election.timeout.ms"], 10, 64); err == nil && n > 0 {
		return time.Duration(n) * time.Millisecond
	}
	return time.Second
}

// awaitCommitted waits until this node's reconciled image holds every entry the quorum's
// leader had committed when ch's DescribeQuorum reached it.
func (b *Broker) awaitCommitted(ctx context.Context, ch *ControllerChannel) error {
	req := kmsg.NewPtrDescribeQuorumRequest()
	req.Version = 1
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = metadataTopic
	t.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	req.Topics = append(req.Topics, t)
	r, err := ch.Send(ctx, req)
	if err != nil {
		return err
	}
	resp := r.(*kmsg.DescribeQuorumResponse)
	if len(resp.Topics) == 0 || len(resp.Topics[0].Partitions) == 0 {
		return fmt.Errorf("%w: the controller's DescribeQuorum answered no partition", kerr.UnknownServerError)
	}
	p := resp.Topics[0].Partitions[0]
	if err := codeErr(p.ErrorCode, nil); err != nil {
		return err
	}
	hw := uint64(max(p.HighWatermark, 0))
	return b.WaitImage(ctx, func(im *metadata.Image) bool { return im.Offset().Index >= hw })
}
