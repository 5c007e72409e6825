package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestFormats(t *testing.T) {
	id := uuid.MustParse("a5937f7e-c055-4d30-8225-6f23b1a38f8d")
	const want = "pZN_fsBVTTCCJW8jsaOPjQ" // kafka-topics' form of the same ID
	if got := TopicID(id); got != want {
		t.Fatalf("TopicID = %s, want %s", got, want)
	}

	var buf bytes.Buffer
	h, err := NewHandler(&buf, FormatJSON, slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	l := slog.New(h)
	l.Info("created topic", "topic", "orders", "topic_id", id, "partitions", 3)
	l.Debug("not at INFO")
	l.With("partition", "orders-0").Warn("log recovery removed or distrusted data", "bytes", int64(30), "why", "a \"quoted\"\nline")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), buf.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("not JSON: %v: %s", err, lines[0])
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatalf("not JSON: %v: %s", err, lines[1])
	}
	if first["msg"] != "created topic" || first["level"] != "INFO" || first["topic_id"] != want || first["partitions"] != 3.0 || first["time"] == nil {
		t.Fatalf("first line: %v", first)
	}
	if second["partition"] != "orders-0" || second["bytes"] != 30.0 || second["why"] != "a \"quoted\"\nline" {
		t.Fatalf("second line: %v", second)
	}

	buf.Reset()
	h, err = NewHandler(&buf, FormatText, slog.LevelDebug)
	if err != nil {
		t.Fatal(err)
	}
	slog.New(h).Debug("deleted topic", "topic_id", id)
	if got := buf.String(); !strings.Contains(got, "level=DEBUG") || !strings.Contains(got, "topic_id="+want) {
		t.Fatalf("text line: %s", got)
	}

	if _, err := NewHandler(&buf, "xml", slog.LevelInfo); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Fatalf("NewHandler(xml) = %v", err)
	}
}
