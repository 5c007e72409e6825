package cli

import (
	"bytes"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestFormatTemplates(t *testing.T) {
	r := &kgo.Record{
		Topic: "orders", Partition: 7, Offset: 42, Timestamp: time.UnixMilli(1700000000123),
		Key: []byte("k"), Value: []byte("hello"),
		Headers: []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: nil}},
	}
	null := &kgo.Record{Topic: "t"}
	for _, tc := range []struct {
		format string
		rec    *kgo.Record
		want   string
	}{
		{defaultFormat, r, "hello\n"},
		{`%t/%p@%o %k=%v`, r, "orders/7@42 k=hello"},
		{`%s|%T|%K|%S`, r, "hello|1700000000123|1|5"},
		{`[%h]`, r, "[a=1,b=]"},
		{`%K %S [%h] "%k" "%v"`, null, `-1 -1 [] "" ""`},
		{`%v 100%% \\ \t\r\n \x`, r, "hello 100% \\ \t\r\n \\x"},
		{`%v%v`, r, "hellohello"},
	} {
		f, err := parseFormat(tc.format)
		if err != nil {
			t.Fatalf("parseFormat(%q): %v", tc.format, err)
		}
		// Render twice into one buffer, as the consume loop does, to catch state kept
		// between records.
		buf := f(nil, tc.rec)
		if got := string(f(buf[:0], tc.rec)); got != tc.want {
			t.Errorf("format %q: got %q, want %q", tc.format, got, tc.want)
		}
	}
	for _, bad := range []string{"%", "%x", "value %q", "", "no verbs", `100%% \n`} {
		if _, err := parseFormat(bad); err == nil {
			t.Errorf("parseFormat(%q) accepted a bad template", bad)
		}
	}
}

func TestFormatJSON(t *testing.T) {
	f, err := parseFormat("json")
	if err != nil {
		t.Fatal(err)
	}
	r := &kgo.Record{
		Topic: "t", Partition: 1, Offset: 2, Timestamp: time.UnixMilli(3),
		Key: nil, Value: []byte{0xff, 0x00, 'a'},
		Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v\"q")}},
	}
	// Bytes that are not UTF-8 travel as base64 rather than being mangled into U+FFFD.
	want := `{"topic":"t","partition":1,"offset":2,"timestamp":3,"key":null,"value":null,"value_base64":"/wBh","headers":[{"key":"h","value":"v\"q"}]}` + "\n"
	if got := string(f(nil, r)); got != want {
		t.Fatalf("json:\n got %s\nwant %s", got, want)
	}
}

func TestParseFrom(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want kgo.Offset
	}{
		{"beginning", kgo.NewOffset().AtStart()},
		{"end", kgo.NewOffset().AtEnd()},
		{"offset:17", kgo.NewOffset().At(17)},
		{"offset:-3", kgo.NewOffset().AtEnd().Relative(-3)},
		{"timestamp:1700000000000", kgo.NewOffset().AfterMilli(1700000000000)},
		{"time:2023-11-14T22:13:20Z", kgo.NewOffset().AfterMilli(1700000000000)},
		{"time:2023-11-14T23:13:20.5+01:00", kgo.NewOffset().AfterMilli(1700000000500)},
	} {
		got, err := parseFrom(tc.in)
		if err != nil {
			t.Fatalf("parseFrom(%q): %v", tc.in, err)
		}
		if got != tc.want {
			t.Errorf("parseFrom(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "now", "beginning:1", "offset:", "offset:1.5", "timestamp:-1", "timestamp:x", "time:yesterday"} {
		if _, err := parseFrom(bad); err == nil {
			t.Errorf("parseFrom(%q) accepted a bad value", bad)
		}
	}
}

func TestReadLines(t *testing.T) {
	long := strings.Repeat("x", 200<<10) // longer than the read buffer
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"\n", []string{""}},
		{"a\nb\n", []string{"a", "b"}},
		{"a\n\nb", []string{"a", "", "b"}},
		{"crlf\r\n", []string{"crlf\r"}}, // bytes are the user's; only the newline is ours
		{long + "\nz", []string{long, "z"}},
	} {
		var got []string
		// One byte per Read exercises lines split across reads.
		err := readLines(iotest.OneByteReader(strings.NewReader(tc.in)), func(b []byte) error { got = append(got, string(b)); return nil })
		if err != nil {
			t.Fatalf("readLines(%.20q): %v", tc.in, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("readLines(%.20q) = %.40q, want %.40q", tc.in, got, tc.want)
		}
	}
	errRead := iotest.ErrReader(io.ErrUnexpectedEOF)
	if err := readLines(io.MultiReader(bytes.NewReader([]byte("a\n")), errRead), func([]byte) error { return nil }); err == nil {
		t.Error("readLines hid a read error")
	}
}

func TestVersionString(t *testing.T) {
	for _, tc := range []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0dff5344583c4d7b5ff017c5583c7229e109441b"},
			{Key: "vcs.time", Value: "2026-12-04T18:00:00Z"}, {Key: "vcs.modified", Value: "true"}}},
			"(devel) commit 0dff5344583c (2026-12-04T18:00:00Z, modified), go1.26.8"},
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0dff5344583c4d7b"}, {Key: "vcs.modified", Value: "false"}}},
			"(devel) commit 0dff5344583c, go1.26.8"},
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3, go1.26.8"},
		{debug.BuildInfo{GoVersion: "go1.26.8"},
			"(devel) (no commit recorded: built with -buildvcs=false or outside a git checkout), go1.26.8"},
	} {
		if got := versionOf(&tc.bi).String(); got != tc.want {
			t.Errorf("version of %+v:\n got %q\nwant %q", tc.bi.Settings, got, tc.want)
		}
	}
}
