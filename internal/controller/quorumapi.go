package controller

// The raft APIs: DescribeQuorum v0-2, AddRaftVoter v0-1 and RemoveRaftVoter v0
// (KIP-595, KIP-853), answered from the quorum member directly, not through the loop:
// they are about the log, not the metadata. Off the leader they answer
// NOT_LEADER_OR_FOLLOWER, as Kafka's KafkaRaftClient does.
//
// DescribeQuorum reports Kafka's offsets: the entry at raft index i has offset i-1, so a
// log end offset (one past the last entry) and the high watermark are raft indexes.
//
// AddRaftVoter maps KIP-853 onto the quorum's membership changes: a node that is not a
// member is added as an observer (at the address of its listener named by
// controller.listener.names) and then promoted to voter once it has caught up with the
// log, retried until the request's timeout; a voter already is DUPLICATE_VOTER.
// RemoveRaftVoter removes a voter, or (Vltava's extension, for broker-only nodes that
// leave) an observer; a node that is neither is VOTER_NOT_FOUND. Removing the leader
// hands leadership over first and answers NOT_LEADER_OR_FOLLOWER; the new leader removes
// it when asked again. Voter directory IDs are not used.

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/quorum"
)

// MetadataTopic is the metadata log's topic name, as DescribeQuorum names it.
const MetadataTopic = "__cluster_metadata"

// promoteRetry is how often AddRaftVoter retries promoting an observer that has not
// caught up yet.
const promoteRetry = 100 * time.Millisecond

func (c *Controller) describeQuorum(ctx context.Context, r *kmsg.DescribeQuorumRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.DescribeQuorumResponse)
	valid := len(r.Topics) == 1 && r.Topics[0].Topic == MetadataTopic && len(r.Topics[0].Partitions) == 1 &&
		r.Topics[0].Partitions[0].Partition == 0
	if !valid {
		for _, t := range r.Topics {
			rt := kmsg.NewDescribeQuorumResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewDescribeQuorumResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.UnknownTopicOrPartition.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	st, err := c.log.Status(ctx)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = raftCodeOf(err), errMsg(err)
		return resp
	}
	rt := kmsg.NewDescribeQuorumResponseTopic()
	rt.Topic = MetadataTopic
	rp := kmsg.NewDescribeQuorumResponseTopicPartition()
	rp.LeaderID, rp.LeaderEpoch = -1, int32(st.Term)
	if st.LeaderID != 0 {
		rp.LeaderID = int32(st.LeaderID)
	}
	if st.Role != quorum.RoleLeader {
		rp.ErrorCode = kerr.NotLeaderForPartition.Code
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
		return resp
	}
	rp.HighWatermark = int64(st.CommitIndex)
	for _, v := range st.Voters {
		rp.CurrentVoters = append(rp.CurrentVoters, replicaState(v, st.NodeID))
	}
	for _, o := range st.Observers {
		rp.Observers = append(rp.Observers, replicaState(o, st.NodeID))
	}
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	for _, v := range st.Voters {
		n := kmsg.NewDescribeQuorumResponseNode()
		n.NodeID = int32(v.ID)
		if host, port, err := net.SplitHostPort(v.Addr); err == nil {
			if p, err := strconv.ParseUint(port, 10, 16); err == nil {
				l := kmsg.NewDescribeQuorumResponseNodeListener()
				l.Name, l.Host, l.Port = c.cfg.ControllerListenerName, host, uint16(p)
				n.Listeners = append(n.Listeners, l)
			}
		}
		resp.Nodes = append(resp.Nodes, n)
	}
	return resp
}

// replicaState is one member in DescribeQuorum's terms; what the leader has not heard
// is unknown (-1).
func replicaState(r quorum.Replica, self uint64) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
	rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
	rs.ReplicaID = int32(r.ID)
	rs.LogEndOffset, rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = -1, -1, -1
	if r.ID == self || !r.LastContact.IsZero() {
		rs.LogEndOffset = int64(r.MatchIndex)
	}
	if !r.LastContact.IsZero() {
		rs.LastFetchTimestamp = r.LastContact.UnixMilli()
	}
	if !r.LastCaughtUp.IsZero() {
		rs.LastCaughtUpTimestamp = r.LastCaughtUp.UnixMilli()
	}
	return rs
}

