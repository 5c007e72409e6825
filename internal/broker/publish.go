package broker

// The publisher: how the images the metadata log applies reach what this node hosts.
//
// The state machine hands every new image and its delta to publish, on the quorum's
// loop, which must never wait for disk work: publish only merges the delta into the one
// waiting (metadata.Merge; a publisher that falls behind reconciles one merged delta)
// and wakes the publisher's goroutine. That goroutine reconciles (host.go): it opens the
// partitions the image places on this node, closes and deletes the others, applies
// config changes, and moves group coordination with the leadership of
// __consumer_offsets partitions; then it records the image as reconciled, which is what
// a change made here waits for before it answers (a topic created here is served once
// its answer arrives).
//
// Memory: at most two images and one merged delta are held (the delta is bounded by the
// image it leads to).

import (
	"context"
	"sync"

	"github.com/vltava/vltava/internal/metadata"
)

type publisher struct {
	mu      sync.Mutex
	base    *metadata.Image // the image the pending delta starts from
	next    *metadata.Image // the latest image published, nil when nothing is pending
	delta   *metadata.Delta
	wake    chan struct{} // buffered 1: something is pending
	idle    bool          // nothing pending and nothing being reconciled
	changed chan struct{} // closed when the reconciled image changes or work finishes

	// done is the last image reconciled; guarded by mu.
	done *metadata.Image
}

func newPublisher() *publisher {
	return &publisher{base: metadata.Empty(), done: metadata.Empty(), wake: make(chan struct{}, 1),
		idle: true, changed: make(chan struct{})}
}

// publish is the state machine's publish function: it never blocks.
func (p *publisher) publish(im *metadata.Image, d *metadata.Delta) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.delta == nil {
		p.delta = d
	} else if m, err := metadata.Merge(p.delta, d); err == nil {
		p.delta = m
	} else {
		// Deltas that do not chain (cannot happen: the state machine publishes in log
		// order): the whole difference is exact anyway.
		p.delta = metadata.Diff(p.base, im)
	}
	p.next = im
	p.idle = false
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// take returns the pending image and delta, or nil if there is none.
func (p *publisher) take() (*metadata.Image, *metadata.Delta) {
	p.mu.Lock()
	defer p.mu.Unlock()
	im, d := p.next, p.delta
	if im != nil {
		p.base, p.next, p.delta = im, nil, nil
	}
	return im, d
}

// finished records im as reconciled.
func (p *publisher) finished(im *metadata.Image) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = im
	p.idle = p.next == nil
	close(p.changed)
	p.changed = make(chan struct{})
}

// reconciled returns the last image reconciled, whether work is pending, and a channel
// closed when either changes.
func (p *publisher) reconciled() (*metadata.Image, bool, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done, p.idle, p.changed
}

// run reconciles until stop is closed.
func (b *Broker) runPublisher(stop <-chan struct{}) {
	defer b.pubWG.Done()
	for {
		select {
		case <-stop:
			return
		case <-b.pub.wake:
		}
		im, d := b.pub.take()
		if im == nil {
			continue
		}
		b.reconcile(im, d)
		b.pub.finished(im)
	}
}

// waitReconciled waits until the image at offset index (or a later one) is reconciled,
// or ctx ends.
func (b *Broker) waitReconciled(ctx context.Context, index uint64) error {
	for {
		im, _, ch := b.pub.reconciled()
		if im.Offset().Index >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-b.stop:
			return ErrShuttingDown
		}
	}
}

// waitIdle waits until everything published so far is reconciled.
func (b *Broker) waitIdle(ctx context.Context) error {
	for {
		_, idle, ch := b.pub.reconciled()
		if idle {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitImage waits until the image this node has reconciled satisfies cond, or ctx ends.
func (b *Broker) WaitImage(ctx context.Context, cond func(*metadata.Image) bool) error {
	for {
		im, _, ch := b.pub.reconciled()
		if cond(im) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-b.stop:
			return ErrShuttingDown
		}
	}
}
