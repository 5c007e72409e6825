// errors.go turns the errors Kafka sends into what the tools print.
package cli

import (
	"fmt"
	"strings"
)

// kafkaErr adds the broker's own error message, when it sent one, to the Kafka error (whose
// text is already "NAME: description"), so the operator sees both.
func kafkaErr(err error, brokerMsg string) error {
	if err == nil || brokerMsg == "" || strings.Contains(err.Error(), brokerMsg) {
		return err
	}
	return fmt.Errorf("%w (broker says: %s)", err, brokerMsg)
}
