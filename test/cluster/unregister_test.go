package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUnregisterBroker: a broker-only node shut down for good is removed from the
// cluster with `vltava cluster unregister --id N` (kafka-cluster.sh unregister:
// UnregisterBroker, forwarded by a broker to the controller); until then it stays listed
// as a fenced broker. Once unregistered it is no longer listed at all, its observer entry
// leaves the quorum, and a second unregister names the error.
func TestUnregisterBroker(t *testing.T) {
	ctx := context.Background()
	// The leader removes an observer silent for broker.session.timeout.ms; the
	// unregistration must remove it well before that.
	const session = 6 * time.Second
	c := newCluster(t, 3, map[string]string{"broker.heartbeat.interval.ms": "500", "broker.session.timeout.ms": fmt.Sprint(session.Milliseconds())})
	c.startAll()
	b := c.addBrokerOnly(c.voters())
	b.start()
	waitBrokers(ctx, t, c, 4)
	if err := b.cur().stop(syscall.SIGTERM, 30*time.Second); err != nil && !b.cur().done() {
		t.Fatal(err)
	}
	listed := func() (map[int32]bool, []int32) {
		out := runTool(t, "cluster", "info", "--bootstrap-server", c.nodes[0].broker(), "-o", "json", "--timeout", "10s")
		var in struct {
			Brokers []struct {
				ID     int32 `json:"id"`
				Fenced *bool `json:"fenced"`
			} `json:"brokers"`
			Quorum *struct {
				Observers []struct{ ID int32 } `json:"observers"`
			} `json:"quorum"`
		}
		if err := json.Unmarshal([]byte(out), &in); err != nil {
			t.Fatalf("cluster info -o json: %v\n%s", err, out)
		}
		brokers := map[int32]bool{}
		for _, br := range in.Brokers {
			brokers[br.ID] = br.Fenced != nil && *br.Fenced
		}
		var observers []int32
		if in.Quorum != nil {
			for _, o := range in.Quorum.Observers {
				observers = append(observers, o.ID)
			}
		}
		return brokers, observers
	}
	waitFor := func(what string, within time.Duration, cond func(map[int32]bool, []int32) bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			brokers, observers := listed()
			if cond(brokers, observers) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %s, not %s: brokers (id: fenced) %v, observers %v", within, what, brokers, observers)
			}
			time.Sleep(50 * time.Millisecond) // polling the cluster
		}
	}
	waitFor("broker 4 listed as fenced", 30*time.Second, func(bs map[int32]bool, _ []int32) bool {
		return fmt.Sprint(bs) == "map[1:false 2:false 3:false 4:true]"
	})

	out := runTool(t, "cluster", "unregister", "--id", "4", "--bootstrap-server", c.nodes[1].broker(), "--timeout", "20s")
	if !strings.Contains(out, "Unregistered broker 4") {
		t.Fatalf("cluster unregister --id 4: %q", out)
	}
	waitFor("broker 4 gone from the brokers and the quorum's observers", session/2, func(bs map[int32]bool, obs []int32) bool {
		return fmt.Sprint(bs) == "map[1:false 2:false 3:false]" && !slices.Contains(obs, 4)
	})
	for _, nd := range c.nodes[:3] {
		if v, err := viewOf(ctx, nd); err != nil || fmt.Sprint(v.metadataBrokers) != "[1 2 3]" {
			t.Errorf("node %d lists %+v %v after the unregistration, want [1 2 3]", nd.id, v, err)
		}
	}

	cmd := exec.Command(bin, "cluster", "unregister", "--id", "4", "--bootstrap-server", c.nodes[0].broker(), "--timeout", "20s")
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "BROKER_ID_NOT_REGISTERED") {
		t.Fatalf("unregistering broker 4 again: %v\n%s\nwant a failure naming BROKER_ID_NOT_REGISTERED", err, msg)
	}
}
