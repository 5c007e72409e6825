package ratelog

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func setup() (*slog.Logger, *Handler, *clock, *bytes.Buffer) {
	var buf bytes.Buffer
	c := &clock{t: time.Unix(1000, 0)}
	h := New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), time.Minute, slog.LevelWarn, c.now)
	return slog.New(h), h, c, &buf
}

func lines(buf *bytes.Buffer) []string {
	s := strings.TrimSpace(buf.String())
	buf.Reset()
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestRepeatsAreCounted(t *testing.T) {
	log, h, c, buf := setup()
	// 492 failures of the same snapshot, one every 0.3 s (about 2.5 minutes), with an
	// error text that changes; and an INFO line each time, which passes.
	for i := range 492 {
		log.Error("producer snapshot", "topic", "t", "partition", 0, "err", fmt.Errorf("write snapshot %d: %w", i, errors.New("no space left on device")))
		log.Info("tick", "i", i)
		c.t = c.t.Add(300 * time.Millisecond)
	}
	var errs, infos []string
	for _, l := range lines(buf) {
		if strings.Contains(l, "level=INFO") {
			infos = append(infos, l)
		} else {
			errs = append(errs, l)
		}
	}
	if len(infos) != 492 {
		t.Fatalf("%d INFO lines, want all 492", len(infos))
	}
	// At 0, 60 and 120 s: the first, then each with the count of the minute before.
	if len(errs) != 3 || strings.Contains(errs[0], "repeated") ||
		!strings.Contains(errs[1], `repeated="and 199 more like it in the last 1m0s"`) ||
		!strings.Contains(errs[2], `repeated="and 199 more like it in the last 1m0s"`) {
		t.Fatalf("error lines:\n%s", strings.Join(errs, "\n"))
	}
	// The rest of the burst is counted at the next Flush after its window, with the
	// latest error.
	h.Flush(false)
	if got := lines(buf); len(got) != 0 {
		t.Fatalf("flushed inside the window: %v", got)
	}
	c.t = c.t.Add(time.Minute)
	h.Flush(false)
	got := lines(buf)
	if len(got) != 1 || !strings.Contains(got[0], "and 91 more like it") || !strings.Contains(got[0], "write snapshot 491") {
		t.Fatalf("flush after the burst: %v", got)
	}
	c.t = c.t.Add(time.Minute)
	h.Flush(false) // quiet for a window: forgotten
	log.Error("producer snapshot", "topic", "t", "partition", 0, "err", "again")
	if got := lines(buf); len(got) != 1 || strings.Contains(got[0], "repeated") {
		t.Fatalf("first line after a quiet window: %v", got)
	}
}

func TestKindsAreApart(t *testing.T) {
	log, h, _, buf := setup()
	for range 3 {
		log.Warn("flush", "partition", 0)
		log.Warn("flush", "partition", 1)
		log.Error("flush", "partition", 0)
		log.With("topic", "a").Warn("flush", "partition", 0)
		log.WithGroup("g").Warn("flush", "partition", 0)
		log.Warn("other", "partition", 0)
	}
	if got := lines(buf); len(got) != 6 {
		t.Fatalf("want one line of each of 6 kinds, got %d:\n%s", len(got), strings.Join(got, "\n"))
	}
	h.Flush(true)
	got := lines(buf)
	if len(got) != 6 {
		t.Fatalf("want a count line for each kind at close, got %d:\n%s", len(got), strings.Join(got, "\n"))
	}
	for _, l := range got {
		if !strings.Contains(l, "and 2 more like it") {
			t.Fatalf("count line %q", l)
		}
	}
}

func TestTooManyKindsPass(t *testing.T) {
	log, _, _, buf := setup()
	for i := range maxKinds + 10 {
		log.Warn("w", "i", i)
	}
	for i := range 20 {
		log.Warn("w", "i", maxKinds+i%10) // untracked kinds are never held back
	}
	if got := lines(buf); len(got) != maxKinds+10+20 {
		t.Fatalf("%d lines", len(got))
	}
}
