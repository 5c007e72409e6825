package config

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseProperties(t *testing.T) {
	type kv = [2]string
	cases := []struct {
		name string
		text string
		want []kv
	}{
		{"empty", "", nil},
		{"equals", "a=b", []kv{{"a", "b"}}},
		{"colon", "a:b", []kv{{"a", "b"}}},
		{"space separator", "a b", []kv{{"a", "b"}}},
		{"spaces around separator", "a  =  b", []kv{{"a", "b"}}},
		{"tab and form feed", "\ta\f=\tb", []kv{{"a", "b"}}},
		{"only one separator consumed", "a==b", []kv{{"a", "=b"}}},
		{"space then colon", "a : b", []kv{{"a", "b"}}},
		{"colon in value", "listeners=PLAINTEXT://h:9092", []kv{{"listeners", "PLAINTEXT://h:9092"}}},
		{"key only", "a", []kv{{"a", ""}}},
		{"key with separator only", "a=", []kv{{"a", ""}}},
		{"trailing spaces kept in value", "a=b  ", []kv{{"a", "b  "}}},
		{"hash comment", "# x=y\na=b", []kv{{"a", "b"}}},
		{"bang comment", "  ! x=y\na=b", []kv{{"a", "b"}}},
		{"hash inside value", "a=b#c", []kv{{"a", "b#c"}}},
		{"blank lines", "\n\n  \na=b\n\n", []kv{{"a", "b"}}},
		{"crlf", "a=b\r\nc=d\r\n", []kv{{"a", "b"}, {"c", "d"}}},
		{"cr only", "a=b\rc=d", []kv{{"a", "b"}, {"c", "d"}}},
		{"continuation", "a=b\\\n   c", []kv{{"a", "bc"}}},
		{"continuation over crlf", "a=b,\\\r\n  c", []kv{{"a", "b,c"}}},
		{"continuation of key", "ke\\\n  y=v", []kv{{"key", "v"}}},
		{"continuation line starting with hash is not a comment", "a=\\\n#b", []kv{{"a", "#b"}}},
		{"comment does not continue", "# c \\\na=b", []kv{{"a", "b"}}},
		{"even backslashes do not continue", "a=b\\\\\nc=d", []kv{{"a", "b\\"}, {"c", "d"}}},
		{"continuation at end of input", "a=b\\", []kv{{"a", "b"}}},
		{"escaped separator in key", "a\\=b=c", []kv{{"a=b", "c"}}},
		{"escaped colon and space in key", "a\\:b\\ c=d", []kv{{"a:b c", "d"}}},
		{"escapes in value", `a=t\tn\nr\rf\f`, []kv{{"a", "t\tn\nr\rf\f"}}},
		{"unknown escape is the char", `a=\q\\`, []kv{{"a", `q\`}}},
		{"unicode escape", `a=\u0041\u00e9`, []kv{{"a", "Aé"}}},
		{"surrogate pair", `a=\ud83d\ude00`, []kv{{"a", "😀"}}},
		{"utf-8 literal", "a=žluťoučký", []kv{{"a", "žluťoučký"}}},
		{"duplicates kept in order", "a=1\na=2", []kv{{"a", "1"}, {"a", "2"}}},
		{"leading whitespace of value after escape", `a=\ b`, []kv{{"a", " b"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			props, err := ParseProperties(tc.text)
			if err != nil {
				t.Fatal(err)
			}
			var got []kv
			for _, p := range props {
				got = append(got, kv{p.Key, p.Value})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParsePropertiesLines(t *testing.T) {
	props, err := ParseProperties("# c\n\na=1\\\n  2\nb=3\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(props) != 2 || props[0].Line != 3 || props[1].Line != 5 {
		t.Fatalf("lines: %+v", props)
	}
}

func TestParsePropertiesErrors(t *testing.T) {
	cases := []struct{ text, want string }{
		{`a=\u12`, `line 1: value of "a": malformed \uxxxx escape`},
		{"x=1\n\\uzzzz=1", `line 2: key`},
		{"a=\xff", "not valid UTF-8"},
	}
	for _, tc := range cases {
		_, err := ParseProperties(tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.text, err, tc.want)
		}
	}
}

// FuzzParseProperties checks the parser never panics, and that what it returns
// survives a round trip: writing each property back with every special character
// escaped parses to the same keys and values.
func FuzzParseProperties(f *testing.F) {
	for _, seed := range []string{
		"a=b", "a:b\nc d", "# c\n! d\n", "a=b\\\n  c", `k\=x=\u0041\t`, "a=b\r\nc=d\r", `\`, `a=\u`, "x=\\\\\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		props, err := ParseProperties(text)
		if err != nil {
			return
		}
		var b strings.Builder
		for _, p := range props {
			if !utf8.ValidString(p.Key) || !utf8.ValidString(p.Value) {
				t.Fatalf("invalid UTF-8 out of valid input: %+v", p)
			}
			b.WriteString(escapeProperty(p.Key, true))
			b.WriteByte('=')
			b.WriteString(escapeProperty(p.Value, false))
			b.WriteByte('\n')
		}
		again, err := ParseProperties(b.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", b.String(), err)
		}
		if len(again) != len(props) {
			t.Fatalf("round trip: %d props, then %d (%q)", len(props), len(again), b.String())
		}
		for i := range props {
			if props[i].Key != again[i].Key || props[i].Value != again[i].Value {
				t.Fatalf("round trip %d: %q=%q became %q=%q", i, props[i].Key, props[i].Value, again[i].Key, again[i].Value)
			}
		}
	})
}

// escapeProperty writes s so that the parser reads it back unchanged (as Java's
// Properties.store does): backslash, line breaks, separators and leading blanks escaped.
func escapeProperty(s string, key bool) string {
	var b strings.Builder
	for i, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\f':
			b.WriteString(`\f`)
		case '=', ':', '#', '!':
			b.WriteByte('\\')
			b.WriteRune(r)
		case ' ':
			if key || i == 0 {
				b.WriteString(`\ `)
			} else {
				b.WriteByte(' ')
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
