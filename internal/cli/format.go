// format.go renders consumed records for `vltava consume --format`. The text formats follow
// kcat's -f so operators can reuse what they know; "json" writes one object per record for
// scripts.
package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

const formatDoc = `output format: "json" (one object per record) or a kcat-style template:
%t topic, %p partition, %o offset, %k key, %v (or %s) value, %h headers (k=v,...),
%T timestamp in ms, %K key length, %S value length (-1 when null), %% a percent sign;
\n newline, \t tab, \r carriage return, \\ backslash`

const defaultFormat = `%v\n`

// formatter appends one rendered record to dst and returns the extended slice, so the
// consume loop can reuse a single buffer for every record.
type formatter func(dst []byte, r *kgo.Record) []byte

// parseFormat compiles a --format value once, rejecting unknown verbs up front rather than
// printing garbage for every record.
func parseFormat(s string) (formatter, error) {
	if s == "json" {
		return appendJSON, nil
	}
	// A template is a list of pieces: a literal run or one verb.
	type piece struct {
		lit  []byte
		verb byte
	}
	var pieces []piece
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			pieces = append(pieces, piece{lit: lit})
			lit = nil
		}
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				lit = append(lit, '\n')
			case 't':
				lit = append(lit, '\t')
			case 'r':
				lit = append(lit, '\r')
			case '\\':
				lit = append(lit, '\\')
			default:
				// Unknown escapes stay as typed, as kcat does.
				lit = append(lit, '\\', s[i])
			}
		case ch == '%':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("format %q: trailing %%", s)
			}
			i++
			switch v := s[i]; v {
			case '%':
				lit = append(lit, '%')
			case 't', 'p', 'o', 'k', 'v', 's', 'h', 'T', 'K', 'S':
				flush()
				pieces = append(pieces, piece{verb: v})
			default:
				return nil, fmt.Errorf("format %q: unknown verb %%%c", s, v)
			}
		default:
			lit = append(lit, ch)
		}
	}
	flush()
	verbs := 0
	for _, p := range pieces {
		if p.verb != 0 {
			verbs++
		}
	}
	if verbs == 0 {
		// Without a verb every record prints the same text: "xml" or "text" is a format
		// name that does not exist, not a template.
		return nil, fmt.Errorf("format %q: want json or a template with at least one %%-verb, such as '%%k %%v\n'", s)
	}
	return func(dst []byte, r *kgo.Record) []byte {
		for _, p := range pieces {
			switch p.verb {
			case 0:
				dst = append(dst, p.lit...)
			case 't':
				dst = append(dst, r.Topic...)
			case 'p':
				dst = strconv.AppendInt(dst, int64(r.Partition), 10)
			case 'o':
				dst = strconv.AppendInt(dst, r.Offset, 10)
			case 'k':
				dst = append(dst, r.Key...)
			case 'v', 's':
				dst = append(dst, r.Value...)
			case 'h':
				for i, h := range r.Headers {
					if i > 0 {
						dst = append(dst, ',')
					}
					dst = append(dst, h.Key...)
					dst = append(dst, '=')
					dst = append(dst, h.Value...)
				}
			case 'T':
				dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
			case 'K':
				dst = strconv.AppendInt(dst, nullableLen(r.Key), 10)
			case 'S':
				dst = strconv.AppendInt(dst, nullableLen(r.Value), 10)
			}
		}
		return dst
	}, nil
}

// nullableLen is Kafka's length of a nullable byte field: -1 for null.
func nullableLen(b []byte) int64 {
	if b == nil {
		return -1
	}
	return int64(len(b))
}

// jsonRecord is one line of --format json. Kafka keys, values and header values are bytes;
// JSON strings are text. Bytes that are valid UTF-8 go out as strings, anything else as
// base64 under a *_base64 name, so no byte is silently replaced. A null key or value is
// JSON null.
type jsonRecord struct {
	Topic       string       `json:"topic"`
	Partition   int32        `json:"partition"`
	Offset      int64        `json:"offset"`
	Timestamp   int64        `json:"timestamp"`
	Key         *string      `json:"key"`
	KeyBase64   *string      `json:"key_base64,omitempty"`
	Value       *string      `json:"value"`
	ValueBase64 *string      `json:"value_base64,omitempty"`
	Headers     []jsonHeader `json:"headers"`
}

type jsonHeader struct {
	Key         string  `json:"key"`
	Value       *string `json:"value"`
	ValueBase64 *string `json:"value_base64,omitempty"`
}

// jsonBytes splits b into the text or the base64 field of a jsonRecord.
func jsonBytes(b []byte) (text, b64 *string) {
	switch {
	case b == nil:
		return nil, nil
	case utf8.Valid(b):
		s := string(b)
		return &s, nil
	default:
		s := base64.StdEncoding.EncodeToString(b)
		return nil, &s
	}
}

func appendJSON(dst []byte, r *kgo.Record) []byte {
	jr := jsonRecord{
		Topic:     r.Topic,
		Partition: r.Partition,
		Offset:    r.Offset,
		Timestamp: r.Timestamp.UnixMilli(),
		Headers:   make([]jsonHeader, 0, len(r.Headers)),
	}
	jr.Key, jr.KeyBase64 = jsonBytes(r.Key)
	jr.Value, jr.ValueBase64 = jsonBytes(r.Value)
	for _, h := range r.Headers {
		jh := jsonHeader{Key: h.Key}
		jh.Value, jh.ValueBase64 = jsonBytes(h.Value)
		jr.Headers = append(jr.Headers, jh)
	}
	b, err := json.Marshal(jr)
	if err != nil {
		// Only strings, integers and slices of them: Marshal cannot fail on this type.
		panic(fmt.Sprintf("marshal record: %v", err))
	}
	dst = append(dst, b...)
	return append(dst, '\n')
}
