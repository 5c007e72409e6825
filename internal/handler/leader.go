package handler

// Partitions this node does not lead: the answer is NOT_LEADER_OR_FOLLOWER, and from
// Produce v10 and Fetch v12 (KIP-951) with the leader the metadata names, its leader
// epoch, and (Produce v10, Fetch v16) the leader's endpoint on the clients' listener, so
// the client moves to it without a metadata round trip.

import (
	"errors"

	"github.com/vltava/vltava/internal/broker"
	"github.com/vltava/vltava/internal/metadata"
)

// currentLeader returns the leader a NOT_LEADER_OR_FOLLOWER error names, if it names one.
func currentLeader(err error) (*broker.NotLeaderError, bool) {
	var nl *broker.NotLeaderError
	if errors.As(err, &nl) && nl.LeaderID >= 0 {
		return nl, true
	}
	return nil, false
}

// leaderEndpoints collects the endpoints of the leaders named in a response.
type leaderEndpoints struct {
	im       *metadata.Image
	listener string
	ids      []int32
}

// add records leader id and reports whether it has an endpoint on the listener.
func (e *leaderEndpoints) add(id int32) bool {
	b := e.im.Broker(id)
	if b == nil || b.Fenced || b.Listener(e.listener) == nil {
		return false
	}
	for _, x := range e.ids {
		if x == id {
			return true
		}
	}
	e.ids = append(e.ids, id)
	return true
}

// each calls fn with each leader's endpoint.
func (e *leaderEndpoints) each(fn func(b *metadata.Broker, l *metadata.Listener)) {
	for _, id := range e.ids {
		b := e.im.Broker(id)
		fn(b, b.Listener(e.listener))
	}
}
