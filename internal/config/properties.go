package config

// This file reads Java .properties files, the format Kafka's server.properties uses,
// following java.util.Properties.load:
//
//   - a natural line ends at \n, \r or \r\n;
//   - a line whose first non-blank character is '#' or '!' is a comment (a comment line
//     never continues, even if it ends with a backslash);
//   - a logical line continues onto the next natural line when it ends with an odd
//     number of backslashes; the continuation's leading blanks are dropped;
//   - the key runs to the first unescaped '=', ':' or blank; blanks around a single
//     '=' or ':' separator are skipped; the rest of the line is the value;
//   - escapes: \t \n \r \f, \uXXXX, and a backslash before any other character
//     stands for that character (so "\=" and "\ " put '=' and ' ' into a key).
//
// Blanks are space, tab and form feed. One deliberate difference: Java's InputStream
// overload decodes ISO-8859-1, we decode UTF-8, since that is what people write today.
// A malformed \u escape is an error (Java throws) and names the line.

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Property is one key and value read from a properties file, with the line it
// started on, for error messages.
type Property struct {
	Key   string
	Value string
	Line  int
}

// ParseProperties parses Java properties text. Later duplicates follow earlier ones in
// the result; callers that build a map get "last wins", as Java does.
func ParseProperties(text string) ([]Property, error) {
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("properties: not valid UTF-8")
	}
	var props []Property
	lines := splitNatural(text)
	for i := 0; i < len(lines); i++ {
		startLine := i + 1
		line := trimLeftBlank(lines[i])
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		// Join continuations: the backslash that continues is dropped, and so are the
		// next line's leading blanks (continuation lines are never comments).
		var logical strings.Builder
		for {
			if endsWithOddBackslashes(line) {
				logical.WriteString(line[:len(line)-1])
				i++
				if i >= len(lines) {
					break
				}
				line = trimLeftBlank(lines[i])
				continue
			}
			logical.WriteString(line)
			break
		}
		key, value, err := splitKeyValue(logical.String())
		if err != nil {
			return nil, fmt.Errorf("properties line %d: %w", startLine, err)
		}
		props = append(props, Property{Key: key, Value: value, Line: startLine})
	}
	return props, nil
}

// splitNatural splits on \n, \r and \r\n.
func splitNatural(text string) []string {
	var lines []string
	start := 0
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '\n':
			lines = append(lines, text[start:i])
			start = i + 1
		case '\r':
			lines = append(lines, text[start:i])
			if i+1 < len(text) && text[i+1] == '\n' {
				i++
			}
			start = i + 1
		}
	}
	if start < len(text) {
		lines = append(lines, text[start:])
	}
	return lines
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

func trimLeftBlank(s string) string {
	i := 0
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	return s[i:]
}

func endsWithOddBackslashes(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitKeyValue splits a logical line (leading blanks removed, continuations joined,
// escapes still present) into its unescaped key and value.
func splitKeyValue(line string) (string, string, error) {
	// Find the end of the key: the first unescaped separator or blank.
	end := len(line)
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '\\' {
			i++ // the escaped character is part of the key
			continue
		}
		if c == '=' || c == ':' || isBlank(c) {
			end = i
			break
		}
	}
	rawKey := line[:end]
	rest := line[end:]
	rest = trimLeftBlank(rest)
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = trimLeftBlank(rest[1:])
	}
	key, err := unescape(rawKey)
	if err != nil {
		return "", "", fmt.Errorf("key %q: %w", rawKey, err)
	}
	value, err := unescape(rest)
	if err != nil {
		return "", "", fmt.Errorf("value of %q: %w", key, err)
	}
	return key, value, nil
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			// A lone trailing backslash (end of input after a continuation) stands
			// for nothing, as in Java.
			break
		}
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			r, ok := hex4(s, i+1)
			if !ok {
				return "", fmt.Errorf(`malformed \uxxxx escape`)
			}
			i += 4
			// Java strings are UTF-16: a high surrogate escape followed by a low
			// surrogate escape is one character.
			if utf16.IsSurrogate(r) && i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
				if r2, ok := hex4(s, i+3); ok {
					if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
						r = pair
						i += 6
					}
				}
			}
			b.WriteRune(r)
		default:
			// Any other escaped character stands for itself; it may be a multi-byte
			// UTF-8 sequence, whose bytes the loop copies one by one.
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}

// hex4 reads four hex digits at s[at:].
func hex4(s string, at int) (rune, bool) {
	if at+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, h := range []byte(s[at : at+4]) {
		d, ok := hexDigit(h)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
