package config

// This file holds the value types Kafka's ConfigDef knows, how a string parses as each,
// and the validators the key tables use. Values are validated as strings (trimmed, as
// ConfigDef trims them) so that the tables, Load and the wire handlers share one path.

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Config types, as kmsg's ConfigType and Kafka's DescribeConfigs report them.
const (
	TypeBoolean  int8 = 1
	TypeString   int8 = 2
	TypeInt      int8 = 3
	TypeShort    int8 = 4
	TypeLong     int8 = 5
	TypeDouble   int8 = 6
	TypeList     int8 = 7
	TypeClass    int8 = 8
	TypePassword int8 = 9
)

// Config sources, as kmsg's ConfigSource and Kafka's DescribeConfigs report them.
const (
	SourceDynamicTopic         int8 = 1
	SourceDynamicBroker        int8 = 2
	SourceDynamicDefaultBroker int8 = 3
	SourceStaticBroker         int8 = 4
	SourceDefault              int8 = 5
)

// TypeName is Kafka's name for a config type, used in messages.
func TypeName(t int8) string {
	switch t {
	case TypeBoolean:
		return "BOOLEAN"
	case TypeString:
		return "STRING"
	case TypeInt:
		return "INT"
	case TypeShort:
		return "SHORT"
	case TypeLong:
		return "LONG"
	case TypeDouble:
		return "DOUBLE"
	case TypeList:
		return "LIST"
	case TypeClass:
		return "CLASS"
	case TypePassword:
		return "PASSWORD"
	}
	return "UNKNOWN"
}

// check returns why a (trimmed, type-checked) value is not acceptable, or "".
type check func(v string) string

// checkType returns why v is not a value of type t, or "".
func checkType(t int8, v string) string {
	switch t {
	case TypeBoolean:
		if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			return "expected true or false"
		}
	case TypeShort, TypeInt, TypeLong:
		bits := 64
		switch t {
		case TypeShort:
			bits = 16
		case TypeInt:
			bits = 32
		}
		if _, err := strconv.ParseInt(v, 10, bits); err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return "out of range for type " + TypeName(t)
			}
			return "not a number"
		}
	case TypeDouble:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) {
			return "not a number"
		}
	}
	return ""
}

// validate type-checks and then range-checks v, returning the reason it is bad or "".
func validate(t int8, c check, v string) string {
	if why := checkType(t, v); why != "" {
		return why
	}
	if c != nil {
		return c(v)
	}
	return ""
}

func parseInt(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n
}

func parseFloat(v string) float64 {
	f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
	return f
}

func parseBool(v string) bool { return strings.EqualFold(strings.TrimSpace(v), "true") }

// parseList splits a LIST value on commas, trimming each element; "" is the empty
// list, as in ConfigDef.
func parseList(v string) []string {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func atLeast(min int64) check {
	return func(v string) string {
		if parseInt(v) < min {
			return fmt.Sprintf("must be at least %d", min)
		}
		return ""
	}
}

func between(min, max int64) check {
	return func(v string) string {
		if n := parseInt(v); n < min || n > max {
			return fmt.Sprintf("must be between %d and %d", min, max)
		}
		return ""
	}
}

func betweenFloat(min, max float64) check {
	return func(v string) string {
		if f := parseFloat(v); f < min || f > max {
			return fmt.Sprintf("must be between %g and %g", min, max)
		}
		return ""
	}
}

// oneOf accepts exactly one of the given strings (case-sensitive, as Kafka's ValidString).
func oneOf(valid ...string) check {
	return func(v string) string {
		for _, s := range valid {
			if v == s {
				return ""
			}
		}
		return "must be one of " + strings.Join(valid, ", ")
	}
}

// listOf accepts a non-empty list whose elements are all among valid (Kafka's ValidList).
func listOf(valid ...string) check {
	return func(v string) string {
		items := parseList(v)
		if len(items) == 0 {
			return "must not be empty"
		}
		for _, item := range items {
			if oneOf(valid...)(item) != "" {
				return fmt.Sprintf("%q is not one of %s", item, strings.Join(valid, ", "))
			}
		}
		return ""
	}
}

// either accepts what any of the checks accept; the last one's reason is reported.
func either(cs ...check) check {
	return func(v string) string {
		var why string
		for _, c := range cs {
			if why = c(v); why == "" {
				return ""
			}
		}
		return why
	}
}

func equals(n int64) check {
	return func(v string) string {
		if parseInt(v) != n {
			return fmt.Sprintf("must be %d", n)
		}
		return ""
	}
}

// throttledReplicas accepts "*" or a list of partition:broker pairs, as Kafka's
// leader/follower.replication.throttled.replicas do.
func throttledReplicas(v string) string {
	items := parseList(v)
	if len(items) == 1 && items[0] == "*" {
		return ""
	}
	for _, item := range items {
		p, b, ok := strings.Cut(item, ":")
		if !ok || !isDigits(p) || !isDigits(b) {
			return "must be \"*\" or a list of partitionId:brokerId pairs"
		}
	}
	return ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
