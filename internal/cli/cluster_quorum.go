// cluster_quorum.go is the metadata quorum's part of the cluster commands, as Kafka's
// kafka-metadata-quorum has them: DescribeQuorum for `cluster info` (and `cluster quorum`),
// and KIP-853's AddRaftVoter and RemoveRaftVoter for `cluster add-voter|remove-voter`.
//
// These requests go to a controller listener (--bootstrap-controller, as
// kafka-metadata-quorum) or, through a broker that forwards them to the active controller,
// to --bootstrap-server. On a controller listener the active controller is found by
// asking each in turn, again and again while the answers are retriable: a non-leader
// answers NOT_LEADER_OR_FOLLOWER (or NOT_CONTROLLER), and a new leader REQUEST_TIMED_OUT
// until it has committed an entry of its term.
package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/cli/cmdflag"
)

// metadataTopic is the metadata log's topic, the one partition DescribeQuorum describes.
const metadataTopic = "__cluster_metadata"

// quorumReplica is one voter or observer as DescribeQuorum reports it.
type quorumReplica struct {
	ID           int32  `json:"id"`
	DirectoryID  string `json:"directory_id,omitempty"`
	LogEndOffset int64  `json:"log_end_offset"`
	Lag          int64  `json:"lag"`
	LastFetchMs  int64  `json:"last_fetch_timestamp_ms"`
	LastCaughtUp int64  `json:"last_caught_up_timestamp_ms"`
	Status       string `json:"status"` // Leader, Follower or Observer
	Endpoints    string `json:"endpoints,omitempty"`
}

// quorumInfo is the whole DescribeQuorum answer for __cluster_metadata-0.
type quorumInfo struct {
	LeaderID      int32           `json:"leader_id"`
	LeaderEpoch   int32           `json:"leader_epoch"`
	HighWatermark int64           `json:"high_watermark"`
	MaxLag        int64           `json:"max_follower_lag"`
	Voters        []quorumReplica `json:"voters"`
	Observers     []quorumReplica `json:"observers"`
	From          string          `json:"from"` // the address that answered
}

// controllerFlags are the flags of the commands that may talk to a controller listener.
type controllerFlags struct {
	bootstrapController string
}

