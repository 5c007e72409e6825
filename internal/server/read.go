package server

// Reading request frames: where a frame's bytes live and how they are charged to the
// request budget (queued.max.request.bytes) as they arrive.
//
//   - Up to frameStep (1 MiB): a buffer from the frame pool, its whole capacity
//     charged before the frame is read.
//   - Up to pooledMax (16 MiB, the frame pool's largest buffer): pooled buffers that
//     double as the frame arrives, starting at frameStep; each larger buffer is
//     charged before it is taken and the smaller one goes back to the pool, so what a
//     frame holds (resident, and charged) is at most twice what has arrived plus one
//     step. Reusing pooled buffers keeps the common large produce requests free of
//     page faults.
//   - Larger: a private anonymous mapping outside the Go heap (framebuf_linux.go),
//     charged a step ahead of the bytes that have arrived. Its pages become resident
//     as the bytes are read into them and go back to the operating system when the
//     request has been served, instead of leaving the garbage collector twice their
//     size to collect (six 100 MB frames left the broker at 1 GB before).
//
// A handler may keep references into the frame of an API that is not Transient, so
// such a frame is never put back in the pool, and a mapped one is copied onto the heap
// once whole and its mapping released; once served, a forced collection hands that
// copy's memory back before its budget is released.
//
// The frame deadline (request.timeout.ms) counts only the time spent reading a frame's
// bytes, not waiting for the budget: waiting for the budget is the broker's doing.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"runtime/debug"
	"time"

	"github.com/vltava/vltava/internal/wire"
)

const (
	// frameStep is the first buffer of a pooled frame and the step in which a mapped
	// frame is charged.
	frameStep = 1 << 20
	// pooledMax is the largest frame read into pooled buffers: internal/bufpool's
	// largest size class.
	pooledMax = 16 << 20
)

// frame is one request's bytes, where they live, and the request budget they hold.
type frame struct {
	b      []byte
	budget int64
	// pooled: b came from the frame pool. mapped: the whole mapping b lies in, if it is
	// outside the heap. heap: b is a copy of a mapped frame on the heap.
	pooled bool
	mapped []byte
	heap   bool
	// transient says the handler keeps no reference into b once Serve returns.
	transient bool
}

// served frees a frame whose request has been served, and clears f.
func (c *conn) served(f *frame) {
	budget, heap := f.budget, f.heap
	switch {
	case f.mapped != nil: // only transient frames are served from a mapping
		unmapFrame(f.mapped)
	case f.pooled && f.transient:
		c.s.frames.Put(f.b)
	}
	*f = frame{}
	if heap {
		// Left to the garbage collector the copy stays resident until the heap has
		// grown to twice its live size and the scavenger has caught up, while its
		// budget would let the next one in. This goroutine no longer refers to it;
		// its handler may still, and then it is live data.
		debug.FreeOSMemory()
	}
	c.s.budget.release(budget)
}

// drop frees a frame that was never served.
func (c *conn) drop(f frame) {
	switch {
	case f.mapped != nil:
		unmapFrame(f.mapped)
	case f.pooled:
		c.s.frames.Put(f.b)
	}
	c.s.budget.release(f.budget)
}

func (c *conn) readFrame(ctx context.Context, br *bufio.Reader) (frame, error) {
	idle := c.s.cfg.ConnectionsMaxIdle
	if idle > 0 {
		c.nc.SetReadDeadline(time.Now().Add(idle))
	} else {
		c.nc.SetReadDeadline(time.Time{})
	}
	n, err := wire.ReadSize(br, c.s.cfg.SocketRequestMaxBytes)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return frame{}, errors.New("idle connection")
		}
		return frame{}, err
	}
	fr := frameReader{c: c, br: br, left: c.frameTimeout()}
	var f frame
	if n <= pooledMax {
		f, err = fr.pooled(ctx, int(n))
	} else {
		f, err = fr.mapped(ctx, int(n))
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("frame of %d bytes not received within %v (request.timeout.ms)", n, c.frameTimeout())
	} else if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return f, err
}

// frameReader reads one frame's bytes within the client's share of the frame deadline.
type frameReader struct {
	c    *conn
	br   *bufio.Reader
	left time.Duration // of the frame deadline
}

func (fr *frameReader) read(b []byte) error {
	start := time.Now()
	fr.c.nc.SetReadDeadline(start.Add(fr.left))
	_, err := io.ReadFull(fr.br, b)
	fr.left -= time.Since(start)
	return err
}

// pooled reads a frame of up to pooledMax bytes into pooled buffers (see the top of
// the file). The budget is charged the capacity of the buffer held.
func (fr *frameReader) pooled(ctx context.Context, n int) (frame, error) {
	pool := &fr.c.s.frames
	// A budget smaller than the pool's buffer (socket.request.max.bytes below 4 KiB) is
	// charged whole.
	r := fr.c.s.budget.reserve(min(int64(pooledSize(n)), fr.c.s.budget.max))
	var buf []byte
	fail := func(err error) (frame, error) {
		if buf != nil {
			pool.Put(buf)
		}
		r.cancel()
		return frame{}, err
	}
	for off := 0; off < n; {
		size := min(n, frameStep)
		if buf != nil {
			size = min(n, 2*cap(buf))
		}
		if err := r.grow(ctx, max(0, int64(pooledSize(size))-r.held)); err != nil {
			return fail(err)
		}
		next := pool.Get(size)
		copy(next, buf[:off])
		if buf != nil {
			pool.Put(buf)
		}
		buf = next
		if err := fr.read(buf[off:]); err != nil {
			return fail(err)
		}
		off = size
	}
	return frame{b: buf, budget: r.held, pooled: true, transient: fr.c.transient(buf)}, nil
}

// mapped reads a frame of more than pooledMax bytes into a mapping (see the top of the
// file), charging the budget one step ahead of the bytes that have arrived.
func (fr *frameReader) mapped(ctx context.Context, n int) (frame, error) {
	r := fr.c.s.budget.reserve(int64(n))
	buf, err := mapFrame(n)
	if err != nil {
		return frame{}, fmt.Errorf("map a frame of %d bytes: %w", n, err)
	}
	for off := 0; off < n; {
		k := min(frameStep, n-off)
		err := r.grow(ctx, int64(k))
		if err == nil {
			err = fr.read(buf[off : off+k])
		}
		if err != nil {
			r.cancel()
			unmapFrame(buf)
			return frame{}, err
		}
		off += k
	}
	f := frame{b: buf, budget: r.held, mapped: buf, transient: fr.c.transient(buf)}
	if !f.transient {
		// The handler may keep parts of it: move it to the heap, where the garbage
		// collector knows when the last reference is gone.
		f.b, f.mapped, f.heap = copyToHeap(buf), nil, true
		unmapFrame(buf)
	}
	return f, nil
}

// transient reports whether the request in frame b may be freed once served (its
// handler keeps no reference into it).
func (c *conn) transient(b []byte) bool {
	key, _, _, ok := wire.ParseKeyVersion(b)
	return ok && c.s.h.Transient(key)
}

// pooledSize is the capacity of the frame pool's buffer for n bytes: the power of
// two at or above n, at least 4 KiB (internal/bufpool's size classes).
func pooledSize(n int) int {
	return max(4<<10, 1<<bits.Len(uint(n-1)))
}
