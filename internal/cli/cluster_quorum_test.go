package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/config"
	"github.com/vltava/vltava/internal/server"
)

// fakeController answers the quorum's controller APIs on a real Vltava controller
// listener with what a test set: the tools' side of DescribeQuorum, AddRaftVoter and
// RemoveRaftVoter, whatever the state of the broker's own controller.
type fakeController struct {
	leader   bool  // false: every request is answered NOT_LEADER_OR_FOLLOWER
	leaderAt int32 // DescribeQuorum's leader
	nodes    []kmsg.DescribeQuorumResponseNode
	addCodes []int16 // the answers to the first AddRaftVoter requests, in order

	mu       sync.Mutex
	requests []kmsg.Request
}

func (f *fakeController) APIs() []kmsg.ApiVersionsResponseApiKey {
	return []kmsg.ApiVersionsResponseApiKey{{ApiKey: 55, MaxVersion: 2}, {ApiKey: 80, MaxVersion: 1}, {ApiKey: 81, MaxVersion: 0}}
}

func (f *fakeController) Handle(_ context.Context, req kmsg.Request) kmsg.Response {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	code := int16(0)
	if !f.leader {
		code = kerr.NotLeaderForPartition.Code
	}
	switch r := req.(type) {
	case *kmsg.DescribeQuorumRequest:
		resp := r.ResponseKind().(*kmsg.DescribeQuorumResponse)
		t := kmsg.NewDescribeQuorumResponseTopic()
		t.Topic = metadataTopic
		p := kmsg.NewDescribeQuorumResponseTopicPartition()
		p.ErrorCode = code
		p.LeaderID, p.LeaderEpoch, p.HighWatermark = f.leaderAt, 7, 120
		for _, v := range []struct {
			id  int32
			leo int64
		}{{1, 120}, {2, 118}, {3, 120}} {
			s := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
			s.ReplicaID, s.LogEndOffset = v.id, v.leo
			s.ReplicaDirectoryID[0] = byte(v.id)
			p.CurrentVoters = append(p.CurrentVoters, s)
		}
		o := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		o.ReplicaID, o.LogEndOffset = 4, 100
		p.Observers = append(p.Observers, o)
		t.Partitions = append(t.Partitions, p)
		resp.Topics = append(resp.Topics, t)
		resp.Nodes = f.nodes
		return resp
	case *kmsg.AddRaftVoterRequest:
		resp := r.ResponseKind().(*kmsg.AddRaftVoterResponse)
		resp.ErrorCode = code
		f.mu.Lock()
		if len(f.addCodes) > 0 {
			resp.ErrorCode, f.addCodes = f.addCodes[0], f.addCodes[1:]
		}
		f.mu.Unlock()
		return resp
	case *kmsg.RemoveRaftVoterRequest:
		resp := r.ResponseKind().(*kmsg.RemoveRaftVoterResponse)
		resp.ErrorCode = code
		if f.leader && r.VoterID == 9 {
			resp.ErrorCode = kerr.VoterNotFound.Code
			msg := "node 9 is not a voter"
			resp.ErrorMessage = &msg
		}
		return resp
	}
	return nil
}

func (f *fakeController) got() []kmsg.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]kmsg.Request(nil), f.requests...)
}

// controllerListener starts an in-process node with a controller listener answered by f
// and returns the listener's address.
func controllerListener(t *testing.T, f *fakeController) string {
	t.Helper()
	cfg, err := config.Load("", nil, map[string]string{"log.dirs": t.TempDir(),
		"listeners": "PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0", "controller.listener.names": "CONTROLLER",
		"vltava.http.listener": "none"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, broker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	srv.SetController(f)
	return srv.ControllerAddrs()[0]
}

func TestClusterInfoQuorumFromController(t *testing.T) {
	f := &fakeController{leader: true, leaderAt: 1}
	addr := controllerListener(t, f)
	out := must(t, "", "", "cluster", "info", "--bootstrap-controller", addr)
	for _, want := range []string{"LeaderId:       1", "LeaderEpoch:    7", "HighWatermark:  120", "MaxFollowerLag: 2",
		"CurrentVoters:  [1,2,3]", "CurrentObservers: [4]"} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster info --bootstrap-controller lacks %q:\n%s", want, out)
		}
	}
	// Only the quorum: there is no broker to ask with --bootstrap-controller alone.
	if strings.Contains(out, "Brokers:") {
		t.Errorf("cluster info --bootstrap-controller printed brokers:\n%s", out)
	}
	var js clusterInfoJSON
	if err := json.Unmarshal([]byte(must(t, "", "", "cluster", "info", "--bootstrap-controller", addr, "-o", "json")), &js); err != nil {
		t.Fatal(err)
	}
	q := js.Quorum
	if q == nil || q.LeaderID != 1 || len(q.Voters) != 3 || len(q.Observers) != 1 || q.Observers[0].Lag != 20 ||
		q.Voters[0].Status != "Leader" || q.Voters[1].Status != "Follower" || q.Observers[0].Status != "Observer" ||
		q.Voters[1].DirectoryID != base64.RawURLEncoding.EncodeToString([]byte{2, 15: 0}) {
		t.Errorf("cluster info -o json quorum: %+v", q)
	}
}

