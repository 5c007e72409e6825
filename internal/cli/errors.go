// errors.go turns the errors Kafka sends into what the tools print.
package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
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

// kafkaErr adds the broker's own error message, when it sent one, to the Kafka error (whose
// text is already "NAME: description"), so the operator sees both.
func kafkaErr(err error, brokerMsg string) error {
	if err == nil || brokerMsg == "" || strings.Contains(err.Error(), brokerMsg) {
		return err
	}
	return fmt.Errorf("%w (broker says: %s)", err, brokerMsg)
}
