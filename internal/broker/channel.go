package broker

// The controller channel: how this node's broker reaches the active controller, as
// Kafka's NodeToControllerChannelManager does. Send takes a request of a controller API
// and returns the active controller's response:
//
//   - in-process (the controller's Handle) when this node's own controller is active;
//   - otherwise over TCP to the controller listener of the quorum's leader: its address
//     is the voter's in controller.quorum.voters, or in the quorum's applied
//     configuration (voters added at run time).
//
// A response that says the node is not the controller (NOT_CONTROLLER; for the raft
// APIs NOT_LEADER_OR_FOLLOWER), a broken connection or no known leader make Send find
// the controller again and retry, until the request's context ends: then the last
// response is returned if there was one (the client sees NOT_CONTROLLER only when the
// cluster has had none all along), else the context's error (REQUEST_TIMED_OUT).
//
// Bounded: one connection, requests serialised on it (each waits for its response); a
// response frame is at most vltava.quorum.max.frame.bytes, as the controller listener's
// frames are.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/quorum"
	"github.com/vltava/vltava/internal/wire"
)

// LocalController is this node's controller as the channel uses it (*controller.Controller).
type LocalController interface {
	Active() bool
	Handle(ctx context.Context, req kmsg.Request) kmsg.Response
}

// channelPeer is what the channel needs of the quorum member.
type channelPeer interface {
	Leader() (quorum.LeaderInfo, <-chan struct{})
	Status(ctx context.Context) (quorum.Status, error)
	// Err is the failure that stopped the member (its storage), nil while it runs.
	Err() error
}

// ControllerChannel sends requests to the active controller.
type ControllerChannel struct {
	self     int32
	local    LocalController // nil on a node that is not a controller
	peer     channelPeer
	voters   map[int32]string // controller.quorum.voters
	clientID string
	maxFrame int32
	backoff  time.Duration                                            // controller.quorum.retry.backoff.ms
	dial     time.Duration                                            // controller.quorum.request.timeout.ms
	dialFunc func(ctx context.Context, addr string) (net.Conn, error) // nil: TCP

	mu     sync.Mutex // serialises requests on the connection
	conn   net.Conn
	connTo string
	br     *bufio.Reader
	corr   int32
}

// errNoController is the error of a try that found no controller to ask.
var errNoController = errors.New("no active controller known")

// Send sends req to the active controller and returns its response (see the top of the
// file). req's version must be one the controller serves.
func (c *ControllerChannel) Send(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	var last kmsg.Response
	var lastErr error
	for {
		li, changed := c.peer.Leader()
		resp, err := c.try(ctx, li, req)
		if err == nil && !notController(resp) {
			return resp, nil
		}
		if err == nil {
			last = resp
		} else {
			lastErr = err
		}
		if qerr := c.peer.Err(); qerr != nil {
			// This node's metadata log failed (it halts): no controller here, and none
			// of this node's changes can be applied here.
			return nil, fmt.Errorf("%w: the metadata log failed: %v", kerr.KafkaStorageError, qerr)
		}
		t := time.NewTimer(c.backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			if last != nil {
				return last, nil
			}
			return nil, fmt.Errorf("send %s to the controller: %w (last: %v)", kmsg.NameForKey(req.Key()), ctx.Err(), lastErr)
		case <-changed:
			t.Stop()
		case <-t.C:
		}
	}
}

// try sends req once to the controller li names.
func (c *ControllerChannel) try(ctx context.Context, li quorum.LeaderInfo, req kmsg.Request) (kmsg.Response, error) {
	if li.LeaderID == 0 {
		return nil, errNoController
	}
	if int32(li.LeaderID) == c.self && c.local != nil {
		// Leading but not active yet (its first entry is not committed): Handle waits
		// for the activation itself.
		resp := c.local.Handle(ctx, req)
		if resp == nil {
			return nil, fmt.Errorf("the controller does not serve %s", kmsg.NameForKey(req.Key()))
		}
		return resp, nil
	}
	addr := c.voters[int32(li.LeaderID)]
	if addr == "" {
		if st, err := c.peer.Status(ctx); err == nil {
			for _, v := range st.Voters {
				if v.ID == li.LeaderID {
					addr = v.Addr
				}
			}
		}
	}
	if addr == "" {
		return nil, fmt.Errorf("%w: no address for controller %d", errNoController, li.LeaderID)
	}
	return c.roundTrip(ctx, addr, req)
}

