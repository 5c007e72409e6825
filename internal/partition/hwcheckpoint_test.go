package partition

import (
	"bytes"
	"maps"
	"strings"
	"testing"

	"github.com/vltava/vltava/internal/vfs"
)

func TestHighWatermarkCheckpointFormat(t *testing.T) {
	hws := map[TopicPartition]int64{{"orders", 1}: 42, {"orders", 0}: 7, {"a.b_c-D", 12}: 0}
	got := FormatHighWatermarks(hws)
	want := "0\n3\na.b_c-D 12 0\norders 0 7\norders 1 42\n"
	if string(got) != want {
		t.Fatalf("format:\n%q\nwant\n%q", got, want)
	}
	back, err := ParseHighWatermarks(got)
	if err != nil || !maps.Equal(back, hws) {
		t.Fatalf("parse: %v %v", back, err)
	}
	if empty := FormatHighWatermarks(nil); string(empty) != "0\n0\n" {
		t.Fatalf("empty: %q", empty)
	}
	for _, bad := range []string{
		"", "0\n", "1\n0\n", "0\n1\n", "0\n0", "0\n1\norders 0 7", "0\n2\norders 0 7\n",
		"0\n1\norders 0 -7\n", "0\n1\norders -1 7\n", "0\n1\norders 0 07\n", "0\n1\norders  0 7\n",
		"0\n1\nor ders 0 7\n", "0\n1\norders 0 7 1\n", "0\n1\norders 2147483648 7\n",
		"0\n2\norders 0 7\norders 0 8\n", "0\n01\norders 0 7\n", "0\n1\n.. 0 7\n",
		"0\n1\n" + strings.Repeat("x", 250) + " 0 1\n", "0\n1\norders 0 9223372036854775808\n",
	} {
		if _, err := ParseHighWatermarks([]byte(bad)); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

func TestReadHighWatermarks(t *testing.T) {
	fsys := vfs.NewMem()
	const dir = "/data"
	if err := vfs.MkdirAllDurable(fsys, dir); err != nil {
		t.Fatal(err)
	}
	hws, note, err := ReadHighWatermarks(fsys, dir)
	if err != nil || note != "" || len(hws) != 0 {
		t.Fatalf("missing file: %v %q %v", hws, note, err)
	}
	want := map[TopicPartition]int64{{"t", 0}: 5}
	if err := WriteHighWatermarks(fsys, dir, want); err != nil {
		t.Fatal(err)
	}
	// Written durably: a crash right after keeps it.
	crashed := fsys.Crash()
	if hws, _, err := ReadHighWatermarks(crashed, dir); err != nil || !maps.Equal(hws, want) {
		t.Fatalf("after a crash: %v %v", hws, err)
	}
	// A damaged file is moved aside, not deleted, and read as empty with a note.
	if err := vfs.WriteFileAtomic(fsys, dir+"/"+HighWatermarkCheckpointFile, []byte("0\n1\nt 0 x\n")); err != nil {
		t.Fatal(err)
	}
	hws, note, err = ReadHighWatermarks(fsys, dir)
	if err != nil || len(hws) != 0 || !strings.Contains(note, HighWatermarkCheckpointFile+".aside") {
		t.Fatalf("damaged: %v %q %v", hws, note, err)
	}
	data, err := vfs.ReadFile(fsys, dir+"/"+HighWatermarkCheckpointFile+".aside", 1<<20)
	if err != nil || string(data) != "0\n1\nt 0 x\n" {
		t.Fatalf("aside: %q %v", data, err)
	}
}

func FuzzParseHighWatermarks(f *testing.F) {
	f.Add([]byte("0\n3\na.b_c-D 12 0\norders 0 7\norders 1 42\n"))
	f.Add([]byte("0\n0\n"))
	f.Add([]byte("0\n1\nt 2147483647 9223372036854775807\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		hws, err := ParseHighWatermarks(data)
		if err != nil {
			return
		}
		// What parses is canonical up to order: it encodes back to a file that parses
		// to the same entries, and to the input itself when the input was sorted.
		enc := FormatHighWatermarks(hws)
		back, err := ParseHighWatermarks(enc)
		if err != nil || !maps.Equal(back, hws) {
			t.Fatalf("round trip of %q: %v %v", data, back, err)
		}
		if again := FormatHighWatermarks(back); !bytes.Equal(again, enc) {
			t.Fatalf("encoding not stable")
		}
	})
}
