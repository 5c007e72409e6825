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
	// Hint, when set, suggests the key that was probably meant.
	Hint string
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
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrInvalid) true for every configuration error.
func (e *Error) Unwrap() error { return ErrInvalid }

// brokerKeyHint suggests the broker key for a topic key set in the broker's
// configuration (retention.ms -> log.retention.ms).
func brokerKeyHint(key string) string {
	if k := topicKeyIndex[key]; k != nil && len(k.synonyms) > 0 {
		return fmt.Sprintf("%s is a topic config; its broker default is %s", key, k.synonyms[0].name)
	}
	return ""
}

// topicKeyHint suggests the topic key for a broker key given as a topic config
// (log.retention.hours -> retention.ms).
func topicKeyHint(key string) string {
	for _, k := range topicKeys {
		for _, s := range k.synonyms {
			if s.name == key && s.name != k.name {
				return fmt.Sprintf("%s is a broker config; the topic config is %s", key, k.name)
			}
		}
	}
	return ""
}
