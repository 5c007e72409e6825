package cli

import (
	"strings"
	"testing"
)

func TestClusterInfo(t *testing.T) {
	brokers := testBrokers(t)
	out := must(t, brokers, "", "cluster", "info")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 6 || !strings.HasPrefix(lines[0], "Cluster ID: ") || lines[0] == "Cluster ID: (none)" ||
		!strings.HasPrefix(lines[1], "Controller: ") || lines[1] == "Controller: none" ||
		lines[2] != "Client: vltava "+Version().String() ||
		lines[3] != "Brokers:" || strings.Fields(lines[4])[0] != "ID" {
		t.Fatalf("cluster info printed:\n%s", out)
	}
	// Every bootstrap address is a broker the cluster advertises.
	for _, seed := range strings.Split(brokers, ",") {
		if !strings.Contains(out, " "+seed+" ") {
			t.Errorf("cluster info lacks broker %s:\n%s", seed, out)
		}
	}
	out = must(t, brokers, "", "cluster", "api-versions")
	for _, want := range []string{"Broker ", "  Produce(0) ", "  Fetch(1) ", "  ApiVersions(18) "} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster api-versions lacks %q:\n%s", want, out)
		}
	}
	mustFail(t, `unknown subcommand "status"`, brokers, "", "cluster", "status")
}
