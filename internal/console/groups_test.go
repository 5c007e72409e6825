package console

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// lagTopic writes six records to partition 0 and four to partition 1 of topic "g", and
// commits offsets 2 and 4 for group "grp": a lag of 4 and 0.
func lagTopic(f *fixture) {
	f.createTopic("g", 2)
	for i := range 10 {
		p := int32(0)
		if i >= 6 {
			p = 1
		}
		f.produce(rec("g", p, "", "v"))
	}
	offs := kadm.Offsets{}
	offs.AddOffset("g", 0, 2, -1)
	offs.AddOffset("g", 1, 4, -1)
	if err := f.adm.CommitAllOffsets(f.ctx(), "grp", offs); err != nil {
		f.t.Fatalf("commit: %v", err)
	}
}

// kadmLag is the lag the Kafka API computes (kafka-consumer-groups' numbers).
func kadmLag(f *fixture, group string) map[int32]int64 {
	f.t.Helper()
	lags, err := f.adm.Lag(f.ctx(), group)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[int32]int64{}
	for _, l := range lags[group].Lag.Sorted() {
		out[l.Partition] = l.Lag
	}
	return out
}

// committed is what the cluster has committed for a group on topic g.
func committed(f *fixture, group string) map[int32]int64 {
	f.t.Helper()
	resp, err := f.adm.FetchOffsets(f.ctx(), group)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) { out[o.Partition] = o.At })
	return out
}

// TestGroupsAPI: the lag the console shows is the lag kadm computes, and resetting offsets
// previews, then applies, each mode.
func TestGroupsAPI(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b.start(t), Options{})
			lagTopic(f)
			want := kadmLag(f, "grp")
			if want[0] != 4 || want[1] != 0 {
				t.Fatalf("kadm lag %v", want)
			}
			var list []groupView
			f.get("/api/groups", &list)
			if len(list) != 1 || list[0].Name != "grp" || list[0].TotalLag != 4 || list[0].State != "Empty" {
				t.Fatalf("groups %+v", list)
			}
			var g groupView
			f.get("/api/groups/grp", &g)
			if len(g.Offsets) != 2 {
				t.Fatalf("offsets %+v", g.Offsets)
			}
			for _, o := range g.Offsets {
				if o.Lag == nil || *o.Lag != want[o.Partition] || o.Committed == nil || o.HighWatermark == nil {
					t.Errorf("partition %d: %+v, kadm lag %d", o.Partition, o, want[o.Partition])
				}
			}

			var plan struct {
				Executed bool       `json:"executed"`
				Offsets  []resetRow `json:"offsets"`
			}
			f.mustPost("/api/groups/grp/reset-offsets", resetRequest{Mode: "earliest"}, &plan)
			if plan.Executed || len(plan.Offsets) != 2 || plan.Offsets[0].New != 0 || *plan.Offsets[0].Current != 2 {
				t.Errorf("dry run %+v", plan)
			}
			if c := committed(f, "grp"); c[0] != 2 || c[1] != 4 {
				t.Errorf("a dry run changed the offsets: %v", c)
			}
			for _, tc := range []struct {
				req    resetRequest
				p0, p1 int64
			}{
				{resetRequest{Mode: "latest", Execute: true}, 6, 4},
				{resetRequest{Mode: "earliest", Execute: true}, 0, 0},
				{resetRequest{Mode: "offset", Offset: 5, Execute: true}, 5, 4}, // clamped to the high watermark
			} {
				f.mustPost("/api/groups/grp/reset-offsets", tc.req, nil)
				if c := committed(f, "grp"); c[0] != tc.p0 || c[1] != tc.p1 {
					t.Errorf("%+v: committed %v, want %d %d", tc.req, c, tc.p0, tc.p1)
				}
			}
			// A group that does not exist yet is created by a reset naming its topics.
			f.mustPost("/api/groups/fresh/reset-offsets", resetRequest{Mode: "latest", Topics: []string{"g"}, Execute: true}, nil)
			if c := committed(f, "fresh"); c[0] != 6 || c[1] != 4 {
				t.Errorf("fresh group: %v", c)
			}
			if status, body := f.post("/api/groups/grp/reset-offsets", resetRequest{Mode: "sideways"}); status != http.StatusBadRequest {
				t.Errorf("bad mode: %d %s", status, body)
			}
		})
	}
}

// TestResetRefusedWithMembers: while a member is consuming, a reset is refused (it would
// overwrite the new offsets with its next commit), and the group shows the member and
// what it was assigned.
func TestResetRefusedWithMembers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(*testing.T) string
		opts  []kgo.Opt
		typ   string
	}{
		{"vltava-classic", vltavaBroker, nil, "classic"},
		{"vltava-consumer", vltavaBroker, []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer())}, "consumer"},
		{"kfake-classic", kfakeCluster, nil, "classic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			brokers := tc.start(t)
			f := newFixture(t, brokers, Options{})
			lagTopic(f)
			assigned := make(chan struct{}, 1)
			opts := append([]kgo.Opt{kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumerGroup("live"), kgo.ConsumeTopics("g"),
				kgo.ClientID("live-member"),
				kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
					select {
					case assigned <- struct{}{}:
					default:
					}
				})}, tc.opts...)
			member, err := kgo.NewClient(opts...)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(f.ctx())
			done := make(chan struct{})
			go func() {
				defer close(done)
				for ctx.Err() == nil {
					member.PollFetches(ctx)
				}
			}()
			t.Cleanup(func() { cancel(); <-done; member.Close() })
			select {
			case <-assigned:
			case <-f.ctx().Done():
				t.Fatal("the member was never assigned partitions")
			}
			var g groupView
			f.get("/api/groups/live", &g)
			if g.Type != tc.typ && !(tc.typ == "classic" && g.Type == "") {
				t.Errorf("type %q, want %q", g.Type, tc.typ)
			}
			if len(g.Members) != 1 || g.Members[0].ClientID != "live-member" {
				t.Fatalf("members %+v", g.Members)
			}
			parts := 0
			for _, a := range g.Members[0].Assignment {
				if a.Topic == "g" {
					parts += len(a.Partitions)
				}
			}
			if parts != 2 {
				t.Errorf("assignment %+v, want both partitions of g", g.Members[0].Assignment)
			}
			status, body := f.post("/api/groups/live/reset-offsets", resetRequest{Mode: "earliest", Topics: []string{"g"}, Execute: true})
			if status != http.StatusConflict || !strings.Contains(string(body), "active members") {
				t.Errorf("reset with a member: %d %s", status, body)
			}
		})
	}
}
