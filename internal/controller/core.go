package controller

// The controller's state machine, free of goroutines and I/O (as etcd raft's core is):
// the loop in controller.go, or a test, feeds it inputs (leadership, requests, the
// outcome of each write, ticks) with the time set in now, and carries out its output:
// the writes to propose to the log, in order. Responses go out through each op's
// respond callback.
//
// While this node leads the quorum the core is active (Kafka's active controller):
//   - Activation: a new term's first write is a NoOp. Once it is committed and applied
//     here, the image holds every entry of earlier terms, and the core decides on it.
//     Requests that arrive meanwhile wait. Then, if the image has no cluster ID yet, the
//     next write sets it and metadata.version.
//   - Every request is decided on the speculative image: the applied image plus the
//     records of this controller's writes not yet committed, so consecutive decisions see
//     each other. A decision with records becomes one write (one entry, applied whole;
//     only a broker's fencing, unfencing or controlled shutdown may take several, as
//     Kafka's non-atomic results do); its records are applied to the speculative image
//     first, so a record that validation would refuse is never proposed. Its answer goes
//     out once the entry is committed and applied. A decision without records
//     (validate_only, an error, a heartbeat that changes nothing) is answered once every
//     earlier write is committed, so no answer reveals a state that may yet be lost (as
//     Kafka's controller does).
//   - A write that fails fails every write decided after it, since they were decided on
//     a state that included it: its own answer carries its error, the others
//     REQUEST_TIMED_OUT; the speculative image goes back to the committed state. If the
//     failure says this node no longer leads (or the log stopped), the core resigns for
//     that term: every waiting request is answered NOT_CONTROLLER and the soft state is
//     dropped. Leadership moving (leader) does the same. A failure whose outcome it
//     cannot tell (the entry may yet commit) makes it start the term afresh: a new NoOp,
//     once committed, settles every entry before it.
//
// Writes carry the generation they were decided in; a resignation or a failure moves to
// a new generation, and the writer drops writes of an older one without proposing them.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
	"github.com/vltava/vltava/internal/quorum"
)

type coreState int

const (
	standby coreState = iota
	activating
	active
)

// op is a request waiting for its answer; respond is called exactly once.
type op struct {
	req     kmsg.Request
	respond func(kmsg.Response)
}

// write is one entry to propose: the encoded batch of one decision.
type write struct {
	gen, term uint64
	data      []byte
}

// pendingOp is a decision waiting for its write (or, for a barrier, w nil, for the
// writes before it) to commit.
type pendingOp struct {
	w         *write
	specAfter *metadata.Image // the speculative image with this write applied
	done      func(index uint64, err error)
}

// decision is what a request decides: the records of its write (none: nothing to
// change) and its answer once they are committed at index.
type decision struct {
	records []metadata.Record
	// split: the records may go in several writes (see submitSplit).
	split  bool
	finish func(index uint64) kmsg.Response
}

// core is the controller's state. It is not safe for concurrent use.
type core struct {
	cfg    Config
	logger *slog.Logger
	image  func() *metadata.Image
	rnd    *rand.Rand
	ids    io.Reader // random bytes for topic IDs, from the same seed
	now    time.Time // set by the driver before each call

	state coreState
	term  uint64 // the term of the current or last activation
	gen   uint64
	// Activation: retry proposes the NoOp again at the next tick (it was dropped);
	// awaitImage is the NoOp's index while the image has not reached it.
	retryActivation bool
	awaitImage      uint64
	// predecessor is the quorum's previous leader when this activation began and
	// predecessorHeard when this node last heard from it (quorum.LeaderInfo); the broker
	// in that process gets its session from then, not from the activation.
	predecessor      int32
	predecessorHeard time.Time
	lagLogged        bool // the image's lag behind awaitImage was logged

	spec          *metadata.Image // the speculative image
	committedSpec *metadata.Image // the speculative image as of the last committed write
	lastCommitted uint64          // the index of the last committed write
	pending       []*pendingOp
	waiting       []*op // requests that arrived while activating
	sessions      *sessions
	out           []*write
	// When the periodic elections (rebalance.go) run next; zero: not scheduled yet.
	nextRebalance, nextUnclean time.Time
}

func newCore(cfg Config, image func() *metadata.Image, logger *slog.Logger) *core {
	seed := uint64(cfg.Seed)
	src := rand.NewChaCha8(seedBytes(seed, 0))
	return &core{cfg: cfg, logger: logger, image: image, rnd: rand.New(src),
		ids: rand.NewChaCha8(seedBytes(seed, 1))}
}

func seedBytes(seed uint64, stream byte) [32]byte {
	var b [32]byte
	for i := range 8 {
		b[i] = byte(seed >> (8 * i))
	}
	b[8] = stream
	return b
}

