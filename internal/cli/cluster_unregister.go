package cli

// `vltava cluster unregister --id N` is kafka-cluster.sh unregister: UnregisterBroker,
// sent through the brokers (which forward it to the active controller) or straight to
// the controllers with --bootstrap-controller. The controller moves the broker's
// leaderships and ISR places away and removes its registration, so that it is no longer
// listed anywhere; it is meant for a broker that has been shut down for good (a running
// one registers again at its next heartbeat, as in Kafka).

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (e Env) clusterUnregister(ctx context.Context, args []string) error {
	fs, c, f := e.quorumFlagSet("cluster unregister", "--id ID [flags]")
	id := fs.Int("id", -1, "the node.id of the broker to unregister")
	fs.Alias("i", "id")
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	if *id < 0 || *id > 1<<31-1 {
		return fs.Fail(errors.New("--id is required: the node.id of the broker to unregister"))
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req := kmsg.NewPtrUnregisterBrokerRequest()
	req.BrokerID = int32(*id)
	kresp, from, ambiguous, err := c.controllerRequest(ctx, f, req, nil)
	if err != nil {
		return fmt.Errorf("unregister broker %d: %w", *id, c.reachErr(err))
	}
	resp := kresp.(*kmsg.UnregisterBrokerResponse)
	note := ""
	if err := codeErr(resp.ErrorCode, resp.ErrorMessage); err != nil {
		// After an attempt that may have been applied, the broker being gone already is
		// that attempt's success.
		if !ambiguous || !errors.Is(err, kerr.BrokerIDNotRegistered) {
			return fmt.Errorf("unregister broker %d (%s): %w", *id, from, err)
		}
		note = " (by an earlier attempt that got no clear answer)"
	}
	if c.output.json() {
		return writeJSON(e.Stdout, map[string]any{"action": "unregister", "broker_id": *id, "through": from})
	}
	fmt.Fprintf(e.Stdout, "Unregistered broker %d%s (through %s).\n", *id, note, from)
	return nil
}
