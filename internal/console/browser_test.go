package console

// The console in a real browser: headless Chromium (Debian's chromium package, which
// .ci/deps installs) driven with chromedp over a Vltava broker in this process. Every
// page must load without a console error, an exception or a failed request; a produced
// record must be found in the message browser by offset and by filter, shown as text,
// JSON and hex, and escaped; a group's lag must be what kadm computes; and each change
// made through the page's dialogs must be seen through the Kafka API.
//
// With -screenshots DIR the same run saves PNGs of the main pages (docs/console):
//
//	go test ./internal/console -run TestBrowser -args -screenshots=$PWD/docs/console

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var screenshotDir = flag.String("screenshots", "", "save PNGs of the console's pages into this directory")

// browserStepTimeout bounds one step (a navigation, a wait, a click) in the browser.
const browserStepTimeout = 20 * time.Second

type chrome struct {
	t     *testing.T
	ctx   context.Context
	base  string
	loads int

	mu       sync.Mutex
	problems []string // console errors, exceptions, failed requests
}

func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("headless Chromium is needed for the console's browser tests: run .ci/deps (apt-get install chromium)")
	return ""
}

func newBrowser(t *testing.T, base string) *chrome {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	)
	// The allocator owns the browser process and kills it when cancelled.
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &chrome{t: t, ctx: ctx, base: base}
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		var p string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning || e.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				p = fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			p = "exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				p += " " + e.ExceptionDetails.Exception.Description
			}
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError || e.Entry.Level == log.EntryLevelWarning {
				p = fmt.Sprintf("browser log %s: %s %s", e.Entry.Level, e.Entry.Text, e.Entry.URL)
			}
		case *network.EventLoadingFailed:
			if !e.Canceled {
				p = "request failed: " + e.ErrorText
			}
		case *network.EventResponseReceived:
			if e.Response.Status >= 400 {
				p = fmt.Sprintf("HTTP %d for %s", e.Response.Status, e.Response.URL)
			}
		}
		if p != "" {
			b.mu.Lock()
			b.problems = append(b.problems, p)
			b.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkClean fails the test with every console error or failed request seen so far.
func (b *chrome) checkClean(where string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("%s: %s", where, p)
	}
	b.problems = nil
}

func (b *chrome) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

func run[T any](b *chrome, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return v
}

// load opens a page of the console afresh, as a new document rather than a hash change
// (the query string only makes the URL new: a same-site navigation keeps the renderer
// and takes a fraction of the time of one from about:blank), and waits for sel to show.
func (b *chrome) load(route, sel string) {
	b.t.Helper()
	b.loads++
	b.do(chromedp.Navigate(fmt.Sprintf("%s/?load=%d#%s", b.base, b.loads, route)), chromedp.WaitVisible(chromedp.CSS(sel)))
	if n := run(b, chromedp.Evaluate[int](`document.querySelectorAll('#page .alert.error').length`)); n > 0 {
		b.t.Fatalf("%s shows an error: %s", route, b.text("#page .alert.error"))
	}
}

func (b *chrome) text(sel string) string {
	b.t.Helper()
	return run(b, chromedp.TextContent(chromedp.CSS(sel)))
}

