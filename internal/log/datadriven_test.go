package log

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/batch"
	"github.com/vltava/vltava/internal/vfs"
)

// Storage scenarios as data: testdata/*.txt hold blocks of
//
//	command key=value ...
//	----
//	expected output
//	<blank line>
//
// run against one log over an in-memory filesystem. A new case is a few lines of text.
// go test -run TestDataDriven -rewrite regenerates the expected outputs (review the diff).
var rewriteExpected = flag.Bool("rewrite", false, "rewrite the expected output of data-driven tests")

func TestDataDriven(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runScript(t, file) })
	}
}

type ddCase struct {
	line     int
	comments []string // the comment lines before the command, kept by -rewrite
	raw      string
	cmd      string
	args     map[string]string
	expected string
}

func parseScript(t *testing.T, file string) []ddCase {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []ddCase
	var comments []string
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			comments = append(comments, line)
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		c := ddCase{line: n, raw: line, cmd: fields[0], args: map[string]string{}, comments: comments}
		comments = nil
		for _, kv := range fields[1:] {
			k, v, _ := strings.Cut(kv, "=")
			c.args[k] = v
		}
		if !sc.Scan() || strings.TrimSpace(sc.Text()) != "----" {
			t.Fatalf("%s:%d: want ---- after the command", file, n)
		}
		n++
		var out []string
		for sc.Scan() {
			n++
			if sc.Text() == "" {
				break
			}
			out = append(out, sc.Text())
		}
		c.expected = strings.Join(out, "\n")
		cases = append(cases, c)
	}
	return cases
}

func runScript(t *testing.T, file string) {
	cases := parseScript(t, file)
	d := &ddState{t: t, mem: vfs.NewMem(), clock: newClock()}
	defer func() {
		if d.log != nil {
			d.log.Close()
		}
	}()
	var rewritten strings.Builder
	for _, c := range cases {
		got := strings.TrimRight(d.run(c), "\n")
		if *rewriteExpected {
			for _, line := range c.comments {
				fmt.Fprintln(&rewritten, line)
			}
			fmt.Fprintf(&rewritten, "%s\n----\n%s\n\n", c.cmdLine(), got)
			continue
		}
		if got != c.expected {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, c.line, c.cmdLine(), got, c.expected)
		}
	}
	if *rewriteExpected {
		if err := os.WriteFile(file, []byte(rewritten.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (c ddCase) cmdLine() string { return c.raw }

type ddState struct {
	t     *testing.T
	mem   *vfs.MemFS
	clock *clock
	cfg   Config
	log   *Log
}

func (c ddCase) int(key string, def int64) int64 {
	v, ok := c.args[key]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("line %d: %s=%q is not a number", c.line, key, v))
	}
	return n
}

func (c ddCase) dur(key string) time.Duration {
	v, ok := c.args[key]
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		panic(fmt.Sprintf("line %d: %s=%q is not a duration", c.line, key, v))
	}
	return d
}

func errString(err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return "ok"
}

func (d *ddState) open() string { return d.openWith(Options{}) }

func (d *ddState) openWith(opts Options) string {
	opts.Now, opts.Logger = d.clock.now, testLogger(io.Discard)
	l, err := OpenWith(d.mem, dir, d.cfg, opts)
	if err != nil {
		return errString(err)
	}
	d.log = l
	return d.state()
}

// report renders what the last Open did.
func (d *ddState) report() string {
	r := d.log.Recovery()
	out := []string{fmt.Sprintf("clean=%v marker=%q scanned=%d synced-end=%d", r.CleanShutdown, r.Marker, r.SegmentsScanned, r.SyncedEnd)}
	for _, t := range r.Truncated {
		out = append(out, fmt.Sprintf("truncated segment=%d at=%d end=%d bytes=%d synced=%v saved=%s: %s", t.Segment, t.Position, t.Offset, t.Bytes, t.Synced, t.SavedAs, t.Reason))
	}
	for _, x := range r.Dropped {
		out = append(out, fmt.Sprintf("dropped segment=%d bytes=%d moved-to=%s: %s", x.Base, x.Bytes, x.MovedTo, x.Reason))
	}
	if r.Missing != "" {
		out = append(out, "missing: "+r.Missing)
	}
	return strings.Join(out, "\n")
}

func (d *ddState) state() string {
	l := d.log
	var segs []string
	l.mu.RLock()
	for _, s := range l.segs {
		segs = append(segs, fmt.Sprintf("%d-%d", s.base, s.next))
	}
	l.mu.RUnlock()
	return fmt.Sprintf("start=%d end=%d segments=[%s]", l.LogStartOffset(), l.LogEndOffset(), strings.Join(segs, " "))
}