// checkClusterID answers INCONSISTENT_CLUSTER_ID for a request of another cluster.
func (c *Controller) checkClusterID(id *string) error {
	if id != nil && *id != c.image().ClusterID() {
		return errorf(kerr.InconsistentClusterID, "The given id %q doesn't match the cluster id %q", *id, c.image().ClusterID())
	}
	return nil
}

func (c *Controller) addRaftVoter(ctx context.Context, r *kmsg.AddRaftVoterRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.AddRaftVoterResponse)
	err := c.addVoter(ctx, r)
	resp.ErrorCode, resp.ErrorMessage = raftCodeOf(err), errMsg(err)
	return resp
}

func (c *Controller) addVoter(ctx context.Context, r *kmsg.AddRaftVoterRequest) error {
	if err := c.checkClusterID(r.ClusterID); err != nil {
		return err
	}
	if r.VoterID <= 0 {
		return errorf(kerr.InvalidRequest, "Add voter request didn't include a valid voter")
	}
	var addr string
	for i, l := range r.Listeners {
		if i == 0 || l.Name == c.cfg.ControllerListenerName {
			addr = net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port)))
		}
	}
	if addr == "" {
		return errorf(kerr.InvalidRequest, "Add voter request didn't include the endpoint for the listener %s", c.cfg.ControllerListenerName)
	}
	if r.TimeoutMillis > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(r.TimeoutMillis)*time.Millisecond)
		defer cancel()
	}
	st, err := c.log.Status(ctx)
	if err != nil {
		return err
	}
	if st.Role != quorum.RoleLeader {
		return &quorum.NotLeaderError{LeaderID: st.LeaderID}
	}
	id := uint64(r.VoterID)
	for _, v := range st.Voters {
		if v.ID == id {
			return errorf(kerr.DuplicateVoter, "The voter %d is already part of the set of voters.", id)
		}
	}
	observer := false
	for _, o := range st.Observers {
		observer = observer || o.ID == id
	}
	if !observer {
		if err := c.log.AddObserver(ctx, id, addr); err != nil && !errors.Is(err, quorum.ErrAlreadyMember) {
			return err
		}
		c.logger.Info("controller: added an observer to the quorum, to promote it", "node", id, "addr", addr)
	}
	var ticker quorum.Ticker
	for {
		err := c.log.PromoteToVoter(ctx, id)
		if !errors.Is(err, quorum.ErrNotCaughtUp) && !errors.Is(err, quorum.ErrConfChangeInProgress) {
			if err == nil {
				c.logger.Info("controller: promoted to voter", "node", id)
			}
			return err
		}
		if ticker == nil {
			ticker = c.clock.NewTicker(promoteRetry)
			defer ticker.Stop()
		}
		select {
		case <-ticker.C():
		case <-ctx.Done():
			return errorf(kerr.RequestTimedOut, "node %d has not caught up with the metadata log in time: %v", id, err)
		}
	}
}

// removeObserver takes an unregistered broker out of the quorum's membership if it is an
// observer (a broker-only node), at once rather than once it has been silent for
// broker.session.timeout.ms. A voter stays: RemoveRaftVoter is for those. A failure is
// only logged: the silent observer is removed later anyway.
func (c *Controller) removeObserver(ctx context.Context, id int32) {
	st, err := c.log.Status(ctx)
	if err != nil {
		return
	}
	for _, o := range st.Observers {
		if o.ID != uint64(id) {
			continue
		}
		if err := c.log.RemoveNode(ctx, o.ID); err != nil {
			c.logger.Info("controller: the unregistered broker's observer stays until it is silent", "node", id, "err", err)
			return
		}
		c.logger.Info("controller: removed the unregistered broker's observer from the quorum", "node", id)
		return
	}
}

func (c *Controller) removeRaftVoter(ctx context.Context, r *kmsg.RemoveRaftVoterRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.RemoveRaftVoterResponse)
	err := c.checkClusterID(r.ClusterID)
	if err == nil && r.VoterID <= 0 {
		err = errorf(kerr.InvalidRequest, "Remove voter request didn't include a valid voter")
	}
	if err == nil {
		err = c.log.RemoveNode(ctx, uint64(r.VoterID))
	}
	resp.ErrorCode, resp.ErrorMessage = raftCodeOf(err), errMsg(err)
	if err == nil {
		c.logger.Info("controller: removed a node from the quorum", "node", r.VoterID)
	}
	return resp
}