// pendingCount is the number of requests and writes the core holds.
func (c *core) pendingCount() int { return len(c.pending) + len(c.waiting) }

// takeWrites returns the writes to propose, in order, and forgets them.
func (c *core) takeWrites() []*write {
	out := c.out
	c.out = nil
	return out
}

// isActive reports whether the core acts as the active controller.
func (c *core) isActive() bool { return c.state == active }

// leader takes the quorum's leader as this node knows it.
func (c *core) leader(li quorum.LeaderInfo) {
	self := li.LeaderID != 0 && li.LeaderID == uint64(c.cfg.NodeID)
	if c.state != standby && (!self || li.Term != c.term) {
		c.resign("leadership moved", li)
	}
	if self && c.state == standby && li.Term > c.term {
		c.activate(li)
	}
}

func (c *core) activate(li quorum.LeaderInfo) {
	term := li.Term
	c.state, c.term = activating, term
	c.predecessor, c.predecessorHeard = int32(li.Predecessor), c.now.Add(-li.PredecessorSilence)
	c.gen++
	c.sessions = newSessions(c.cfg.SessionTimeout)
	c.spec = c.image()
	c.committedSpec, c.lastCommitted = nil, c.spec.Offset().Index
	c.logger.Info("controller: this node leads the metadata quorum; activating", "term", term)
	c.proposeNoOp()
}

// proposeNoOp writes the activation's NoOp. The image may be behind the log until it
// commits, so nothing is decided before.
func (c *core) proposeNoOp() {
	term := c.term
	c.submit([]metadata.Record{&metadata.NoOpRecord{}}, func(index uint64, err error) {
		if c.state != activating || c.term != term {
			return
		}
		if err != nil {
			c.logger.Warn("controller: the activation entry failed; retrying", "term", term, "err", err)
			c.retryActivation = true
			return
		}
		c.awaitImage = index
		c.finishActivation()
	})
}

// finishActivation becomes active once the image holds the activation's NoOp.
func (c *core) finishActivation() {
	im := c.image()
	if im.Offset().Index < c.awaitImage {
		if !c.lagLogged {
			c.logger.Error("controller: the image lags behind an entry the log reported applied; waiting for it",
				"image", im.Offset().Index, "entry", c.awaitImage)
			c.lagLogged = true
		}
		return
	}
	c.lagLogged = false
	c.state = active
	c.spec, c.committedSpec = im, im
	c.lastCommitted = max(c.lastCommitted, c.awaitImage)
	c.sessions.activate(im, c.now, c.awaitImage)
	if c.predecessor != 0 && c.predecessor != c.cfg.NodeID {
		c.sessions.heardBefore(c.predecessor, c.predecessorHeard)
	}
	c.awaitImage = 0
	c.nextRebalance, c.nextUnclean = time.Time{}, time.Time{}
	c.logger.Info("controller: active", "term", c.term, "offset", im.Offset().Index, "brokers", im.NumBrokers())
	c.bootstrap()
	waiting := c.waiting
	c.waiting = nil
	for _, o := range waiting {
		c.handle(o)
	}
}

// bootstrap writes the cluster ID and metadata.version into an image that lacks them.
func (c *core) bootstrap() {
	var rs []metadata.Record
	switch id := c.spec.ClusterID(); {
	case id == "" && c.cfg.ClusterID == "":
		c.logger.Error("controller: the metadata has no cluster ID and none is configured")
	case id == "":
		rs = append(rs, &metadata.ClusterIDRecord{ID: c.cfg.ClusterID})
	case c.cfg.ClusterID != "" && id != c.cfg.ClusterID:
		c.logger.Error("controller: the metadata belongs to another cluster than the configured one", "metadata", id, "configured", c.cfg.ClusterID)
	}
	if c.spec.FeatureLevel(MetadataVersionFeature) == 0 {
		// A new cluster: its features as a new Kafka 4.1+ cluster has them.
		rs = append(rs, &metadata.FeatureLevelRecord{Name: MetadataVersionFeature, Level: c.cfg.MetadataVersion})
		if c.cfg.ELRVersion > 0 {
			rs = append(rs, &metadata.FeatureLevelRecord{Name: ELRFeature, Level: c.cfg.ELRVersion})
		}
	}
	if len(rs) > 0 {
		c.submit(rs, func(_ uint64, err error) {
			if err != nil {
				c.logger.Error("controller: could not record the cluster ID", "err", err)
			}
		})
	}
}

// resign stops acting for this term.
func (c *core) resign(why string, li quorum.LeaderInfo) {
	if c.state == standby {
		return
	}
	c.logger.Info("controller: no longer active", "why", why, "term", c.term, "leader", li.LeaderID, "leader_term", li.Term)
	c.state = standby
	c.gen++
	pending, waiting := c.pending, c.waiting
	c.pending, c.waiting = nil, nil
	c.spec, c.committedSpec, c.sessions = nil, nil, nil
	c.retryActivation, c.awaitImage = false, 0
	for _, p := range pending {
		p.done(0, errNotController)
	}
	for _, o := range waiting {
		o.respond(errorResponse(o.req, errNotController))
	}
}

