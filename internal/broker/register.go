package broker

// The broker's lifecycle with the controller, as KRaft's BrokerLifecycleManager:
//
//  1. Once its listeners are bound (SetAdvertised) the broker registers through the
//     controller channel (BrokerRegistration: a new incarnation ID per process, its
//     advertised listeners, broker.rack, the metadata.version it supports). The answer
//     is its broker epoch. A refusal that retrying may cure (no controller yet, a
//     duplicate registration whose old session has not expired) is retried every
//     broker.heartbeat.interval.ms; others are logged and stop the lifecycle.
//  2. It heartbeats (BrokerHeartbeat with the offset of its image) at once and then
//     every broker.heartbeat.interval.ms; while fenced, at most every 50 ms, so that a
//     broker is unfenced as soon as its image has caught up with its registration. It
//     registers again if the controller no longer knows its epoch (STALE_BROKER_EPOCH).
//  3. Close is a controlled shutdown: heartbeats asking to shut down until the
//     controller, having moved its leaderships away, answers ShouldShutdown, bounded by
//     broker.session.timeout.ms (after which the controller fences it anyway), or until
//     the quorum has no leader to ask. A quorum of one skips it: there is no other
//     broker to lead anything.
//
// A quorum of one waits in SetAdvertised until it is unfenced (its own controller is in
// process: a few milliseconds), so that its clients find it serving once it listens.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
)

// fencedHeartbeat bounds the time between heartbeats while fenced.
const fencedHeartbeat = 50 * time.Millisecond

// SetAdvertised records the host:port clients should use, once the listeners are bound,
// and starts the broker's lifecycle with them (see the top of the file).
func (b *Broker) SetAdvertised(addrs []string) error {
	b.advertised.Store(&addrs)
	b.observeAt(addrs)
	if !b.cfg.IsBroker() {
		return nil
	}
	reg, err := b.registration(addrs)
	if err != nil {
		return err
	}
	if !b.life.started.CompareAndSwap(false, true) {
		return nil
	}
	b.wg.Add(3)
	go b.runLifecycle(reg)
	go b.watchPauses() // pause.go
	go b.resumeAfterPauses()
	if !b.quorumOfOne() {
		return nil
	}
	t := time.NewTimer(b.requestTimeout())
	defer t.Stop()
	select {
	case <-b.life.unfencedCh:
		// The partitions the unfencing gave back are led once reconciled.
		ctx, cancel := context.WithTimeout(b.ctx, b.requestTimeout())
		defer cancel()
		return b.waitReconciled(ctx, b.Image().Offset().Index)
	case err := <-b.life.failed:
		return err
	case <-t.C:
		b.logger.Warn("the broker is not unfenced yet; serving anyway", "waited", b.requestTimeout())
		return nil
	}
}

// quorumOfOne reports whether this node is the metadata quorum's only voter.
func (b *Broker) quorumOfOne() bool {
	v := b.cfg.QuorumVoters()
	_, self := v[b.cfg.NodeID]
	return len(v) == 1 && self && b.cfg.IsController()
}

// registration builds this node's registration from its advertised host:port per
// listener.
func (b *Broker) registration(addrs []string) (Registration, error) {
	ls := make([]metadata.Listener, 0, len(addrs))
	for i, a := range addrs {
		host, ps, err := net.SplitHostPort(a)
		port, perr := strconv.ParseUint(ps, 10, 16)
		if err != nil || perr != nil || port == 0 || host == "" {
			return Registration{}, fmt.Errorf("register broker %d: advertised listener %q is not host:port", b.cfg.NodeID, a)
		}
		name := "PLAINTEXT"
		if i < len(b.cfg.ListenerNames) {
			name = b.cfg.ListenerNames[i]
		}
		ls = append(ls, metadata.Listener{Name: name, Host: host, Port: uint16(port), SecurityProtocol: metadata.ProtocolPlaintext})
	}
	rack := b.cfg.BrokerRack
	if rack == "" {
		rack = b.cfg.Values["broker.rack"]
	}
	return Registration{ID: b.cfg.NodeID, IncarnationID: b.incarnation, Listeners: ls, Rack: rack, ClusterID: b.clusterID}, nil
}

// heartbeatInterval is broker.heartbeat.interval.ms.
func (b *Broker) heartbeatInterval() time.Duration {
	if d := b.cfg.BrokerHeartbeatInterval; d > 0 {
		return d
	}
	return 2 * time.Second
}

