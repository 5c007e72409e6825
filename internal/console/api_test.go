package console

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterAPI: the brokers as the cluster describes them, and the metadata quorum
// where the cluster answers DescribeQuorum (Vltava's brokers forward it to the controller)
// or reported as unavailable where it does not (kfake).
func TestClusterAPI(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b.start(t), Options{Version: "v9.9.9"})
			f.createTopic("c1", 3)
			var v clusterView
			f.get("/api/cluster", &v)
			if len(v.Brokers) != 1 || v.Brokers[0].Port == 0 || v.Brokers[0].Host == "" {
				t.Fatalf("brokers %+v", v.Brokers)
			}
			if v.ClusterID == "" || v.Controller < 0 || !v.Brokers[0].Controller {
				t.Errorf("cluster id %q controller %d broker %+v", v.ClusterID, v.Controller, v.Brokers[0])
			}
			if v.BrokersFrom != "DescribeCluster" {
				t.Errorf("brokers from %s, want DescribeCluster", v.BrokersFrom)
			}
			switch b.name {
			case "vltava": // a broker forwards DescribeQuorum to the controller, as Kafka's do
				if q := v.Quorum; q == nil || q.LeaderID != v.Controller || len(q.Voters) != 1 || v.QuorumUnavailable != "" {
					t.Errorf("quorum %+v, unavailable %q", v.Quorum, v.QuorumUnavailable)
				}
			default: // kfake does not answer DescribeQuorum
				if v.Quorum != nil || !strings.Contains(v.QuorumUnavailable, "DescribeQuorum") {
					t.Errorf("quorum %+v, unavailable %q", v.Quorum, v.QuorumUnavailable)
				}
			}
			if v.Partitions < 3 || v.Brokers[0].Leaders < 3 || v.Version != "v9.9.9" {
				t.Errorf("partitions %d, leaders %d, version %q", v.Partitions, v.Brokers[0].Leaders, v.Version)
			}
		})
	}
}

// TestTopicsAPI walks a topic's life through the API and checks each step through the
// Kafka API: create with configs, list, describe (offsets, sizes, configs), alter a
// config, delete (which wants the name repeated).
func TestTopicsAPI(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b.start(t), Options{})
			ctx := f.ctx()
			var created map[string]any
			f.mustPost("/api/topics", createTopicRequest{Name: "orders", Partitions: 2, ReplicationFactor: 1,
				Configs: map[string]string{"retention.ms": "3600000"}}, &created)
			td, err := f.adm.ListTopics(ctx, "orders")
			if err != nil || td["orders"].Err != nil || len(td["orders"].Partitions) != 2 {
				t.Fatalf("topic after create: %+v %v", td, err)
			}
			if status, body := f.post("/api/topics", createTopicRequest{Name: "orders", Partitions: 1, ReplicationFactor: 1}); status != http.StatusConflict || !strings.Contains(string(body), "TOPIC_ALREADY_EXISTS") {
				t.Errorf("second create: %d %s", status, body)
			}
			if status, body := f.post("/api/topics", createTopicRequest{Name: "bad/name", Partitions: 1, ReplicationFactor: 1}); status != http.StatusBadRequest || !strings.Contains(string(body), "ASCII letters") {
				t.Errorf("bad name: %d %s", status, body)
			}

			f.produce(rec("orders", 0, "a", "1"), rec("orders", 0, "b", "2"), rec("orders", 1, "c", "3"))
			var list []topicSummary
			f.get("/api/topics", &list)
			var found *topicSummary
			for i := range list {
				if list[i].Name == "orders" {
					found = &list[i]
				}
			}
			if found == nil || found.Partitions != 2 || found.Records != 3 || found.ReplicationFactor != 1 || found.ID == "" {
				t.Fatalf("list: %+v", list)
			}

			var tv topicView
			f.get("/api/topics/orders", &tv)
			if len(tv.PartitionList) != 2 || tv.PartitionList[0].HighWatermark != 2 || tv.PartitionList[1].HighWatermark != 1 ||
				tv.PartitionList[0].LogStartOffset != 0 || tv.PartitionList[0].Leader < 0 || len(tv.PartitionList[0].ISR) != 1 {
				t.Errorf("partitions %+v", tv.PartitionList)
			}
			if b.name == "vltava" && (tv.SizeBytes == nil || *tv.SizeBytes == 0 || tv.PartitionList[0].SizeBytes == nil || *tv.PartitionList[0].SizeBytes == 0) {
				t.Errorf("sizes: topic %v, partition 0 %v", tv.SizeBytes, tv.PartitionList[0].SizeBytes)
			}
			retention := configNamed(tv.Configs, "retention.ms")
			if retention == nil || retention.Value == nil || *retention.Value != "3600000" || retention.Default {
				t.Errorf("retention.ms %+v", retention)
			}

			f.mustPost("/api/topics/orders/configs", alterConfigsRequest{Set: map[string]string{"retention.ms": "7200000"}}, nil)
			rc, err := f.adm.DescribeTopicConfigs(ctx, "orders")
			if err != nil {
				t.Fatal(err)
			}
			if c, err := rc.On("orders", nil); err != nil || valueOf(c.Configs, "retention.ms") != "7200000" {
				t.Errorf("retention.ms after alter: %v %v", valueOf(c.Configs, "retention.ms"), err)
			}
			if b.name == "vltava" {
				// kfake accepts any value; a broker says what is wrong with it.
				status, body := f.post("/api/topics/orders/configs", alterConfigsRequest{Set: map[string]string{"retention.ms": "soon"}})
				if status != http.StatusBadRequest || !strings.Contains(string(body), "INVALID_CONFIG") {
					t.Errorf("bad config value: %d %s", status, body)
				}
			}
			f.mustPost("/api/topics/orders/configs", alterConfigsRequest{Delete: []string{"retention.ms"}}, nil)
			f.get("/api/topics/orders", &tv)
			if c := configNamed(tv.Configs, "retention.ms"); c == nil || !c.Default {
				t.Errorf("retention.ms after delete: %+v", c)
			}

			if status, body := f.post("/api/topics/orders/delete", deleteTopicRequest{Confirm: "order"}); status != http.StatusBadRequest {
				t.Errorf("delete with the wrong name: %d %s", status, body)
			}
			f.mustPost("/api/topics/orders/delete", deleteTopicRequest{Confirm: "orders"}, nil)
			td, err = f.adm.ListTopics(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := td["orders"]; ok {
				t.Errorf("orders still listed after delete")
			}
			if status, body := f.do(http.MethodGet, "/api/topics/orders", nil, nil); status != http.StatusNotFound {
				t.Errorf("deleted topic: %d %s", status, body)
			}
		})
	}
}

