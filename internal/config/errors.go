package config

import "fmt"

// Error is a configuration problem: an unknown key or a value its key does not accept.
// It wraps ErrInvalid, so handlers map it to INVALID_CONFIG with errors.Is, and its
// message is what Kafka would put in the response's error message.
type Error struct {
	Key    string
	Value  string
	Reason string // why the value is rejected; empty for an unknown key
	// Where names the origin of the value for start-up errors (a file line, an
	// environment variable, an override); empty for values that came over the wire.
	Where string
}

func (e *Error) Error() string {
	var msg string
	if e.Reason == "" {
		msg = fmt.Sprintf("unknown configuration %q", e.Key)
	} else {
		msg = fmt.Sprintf("invalid value %q for configuration %s: %s", e.Value, e.Key, e.Reason)
	}
	if e.Where != "" {
		msg = e.Where + ": " + msg
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrInvalid) true for every configuration error.
func (e *Error) Unwrap() error { return ErrInvalid }
