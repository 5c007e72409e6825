package group

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// blockingStore is a memStore whose Replay of one partition waits until released.
type blockingStore struct {
	*memStore
	partition int32
	reached   chan struct{}
	release   chan struct{}
}

func (s *blockingStore) Replay(p int32, fn func(Record) error) error {
	if p == s.partition && s.release != nil {
		close(s.reached)
		<-s.release
	}
	return s.memStore.Replay(p, fn)
}

func offsetFetch(c *Coordinator, group string) *kmsg.OffsetFetchResponse {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 5
	req.Group = group
	return c.OffsetFetch(req)
}

// TestCoordinationFollowsPartitionLeadership: a group is served only while its
// __consumer_offsets partition is loaded here: NOT_COORDINATOR before and after,
// COORDINATOR_LOAD_IN_PROGRESS while it loads; unloading answers a waiting join
// NOT_COORDINATOR and drops the group, loading again rebuilds it from the partition;
// groups of other partitions are not touched.
func TestCoordinationFollowsPartitionLeadership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.InitialRebalanceDelay = 0 // a join waits for the initial delay
		store := &blockingStore{memStore: newMemStore()}
		c := New(cfg, store)
		defer c.Close()
		const g = "my-group"
		p := c.PartitionFor(g)
		other := ""
		for i := 0; other == ""; i++ {
			if n := fmt.Sprintf("other-%d", i); c.PartitionFor(n) != p && c.PartitionFor(n) != c.PartitionFor("joiners") {
				other = n
			}
		}
		wantErr(t, "fetch before load", code(offsetFetch(c, g).ErrorCode), kerr.NotCoordinator)

		if err := c.LoadPartition(bg, p); err != nil {
			t.Fatal(err)
		}
		if err := c.LoadPartition(bg, c.PartitionFor(other)); err != nil {
			t.Fatal(err)
		}
		if err := c.AwaitPartition(bg, p); err != nil {
			t.Fatal(err)
		}
		commit := kmsg.NewPtrOffsetCommitRequest()
		commit.Version, commit.Group, commit.Generation = 5, g, -1
		ct := kmsg.NewOffsetCommitRequestTopic()
		ct.Topic = "t"
		ct.Partitions = []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 42}}
		commit.Topics = []kmsg.OffsetCommitRequestTopic{ct}
		for _, grp := range []string{g, other} {
			commit.Group = grp
			if r := c.OffsetCommit(bg, commit); r.Topics[0].Partitions[0].ErrorCode != 0 {
				t.Fatalf("commit %s: %v", grp, kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
			}
		}

		// A member waits in a join phase (the initial rebalance delay) when the
		// partition is unloaded.
		first := c.JoinGroup(bg, Client{}, joinReq("joiners", "", nil))
		jp := c.PartitionFor("joiners")
		if jp != p {
			if err := c.LoadPartition(bg, jp); err != nil {
				t.Fatal(err)
			}
			first = c.JoinGroup(bg, Client{}, joinReq("joiners", "", nil))
		}
		waiting := make(chan *kmsg.JoinGroupResponse, 1)
		go func() { waiting <- c.JoinGroup(bg, Client{}, joinReq("joiners", first.MemberID, nil)) }()
		synctest.Wait()
		c.UnloadPartition(jp)
		wantErr(t, "waiting join when the partition is unloaded", code((<-waiting).ErrorCode), kerr.NotCoordinator)
		c.UnloadPartition(p)
		wantErr(t, "fetch after unload", code(offsetFetch(c, g).ErrorCode), kerr.NotCoordinator)
		if r := offsetFetch(c, other); r.ErrorCode != 0 {
			t.Fatalf("a group of another partition: %v", kerr.ErrorForCode(r.ErrorCode))
		}

		// Loading again: LOAD_IN_PROGRESS until the replay is done, then the offset is back.
		store.reached, store.release, store.partition = make(chan struct{}), make(chan struct{}), p
		loaded := make(chan error, 1)
		go func() { loaded <- c.LoadPartition(context.Background(), p) }()
		<-store.reached
		wantErr(t, "fetch while loading", code(offsetFetch(c, g).ErrorCode), kerr.CoordinatorLoadInProgress)
		close(store.release)
		if err := <-loaded; err != nil {
			t.Fatal(err)
		}
		r := offsetFetch(c, g)
		if r.ErrorCode != 0 || len(r.Topics) != 1 || r.Topics[0].Partitions[0].Offset != 42 {
			t.Fatalf("after loading again: %+v", r)
		}
	})
}
