package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestLogAppendTime: on a topic with message.timestamp.type=LogAppendTime
// the broker stamps each batch with its own clock, whatever the producer
// set; every client must see that timestamp, marked as LogAppendTime, and
// the records otherwise byte for byte as sent.
func TestLogAppendTime(t *testing.T) {
	t.Parallel()
	const topic, partitions = "log-append-time", int32(2)
	srv := startServer(t)
	createTopic(t, newAdmin(t, srv.Addr), topic, partitions,
		map[string]*string{"message.timestamp.type": kadm.StringPtr("LogAppendTime")})

	ctx := context.Background()
	sent := genRecords(42, genSpec{partitions: partitions, perPart: 10,
		baseTS: time.Now().Add(-time.Hour).UnixMilli()})
	before := time.Now().UnixMilli()
	if _, err := franzProduce(ctx, srv.Addr, topic, "lz4", sent); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()

	want := append([]rec(nil), sent...)
	ref, err := franzConsume(ctx, srv.Addr, topic, partitions, startAt{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ref) != len(want) {
		t.Fatalf("franz-go read %d records, want %d", len(ref), len(want))
	}
	sortRecs(ref)
	sortRecs(want)
	for i := range want {
		if ref[i].TSType != 1 || ref[i].TS < before || ref[i].TS > after {
			t.Errorf("p%d@%d: timestamp %d type %d, want LogAppendTime (1) within [%d, %d]",
				ref[i].P, ref[i].O, ref[i].TS, ref[i].TSType, before, after)
		}
		want[i].TS, want[i].TSType = ref[i].TS, 1
	}

	var wg sync.WaitGroup
	errs := make([]string, len(clients))
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.consume(ctx, srv.Addr, topic, partitions, startAt{})
			if err != nil {
				errs[i] = err.Error()
				return
			}
			errs[i] = diffRecs(append([]rec(nil), want...), got)
		}()
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Errorf("%s reading LogAppendTime records: %s", clients[i].name, e)
		}
	}

	// ListOffsets by timestamp uses the broker's timestamps: everything is
	// at or after `before`, nothing after `after`.
	for p := range partitions {
		if off := kcatQuery(t, srv.Addr, topic, p, before); off != 0 {
			t.Errorf("kcat -Q p%d at %d (before the produce): offset %d, want 0", p, before, off)
		}
		if off := kcatQuery(t, srv.Addr, topic, p, after+1); off != -1 && off != 10 {
			t.Errorf("kcat -Q p%d at %d (after the produce): offset %d, want the end (10) or -1", p, after+1, off)
		}
	}
}

// TestTimestampQuery: kcat's query mode (ListOffsets by timestamp through
// librdkafka's offsets_for_times) finds, on CreateTime records, the first
// offset whose timestamp is at or after the one asked for, also inside a
// compressed batch.
func TestTimestampQuery(t *testing.T) {
	t.Parallel()
	const topic = "ts-query"
	srv := startServer(t)
	createTopic(t, newAdmin(t, srv.Addr), topic, 1, nil)
	recs := genRecords(43, genSpec{partitions: 1, perPart: 20,
		baseTS: time.Now().Add(-time.Hour).UnixMilli()})
	if _, err := franzProduce(context.Background(), srv.Addr, topic, "zstd", recs); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 9, 19} {
		ts := recs[i].TS
		if got := kcatQuery(t, srv.Addr, topic, 0, ts); got != int64(i) {
			t.Errorf("kcat -Q at record %d's timestamp %d: offset %d, want %d", i, ts, got, i)
		}
		if i > 0 {
			// Between two records: the later one.
			if got := kcatQuery(t, srv.Addr, topic, 0, recs[i-1].TS+1); got != int64(i) {
				t.Errorf("kcat -Q at %d (just after record %d): offset %d, want %d", recs[i-1].TS+1, i-1, got, i)
			}
		}
	}
	if got := kcatQuery(t, srv.Addr, topic, 0, recs[19].TS+1); got != -1 && got != 20 {
		t.Errorf("kcat -Q past the last timestamp: offset %d, want the end (20) or -1", got)
	}
}

var kcatQueryLine = regexp.MustCompile(`\[(\d+)\]\s+offset\s+(-?\d+)`)

// kcatQuery runs `kcat -Q -t topic:p:ts` and returns the offset it prints.
func kcatQuery(t *testing.T, addr, topic string, p int32, ts int64) int64 {
	t.Helper()
	spec := fmt.Sprintf("%s:%d:%d", topic, p, ts)
	out, stderr, err := runCmd(context.Background(), clientTimeout, nil, "kcat", "-Q", "-b", addr, "-t", spec, "-m", "30")
	if err != nil {
		t.Fatalf("kcat -Q %s: %v\n%s%s", spec, err, out, stderr)
	}
	m := kcatQueryLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("kcat -Q %s: unexpected output %q", spec, out)
	}
	off, _ := strconv.ParseInt(string(m[2]), 10, 64)
	return off
}
