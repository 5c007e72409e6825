// Package controller is the cluster's active controller, as Kafka KRaft's
// QuorumController: the node that leads the metadata quorum decides every metadata
// change (broker registrations and fencing, topics and partitions with their placement
// and leaders, configs, producer-ID blocks) and writes it to the quorum's log; every node
// applies the log to its image (internal/metadata).
//
// # Contract for the integration
//
// Every node that is a quorum voter runs one Controller over its quorum member:
//
//		sm := metadata.NewStateMachine(publish, logger)
//		node, _ := quorum.Open(qcfg, fsys, dir, sm, nil, clock, logger)
//		ctl, err := controller.New(controller.ConfigFor(brokerCfg, clusterID), node, sm.Image, clock, logger)
//		...
//		resp := ctl.Handle(ctx, req) // each request on the controller listener whose API is in ctl.APIs()
//		...
//		ctl.Close() // before node.Close()
//
//	  - log is the quorum member (*quorum.Node satisfies Log). The controller must be the
//	    only proposer of metadata entries: it predicts the index of its next entry and
//	    decides on its own entries not yet applied.
//	  - image must return the image of the state machine that log applies to
//	    (StateMachine.Image): Propose returns once the entry is applied there.
//	  - Handle answers every API in APIs() in Kafka's semantics and error codes, and
//	    returns nil for any other. On a node that is not the active controller every
//	    controller API answers NOT_CONTROLLER in its error fields; the raft APIs
//	    (DescribeQuorum, AddRaftVoter, RemoveRaftVoter) answer NOT_LEADER_OR_FOLLOWER, as
//	    Kafka's raft layer does. A change is answered once its entry is committed and
//	    applied on this node. A request whose ctx ends first is answered REQUEST_TIMED_OUT
//	    (the change may still happen, as in Kafka).
//	  - Offsets: a broker's metadata offset (BrokerHeartbeat's CurrentMetadataOffset) is
//	    the raft index of the last entry its image applied (metadata.Image.Offset().Index),
//	    and its broker epoch is the index of its registration's entry (as the controller
//	    predicts it; higher ones are possible only when membership changes came between,
//	    and the epoch then is lower but still unique and increasing). DescribeQuorum
//	    reports Kafka's offsets: an entry at index i has offset i-1, so log end offsets and
//	    the high watermark are raft indexes.
//
// The decisions are pure functions of the speculative image, the time and the request
// (placer.go, partition.go, sessions.go, cluster.go, topics.go, configs.go); core.go is
// the state machine that sequences them; this file runs it on one goroutine (Kafka's
// controller event queue) with a second that proposes its writes in order.
package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/quorum"
)

// Log is what the controller needs of the quorum's replicated log; *quorum.Node has it.
type Log interface {
	// Propose appends data and returns its index once it is committed and applied to the
	// image; *quorum.NotLeaderError when this node does not lead (or lost leadership
	// before the entry committed).
	Propose(ctx context.Context, data []byte) (uint64, error)
	// Leader returns the leader as this node knows it and a channel closed when it
	// changes.
	Leader() (quorum.LeaderInfo, <-chan struct{})
	// Status is this member's view of the quorum (DescribeQuorum).
	Status(ctx context.Context) (quorum.Status, error)
	// AddObserver, PromoteToVoter and RemoveNode change the quorum's membership
	// (AddRaftVoter, RemoveRaftVoter).
	AddObserver(ctx context.Context, id uint64, addr string) error
	PromoteToVoter(ctx context.Context, id uint64) error
	RemoveNode(ctx context.Context, id uint64) error
}

var _ Log = (*quorum.Node)(nil)

// Clock is where the controller takes time from: session expiry and the loop's ticks
// (quorum.SystemClock() in production; inside a testing/synctest bubble it is virtual).
type Clock = quorum.Clock