func (f *controllerFlags) seeds() []string {
	var out []string
	for _, s := range strings.Split(f.bootstrapController, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// controllerRequest sends req to the active controller among f's seeds (leaderFirst
// first), or, without --bootstrap-controller, through the brokers of c, which route it to
// the controller. It returns the response, the address that answered, and whether an
// earlier attempt may have been applied (it got no answer, or a retriable error such as
// REQUEST_TIMED_OUT).
//
// As Kafka's admin client, it retries while the answers are retriable (a voter that does
// not lead, a leader that has just been elected, a controller that cannot be reached)
// until the context ends: round after round over the seeds, with a growing pause.
func (c *common) controllerRequest(ctx context.Context, f *controllerFlags, req kmsg.Request, leaderFirst []string) (kmsg.Response, string, bool, error) {
	seeds := f.seeds()
	if len(seeds) == 0 {
		cl, err := c.client()
		if err != nil {
			return nil, "", false, err
		}
		defer cl.Close()
		resp, err := cl.Request(ctx, req)
		if err != nil {
			// kgo's words for an API the brokers' ApiVersions leaves out.
			if strings.Contains(err.Error(), "broker is too old") {
				return nil, "", false, fmt.Errorf("the brokers at %s do not serve %s (their ApiVersions leaves it out): ask the controllers with --bootstrap-controller",
					c.brokers, kmsg.NameForKey(req.Key()))
			}
			return nil, "", false, c.reachErr(err)
		}
		return resp, c.brokers, false, nil
	}
	var order []string
	seen := map[string]bool{}
	for _, a := range append(append([]string(nil), leaderFirst...), seeds...) {
		if !seen[a] {
			seen[a] = true
			order = append(order, a)
		}
	}
	ambiguous := false
	pause := 50 * time.Millisecond
	for {
		var errs []error
		for _, addr := range order {
			resp, err := requestOne(ctx, c, addr, req)
			if err == nil {
				if err = retriable(resp); err == nil {
					return resp, addr, ambiguous, nil
				}
				ambiguous = ambiguous || !errors.Is(err, kerr.NotController) && !errors.Is(err, kerr.NotLeaderForPartition)
			} else if strings.Contains(err.Error(), "broker is too old") {
				// kgo's words for an API left out of ApiVersions: no retry will change that.
				return nil, "", ambiguous, fmt.Errorf("%s does not serve %s (is it a controller listener? --bootstrap-controller takes the controllers' CONTROLLER listeners)",
					addr, kmsg.NameForKey(req.Key()))
			} else {
				// Unless it was never sent, the request may have reached the leader.
				var op *net.OpError
				ambiguous = ambiguous || !errors.As(err, &op) || op.Op != "dial"
			}
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			if ctx.Err() != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil, "", ambiguous, fmt.Errorf("no controller in %s answered as the quorum's leader before the --timeout: %w", f.bootstrapController, errors.Join(errs...))
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// requestOne sends req to addr alone: a controller listener answers ApiVersions and the
// controller APIs but not Metadata, so kgo's routing cannot be used.
func requestOne(ctx context.Context, c *common, addr string, req kmsg.Request) (kmsg.Response, error) {
	one := *c
	one.brokers = addr
	cl, err := one.client(kgo.RequestRetries(0))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	seeds := cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, fmt.Errorf("no address in %q", addr)
	}
	resp, err := seeds[0].Request(ctx, req)
	if err != nil {
		return nil, one.reachErr(err)
	}
	return resp, nil
}

// retriable is the error of a response that is worth another try: Kafka's retriable
// errors, such as a voter that does not lead (NOT_LEADER_OR_FOLLOWER, NOT_CONTROLLER) or a
// leader that has not yet committed an entry of its term (REQUEST_TIMED_OUT).
func retriable(resp kmsg.Response) error {
	var code int16
	switch r := resp.(type) {
	case *kmsg.DescribeQuorumResponse:
		// A voter that does not lead answers for the partition, as Kafka's do.
		code = r.ErrorCode
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if code == 0 {
					code = p.ErrorCode
				}
			}
		}
	case *kmsg.AddRaftVoterResponse:
		code = r.ErrorCode
	case *kmsg.RemoveRaftVoterResponse:
		code = r.ErrorCode
	case *kmsg.UnregisterBrokerResponse:
		code = r.ErrorCode
	}
	if err := kerr.ErrorForCode(code); err != nil && kerr.IsRetriable(err) {
		return err
	}
	return nil
}

// describeQuorum asks for __cluster_metadata-0's quorum.
func (c *common) describeQuorum(ctx context.Context, f *controllerFlags) (quorumInfo, []string, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = metadataTopic
	p := kmsg.NewDescribeQuorumRequestTopicPartition()
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	kresp, from, _, err := c.controllerRequest(ctx, f, req, nil)
	if err != nil {
		return quorumInfo{}, nil, err
	}
	resp := kresp.(*kmsg.DescribeQuorumResponse)
	if err := codeErr(resp.ErrorCode, resp.ErrorMessage); err != nil {
		return quorumInfo{}, nil, fmt.Errorf("describe quorum (%s): %w", from, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return quorumInfo{}, nil, fmt.Errorf("describe quorum (%s): the answer holds no %s-0", from, metadataTopic)
	}
	part := resp.Topics[0].Partitions[0]
	if err := codeErr(part.ErrorCode, part.ErrorMessage); err != nil {
		return quorumInfo{}, nil, fmt.Errorf("describe quorum (%s): %w", from, err)
	}
	endpoints := map[int32][]string{}
	for _, n := range resp.Nodes {
		for _, l := range n.Listeners {
			endpoints[n.NodeID] = append(endpoints[n.NodeID], l.Name+"://"+net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port))))
		}
	}
	q := quorumInfo{LeaderID: part.LeaderID, LeaderEpoch: part.LeaderEpoch, HighWatermark: part.HighWatermark, From: from}
	var leaderLEO int64 = -1
	for _, v := range part.CurrentVoters {
		if v.ReplicaID == part.LeaderID {
			leaderLEO = v.LogEndOffset
		}
	}
	if leaderLEO < 0 {
		leaderLEO = part.HighWatermark
	}
	conv := func(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState, observer bool) []quorumReplica {
		out := []quorumReplica{}
		for _, r := range rs {
			qr := quorumReplica{ID: r.ReplicaID, LogEndOffset: r.LogEndOffset, Lag: max(0, leaderLEO-r.LogEndOffset),
				LastFetchMs: r.LastFetchTimestamp, LastCaughtUp: r.LastCaughtUpTimestamp,
				Endpoints: strings.Join(endpoints[r.ReplicaID], ",")}
			if r.ReplicaDirectoryID != ([16]byte{}) {
				qr.DirectoryID = base64.RawURLEncoding.EncodeToString(r.ReplicaDirectoryID[:])
			}
			switch {
			case observer:
				qr.Status = "Observer"
			case r.ReplicaID == part.LeaderID:
				qr.Status = "Leader"
			default:
				qr.Status = "Follower"
			}
			if qr.Status != "Leader" {
				q.MaxLag = max(q.MaxLag, qr.Lag)
			}
			out = append(out, qr)
		}
		return out
	}
	q.Voters = conv(part.CurrentVoters, false)
	q.Observers = conv(part.Observers, true)
	// The leader's controller endpoints, for sending it the voter changes directly.
	var leader []string
	for _, e := range endpoints[part.LeaderID] {
		if _, hp, ok := strings.Cut(e, "://"); ok {
			leader = append(leader, hp)
		}
	}
	return q, leader, nil
}

