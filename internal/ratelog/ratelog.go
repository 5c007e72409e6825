// Package ratelog keeps a failure that repeats from flooding the log: a slog.Handler
// that passes the first line of a kind and counts the lines like it for a window, then
// says how many there were ("and 491 more like it in the last 1m0s"). A full disk made
// the broker write the same ERROR line every second for every partition; this is the
// one place that bounds that, for every package that logs through the broker's logger.
//
// Lines are alike when they have the same level, message and attributes, except the
// value of the error attribute ("err" or "error"): the same operation failing on the
// same object is one kind whether or not the error text changes (a file name with an
// offset in it). The line that reports the count carries the latest error. Lines below
// the handler's level (Warn by default) pass untouched. At most maxKinds kinds are
// tracked; past that, lines pass untouched rather than be lost.
package ratelog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// maxKinds bounds the kinds of lines tracked at once.
const maxKinds = 1024

// Handler wraps another handler (see the package comment).
type Handler struct {
	next   slog.Handler
	st     *state
	prefix string // attributes and groups added by WithAttrs and WithGroup, for the key
}

type state struct {
	window time.Duration
	now    func() time.Time
	level  slog.Level

	mu    sync.Mutex
	kinds map[string]*kind
}

type kind struct {
	start      time.Time    // when the window began: the last line passed
	suppressed int          // lines like it held back since
	last       slog.Record  // the latest of them, for the count line
	next       slog.Handler // the handler it came through (its attributes)
}

// New wraps next: lines at level or above that repeat within window are counted, not
// written. now is the clock (time.Now if nil).
func New(next slog.Handler, window time.Duration, level slog.Level, now func() time.Time) *Handler {
	if now == nil {
		now = time.Now
	}
	return &Handler{next: next, st: &state{window: window, now: now, level: level, kinds: map[string]*kind{}}}
}

func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range as {
		writeAttr(&b, a)
	}
	return &Handler{next: h.next.WithAttrs(as), st: h.st, prefix: b.String()}
}

func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), st: h.st, prefix: h.prefix + name + "."}
}

func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	st := h.st
	if r.Level < st.level {
		return h.next.Handle(ctx, r)
	}
	key := h.key(r)
	now := st.now()
	st.mu.Lock()
	k := st.kinds[key]
	if k != nil && now.Sub(k.start) < st.window {
		k.suppressed++
		k.last, k.next = r.Clone(), h.next
		st.mu.Unlock()
		return nil
	}
	var held int
	var since time.Time
	if k != nil {
		held, since = k.suppressed, k.start
		k.start, k.suppressed, k.last = now, 0, slog.Record{}
	} else if len(st.kinds) < maxKinds || st.expireLocked(ctx, now) {
		st.kinds[key] = &kind{start: now}
	}
	st.mu.Unlock()
	if held > 0 {
		r = r.Clone()
		r.AddAttrs(countAttr(held, now.Sub(since)))
	}
	return h.next.Handle(ctx, r)
}

// Flush writes the count line of every kind whose window has passed with lines held back
// (and starts a new window for it), and forgets kinds that have been quiet for a window.
// The owner calls it now and then, so that a burst is counted even when it stops, and at
// close with force, for every kind.
func (h *Handler) Flush(force bool) {
	st := h.st
	now := st.now()
	st.mu.Lock()
	type out struct {
		next slog.Handler
		r    slog.Record
	}
	var outs []out
	for key, k := range st.kinds {
		if !force && now.Sub(k.start) < st.window {
			continue
		}
		if k.suppressed == 0 || force {
			delete(st.kinds, key) // quiet for a window, or closing
		}
		if k.suppressed > 0 {
			r := k.last
			r.AddAttrs(countAttr(k.suppressed, now.Sub(k.start)))
			outs = append(outs, out{k.next, r})
			// A new window: lines like it go on being counted.
			k.start, k.suppressed, k.last = now, 0, slog.Record{}
		}
	}
	st.mu.Unlock()
	for _, o := range outs {
		o.next.Handle(context.Background(), o.r)
	}
}

// expireLocked forgets kinds whose window has passed and that held nothing back, and
// reports whether there is room for another.
func (st *state) expireLocked(_ context.Context, now time.Time) bool {
	for key, k := range st.kinds {
		if now.Sub(k.start) >= st.window && k.suppressed == 0 {
			delete(st.kinds, key)
		}
	}
	return len(st.kinds) < maxKinds
}

func countAttr(n int, d time.Duration) slog.Attr {
	return slog.String("repeated", fmt.Sprintf("and %d more like it in the last %s", n, d.Round(time.Second)))
}

func (h *Handler) key(r slog.Record) string {
	var b strings.Builder
	b.WriteString(r.Level.String())
	b.WriteByte(0)
	b.WriteString(r.Message)
	b.WriteByte(0)
	b.WriteString(h.prefix)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, a)
		return true
	})
	return b.String()
}

func writeAttr(b *strings.Builder, a slog.Attr) {
	b.WriteString(a.Key)
	b.WriteByte('=')
	if a.Key != "err" && a.Key != "error" {
		b.WriteString(a.Value.Resolve().String())
	}
	b.WriteByte(0)
}