func (b *chrome) click(sel string) {
	b.t.Helper()
	b.do(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// set gives a form control a value and fires input and change, as a person's edit does.
func (b *chrome) set(sel, value string) {
	b.t.Helper()
	s, _ := json.Marshal(sel)
	v, _ := json.Marshal(value)
	got := run(b, chromedp.Evaluate[string](fmt.Sprintf(`(() => {
		const e = document.querySelector(%s);
		e.value = %s;
		e.dispatchEvent(new Event('input', {bubbles: true}));
		e.dispatchEvent(new Event('change', {bubbles: true}));
		return e.value;
	})()`, s, v)))
	if got != value {
		b.t.Fatalf("set %s to %q: it holds %q", sel, value, got)
	}
}

func (b *chrome) waitClosed() {
	b.t.Helper()
	b.do(chromedp.WaitNotVisible(chromedp.CSS("#dialog")))
}

// shot saves the viewport as docs/console/NAME.png when -screenshots is given.
func (b *chrome) shot(name string) {
	b.t.Helper()
	if *screenshotDir == "" {
		return
	}
	// Let layout and the charts settle: wait for the next two animation frames.
	run(b, chromedp.Evaluate[bool](`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`,
		chromedp.EvalAwaitPromise))
	png := run(b, chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(*screenshotDir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// TestBrowser drives the console through Chromium against a Vltava broker.
func TestBrowser(t *testing.T) {
	brokers := vltavaBroker(t)
	opts := Options{Version: "v0.test"}
	if *screenshotDir != "" {
		// The charts of the screenshots come from the sampler's own loop over real traffic.
		opts.SampleInterval = time.Second
	}
	f := newFixture(t, brokers, opts)
	scene := setScene(t, f, brokers)

	b := newBrowser(t, f.srv.URL)

	t.Run("pages load cleanly", func(t *testing.T) {
		b.t = t
		for _, p := range []struct{ route, wait, shot string }{
			{"/throughput", `.uplot`, "throughput"}, // first, while the samples are fresh
			{"/", `[data-broker="1"]`, "overview"},
			{"/topics", `tr[data-topic="orders"]`, "topics"},
			{"/topics/orders", `tr[data-partition="5"]`, "topic"},
			{"/topics/orders/configs", `tr[data-config="retention.ms"]`, "configs"},
			{"/topics/orders/messages", `[data-test="msg-count"]`, "messages-list"},
			{"/groups", `tr[data-group="analytics"]`, "groups"},
			{"/groups/billing", `[data-test="total-lag"]`, "group"},
		} {
			b.load(p.route, p.wait)
			b.checkClean(p.route)
			if p.shot != "" {
				b.shot(p.shot)
			}
		}
		b.load("/", `[data-broker="1"]`)
		if got := b.text(`main`); !strings.Contains(got, "Metadata quorum") || !strings.Contains(got, "leader 1 · epoch") {
			t.Errorf("the overview shows no metadata quorum led by node 1: %q", got)
		}
	})

	t.Run("message browser finds a record", func(t *testing.T) {
		b.t = t
		r := scene.order
		b.load("/topics/orders/messages", `[data-test="msg-count"]`)
		// By offset: the one record, in each format.
		b.set("#msg-partition", strconv.Itoa(int(r.Partition)))
		b.set("#msg-start", "offset")
		b.set("#msg-offset", strconv.FormatInt(r.Offset, 10))
		b.set("#msg-limit", "1")
		b.click("#msg-fetch")
		row := fmt.Sprintf(`tr.msg-row[data-partition="%d"][data-offset="%d"]`, r.Partition, r.Offset)
		detail := fmt.Sprintf(`tr.msg-detail[data-partition="%d"][data-offset="%d"]`, r.Partition, r.Offset)
		b.do(chromedp.WaitVisible(chromedp.CSS(row)))
		if got := b.text(`[data-test="msg-count"]`); got != "1 record" {
			t.Errorf("count %q", got)
		}
		for _, tc := range []struct{ format, want string }{
			{"json", "{\n  \"id\": 42,\n  \"customer\": \"Ada\",\n  \"items\": [\n    \"tea\",\n    \"scones\"\n  ],\n  \"total\": 12.5\n}"},
			{"text", string(r.Value)},
			{"hex", "00000000  7b 22 69 64 22 3a 34 32  2c 22 63 75 73 74 6f 6d  |{\"id\":42,\"custom|"},
		} {
			b.set("#msg-format", tc.format)
			b.click(row)
			b.do(chromedp.WaitVisible(chromedp.CSS(detail + ` pre[data-test="value"]`)))
			got := b.text(detail + ` pre[data-test="value"]`)
			if tc.format == "hex" {
				got = strings.SplitN(got, "\n", 2)[0]
			}
			if got != tc.want {
				t.Errorf("value as %s:\n%s\nwant\n%s", tc.format, got, tc.want)
			}
			if k := b.text(detail + ` pre[data-test="key"]`); tc.format != "hex" && k != "order-42" {
				t.Errorf("key as %s: %q", tc.format, k)
			}
			if h := b.text(detail + ` [data-test="header-value"]`); tc.format != "hex" && h != "trace-7f3a" {
				t.Errorf("header as %s: %q", tc.format, h)
			}
			if tc.format == "json" {
				b.shot("messages")
			}
		}
		// By filter, over all partitions: a header value finds it.
		b.set("#msg-format", "auto")
		b.set("#msg-partition", "-1")
		b.set("#msg-start", "oldest")
		b.set("#msg-limit", "50")
		b.set("#msg-filter", "TRACE-7F3A")
		b.click("#msg-fetch")
		b.do(chromedp.WaitVisible(chromedp.CSS(row)))
		if n := run(b, chromedp.Evaluate[int](`document.querySelectorAll('tr.msg-row').length`)); n != 1 {
			t.Errorf("filter matched %d rows, want 1", n)
		}
		// Markup in a record is shown as text, never run or rendered.
		b.set("#msg-filter", "onerror")
		b.click("#msg-fetch")
		xss := fmt.Sprintf(`tr.msg-row[data-offset="%d"][data-partition="%d"]`, scene.xss.Offset, scene.xss.Partition)
		b.do(chromedp.WaitVisible(chromedp.CSS(xss)))
		b.click(xss)
		if got := b.text(xss + " td.preview"); !strings.Contains(got, `<img src=x onerror="window.__pwned=1">`) {
			t.Errorf("markup preview %q", got)
		}
		if bad := run(b, chromedp.Evaluate[bool](`document.querySelectorAll('#page img, #page b.injected').length > 0 || window.__pwned === 1`)); bad {
			t.Errorf("record data became markup")
		}
		b.checkClean("message browser")
	})

	t.Run("group lag matches the broker", func(t *testing.T) {
		b.t = t
		lags, err := f.adm.Lag(f.ctx(), "analytics")
		if err != nil {
			t.Fatal(err)
		}
		b.load("/groups/analytics", `[data-test="total-lag"]`)
		b.shot("group-lag")
		var total int64
		for _, l := range lags["analytics"].Lag.Sorted() {
			total += l.Lag
			sel := fmt.Sprintf(`tr[data-topic=%q][data-partition="%d"] [data-test="lag"]`, l.Topic, l.Partition)
			if got := b.text(sel); got != fmtNum(l.Lag) {
				t.Errorf("%s[%d]: page shows lag %q, kadm computes %d", l.Topic, l.Partition, got, l.Lag)
			}
		}
		if total == 0 {
			t.Fatal("the scene's group has no lag")
		}
		if got := b.text(`[data-test="total-lag"]`); got != fmtNum(total) {
			t.Errorf("total lag %q, kadm %d", got, total)
		}
		b.load("/groups", `tr[data-group="analytics"]`)
		if got := b.text(`tr[data-group="analytics"] [data-test="group-lag"]`); got != fmtNum(total) {
			t.Errorf("list lag %q, kadm %d", got, total)
		}
		b.checkClean("groups")
	})

	t.Run("actions reach the cluster", func(t *testing.T) {
		b.t = t
		const name = "created-in-browser"
		// Create, through the form and its review.
		b.load("/topics", `tr[data-topic="orders"]`)
		b.click("#create-topic")
		b.do(chromedp.SendKeys(chromedp.CSS("#new-topic-name"), name))
		b.set("#new-topic-partitions", "3")
		b.set("#new-topic-configs", "retention.ms=3600000\ncleanup.policy=delete")
		b.shot("create-topic")
		b.click(`#dialog button[data-action="review"]`)
		b.click(`#dialog button[data-action="create"]`)
		b.do(chromedp.WaitVisible(chromedp.CSS(`tr[data-partition="2"]`)))
		td, err := f.adm.ListTopics(f.ctx(), name)
		if err != nil || td[name].Err != nil || len(td[name].Partitions) != 3 {
			t.Fatalf("after create: %+v %v", td[name], err)
		}
		if v := topicConfig(t, f, name, "retention.ms"); v != "3600000" {
			t.Errorf("retention.ms %q after create", v)
		}

		// Change a config, through its confirmation.
		b.load("/topics/"+name+"/configs", `tr[data-config="retention.ms"]`)
		b.click(`button[data-edit="retention.ms"]`)
		b.set("#config-value", "7200000")
		b.click(`#dialog button[data-action="review"]`)
		b.do(chromedp.WaitVisible(chromedp.CSS(`#dialog button[data-action="apply"]`)))
		b.shot("edit-config")
		b.click(`#dialog button[data-action="apply"]`)
		b.waitClosed()
		if v := topicConfig(t, f, name, "retention.ms"); v != "7200000" {
			t.Errorf("retention.ms %q after the change", v)
		}

		// Reset a group's offsets: preview, then apply.
		b.load("/groups/analytics", `[data-test="total-lag"]`)
		b.click("#reset-offsets")
		b.set("#reset-mode", "latest")
		b.click(`#dialog button[data-action="preview"]`)
		b.do(chromedp.WaitVisible(chromedp.CSS(`#dialog button[data-action="apply"]`)))
		b.shot("reset-offsets")
		b.click(`#dialog button[data-action="apply"]`)
		b.waitClosed()
		lags, err := f.adm.Lag(f.ctx(), "analytics")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lags["analytics"].Lag.Sorted() {
			if l.Lag != 0 {
				t.Errorf("%s[%d]: lag %d after a reset to latest", l.Topic, l.Partition, l.Lag)
			}
		}

		// Delete, after typing the name.
		b.load("/topics/"+name, `tr[data-partition="2"]`)
		b.click("#delete-topic")
		if enabled := run(b, chromedp.Evaluate[bool](`!document.querySelector('#dialog button[data-action="delete"]').disabled`)); enabled {
			t.Errorf("delete is possible before the name is typed")
		}
		b.do(chromedp.SendKeys(chromedp.CSS("#confirm-topic-name"), name))
		b.shot("delete-topic")
		b.click(`#dialog button[data-action="delete"]`)
		b.do(chromedp.WaitVisible(chromedp.CSS(`tr[data-topic="orders"]`)))
		td, err = f.adm.ListTopics(f.ctx())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := td[name]; ok {
			t.Errorf("%s still exists after the delete", name)
		}
		b.checkClean("actions")
	})
}

func fmtNum(n int64) string {
	s := strconv.FormatInt(n, 10)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func topicConfig(t *testing.T, f *fixture, topic, key string) string {
	t.Helper()
	rc, err := f.adm.DescribeTopicConfigs(f.ctx(), topic)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rc.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	return valueOf(c.Configs, key)
}

// scene is what setScene made that the test looks for.
type scene struct {
	order *kgo.Record // a JSON record with a key and a header
	xss   *kgo.Record // a record whose value is markup
}

// setScene fills the cluster as an operator's might look: a few topics with records, a
// consuming group and a lagging one, and throughput samples.
func setScene(t *testing.T, f *fixture, brokers string) scene {
	t.Helper()
	ctx := f.ctx()
	for _, tp := range []struct {
		name       string
		partitions int32
		configs    map[string]*string
	}{
		{"orders", 6, map[string]*string{"retention.ms": new("604800000")}},
		{"payments", 3, nil},
		{"audit-log", 1, map[string]*string{"cleanup.policy": new("compact")}},
		{"clickstream", 12, map[string]*string{"segment.bytes": new("16777216")}},
	} {
		resp, err := f.adm.CreateTopic(ctx, tp.partitions, 1, tp.configs, tp.name)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("create %s: %v", tp.name, err)
		}
	}
	var recs []*kgo.Record
	items := []string{"tea", "coffee", "scones", "jam", "bread", "cheese"}
	for i := range 60 {
		v := fmt.Sprintf(`{"id":%d,"customer":"c-%03d","items":["%s"],"total":%d.%02d}`, 1000+i, i%17, items[(i/6)%len(items)], 3+i%20, (i*37)%100)
		recs = append(recs, rec("orders", int32(i%6), fmt.Sprintf("order-%d", 1000+i), v, kgo.RecordHeader{Key: "source", Value: []byte("web")}))
	}
	for i := range 30 {
		recs = append(recs, rec("payments", int32(i%3), fmt.Sprintf("pay-%d", i), fmt.Sprintf(`{"order":%d,"amount":%d,"currency":"EUR"}`, 1000+i, 5+i)))
		recs = append(recs, rec("audit-log", 0, fmt.Sprintf("user-%d", i%5), fmt.Sprintf("user %d signed in from 10.0.%d.%d", i%5, i%4, i)))
	}
	for i := range 240 {
		recs = append(recs, rec("clickstream", int32(i%12), "", fmt.Sprintf(`{"page":"/item/%d","ms":%d}`, i%40, 20+i%300)))
	}
	f.produce(recs...)
	order := f.produce(rec("orders", 2, "order-42", `{"id":42,"customer":"Ada","items":["tea","scones"],"total":12.5}`,
		kgo.RecordHeader{Key: "trace", Value: []byte("trace-7f3a")}))[0]
	xss := f.produce(rec("orders", 3, "<b class=injected>k</b>", `<img src=x onerror="window.__pwned=1">`))[0]

	// analytics: an empty group that committed part of orders and payments.
	offs := kadm.Offsets{}
	for p := range int32(6) {
		offs.AddOffset("orders", p, int64(p), -1)
	}
	for p := range int32(3) {
		offs.AddOffset("payments", p, 4, -1)
	}
	if err := f.adm.CommitAllOffsets(ctx, "analytics", offs); err != nil {
		t.Fatal(err)
	}
	// billing: a live member consuming payments and committing.
	assigned := make(chan struct{}, 1)
	member, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumerGroup("billing"),
		kgo.ConsumeTopics("payments"), kgo.ClientID("billing-service"),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			select {
			case assigned <- struct{}{}:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for mctx.Err() == nil {
			member.PollFetches(mctx)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; member.Close() })
	select {
	case <-assigned:
	case <-ctx.Done():
		t.Fatal("the billing member was never assigned")
	}

	traffic(t, f)
	return scene{order: order, xss: xss}
}

// traffic gives the throughput charts samples. Plainly, two polls around a few records;
// for screenshots, half a minute of varying load that the sampler's loop (every second)
// polls, so the charts show what an operator would see.
func traffic(t *testing.T, f *fixture) {
	t.Helper()
	ctx := f.ctx()
	if *screenshotDir == "" {
		f.con.sampleOnce(ctx)
		f.produce(rec("clickstream", 0, "", "x"), rec("orders", 0, "", "y"))
		f.con.sampleOnce(ctx)
		return
	}
	ctx = t.Context() // f.ctx()'s deadline is shorter than this run
	ends, err := f.adm.ListEndOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	produced := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { produced[o.Partition] = o.Offset })
	consumed := map[int32]int64{}
	for p := range int32(6) {
		consumed[p] = int64(p)
	}
	const ticks = 120 // 30 s
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for i := range ticks {
		wave := math.Sin(float64(i) / 14)
		var recs []*kgo.Record
		for j := range 30 + int(20*wave) + i/6 {
			recs = append(recs, rec("clickstream", int32(j%12), "", fmt.Sprintf(`{"page":"/item/%d","ms":%d}`, j%40, 20+j%300)))
		}
		for j := range 6 + int(4*math.Cos(float64(i)/9)) {
			p := int32((i + j) % 6)
			produced[p]++
			recs = append(recs, rec("orders", p, fmt.Sprintf("order-%d", 2000+i*10+j), fmt.Sprintf(`{"id":%d,"items":["tea"],"total":4.5}`, 2000+i*10+j)))
		}
		for j := range 2 + i%3 {
			recs = append(recs, rec("payments", int32(j%3), "", fmt.Sprintf(`{"amount":%d}`, j)))
		}
		f.produce(recs...)
		// analytics reads orders a little slower than they come.
		offs := kadm.Offsets{}
		for p := range int32(6) {
			if i%4 != 3 {
				consumed[p] = min(consumed[p]+1, produced[p])
			}
			offs.AddOffset("orders", p, consumed[p], -1)
		}
		if err := f.adm.CommitAllOffsets(ctx, "analytics", offs); err != nil {
			t.Fatal(err)
		}
		<-tick.C
	}
}
