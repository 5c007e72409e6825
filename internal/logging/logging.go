// Package logging makes the broker's log handler: text (key=value, log/slog's
// format) or JSON (one object per line), chosen by vltava.log.format. Either way a
// UUID attribute (a topic ID) is written as Kafka's tools show it, URL-safe base64
// without padding (Uuid.toString), not in the hex form of RFC 4122.
package logging

import (
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"

	"github.com/google/uuid"
)

// Formats are the values vltava.log.format takes.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// NewHandler returns a handler writing lines of format at level and above to w.
func NewHandler(w io.Writer, format string, level slog.Leveler) (slog.Handler, error) {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr}
	switch format {
	case FormatText, "":
		return slog.NewTextHandler(w, opts), nil
	case FormatJSON:
		return slog.NewJSONHandler(w, opts), nil
	}
	return nil, fmt.Errorf("log format %q: want %s or %s", format, FormatText, FormatJSON)
}

func replaceAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindAny {
		if id, ok := a.Value.Any().(uuid.UUID); ok {
			a.Value = slog.StringValue(TopicID(id))
		}
	}
	return a
}

// TopicID writes a topic ID as Kafka's tools and Vltava's CLI show it.
func TopicID(id uuid.UUID) string { return base64.RawURLEncoding.EncodeToString(id[:]) }