// codeErr is the error of a response's error code and message, nil for none.
func codeErr(code int16, msg *string) error {
	m := ""
	if msg != nil {
		m = *msg
	}
	return kafkaErr(kerr.ErrorForCode(code), m)
}

// writeQuorumText prints q as kafka-metadata-quorum describe --status and --replication do.
func writeQuorumText(e Env, q quorumInfo, now time.Time) {
	ids := func(rs []quorumReplica) string {
		var s []string
		for _, r := range rs {
			s = append(s, strconv.Itoa(int(r.ID)))
		}
		return "[" + strings.Join(s, ",") + "]"
	}
	fmt.Fprintf(e.Stdout, "Quorum (%s-0, as %s sees it):\n", metadataTopic, q.From)
	fmt.Fprintf(e.Stdout, "  LeaderId:       %s\n  LeaderEpoch:    %d\n  HighWatermark:  %d\n  MaxFollowerLag: %d\n",
		nodeID(q.LeaderID), q.LeaderEpoch, q.HighWatermark, q.MaxLag)
	fmt.Fprintf(e.Stdout, "  CurrentVoters:  %s\n  CurrentObservers: %s\n", ids(q.Voters), ids(q.Observers))
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tDIRECTORY ID\tLOG END OFFSET\tLAG\tLAST FETCH\tLAST CAUGHT UP\tSTATUS")
	for _, r := range append(append([]quorumReplica(nil), q.Voters...), q.Observers...) {
		dir := r.DirectoryID
		if dir == "" {
			dir = "-"
		}
		fmt.Fprintf(tw, "  %d\t%s\t%d\t%d\t%s\t%s\t%s\n", r.ID, dir, r.LogEndOffset, r.Lag, msAgo(r.LastFetchMs, now), msAgo(r.LastCaughtUp, now), r.Status)
	}
	tw.Flush()
}

// msAgo renders a timestamp in ms as how long ago it was ("-" for unknown, -1).
func msAgo(ms int64, now time.Time) string {
	if ms < 0 {
		return "-"
	}
	d := now.Sub(time.UnixMilli(ms))
	if d < 0 {
		d = 0
	}
	return d.Round(time.Millisecond).String() + " ago"
}

// parseUUID reads a Kafka UUID: 22 characters of URL-safe base64, as meta.properties'
// directory.id and `vltava storage info` show it.
func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 16 {
		return u, fmt.Errorf("%q is not a Kafka UUID (22 characters of URL-safe base64, as directory.id in meta.properties)", s)
	}
	copy(u[:], b)
	return u, nil
}

// parseEndpoints reads --controller-endpoints: NAME://HOST:PORT or HOST:PORT (named
// CONTROLLER), comma-separated.
func parseEndpoints(s string) ([]kmsg.AddRaftVoterRequestListener, error) {
	var out []kmsg.AddRaftVoterRequestListener
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		name, hp, ok := strings.Cut(e, "://")
		if !ok {
			name, hp = "CONTROLLER", e
		}
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			return nil, fmt.Errorf("endpoint %q: %w", e, err)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("endpoint %q: port %q is not 1-65535", e, port)
		}
		l := kmsg.NewAddRaftVoterRequestListener()
		l.Name, l.Host, l.Port = strings.ToUpper(name), host, uint16(p)
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, errors.New("no endpoint: want NAME://HOST:PORT, e.g. CONTROLLER://127.0.0.1:9093")
	}
	return out, nil
}

