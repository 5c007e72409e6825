package group

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memStore is an in-memory __consumer_offsets: one record list per
// partition. failAppends makes the next appends fail.
type memStore struct {
	mu          sync.Mutex
	logs        map[int32][]Record
	failAppends int
}

func newMemStore() *memStore { return &memStore{logs: make(map[int32][]Record)} }

func (s *memStore) Append(_ context.Context, p int32, recs []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAppends > 0 {
		s.failAppends--
		return errors.New("injected append failure")
	}
	for _, r := range recs {
		s.logs[p] = append(s.logs[p], Record{Key: append([]byte(nil), r.Key...), Value: append([]byte(nil), r.Value...)})
		if r.Value == nil {
			s.logs[p][len(s.logs[p])-1].Value = nil
		}
	}
	return nil
}

func (s *memStore) Replay(p int32, fn func(Record) error) error {
	s.mu.Lock()
	recs := append([]Record(nil), s.logs[p]...)
	s.mu.Unlock()
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.logs {
		n += len(l)
	}
	return n
}

// fakeClock is the Config.Now of tests that need commit timestamps to move;
// inside a synctest bubble time.Now is virtual already.
type testEnv struct {
	t     *testing.T
	store *memStore
	c     *Coordinator
	cfg   Config
}

func testConfig() Config {
	return Config{
		NumPartitions:         4,
		InitialRebalanceDelay: -1,
		MinSessionTimeout:     time.Second,
		MaxSessionTimeout:     time.Minute,
	}
}

func newEnv(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	e := &testEnv{t: t, store: newMemStore(), cfg: cfg}
	e.start()
	return e
}

// start (re)creates the coordinator over the env's store, as a broker
// restart does.
func (e *testEnv) start() {
	e.t.Helper()
	if e.c != nil {
		e.c.Close()
	}
	e.c = New(e.cfg, e.store)
	if err := e.c.Load(context.Background()); err != nil {
		e.t.Fatalf("load: %v", err)
	}
	c := e.c
	e.t.Cleanup(c.Close)
}

var bg = context.Background()

func joinReq(group, memberID string, instance *string, protos ...string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 9
	req.Group = group
	req.MemberID = memberID
	req.InstanceID = instance
	req.SessionTimeoutMillis = 6000
	req.RebalanceTimeoutMillis = 10000
	req.ProtocolType = "consumer"
	if len(protos) == 0 {
		protos = []string{"range"}
	}
	// Every member subscribes to topic "t", in the consumer protocol's
	// own encoding, so the coordinator can tell what the group consumes.
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"t"}
	for _, p := range protos {
		meta.UserData = []byte(p)
		req.Protocols = append(req.Protocols, kmsg.JoinGroupRequestProtocol{Name: p, Metadata: meta.AppendTo(nil)})
	}
	return req
}

// joinAsync starts a JoinGroup and returns where its answer will arrive.
func (e *testEnv) joinAsync(req *kmsg.JoinGroupRequest) <-chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { ch <- e.c.JoinGroup(bg, Client{ID: "client", Host: "/127.0.0.1"}, req) }()
	return ch
}

// memberID gets a member ID the KIP-394 way: a first join that answers
// MEMBER_ID_REQUIRED.
func (e *testEnv) memberID(group string) string {
	e.t.Helper()
	resp := e.c.JoinGroup(bg, Client{ID: "client"}, joinReq(group, "", nil))
	if err := kerr.ErrorForCode(resp.ErrorCode); err != kerr.MemberIDRequired {
		e.t.Fatalf("first join: got %v, want MEMBER_ID_REQUIRED", err)
	}
	return resp.MemberID
}

func (e *testEnv) sync(group, member string, gen int32, assignments map[string]string) *kmsg.SyncGroupResponse {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group = group
	req.MemberID = member
	req.Generation = gen
	for id, a := range assignments {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: []byte(a)})
	}
	return e.c.SyncGroup(bg, req)
}

func (e *testEnv) syncAsync(group, member string, gen int32, assignments map[string]string) <-chan *kmsg.SyncGroupResponse {
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { ch <- e.sync(group, member, gen, assignments) }()
	return ch
}

func (e *testEnv) heartbeat(group, member string, gen int32) error {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group = group
	req.MemberID = member
	req.Generation = gen
	return kerr.ErrorForCode(e.c.Heartbeat(req).ErrorCode)
}

func (e *testEnv) commit(group, member string, gen int32, topic string, partition int32, offset int64) error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group = group
	req.MemberID = member
	req.Generation = gen
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: partition, Offset: offset, LeaderEpoch: 3, Metadata: kmsg.StringPtr("m")}}}}
	resp := e.c.OffsetCommit(bg, req)
	return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
}

// fetched returns the committed offset of one partition (v8 request).
func (e *testEnv) fetched(group, topic string, partition int32) (int64, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{partition}}}}}
	resp := e.c.OffsetFetch(req)
	g := resp.Groups[0]
	if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
		return 0, err
	}
	p := g.Topics[0].Partitions[0]
	return p.Offset, kerr.ErrorForCode(p.ErrorCode)
}

func (e *testEnv) describe(group string) kmsg.DescribeGroupsResponseGroup {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 5
	req.Groups = []string{group}
	return e.c.DescribeGroups(req).Groups[0]
}

func wantErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got error %v, want %v", what, got, want)
	}
}

func code(resp int16) error { return kerr.ErrorForCode(resp) }