// runLifecycle registers and heartbeats until Close.
func (b *Broker) runLifecycle(reg Registration) {
	defer b.wg.Done()
	defer close(b.life.done)
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-b.life.stop:
			return false
		case <-t.C:
			return true
		}
	}
	failed := false
	for {
		if b.life.epoch.Load() < 0 {
			err := b.register(reg)
			if err != nil {
				if !failed && !retriableRegistration(err) {
					failed = true
					b.logger.Error("broker registration refused", "node.id", reg.ID, "err", err)
					select {
					case b.life.failed <- err:
					default:
					}
				} else {
					b.logger.Info("broker registration waits for the controller", "node.id", reg.ID, "reason", err)
				}
				if !wait(b.heartbeatInterval()) {
					return
				}
				continue
			}
		}
		sent := b.sinceStart()
		resp, err := b.heartbeat(false)
		next := b.heartbeatInterval()
		if err == nil && resp.ErrorCode == 0 {
			b.noteAnswered(sent)
		}
		switch {
		case err != nil:
			b.logger.Debug("broker heartbeat failed", "err", err)
		case resp.ErrorCode == kerr.StaleBrokerEpoch.Code:
			b.logger.Warn("the controller does not know this broker's epoch; registering again", "epoch", b.life.epoch.Load())
			b.life.epoch.Store(-1)
			next = 0
		case resp.ErrorCode != 0:
			b.logger.Debug("broker heartbeat refused", "err", codeErr(resp.ErrorCode, nil))
		default:
			b.setFenced(resp.IsFenced)
		}
		if b.life.fenced.Load() {
			next = min(next, fencedHeartbeat)
		}
		if !wait(next) {
			return
		}
	}
}

// retriableRegistration reports whether a refused registration may succeed later.
func retriableRegistration(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kerr.DuplicateBrokerRegistration) ||
		errors.Is(err, kerr.NotController) || errors.Is(err, kerr.RequestTimedOut) || errors.Is(err, errNoController)
}

// register sends the registration and records the epoch.
func (b *Broker) register(reg Registration) error {
	ctx, cancel := b.lifeContext()
	defer cancel()
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.Version = 3
	req.BrokerID, req.ClusterID, req.IncarnationID = reg.ID, reg.ClusterID, reg.IncarnationID
	req.PreviousBrokerEpoch = b.life.previousEpoch // clean_epoch.go
	if reg.Rack != "" {
		rack := reg.Rack
		req.Rack = &rack
	}
	for _, l := range reg.Listeners {
		rl := kmsg.NewBrokerRegistrationRequestListener()
		rl.Name, rl.Host, rl.Port, rl.SecurityProtocol = l.Name, l.Host, l.Port, l.SecurityProtocol
		req.Listeners = append(req.Listeners, rl)
	}
	f := kmsg.NewBrokerRegistrationRequestFeature()
	f.Name, f.MinSupportedVersion, f.MaxSupportedVersion = "metadata.version", 1, 1
	req.Features = append(req.Features, f)
	f.Name, f.MinSupportedVersion, f.MaxSupportedVersion = "eligible.leader.replicas.version", 0, 1 // KIP-966
	req.Features = append(req.Features, f)
	sent := b.sinceStart()
	r, err := b.lifeChannel.Send(ctx, req)
	if err != nil {
		return fmt.Errorf("register broker %d: %w", reg.ID, err)
	}
	resp := r.(*kmsg.BrokerRegistrationResponse)
	if err := codeErr(resp.ErrorCode, nil); err != nil {
		return fmt.Errorf("register broker %d: %w", reg.ID, err)
	}
	b.noteAnswered(sent)
	b.life.epoch.Store(resp.BrokerEpoch)
	b.logger.Info("registered broker", "node.id", reg.ID, "epoch", resp.BrokerEpoch, "listeners", b.Advertised())
	return nil
}

// heartbeat sends one heartbeat with this node's image offset.
func (b *Broker) heartbeat(wantShutdown bool) (*kmsg.BrokerHeartbeatResponse, error) {
	ctx, cancel := b.lifeContext()
	defer cancel()
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.Version = 1
	req.BrokerID, req.BrokerEpoch = b.cfg.NodeID, b.life.epoch.Load()
	req.CurrentMetadataOffset = int64(b.Image().Offset().Index)
	req.WantShutdown = wantShutdown
	r, err := b.lifeChannel.Send(ctx, req)
	if err != nil {
		return nil, err
	}
	return r.(*kmsg.BrokerHeartbeatResponse), nil
}

// lifeContext bounds one registration or heartbeat: a heartbeat interval (at least a
// second), and Close's end of the lifecycle.
func (b *Broker) lifeContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, max(b.heartbeatInterval(), time.Second))
}

// caughtUpToRegistration reports whether this broker's reconciled image holds its
// registration, the entry at its broker epoch, and the controller has unfenced it since:
// what Kafka's broker waits for before it serves requests at all. A restarted broker
// recovers an image that may still name it the leader of partitions which the
// controller moves away in, or after, that entry (leaders the clients were told of
// before it died); appending to them as leader would acknowledge acks=1 writes that the
// new leader's log then truncates (the fault battery's seed 323 lost 250 so). A broker
// without a lifecycle (no SetAdvertised: a test's or tool's) is not held.
func (b *Broker) caughtUpToRegistration() bool {
	if !b.life.started.Load() {
		return true
	}
	epoch := b.life.epoch.Load()
	if epoch < 0 || b.life.fenced.Load() {
		return false
	}
	if b.life.caughtUpEpoch.Load() == epoch {
		return true
	}
	if im, _, _ := b.pub.reconciled(); im.Offset().Index < uint64(epoch) {
		return false
	}
	b.life.caughtUpEpoch.Store(epoch)
	return true
}

