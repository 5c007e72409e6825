package server_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/server"
)

// TestLongPollEndsWhenClientGoes: a fetch waiting out a long max_wait_ms on a connection
// whose client has closed it returns at once, so the connection (its goroutines and the
// fetch's hold on the broker) goes, rather than waiting a minute to answer nobody.
func TestLongPollEndsWhenClientGoes(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic(t, "quiet", 1, nil)
	id := topicID(t, n, "quiet")
	others := server.OpenConnections(n.srv) // the admin clients', idle
	r := dialRaw(t, n.addr)
	req := kmsg.NewPtrFetchRequest()
	req.Version = 13
	req.MaxWaitMillis = 60_000
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	req.Topics = []kmsg.FetchRequestTopic{{TopicID: id, Partitions: []kmsg.FetchRequestTopicPartition{
		{Partition: 0, FetchOffset: 0, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1, LogStartOffset: -1}}}}
	r.write(frame(req, 1))
	waitFor(t, "the connection is served", func() bool { return server.OpenConnections(n.srv) == others+1 })
	r.c.Close()
	// The poll would end after 60 s; the connection must go long before that.
	deadline := time.Now().Add(20 * time.Second)
	for server.OpenConnections(n.srv) != others {
		if time.Now().After(deadline) {
			t.Fatalf("20 s after the client closed its connection, a fetch with max_wait_ms 60000 still holds it")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