// stop resigns for good (the controller is closing).
func (c *core) stop() {
	c.resign("closing", quorum.LeaderInfo{})
	c.term = ^uint64(0)
}

// handle takes a request.
func (c *core) handle(o *op) {
	switch c.state {
	case standby:
		o.respond(errorResponse(o.req, errNotController))
	case activating:
		c.waiting = append(c.waiting, o)
	case active:
		d := c.decide(o.req)
		done := func(index uint64, err error) {
			if err != nil {
				o.respond(errorResponse(o.req, err))
				return
			}
			o.respond(d.finish(index))
		}
		if d.split {
			c.submitSplit(d.records, done)
		} else {
			c.submit(d.records, done)
		}
	}
}

// tick runs what time decides: retrying activation, and fencing brokers whose session
// expired (one write each, so each fencing sees the one before).
func (c *core) tick() {
	switch c.state {
	case activating:
		if c.retryActivation {
			c.retryActivation = false
			c.proposeNoOp()
		} else if c.awaitImage > 0 {
			c.finishActivation()
		}
	case active:
		defer c.periodicElections()
		for _, id := range c.sessions.stale(c.spec, c.now) {
			b := c.spec.Broker(id)
			c.logger.Info("controller: fencing broker: its session timed out", "broker", id, "epoch", b.Epoch,
				"session_timeout", c.cfg.SessionTimeout)
			c.submitSplit(c.fenceRecords(b), func(_ uint64, err error) {
				if err != nil {
					c.logger.Warn("controller: fencing a broker failed", "broker", id, "err", err)
				}
			})
		}
	}
}

// nextIndex is the index the next write is expected at: after the speculative image and
// after every write in flight.
func (c *core) nextIndex() uint64 {
	inflight := uint64(0)
	for _, p := range c.pending {
		if p.w != nil {
			inflight++
		}
	}
	return max(c.spec.Offset().Index, c.lastCommitted+inflight) + 1
}

// lastIndex is the index of the last entry this core knows of.
func (c *core) lastIndex() uint64 { return max(c.spec.Offset().Index, c.lastCommitted) }

// submit turns a decision's records into one write (none: a barrier) and calls done
// once it is committed or has failed. A change that cannot be one write is refused at
// once: the error is returned as well as given to done.
func (c *core) submit(records []metadata.Record, done func(index uint64, err error)) error {
	if len(records) == 0 {
		if len(c.pending) == 0 {
			done(c.lastIndex(), nil)
			return nil
		}
		c.pending = append(c.pending, &pendingOp{done: done})
		return nil
	}
	fail := func(err error) error {
		done(0, err)
		return err
	}
	if len(records) > metadata.MaxBatchRecords {
		return fail(errExcessivelyLarge)
	}
	data, err := metadata.AppendBatch(nil, records)
	if err != nil {
		return fail(errorf(kerr.PolicyViolation, "%v", err))
	}
	if len(data) > c.cfg.MaxEntryBytes {
		return fail(errorf(kerr.PolicyViolation, "the change takes %d bytes, more than the %d of one metadata entry", len(data), c.cfg.MaxEntryBytes))
	}
	off := metadata.Offset{Index: c.nextIndex(), Term: c.term}
	next, _, err := c.spec.Apply(off, records)
	if err != nil {
		// A decision that validation refuses is a bug here; proposing it would have
		// every node skip it.
		c.logger.Error("controller: a decision does not apply to the image it was made on; not proposed", "err", err)
		return fail(errorf(kerr.UnknownServerError, "the controller made an invalid change: %v", err))
	}
	c.spec = next
	w := &write{gen: c.gen, term: c.term, data: data}
	c.pending = append(c.pending, &pendingOp{w: w, specAfter: next, done: done})
	c.out = append(c.out, w)
	return nil
}

// submitSplit writes records, in order, in as many writes as the limits of one entry
// take (Kafka's non-atomic controller results: fencing, unfencing and controlled
// shutdown of a broker that leads more partitions than one entry holds). Each write
// applies whole; the change as a whole may stop half done, and is decided again from
// where it stopped (the next heartbeat or session check). done is called once, with the
// last write's outcome, or the first failure.
func (c *core) submitSplit(records []metadata.Record, done func(index uint64, err error)) {
	chunks, err := c.chunks(records)
	if err != nil {
		done(0, err)
		return
	}
	if len(chunks) <= 1 {
		c.submit(records, done)
		return
	}
	for i, ch := range chunks {
		d := func(uint64, error) {}
		if i == len(chunks)-1 {
			d = done
		}
		if err := c.submit(ch, d); err != nil {
			if i < len(chunks)-1 {
				done(0, err)
			}
			return
		}
	}
}