// setFenced records what the controller said of this broker's fencing.
func (b *Broker) setFenced(fenced bool) {
	if was := b.life.fenced.Swap(fenced); was == fenced {
		return
	}
	if fenced {
		b.logger.Warn("the controller fenced this broker", "epoch", b.life.epoch.Load())
		return
	}
	b.logger.Info("the controller unfenced this broker", "epoch", b.life.epoch.Load())
	b.life.unfenceOnce.Do(func() { close(b.life.unfencedCh) })
}

// Fenced reports whether this broker is fenced (not registered yet, or fenced by the
// controller).
func (b *Broker) Fenced() bool { return b.life.fenced.Load() }

// BrokerEpoch returns this broker's epoch, -1 before it registered.
func (b *Broker) BrokerEpoch() int64 { return b.life.epoch.Load() }

// ControlledShutdown stops the lifecycle; a registered, unfenced broker of a larger
// quorum first asks the controller to move its leaderships away and waits until it may
// go (see the top of the file). Close does it first; the server does it before it closes
// its listeners, as Kafka's broker shuts down: a combined node's voters reach its raft
// through the controller listener, and clients are told where the leaderships went.
func (b *Broker) ControlledShutdown() { b.life.shutdown.Do(b.controlledShutdown) }

func (b *Broker) controlledShutdown() {
	if !b.life.started.Load() {
		return
	}
	close(b.life.stop)
	<-b.life.done
	if b.quorumOfOne() || b.life.epoch.Load() < 0 || b.life.fenced.Load() {
		return
	}
	bound := b.sessionTimeout()
	start := time.Now()
	deadline := start.Add(bound)
	b.logger.Info("controlled shutdown: asking the controller to move this broker's leaderships", "bound", bound)
	for time.Now().Before(deadline) {
		if li, _ := b.quorum.Leader(); li.LeaderID == 0 {
			// The quorum has no leader (its other voters are gone too, as when a whole
			// cluster stops): no controller will answer, so waiting is pointless.
			b.logger.Warn("controlled shutdown: the metadata quorum has no leader; stopping without it")
			return
		}
		resp, err := b.heartbeat(true)
		if err == nil && resp.ErrorCode == 0 && resp.ShouldShutdown {
			b.logger.Info("controlled shutdown: the controller lets this broker go", "took", time.Since(start).Round(time.Millisecond))
			return
		}
		if err == nil && resp.ErrorCode == kerr.StaleBrokerEpoch.Code {
			return
		}
		select {
		case <-time.After(min(b.heartbeatInterval(), 100*time.Millisecond)):
		case <-b.ctx.Done():
			return
		}
	}
	b.logger.Warn("controlled shutdown: the controller did not let this broker go in time; stopping anyway", "bound", bound)
}

// lifecycle is the broker's lifecycle state.
type lifecycle struct {
	started atomic.Bool
	epoch   atomic.Int64 // the broker epoch; -1 while not registered
	// previousEpoch is the epoch the previous process shut down cleanly at (-1: it did
	// not), read at Open (clean_epoch.go).
	previousEpoch int64
	fenced        atomic.Bool // true until the controller unfences this broker
	unfencedCh    chan struct{}
	unfenceOnce   sync.Once
	shutdown      sync.Once  // controlledShutdown runs once: from Server.Close, then Close
	failed        chan error // a registration refused for good, for SetAdvertised
	stop, done    chan struct{}
	// The pause watch (pause.go), times in ns since Open: the watch's last tick, and
	// when the last heartbeat or registration the controller answered was sent;
	// suspended while writes are refused after a pause, and catchUp (buffered 1) wakes
	// the catch-up.
	lastTick, lastAnswered atomic.Int64
	caughtUpEpoch          atomic.Int64 // the epoch whose registration the reconciled image holds
	suspended              atomic.Bool
	catchUp                chan struct{}
	clock                  func() time.Duration // monotonic time since newLifecycle
}

func newLifecycle() *lifecycle {
	l := &lifecycle{unfencedCh: make(chan struct{}), failed: make(chan error, 1), stop: make(chan struct{}), done: make(chan struct{}),
		catchUp: make(chan struct{}, 1)}
	start := time.Now()
	l.clock = func() time.Duration { return time.Since(start) }
	l.epoch.Store(-1)
	l.fenced.Store(true)
	return l
}

// Unfenced returns a channel closed once the controller has first unfenced this broker.
func (b *Broker) Unfenced() <-chan struct{} { return b.life.unfencedCh }
