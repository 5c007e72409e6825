// times.go reads the positions and times operators type: consume --from, group
// reset-offsets --to-datetime and topic trim --before. A time is a date (2026-12-04), a
// date and time in local time (2026-12-04T15:04:05, as kafka-consumer-groups'
// --to-datetime), RFC 3339 with a zone (2026-12-04T15:04:05Z), or a time before now
// (-1h, -30m, -2d, as rpk's @-1h). Mistakes are explained with examples, not with Go's
// reference layout.
package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// timeLayouts are tried in order; those without a zone are read in local time.
var timeLayouts = []struct {
	layout string
	zoned  bool
}{
	{time.RFC3339Nano, true},
	{"2006-01-02T15:04:05.999999999", false},
	{"2006-01-02T15:04", false},
	{"2006-01-02 15:04:05.999999999", false},
	{"2006-01-02 15:04", false},
	{"2006-01-02", false},
}

// timeHelp lists the forms a time may take, with examples from now.
func timeHelp(now time.Time) string {
	d := now.Format("2006-01-02")
	return fmt.Sprintf("a date (%s), a local date and time (%sT15:04:05), RFC 3339 (%sT15:04:05Z) or a time before now (-1h, -30m, -2d)", d, d, d)
}

// parseTime reads a time as the operator typed it; now anchors relative times.
func parseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-") {
		d, err := parseAgo(s[1:])
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(-d), nil
	}
	for _, l := range timeLayouts {
		loc := time.Local
		if l.zoned {
			loc = time.UTC // ignored: the value carries its zone
		}
		if t, err := time.ParseInLocation(l.layout, s, loc); err == nil {
			return t, nil
		}
	}
	if len(s) >= 4 && s[0] >= '0' && s[0] <= '9' && strings.Contains(s, "-") {
		return time.Time{}, errors.New("not a valid date and time")
	}
	return time.Time{}, errors.New("not a time")
}

// parseAgo reads the duration of a time before now: Go's units (1h30m, 90s) and d for days.
func parseAgo(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseFloat(days, 64); err == nil && n >= 0 && n < 1e5 {
			return time.Duration(n * float64(24*time.Hour)), nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	return 0, fmt.Errorf("%q is not a duration: want a number with a unit, h, m, s or d (days)", s)
}

// parseFrom turns --from into a kgo start offset.
func parseFrom(s string) (kgo.Offset, error) { return parseFromAt(s, time.Now()) }

func parseFromAt(s string, now time.Time) (kgo.Offset, error) {
	fail := func(why string) (kgo.Offset, error) {
		return kgo.Offset{}, fmt.Errorf("--from %q: %s: want beginning, end, offset:N (N<0: N before the end), timestamp:MS (since the epoch) or %s",
			s, why, timeHelp(now))
	}
	kind, arg, hasArg := strings.Cut(s, ":")
	switch kind {
	case "beginning", "earliest", "start":
		if !hasArg {
			return kgo.NewOffset().AtStart(), nil
		}
	case "end", "latest":
		if !hasArg {
			return kgo.NewOffset().AtEnd(), nil
		}
	case "offset":
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil {
			return fail("not an offset")
		}
		if n < 0 {
			return kgo.NewOffset().AtEnd().Relative(n), nil
		}
		return kgo.NewOffset().At(n), nil
	case "timestamp":
		ms, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || ms < 0 {
			return fail("not milliseconds since the epoch")
		}
		return kgo.NewOffset().AfterMilli(ms), nil
	case "time":
		t, err := parseTime(arg, now)
		if err != nil {
			return fail(err.Error())
		}
		return kgo.NewOffset().AfterMilli(t.UnixMilli()), nil
	}
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		// rpk reads a bare number as an offset, people coming from epoch times as a time.
		return fail("a bare number is ambiguous: write offset:N or timestamp:MS")
	}
	// A time needs no prefix (its colons would otherwise be read as one).
	if t, err := parseTime(s, now); err == nil {
		return kgo.NewOffset().AfterMilli(t.UnixMilli()), nil
	} else if strings.HasPrefix(s, "-") || (s != "" && s[0] >= '0' && s[0] <= '9') {
		return fail(err.Error())
	}
	return fail("unknown position")
}