// Controller is one node's controller: active while the node leads the quorum.
type Controller struct {
	cfg    Config
	log    Log
	image  func() *metadata.Image
	clock  Clock
	logger *slog.Logger

	ops    chan *op
	ctx    context.Context // ends at Close: stops the writer's proposals
	cancel context.CancelFunc
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once

	core   *core // owned by the loop
	gen    atomic.Uint64
	active atomic.Bool

	writes  queue[*write]
	results queue[writeResult]
}

type writeResult struct {
	w     *write
	index uint64
	err   error
}

// New starts the controller over log. image returns the latest image log's state
// machine applied; logger may be nil.
func New(cfg Config, log Log, image func() *metadata.Image, clock Clock, logger *slog.Logger) (*Controller, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if clock == nil {
		clock = quorum.SystemClock()
	}
	logger = logger.With("node", cfg.NodeID)
	ctx, cancel := context.WithCancel(context.Background())
	c := &Controller{cfg: cfg, log: log, image: image, clock: clock, logger: logger,
		ops: make(chan *op, cfg.MaxQueuedOperations), ctx: ctx, cancel: cancel,
		stop: make(chan struct{}), done: make(chan struct{}),
		core:    newCore(cfg, image, logger),
		writes:  newQueue[*write](),
		results: newQueue[writeResult]()}
	writerDone := make(chan struct{})
	go c.writer(writerDone)
	go c.run(writerDone)
	return c, nil
}

// Active reports whether this node is the active controller now.
func (c *Controller) Active() bool { return c.active.Load() }

// Close stops the controller: requests still waiting are answered NOT_CONTROLLER.
func (c *Controller) Close() error {
	c.once.Do(func() {
		close(c.stop)
		c.cancel()
		<-c.done
	})
	return nil
}

// Handle answers one request of an API in APIs(); see the package documentation.
func (c *Controller) Handle(ctx context.Context, req kmsg.Request) kmsg.Response {
	switch r := req.(type) {
	case *kmsg.DescribeQuorumRequest:
		return c.describeQuorum(ctx, r)
	case *kmsg.AddRaftVoterRequest:
		return c.addRaftVoter(ctx, r)
	case *kmsg.RemoveRaftVoterRequest:
		return c.removeRaftVoter(ctx, r)
	case *kmsg.UnregisterBrokerRequest:
		resp := c.decided(ctx, r)
		if ur, ok := resp.(*kmsg.UnregisterBrokerResponse); ok && ur.ErrorCode == 0 {
			c.removeObserver(ctx, r.BrokerID)
		}
		return resp
	}
	if !loopAPI(req.Key()) {
		return nil
	}
	return c.decided(ctx, req)
}

// decided hands req to the loop and returns its answer.
func (c *Controller) decided(ctx context.Context, req kmsg.Request) kmsg.Response {
	o := &op{req: req}
	answer := make(chan kmsg.Response, 1)
	o.respond = func(r kmsg.Response) { answer <- r }
	select {
	case c.ops <- o:
	case <-ctx.Done():
		return errorResponse(req, ctx.Err())
	case <-c.stop:
		return errorResponse(req, errNotController)
	}
	select {
	case r := <-answer:
		return r
	case <-ctx.Done():
		return errorResponse(req, ctx.Err())
	case <-c.done:
		select { // the loop answers everything it took before it stops
		case r := <-answer:
			return r
		default:
			return errorResponse(req, errNotController)
		}
	}
}

// run is the controller's loop: it owns the core and feeds it.
func (c *Controller) run(writerDone chan struct{}) {
	defer close(c.done)
	ticker := c.clock.NewTicker(c.cfg.tickInterval())
	defer ticker.Stop()
	for {
		li, changed := c.log.Leader()
		c.step(func() { c.core.leader(li) })
		var ops chan *op
		if c.core.pendingCount() < c.cfg.MaxQueuedOperations {
			ops = c.ops
		}
		select {
		case <-c.stop:
			c.step(c.core.stop)
			c.writes.close()
			<-writerDone
			for { // answer what is still queued
				select {
				case o := <-c.ops:
					o.respond(errorResponse(o.req, errNotController))
				default:
					return
				}
			}
		case <-changed:
		case o := <-ops:
			c.step(func() { c.core.handle(o) })
		case <-c.results.ready():
			for _, r := range c.results.drain() {
				c.step(func() { c.core.written(r.w, r.index, r.err) })
			}
		case <-ticker.C():
			c.step(c.core.tick)
		}
	}
}

