package server_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// dashboardPath is the Grafana dashboard the README points operators to.
const dashboardPath = "../../docs/grafana/vltava.json"

// metricName finds the metric names in a PromQL expression.
var metricName = regexp.MustCompile(`\b(?:kafka|vltava|process|go)_[a-zA-Z0-9_]+`)

// TestDashboardMetricsExist: every metric the Grafana dashboard queries is on /metrics
// of a running broker that has seen the traffic the panels show (produce, a consumer
// group with committed offsets, an fsync, a cleaner pass), and the dashboard is well
// formed (unique panel ids, every query with its refId and the dashboard's data source).
func TestDashboardMetricsExist(t *testing.T) {
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("%s: no title, uid or panels", dashboardPath)
	}
	names := map[string][]string{} // metric -> panels using it
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: no targets or not on the dashboard's data source", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.RefID == "" || tg.Expr == "" {
				t.Errorf("panel %q: a target without refId or expr", p.Title)
			}
			for _, m := range metricName.FindAllString(tg.Expr, -1) {
				names[m] = append(names[m], p.Title)
			}
		}
	}
	for _, v := range dash.Templating.List {
		for _, m := range metricName.FindAllString(v.Definition, -1) {
			names[m] = append(names[m], "variable "+v.Name)
		}
	}
	if len(names) < 30 {
		t.Fatalf("only %d metric names found in the dashboard: %v", len(names), names)
	}

	// A broker with the traffic the panels show.
	n := startNode(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
	addr := startHTTP(t, n.srv)
	flush := "1"
	n.createTopic(t, "orders", 2, map[string]*string{"flush.messages": &flush})
	cl := n.client(kgo.DefaultProduceTopic("orders"))
	for range 10 {
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	consumer := n.client(kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("billing"), kgo.DisableAutoCommit())
	for got := 0; got < 10; {
		fs := consumer.PollFetches(ctxT(t))
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	var commitErr error
	consumer.CommitOffsetsSync(ctxT(t), map[string]map[int32]kgo.EpochOffset{"orders": {0: {Epoch: -1, Offset: 0}, 1: {Epoch: -1, Offset: 0}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
			commitErr = err
		})
	if commitErr != nil {
		t.Fatal(commitErr)
	}
	if _, err := n.srv.Broker().CleanNow(); err != nil { // __consumer_offsets is compacted
		t.Fatal(err)
	}
	waitFor(t, "the consumer's fetches to be counted", func() bool {
		v, _ := sample(scrape(t, addr), "kafka_network_requestmetrics_totaltimems", "request=FetchConsumer")
		return v >= 1
	})

	_, body := get(t, addr, "/metrics")
	exposed := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		exposed[name] = true
	}
	var missing []string
	for m, panels := range names {
		if !exposed[m] {
			missing = append(missing, m+" (in "+strings.Join(slices.Compact(panels), ", ")+")")
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Fatalf("%d metrics the dashboard queries are not on /metrics:\n%s", len(missing), strings.Join(missing, "\n"))
	}
}
