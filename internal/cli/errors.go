// errors.go turns the errors Kafka sends into what the tools print.
package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// firstShardErr unwraps kadm's "request X has N separate shard errors, first: ..." to the
// first error itself: for one broker and one request, the wrapper is only noise.
func firstShardErr(err error) error {
	var se *kadm.ShardErrors
	if errors.As(err, &se) && len(se.Errs) > 0 {
		return se.Errs[0].Err
	}
	return err
}

// validTopicName applies Kafka's rules for topic names (its Topic.validate), so a bad name
// gets a message that says what a name may be; the broker answers only
// INVALID_TOPIC_EXCEPTION, or for a produce, a topic that never appears.
func validTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is invalid: \".\" and \"..\" are not topic names", name)
	case len(name) > 249:
		return fmt.Errorf("topic name %.20q... is invalid: at most 249 characters, it has %d", name, len(name))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q is invalid: it contains %q; Kafka topic names use only ASCII letters, digits, '.', '_' and '-'", name, r)
		}
	}
	return nil
}

// kafkaErr prints a Kafka error as its name and the broker's own message when the broker
// sent one ("TOPIC_ALREADY_EXISTS: Topic 't' already exists."), otherwise as kerr prints
// it (the name and Kafka's generic description). A broker message that repeats the name
// and description first, as Vltava's do, is trimmed to what it adds, so nothing is
// printed twice. errors.Is still finds the Kafka error.
func kafkaErr(err error, brokerMsg string) error {
	var ke *kerr.Error
	if err == nil || brokerMsg == "" || !errors.As(err, &ke) {
		return err
	}
	detail := strings.TrimSpace(brokerMsg)
	for _, prefix := range []string{ke.Error(), ke.Message} {
		if rest, ok := strings.CutPrefix(detail, prefix); ok {
			detail = strings.TrimSpace(strings.TrimPrefix(rest, ":"))
		}
	}
	if detail == "" || detail == ke.Description {
		return err
	}
	return &brokerError{code: ke, msg: detail}
}

// brokerError is a Kafka error with the broker's message in place of the generic one.
type brokerError struct {
	code *kerr.Error
	msg  string
}

func (e *brokerError) Error() string { return e.code.Message + ": " + e.msg }
func (e *brokerError) Unwrap() error { return e.code }