// roundTrip sends req on the connection to addr (dialling it if needed) and reads its
// response. Any failure closes the connection.
func (c *ControllerChannel) roundTrip(ctx context.Context, addr string, req kmsg.Request) (kmsg.Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil && c.connTo != addr {
		c.closeLocked()
	}
	if c.conn == nil {
		dctx, cancel := context.WithTimeout(ctx, c.dial)
		var nc net.Conn
		var err error
		if c.dialFunc != nil {
			nc, err = c.dialFunc(dctx, addr)
		} else {
			nc, err = (&net.Dialer{}).DialContext(dctx, "tcp", addr)
		}
		cancel()
		if err != nil {
			return nil, fmt.Errorf("dial the controller at %s: %w", addr, err)
		}
		c.conn, c.connTo, c.br = nc, addr, bufio.NewReader(nc)
	}
	// The context's end interrupts the exchange; a connection whose deadline it moved
	// is not used again.
	nc := c.conn
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer func() {
		if !stop() && c.conn == nc {
			c.closeLocked()
		}
	}()
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetDeadline(dl)
	} else {
		c.conn.SetDeadline(time.Time{})
	}
	c.corr++
	frame := appendRequestFrame(nil, c.corr, c.clientID, req)
	if _, err := c.conn.Write(frame); err != nil {
		c.closeLocked()
		return nil, fmt.Errorf("send to the controller at %s: %w", addr, err)
	}
	resp, err := c.readResponse(req)
	if err != nil {
		c.closeLocked()
		return nil, fmt.Errorf("read from the controller at %s: %w", addr, err)
	}
	return resp, nil
}

func (c *ControllerChannel) readResponse(req kmsg.Request) (kmsg.Response, error) {
	n, err := wire.ReadSize(c.br, c.maxFrame)
	if err != nil {
		return nil, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return nil, err
	}
	if len(body) < 4 || int32(binary.BigEndian.Uint32(body)) != c.corr {
		return nil, errors.New("response out of order")
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != 18 { // ApiVersions' response header is never flexible
		if body, err = wire.SkipTags(body); err != nil {
			return nil, err
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decode %s: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// Close closes the connection.
func (c *ControllerChannel) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked()
}

func (c *ControllerChannel) closeLocked() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.connTo, c.br = nil, "", nil
	}
}

// appendRequestFrame appends req as a size-prefixed frame with a v1 (or, flexible, v2)
// request header.
func appendRequestFrame(dst []byte, corr int32, clientID string, req kmsg.Request) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.Key()))
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.GetVersion()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(clientID)))
	dst = append(dst, clientID...)
	if req.IsFlexible() {
		dst = append(dst, 0) // no tagged fields
	}
	dst = req.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// notController reports whether a controller's response says it is not the active
// controller (the raft APIs: not the quorum's leader).
func notController(resp kmsg.Response) bool {
	nc := kerr.NotController.Code
	switch r := resp.(type) {
	case *kmsg.CreateTopicsResponse:
		for _, t := range r.Topics {
			if t.ErrorCode == nc {
				return true
			}
		}
	case *kmsg.DeleteTopicsResponse:
		for _, t := range r.Topics {
			if t.ErrorCode == nc {
				return true
			}
		}
	case *kmsg.CreatePartitionsResponse:
		for _, t := range r.Topics {
			if t.ErrorCode == nc {
				return true
			}
		}
	case *kmsg.AlterConfigsResponse:
		for _, t := range r.Resources {
			if t.ErrorCode == nc {
				return true
			}
		}
	case *kmsg.IncrementalAlterConfigsResponse:
		for _, t := range r.Resources {
			if t.ErrorCode == nc {
				return true
			}
		}
	case *kmsg.BrokerRegistrationResponse:
		return r.ErrorCode == nc
	case *kmsg.BrokerHeartbeatResponse:
		return r.ErrorCode == nc
	case *kmsg.AllocateProducerIDsResponse:
		return r.ErrorCode == nc
	case *kmsg.AlterPartitionResponse:
		return r.ErrorCode == nc
	case *kmsg.UnregisterBrokerResponse:
		return r.ErrorCode == nc
	case *kmsg.AlterPartitionAssignmentsResponse:
		return r.ErrorCode == nc
	case *kmsg.ListPartitionReassignmentsResponse:
		return r.ErrorCode == nc
	case *kmsg.ElectLeadersResponse:
		if r.ErrorCode == nc {
			return true
		}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode == nc {
					return true
				}
			}
		}
	case *kmsg.DescribeQuorumResponse:
		return r.ErrorCode == nc || r.ErrorCode == kerr.NotLeaderForPartition.Code ||
			(len(r.Topics) > 0 && len(r.Topics[0].Partitions) > 0 && r.Topics[0].Partitions[0].ErrorCode == kerr.NotLeaderForPartition.Code)
	case *kmsg.AddRaftVoterResponse:
		return r.ErrorCode == nc || r.ErrorCode == kerr.NotLeaderForPartition.Code
	case *kmsg.RemoveRaftVoterResponse:
		return r.ErrorCode == nc || r.ErrorCode == kerr.NotLeaderForPartition.Code
	}
	return false
}

// Forward sends req to the active controller for a client (DescribeQuorum sent to a
// broker), bounded by request.timeout.ms.
func (b *Broker) Forward(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, b.requestTimeout())
	defer cancel()
	return b.channel.Send(ctx, req)
}

// ForwardChange is Forward for a request that changes metadata (ElectLeaders): it
// returns once this node's image holds the change, so the client's next request to
// this node sees it.
func (b *Broker) ForwardChange(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, b.requestTimeout())
	defer cancel()
	if w, ok := b.writer.(*channelWriter); ok {
		return w.send(ctx, req, true)
	}
	return b.channel.Send(ctx, req)
}