// chunks cuts records into runs that each fit one entry.
func (c *core) chunks(records []metadata.Record) ([][]metadata.Record, error) {
	var out [][]metadata.Record
	var cut func(rs []metadata.Record) error
	cut = func(rs []metadata.Record) error {
		if len(rs) <= metadata.MaxBatchRecords {
			data, err := metadata.AppendBatch(nil, rs)
			if err == nil && len(data) <= c.cfg.MaxEntryBytes {
				out = append(out, rs)
				return nil
			}
			if len(rs) == 1 {
				return errorf(kerr.PolicyViolation, "a metadata record does not fit one entry (%d bytes at most): %v", c.cfg.MaxEntryBytes, err)
			}
		}
		if err := cut(rs[:len(rs)/2]); err != nil {
			return err
		}
		return cut(rs[len(rs)/2:])
	}
	if len(records) == 0 {
		return nil, nil
	}
	return out, cut(records)
}

// written takes the outcome of a write: committed and applied here at index, or err.
func (c *core) written(w *write, index uint64, err error) {
	if w.gen != c.gen {
		return // of an abandoned generation: its decision was answered already
	}
	if len(c.pending) == 0 || c.pending[0].w != w {
		// The writer proposes in order, one at a time; anything else is a bug.
		c.logger.Error("controller: a write completed out of order; resigning")
		c.resign("write out of order", quorum.LeaderInfo{})
		return
	}
	head := c.pending[0]
	c.pending = c.pending[1:]
	if err != nil {
		c.writeFailed(head, err)
		return
	}
	c.lastCommitted, c.committedSpec = index, head.specAfter
	head.done(index, nil)
	for len(c.pending) > 0 && c.pending[0].w == nil {
		b := c.pending[0]
		c.pending = c.pending[1:]
		b.done(c.lastCommitted, nil)
	}
	if len(c.pending) == 0 && c.state == active {
		c.rebase()
	}
}

// transient reports whether a write's failure leaves this node leading: the entry was
// not appended (dropped for now, or too large), so nothing is uncertain.
func transient(err error) bool {
	return errors.Is(err, quorum.ErrProposalDropped) || errors.Is(err, quorum.ErrEntryTooLarge)
}

func (c *core) writeFailed(head *pendingOp, err error) {
	var notLeader *quorum.NotLeaderError
	switch {
	case transient(err):
	case errors.As(err, &notLeader) || errors.Is(err, quorum.ErrClosed) || errors.Is(err, quorum.ErrStorage) ||
		errors.Is(err, context.Canceled):
		// This node no longer leads, or its log stopped: act again only in a new term.
		c.logger.Warn("controller: a metadata write failed; resigning for this term", "term", c.term, "err", err)
		c.pending = append([]*pendingOp{head}, c.pending...)
		c.resign("a write failed: "+err.Error(), quorum.LeaderInfo{})
		return
	default:
		// An outcome this controller cannot tell: the entry may yet commit. Start the
		// term afresh: a new NoOp, once committed, settles every entry before it.
		c.logger.Error("controller: a metadata write failed unexpectedly; activating afresh", "term", c.term, "err", err)
		c.pending = append([]*pendingOp{head}, c.pending...)
		term := c.term
		c.resign("a write failed unexpectedly: "+err.Error(), quorum.LeaderInfo{})
		c.state, c.term = activating, term
		c.sessions = newSessions(c.cfg.SessionTimeout)
		c.spec = c.image()
		c.committedSpec, c.lastCommitted = nil, max(c.lastCommitted, c.spec.Offset().Index)
		c.retryActivation = true // at the next tick, not in a tight loop
		return
	}
	c.logger.Warn("controller: a metadata write was refused; the writes decided after it are abandoned", "err", err)
	rest := c.pending
	c.pending = nil
	c.gen++
	head.done(0, err)
	for _, p := range rest {
		p.done(0, errorf(kerr.RequestTimedOut, "an earlier metadata change failed; retry"))
	}
	if c.sessions != nil {
		for _, ss := range c.sessions.m {
			if ss.shutdownOffset == 0 { // its controlled shutdown was never recorded
				ss.shutdownOffset = -1
			}
		}
	}
	if c.state == active {
		c.rebase()
	}
}

// rebase starts the speculative image afresh from the applied image, once nothing is in
// flight (or the committed state, should the image lag behind it).
func (c *core) rebase() {
	im := c.image()
	if im.Offset().Index >= c.lastCommitted || c.committedSpec == nil {
		c.spec = im
		return
	}
	c.logger.Warn("controller: the image lags behind the committed writes", "image", im.Offset().Index, "committed", c.lastCommitted)
	c.spec = c.committedSpec
}