// quorumFlagSet is the flag set of the quorum commands: the admin flags plus
// --bootstrap-controller.
func (e Env) quorumFlagSet(path, synopsis string) (*cmdflag.Set, *common, *controllerFlags) {
	fs, c := e.adminFlagSet(path, synopsis)
	f := &controllerFlags{}
	fs.StringVar(&f.bootstrapController, "bootstrap-controller", "",
		"controller listeners `HOST:PORT,...` to send the quorum requests to (kafka-metadata-quorum's flag); without it they go through --bootstrap-server")
	return fs, c, f
}

// voterChange runs add-voter (add true) or remove-voter.
func (e Env) voterChange(ctx context.Context, args []string, add bool) error {
	path, verb := "cluster remove-voter", "remove"
	if add {
		path, verb = "cluster add-voter", "add"
	}
	fs, c, f := e.quorumFlagSet(path, "--controller-id ID --controller-directory-id UUID [flags]")
	id := fs.Int("controller-id", -1, "the node.id of the controller")
	dir := fs.String("controller-directory-id", "", "its metadata log dir's directory.id `UUID` (meta.properties; `vltava storage info` prints it)")
	var endpoints *string
	if add {
		endpoints = fs.String("controller-endpoints", "", "its controller listeners `NAME://HOST:PORT,...` (as its advertised controller listeners)")
	}
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	if *id < 0 || *id > 1<<31-1 {
		return fs.Fail(errors.New("--controller-id is required"))
	}
	if *dir == "" {
		return fs.Fail(errors.New("--controller-directory-id is required"))
	}
	uuid, err := parseUUID(*dir)
	if err != nil {
		return fs.Fail(fmt.Errorf("--controller-directory-id: %w", err))
	}
	var req kmsg.Request
	if add {
		ls, err := parseEndpoints(*endpoints)
		if err != nil {
			return fs.Fail(fmt.Errorf("--controller-endpoints: %w", err))
		}
		r := kmsg.NewPtrAddRaftVoterRequest()
		r.VoterID, r.VoterDirectoryID, r.Listeners = int32(*id), uuid, ls
		r.TimeoutMillis = int32(min(c.timeout.Milliseconds(), 1<<31-1))
		r.AckWhenCommitted = true
		req = r
	} else {
		r := kmsg.NewPtrRemoveRaftVoterRequest()
		r.VoterID, r.VoterDirectoryID = int32(*id), uuid
		req = r
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	// Learn the leader first where we can, so the change goes straight to it.
	var leader []string
	if len(f.seeds()) > 0 {
		if _, l, err := c.describeQuorum(ctx, f); err == nil {
			leader = l
		}
	}
	kresp, from, ambiguous, err := c.controllerRequest(ctx, f, req, leader)
	if err != nil {
		return fmt.Errorf("%s voter %d: %w", verb, *id, err)
	}
	var code int16
	var msg *string
	switch r := kresp.(type) {
	case *kmsg.AddRaftVoterResponse:
		code, msg = r.ErrorCode, r.ErrorMessage
	case *kmsg.RemoveRaftVoterResponse:
		code, msg = r.ErrorCode, r.ErrorMessage
	}
	note := ""
	if err := codeErr(code, msg); err != nil {
		// After an attempt that may have been applied, the change being there already is
		// that attempt's success.
		done := add && errors.Is(err, kerr.DuplicateVoter) || !add && errors.Is(err, kerr.VoterNotFound)
		if !ambiguous || !done {
			return fmt.Errorf("%s voter %d (%s): %w", verb, *id, from, err)
		}
		note = " (by an earlier attempt that got no clear answer)"
	}
	if c.output.json() {
		return writeJSON(e.Stdout, map[string]any{"action": verb + "-voter", "controller_id": *id, "directory_id": *dir, "controller": from})
	}
	if add {
		fmt.Fprintf(e.Stdout, "Added controller %d with directory id %s to the quorum%s (through %s).\n", *id, *dir, note, from)
	} else {
		fmt.Fprintf(e.Stdout, "Removed controller %d with directory id %s from the quorum%s (through %s).\n", *id, *dir, note, from)
	}
	return nil
}

func (e Env) clusterAddVoter(ctx context.Context, args []string) error {
	return e.voterChange(ctx, args, true)
}

func (e Env) clusterRemoveVoter(ctx context.Context, args []string) error {
	return e.voterChange(ctx, args, false)
}