func TestClusterVoterChanges(t *testing.T) {
	follower := &fakeController{leader: false, leaderAt: 2}
	leader := &fakeController{leader: true, leaderAt: 2}
	faddr := controllerListener(t, follower)
	laddr := controllerListener(t, leader)
	dir := "AAAAAAAAAAAAAAAAAAAAAA"
	u, _ := parseUUID(dir)

	// The follower is asked first and refuses; the leader takes the change.
	out := must(t, "", "", "cluster", "add-voter", "--bootstrap-controller", faddr+","+laddr, "--controller-id", "4",
		"--controller-directory-id", dir, "--controller-endpoints", "CONTROLLER://127.0.0.1:9193")
	if !strings.Contains(out, "Added controller 4") || !strings.Contains(out, laddr) {
		t.Errorf("add-voter printed %q", out)
	}
	var add *kmsg.AddRaftVoterRequest
	for _, r := range leader.got() {
		if a, ok := r.(*kmsg.AddRaftVoterRequest); ok {
			add = a
		}
	}
	if add == nil || add.VoterID != 4 || add.VoterDirectoryID != u || len(add.Listeners) != 1 ||
		add.Listeners[0].Name != "CONTROLLER" || add.Listeners[0].Host != "127.0.0.1" || add.Listeners[0].Port != 9193 {
		t.Fatalf("the leader got AddRaftVoter %+v", add)
	}

	out = must(t, "", "", "cluster", "remove-voter", "--bootstrap-controller", faddr+","+laddr, "--controller-id", "3",
		"--controller-directory-id", dir)
	if !strings.Contains(out, "Removed controller 3") {
		t.Errorf("remove-voter printed %q", out)
	}
	// The controller's refusal, with its message.
	mustFail(t, "node 9 is not a voter", "", "", "cluster", "remove-voter", "--bootstrap-controller", laddr,
		"--controller-id", "9", "--controller-directory-id", dir)
	// Only followers: retried until the --timeout, then says none of them is the leader.
	mustFail(t, "answered as the quorum's leader before the --timeout", "", "", "cluster", "remove-voter", "--bootstrap-controller", faddr,
		"--controller-id", "3", "--controller-directory-id", dir, "--timeout", "500ms")
	// Bad flags fail before anything is sent.
	mustFail(t, "--controller-directory-id", "", "", "cluster", "add-voter", "--bootstrap-controller", laddr,
		"--controller-id", "4", "--controller-directory-id", "nope", "--controller-endpoints", "CONTROLLER://127.0.0.1:9193")
	mustFail(t, "--controller-endpoints", "", "", "cluster", "add-voter", "--bootstrap-controller", laddr,
		"--controller-id", "4", "--controller-directory-id", dir, "--controller-endpoints", "127.0.0.1")
	mustFail(t, "--controller-id is required", "", "", "cluster", "remove-voter", "--bootstrap-controller", laddr)
	// A broker's listener is not a controller listener: said at once, not retried. (A
	// broker forwards DescribeQuorum to the controller, as Kafka's does, so `cluster info`
	// is answered there; the voter changes are the controllers' alone.)
	broker := vltavaBroker(t, nil)
	mustFail(t, "is it a controller listener?", "", "", "cluster", "remove-voter", "--bootstrap-controller", broker,
		"--controller-id", "3", "--controller-directory-id", dir, "--timeout", "20s")
}

// A new leader answers REQUEST_TIMED_OUT until it has committed an entry of its term, and
// an attempt that timed out may have been applied: the tool retries, and takes
// DUPLICATE_VOTER after such an attempt as the change done. Without an ambiguous attempt
// before it, DUPLICATE_VOTER is the error it is.
func TestClusterAddVoterRetries(t *testing.T) {
	dir := "AAAAAAAAAAAAAAAAAAAAAA"
	leader := &fakeController{leader: true, leaderAt: 1,
		addCodes: []int16{kerr.RequestTimedOut.Code, kerr.RequestTimedOut.Code, kerr.DuplicateVoter.Code, kerr.DuplicateVoter.Code}}
	addr := controllerListener(t, leader)
	args := []string{"add-voter", "--bootstrap-controller", addr, "--controller-id", "4",
		"--controller-directory-id", dir, "--controller-endpoints", "CONTROLLER://127.0.0.1:9193", "--timeout", "20s"}
	out := must(t, "", "", "cluster", args...)
	if !strings.Contains(out, "Added controller 4") || !strings.Contains(out, "earlier attempt") {
		t.Errorf("add-voter after two timeouts and a DUPLICATE_VOTER printed %q", out)
	}
	adds := 0
	for _, r := range leader.got() {
		if _, ok := r.(*kmsg.AddRaftVoterRequest); ok {
			adds++
		}
	}
	if adds != 3 {
		t.Errorf("%d AddRaftVoter requests, want 3 (two timed out, then the duplicate)", adds)
	}
	mustFail(t, "DUPLICATE_VOTER", "", "", "cluster", args...)
}