func configNamed(cs []configView, name string) *configView {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

func valueOf(cs []kadm.Config, name string) string {
	for _, c := range cs {
		if c.Key == name && c.Value != nil {
			return *c.Value
		}
	}
	return ""
}

// TestAPIErrors: unknown APIs, bodies that are not what they claim, and bodies too large
// are refused with a status and a JSON error, not a crash or a hang.
func TestAPIErrors(t *testing.T) {
	f := newFixture(t, kfakeCluster(t), Options{})
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/api/nope", "", http.StatusNotFound},
		{"POST", "/api/topics", `{"name": "x", "partitions": 1, "replicationFactor": 1, "extra": true}`, http.StatusBadRequest},
		{"POST", "/api/topics", `{"name": "x"} {"name": "y"}`, http.StatusBadRequest},
		{"POST", "/api/topics", `{"name": "x", "partitions": 0, "replicationFactor": 1}`, http.StatusBadRequest},
		{"POST", "/api/topics", `{"name": "` + strings.Repeat("x", maxBodyBytes) + `"}`, http.StatusRequestEntityTooLarge},
		{"POST", "/api/topics/t/configs", `{}`, http.StatusBadRequest},
		{"GET", "/api/topics/nope", "", http.StatusNotFound},
		{"GET", "/api/groups/nope", "", http.StatusNotFound},
		{"GET", "/api/throughput?top=x", "", http.StatusBadRequest},
	} {
		headers := map[string]string{"Content-Type": "application/json", csrfHeader: f.con.Token()}
		status, body := f.do(tc.method, tc.path, []byte(tc.body), headers)
		var e struct{ Error, Code string }
		if status != tc.want || json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("%s %s: %d %.200s, want %d with a JSON error", tc.method, tc.path, status, body, tc.want)
		}
	}
	// The page itself and its assets are served, with the token in the page.
	status, body := f.do(http.MethodGet, "/", nil, nil)
	if status != http.StatusOK || !strings.Contains(string(body), f.con.Token()) {
		t.Errorf("index: %d", status)
	}
	for _, p := range []string{"/assets/js/app.js", "/assets/css/console.css", "/assets/vendor/uplot/uPlot.esm.js", "/favicon.ico"} {
		if status, _ := f.do(http.MethodGet, p, nil, nil); status != http.StatusOK {
			t.Errorf("GET %s: %d", p, status)
		}
	}
	// No directory listings, and the raw template is not served.
	for _, p := range []string{"/assets/", "/assets/js/", "/assets/index.html", "/nope"} {
		if status, _ := f.do(http.MethodGet, p, nil, nil); status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, status)
		}
	}
}

// TestQuorumFrom: a DescribeQuorum answer becomes the voters and observers with their lag
// behind the high watermark, and an error answer says why there is no quorum. (Neither
// Vltava nor kfake answers DescribeQuorum, so this is checked on a built response.)
func TestQuorumFrom(t *testing.T) {
	resp := kmsg.NewPtrDescribeQuorumResponse()
	rt := kmsg.NewDescribeQuorumResponseTopic()
	rt.Topic = metadataTopic
	rp := kmsg.NewDescribeQuorumResponseTopicPartition()
	rp.LeaderID, rp.LeaderEpoch, rp.HighWatermark = 2, 7, 1000
	for _, v := range []struct {
		id  int32
		leo int64
	}{{3, 990}, {1, 1000}, {2, 1000}} {
		r := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		r.ReplicaID, r.LogEndOffset, r.LastFetchTimestamp = v.id, v.leo, 1_700_000_000_000
		rp.CurrentVoters = append(rp.CurrentVoters, r)
	}
	obs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
	obs.ReplicaID, obs.LogEndOffset = 9, 400
	rp.Observers = append(rp.Observers, obs)
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	q, why := quorumFrom(resp)
	if q == nil || why != "" {
		t.Fatalf("quorum %v, %q", q, why)
	}
	if q.LeaderID != 2 || q.LeaderEpoch != 7 || len(q.Voters) != 3 || q.Voters[0].ID != 1 || q.Voters[2].ID != 3 || q.Voters[2].Lag != 10 {
		t.Errorf("voters %+v", q)
	}
	if len(q.Observers) != 1 || q.Observers[0].Lag != 600 || q.Observers[0].LastFetchTimestamp != -1 {
		t.Errorf("observers %+v", q.Observers)
	}
	resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
	if q, why := quorumFrom(resp); q != nil || !strings.Contains(why, "CLUSTER_AUTHORIZATION_FAILED") {
		t.Errorf("error answer: %v %q", q, why)
	}
}
