package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// browseTopic fills topic "m": partition 0 has five JSON records with keys and a header,
// partition 1 three text records, partition 2 a binary record and a tombstone. Record
// timestamps are base plus one second per record in the order written.
func browseTopic(f *fixture) time.Time {
	f.createTopic("m", 3)
	base := time.UnixMilli(1_700_000_000_000)
	at := 0
	stamp := func(r *kgo.Record) *kgo.Record {
		r.Timestamp = base.Add(time.Duration(at) * time.Second)
		at++
		return r
	}
	for i := range 5 {
		f.produce(stamp(rec("m", 0, fmt.Sprintf("k%d", i), fmt.Sprintf(`{"n":%d,"name":"rec %d"}`, i, i),
			kgo.RecordHeader{Key: "trace", Value: []byte(fmt.Sprint("t-", i))})))
	}
	for i := range 3 {
		f.produce(stamp(rec("m", 1, "", fmt.Sprintf("hello %d", i))))
	}
	f.produce(stamp(&kgo.Record{Topic: "m", Partition: 2, Key: []byte{0}, Value: []byte{0x00, 0xff, 0x10, 'A'}}))
	f.produce(stamp(&kgo.Record{Topic: "m", Partition: 2, Key: []byte("gone")}))
	return base
}

func (f *fixture) browse(q string) browseResult {
	f.t.Helper()
	var res browseResult
	f.get("/api/topics/m/messages?"+q, &res)
	return res
}

type po struct {
	p int32
	o int64
}

func positions(res browseResult) []po {
	var out []po
	for _, r := range res.Records {
		out = append(out, po{r.Partition, r.Offset})
	}
	return out
}

// TestBrowse pins what the message browser returns for each way of starting, the
// filter, and its bounds.
func TestBrowse(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b.start(t), Options{})
			base := browseTopic(f)
			check := func(q string, want []po, stopped string) browseResult {
				t.Helper()
				res := f.browse(q)
				if got := positions(res); !slices.Equal(got, want) || (stopped != "" && res.StoppedBy != stopped) {
					t.Errorf("%s: got %v stopped by %q, want %v stopped by %q", q, got, res.StoppedBy, want, stopped)
				}
				return res
			}
			// All partitions from the oldest: in timestamp order.
			all := check("limit=100", []po{{0, 0}, {0, 1}, {0, 2}, {0, 3}, {0, 4}, {1, 0}, {1, 1}, {1, 2}, {2, 0}, {2, 1}}, "end")
			first := all.Records[0]
			if string(first.Key) != "k0" || string(first.Value) != `{"n":0,"name":"rec 0"}` || first.Timestamp != base.UnixMilli() ||
				len(first.Headers) != 1 || first.Headers[0].Key != "trace" || string(first.Headers[0].Value) != "t-0" || first.ValueSize != 22 {
				t.Errorf("first record %+v", first)
			}
			if last := all.Records[9]; last.Value != nil || string(last.Key) != "gone" {
				t.Errorf("tombstone %+v", last)
			}
			if r := all.Records[5]; r.Key != nil {
				t.Errorf("null key came back as %q", r.Key)
			}
			check("partition=0&start=offset&offset=2&limit=2", []po{{0, 2}, {0, 3}}, "limit")
			check("partition=0&start=offset&offset=99", nil, "end")
			check("partition=0&start=newest&limit=2", []po{{0, 4}, {0, 3}}, "limit")
			check("start=newest&limit=3", []po{{2, 1}, {2, 0}, {1, 2}}, "")
			check(fmt.Sprintf("partition=0&start=time&time=%d", base.Add(2500*time.Millisecond).UnixMilli()), []po{{0, 3}, {0, 4}}, "end")
			check("start=time&time="+url.QueryEscape(base.Add(6*time.Second).UTC().Format(time.RFC3339Nano)), []po{{1, 1}, {1, 2}, {2, 0}, {2, 1}}, "end")
			// The filter matches keys, values and headers as text, ignoring case.
			check("filter=hello%202", []po{{1, 2}}, "end")
			check("filter=T-3", []po{{0, 3}}, "end")
			check("filter=GONE", []po{{2, 1}}, "end")
			// From the newest, a filter reaches back window by window to the log start.
			check("partition=0&start=newest&limit=1&filter="+url.QueryEscape(`"n":0`), []po{{0, 0}}, "")

			// The byte limit cuts the record that crosses it and says so.
			res := f.browse("partition=0&maxBytes=10")
			if len(res.Records) != 1 || !res.Records[0].Truncated || res.StoppedBy != stopBytes ||
				len(res.Records[0].Key)+len(res.Records[0].Value)+len(res.Records[0].Headers[0].Value) != 10 {
				t.Errorf("maxBytes=10: %+v stopped by %s", res.Records, res.StoppedBy)
			}

			for q, want := range map[string]int{
				"start=nope":             http.StatusBadRequest,
				"start=offset":           http.StatusBadRequest,
				"start=offset&offset=-1": http.StatusBadRequest,
				"start=time&time=monday": http.StatusBadRequest,
				"partition=7":            http.StatusNotFound,
				"partition=x":            http.StatusBadRequest,
				"limit=0":                http.StatusBadRequest,
				"filter=" + strings.Repeat("x", maxFilterLen+1): http.StatusBadRequest,
			} {
				if status, body := f.do(http.MethodGet, "/api/topics/m/messages?"+q, nil, nil); status != want {
					t.Errorf("%s: %d %s, want %d", q, status, body, want)
				}
			}
		})
	}
}

// TestBrowseBounds: the console's own caps hold whatever the caller asks for.
func TestBrowseBounds(t *testing.T) {
	f := newFixture(t, vltavaBroker(t), Options{MaxRecords: 3, MaxBytes: 64, MaxScanBytes: 1})
	browseTopic(f)
	res := f.browse("partition=0&limit=100&maxBytes=100000")
	if len(res.Records) != 1 || res.Limit != 3 || res.MaxBytes != 64 {
		// MaxScanBytes 1 lets one fetch through (a broker always returns a whole batch),
		// which here holds one record.
		t.Errorf("records %d, limit %d, maxBytes %d", len(res.Records), res.Limit, res.MaxBytes)
	}
	if res.StoppedBy != stopScan || res.ScannedBytes == 0 {
		t.Errorf("stopped by %q after %d bytes, want %q", res.StoppedBy, res.ScannedBytes, stopScan)
	}
	g := newFixture(t, vltavaBroker(t), Options{MaxRecords: 3})
	browseTopic(g)
	if res := g.browse("limit=100"); len(res.Records) != 3 || res.StoppedBy != stopLimit {
		t.Errorf("MaxRecords 3: got %d records, stopped by %q", len(res.Records), res.StoppedBy)
	}
}
