package cluster

// The cluster's numbers in docs/cluster.md, measured on real processes on loopback. They
// run only with -bench (each takes seconds to a minute), for example:
//
//	go test ./test/cluster -run '^$' -bench . -benchtime 20x
//
// BenchmarkFormCluster: three empty nodes started to the first accepted CreateTopics.
// BenchmarkFailover: kill -9 of the quorum's leader to the first accepted CreateTopics,
// the killed node restarted and caught up between runs; median and max over b.N runs.
// BenchmarkPropagation: 1,000 topics of 10 partitions created 10 per request; the time
// from each CreateTopics answer until every broker lists all the request's topics with
// all their partitions, as percentiles over the 100 requests and for the last 10 (the
// cluster then holds 900 to 1,000 topics).

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func BenchmarkFormCluster(b *testing.B) {
	ctx := context.Background()
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		c := newCluster(b, 3, nil)
		start := time.Now()
		c.startAll()
		if _, err := createTopic(ctx, c.bootstrap(), "first", 1, 60*time.Second); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		c.stopAll()
	}
	report(b, "form", took)
}

func BenchmarkFailover(b *testing.B) {
	ctx := context.Background()
	c := newCluster(b, 3, nil)
	c.startAll()
	if _, err := createTopic(ctx, c.bootstrap(), "warm", 1, 60*time.Second); err != nil {
		b.Fatal(err)
	}
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		leader, err := c.waitLeader(ctx, 30*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		leader.kill9()
		tp := fmt.Sprintf("after-kill-%d", i)
		if _, err := createTopic(ctx, c.bootstrap(), tp, 1, 60*time.Second); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		b.Logf("run %d: node %d killed, CreateTopics accepted after %s", i+1, leader.id, took[i].Round(time.Millisecond))
		leader.start()
		if _, err := c.waitTopicsEverywhere(ctx, []string{tp}, 60*time.Second); err != nil {
			b.Fatal(err)
		}
	}
	report(b, "failover", took)
}

func BenchmarkPropagation(b *testing.B) {
	ctx := context.Background()
	const topics, partitions, perRequest = 1000, 10, 10
	for b.Loop() {
		c := newCluster(b, 3, nil)
		c.startAll()
		if _, err := createTopic(ctx, c.bootstrap(), "warm", 1, 60*time.Second); err != nil {
			b.Fatal(err)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.bootstrap()...), kgo.RetryTimeout(30*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		adm := kadm.NewClient(cl)
		var brokers []*kgo.Client
		for _, nd := range c.nodes {
			bc, err := kgo.NewClient(kgo.SeedBrokers(nd.broker()))
			if err != nil {
				b.Fatal(err)
			}
			brokers = append(brokers, bc)
		}
		var delays []time.Duration
		start := time.Now()
		for r := range topics / perRequest {
			names := make([]string, perRequest)
			for i := range names {
				names[i] = fmt.Sprintf("prop-%04d", r*perRequest+i)
			}
			res, err := adm.CreateTopics(ctx, partitions, 1, nil, names...)
			if err != nil {
				b.Fatal(err)
			}
			if err := res.Error(); err != nil {
				b.Fatal(err)
			}
			created := time.Now()
			for _, bc := range brokers {
				if err := waitListed(ctx, bc, names, partitions); err != nil {
					b.Fatal(err)
				}
			}
			delays = append(delays, time.Since(created))
		}
		b.Logf("%d topics of %d partitions created in %s", topics, partitions, time.Since(start).Round(time.Millisecond))
		report(b, "prop", delays)
		report(b, "prop-last10", delays[len(delays)-10:])
		for _, bc := range brokers {
			bc.Close()
		}
		cl.Close()
		c.stopAll()
	}
}

// waitListed polls one broker (straight to it, not routed) until Metadata lists every
// topic in names with its partitions.
func waitListed(ctx context.Context, cl *kgo.Client, names []string, partitions int) error {
	req := kmsg.NewPtrMetadataRequest()
	for _, n := range names {
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(n)
		req.Topics = append(req.Topics, t)
	}
	req.AllowAutoTopicCreation = false
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := cl.SeedBrokers()[0].RetriableRequest(ctx, req)
		if err == nil {
			ok := 0
			for _, t := range resp.(*kmsg.MetadataResponse).Topics {
				if t.ErrorCode == 0 && len(t.Partitions) == partitions {
					ok++
				}
			}
			if ok == len(names) {
				return nil
			}
		}
		time.Sleep(time.Millisecond) // polling another process
	}
	return fmt.Errorf("%v not listed with %d partitions after 30s", names, partitions)
}

// report logs and reports the median and max of ds, in ms.
func report(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	med, p99, mx := s[len(s)/2], s[min(len(s)-1, len(s)*99/100)], s[len(s)-1]
	b.ReportMetric(float64(med.Microseconds())/1000, name+"-p50-ms")
	b.ReportMetric(float64(mx.Microseconds())/1000, name+"-max-ms")
	b.Logf("%s over %d: min %s, median %s, p99 %s, max %s", name, len(s), s[0].Round(time.Millisecond),
		med.Round(time.Millisecond), p99.Round(time.Millisecond), mx.Round(time.Millisecond))
}