// step runs one input through the core at the clock's time and hands its writes on.
func (c *Controller) step(fn func()) {
	c.core.now = c.clock.Now()
	fn()
	c.gen.Store(c.core.gen)
	c.active.Store(c.core.isActive())
	for _, w := range c.core.takeWrites() {
		c.writes.push(w)
	}
}

// writer proposes the core's writes one at a time, in order: a write is proposed only
// once the one before it is committed, so entries commit in the order they were decided.
// A write of an abandoned generation is dropped unproposed. A failed write abandons its
// generation (the core moves to a new one when it hears of it), so the writer drops
// the rest of that generation at once: they were decided on a state that included the
// failed write, and the loop may not have heard of the failure yet.
func (c *Controller) writer(done chan struct{}) {
	defer close(done)
	var failedGen uint64 // 0: none (generations start at 1)
	for {
		select {
		case <-c.writes.ready():
		case <-c.writes.closed:
			return
		}
		for _, w := range c.writes.drain() {
			if w.gen != c.gen.Load() || w.gen == failedGen {
				c.results.push(writeResult{w: w, err: errStale})
				continue
			}
			index, err := c.log.Propose(c.ctx, w.data)
			if err != nil {
				failedGen = w.gen
				err = fmt.Errorf("propose a metadata entry: %w", err)
			}
			c.results.push(writeResult{w: w, index: index, err: err})
		}
	}
}

// queue is an unbounded FIFO between two goroutines; its length is bounded by the
// core's MaxQueuedOperations.
type queue[T any] struct {
	mu     sync.Mutex
	items  []T
	signal chan struct{}
	closed chan struct{}
}

func newQueue[T any]() queue[T] {
	return queue[T]{signal: make(chan struct{}, 1), closed: make(chan struct{})}
}

func (q *queue[T]) push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *queue[T]) ready() <-chan struct{} { return q.signal }

func (q *queue[T]) drain() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items = nil
	return out
}

func (q *queue[T]) close() { close(q.closed) }

// API is one API the controller answers, with its versions (for the controller
// listener's ApiVersions).
type API struct {
	Key, MinVersion, MaxVersion int16
}

// apis is the one list of the controller's APIs and versions.
var apis = []API{
	{19, 0, 7}, // CreateTopics
	{20, 0, 6}, // DeleteTopics
	{33, 0, 2}, // AlterConfigs
	{37, 0, 3}, // CreatePartitions
	{43, 0, 2}, // ElectLeaders
	{44, 0, 1}, // IncrementalAlterConfigs
	{45, 0, 1}, // AlterPartitionReassignments
	{46, 0, 0}, // ListPartitionReassignments
	{55, 0, 2}, // DescribeQuorum
	{56, 0, 3}, // AlterPartition
	{62, 0, 4}, // BrokerRegistration
	{63, 0, 2}, // BrokerHeartbeat
	{64, 0, 0}, // UnregisterBroker
	{67, 0, 0}, // AllocateProducerIds
	{80, 0, 1}, // AddRaftVoter
	{81, 0, 0}, // RemoveRaftVoter
}

// APIs returns the APIs Handle answers, by key.
func (c *Controller) APIs() []API { return append([]API(nil), apis...) }

// loopAPI reports whether the loop decides requests of API key (the others are the raft
// APIs, answered by the quorum member directly).
func loopAPI(key int16) bool {
	switch key {
	case 19, 20, 33, 37, 43, 44, 45, 46, 56, 62, 63, 64, 67:
		return true
	}
	return false
}