func (d *ddState) run(c ddCase) string {
	switch c.cmd {
	case "open":
		d.cfg = Config{
			SegmentBytes:       c.int("segment-bytes", 0),
			SegmentMs:          c.dur("segment-ms"),
			RetentionBytes:     c.int("retention-bytes", 0),
			RetentionMs:        c.dur("retention-ms"),
			IndexIntervalBytes: int32(c.int("index-interval", 0)),
			SegmentIndexBytes:  int32(c.int("index-bytes", 0)),
			FileDeleteDelay:    c.dur("delete-delay"),
		}
		return d.open()
	case "append":
		// count batches of records records, value bytes each, timestamps from the clock
		// or ts=.
		for range c.int("count", 1) {
			ts := c.int("ts", d.clock.now().UnixMilli())
			b := mkBatch(d.t, d.log.LogEndOffset(), int(c.int("records", 1)), ts, int(c.int("value", 100)))
			if err := d.log.Append(b); err != nil {
				return errString(err)
			}
		}
		return d.state()
	case "advance":
		d.clock.add(c.dur("by"))
		return "ok"
	case "roll":
		return errString(d.log.Roll())
	case "read":
		rs, err := d.log.Read(c.int("offset", 0), c.int("max-offset", 1<<62), c.int("max-bytes", 1<<30), hasKey(c, "min-one"))
		if err != nil {
			return errString(err)
		}
		bs, err := collectRanges(rs)
		if err != nil {
			return errString(err)
		}
		var parts []string
		for _, b := range bs {
			parts = append(parts, fmt.Sprintf("%d-%d", b.BaseOffset(), b.LastOffset()))
		}
		return fmt.Sprintf("batches=[%s] ranges=%d", strings.Join(parts, " "), len(rs))
	case "truncate":
		if err := d.log.TruncateTo(c.int("offset", 0)); err != nil {
			return errString(err)
		}
		return d.state()
	case "set-start":
		if err := d.log.SetLogStartOffset(c.int("offset", 0)); err != nil {
			return errString(err)
		}
		return d.state()
	case "retention":
		n, err := d.log.EnforceRetention()
		if err != nil {
			return errString(err)
		}
		return fmt.Sprintf("deleted=%d %s", n, d.state())
	case "flush":
		return errString(d.log.Flush())
	case "flush-if-due":
		return errString(d.log.FlushIfDue())
	case "reopen":
		if err := d.log.Close(); err != nil {
			return errString(err)
		}
		return d.open()
	case "kill":
		d.log.abandon()
		return d.open()
	case "crash":
		d.log.abandon()
		d.mem = d.mem.Crash()
		return d.open()
	case "open-truncating":
		// Open with vltava.log.recovery.truncate.below.recovery.point set.
		return d.openWith(Options{TruncateBelowRecoveryPoint: true})
	case "report":
		return d.report()
	case "remove":
		return errString(d.mem.Remove(dir + "/" + c.args["file"]))
	case "files":
		ents, err := d.mem.ReadDir(dir)
		if err != nil {
			return errString(err)
		}
		var out []string
		for _, e := range ents {
			info, _ := e.Info()
			out = append(out, fmt.Sprintf("%s %d", e.Name(), info.Size()))
		}
		return strings.Join(out, "\n")
	case "damage":
		// file= truncate-by=N | append-zeros=N | flip=POS
		f, err := d.mem.OpenFile(dir+"/"+c.args["file"], os.O_RDWR, 0)
		if err != nil {
			return errString(err)
		}
		defer f.Close()
		size, _ := fileSize(f)
		switch {
		case hasKey(c, "truncate-by"):
			f.Truncate(size - c.int("truncate-by", 0))
		case hasKey(c, "append-zeros"):
			f.WriteAt(make([]byte, c.int("append-zeros", 0)), size)
		case hasKey(c, "flip"):
			flip(f, c.int("flip", 0)) // XOR 0x10: a base offset byte 7 gains 16
		}
		return "ok"
	case "offset-for-ts":
		off, ts, found, err := d.log.OffsetForTimestamp(c.int("ts", 0))
		if err != nil {
			return errString(err)
		}
		if !found {
			return "not found"
		}
		return fmt.Sprintf("offset=%d ts=%d", off, ts)
	case "max-ts":
		off, ts, err := d.log.MaxTimestamp()
		if err != nil {
			return errString(err)
		}
		return fmt.Sprintf("offset=%d ts=%d", off, ts)
	case "append-kv":
		// one batch of the given key=value records ("k=" is a tombstone)
		var kvs []string
		for _, f := range strings.Fields(c.raw)[1:] {
			kvs = append(kvs, f)
		}
		appendKV(d.t, d.log, d.clock.now().UnixMilli(), kvs...)
		return d.state()
	case "compact":
		upTo := c.int("up-to", d.log.LogEndOffset())
		if err := d.log.Flush(); err != nil { // the cleaner compacts only what is synced
			return errString(err)
		}
		st, err := d.log.Compact(CompactOptions{UpTo: upTo, DeleteRetention: c.dur("delete-retention")})
		if err != nil {
			return errString(err)
		}
		return fmt.Sprintf("segments=%d removed=%d", st.Segments, st.RecordsRemoved)
	case "records":
		return strings.Join(contents(d.t, d.log), " ")
	case "assign-epoch":
		return errString(d.log.AssignEpoch(int32(c.int("epoch", 0)), c.int("start", 0)))
	case "end-for-epoch":
		e, o := d.log.EndOffsetForEpoch(int32(c.int("epoch", 0)))
		return fmt.Sprintf("epoch=%d end=%d", e, o)
	}
	d.t.Fatalf("line %d: unknown command %q", c.line, c.cmd)
	return ""
}

func hasKey(c ddCase, k string) bool { _, ok := c.args[k]; return ok }

func collectRanges(rs []Range) ([]batch.Batch, error) {
	var buf strings.Builder
	if _, err := WriteRanges(&buf, rs); err != nil {
		return nil, err
	}
	var out []batch.Batch
	rest := []byte(buf.String())
	for len(rest) > 0 {
		b, r, err := batch.Next(rest, 1<<30)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
		rest = r
	}
	return out, nil
}
