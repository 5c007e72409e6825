package controller

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/metadata"
)

func unregister(id int32) *kmsg.UnregisterBrokerRequest {
	r := kmsg.NewPtrUnregisterBrokerRequest()
	r.BrokerID = id
	return r
}

// TestUnregisterBroker: UnregisterBroker (kafka-cluster.sh unregister) moves the broker's
// leaderships and ISR places away, then removes its registration (Kafka's
// handleBrokerUnregistered); its partitions keep it as an offline replica. An unknown
// broker is BROKER_ID_NOT_REGISTERED. The broker may register again later.
func TestUnregisterBroker(t *testing.T) {
	h := newHarness(t)
	h.unfencedBrokers(3)
	before := h.createOK("t", 6, 3)

	resp := h.do(unregister(3)).(*kmsg.UnregisterBrokerResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("unregister 3: %v %s", kerr.ErrorForCode(resp.ErrorCode), str(resp.ErrorMessage))
	}
	im := h.image()
	if im.Broker(3) != nil || im.Broker(1) == nil || im.Broker(2) == nil {
		t.Fatalf("after unregistering 3: brokers 1 %v, 2 %v, 3 %v", im.Broker(1) != nil, im.Broker(2) != nil, im.Broker(3) != nil)
	}
	for i, p := range im.Topic("t").Partitions {
		if p.Leader == 3 || p.Leader == metadata.NoLeader || slices.Contains(p.ISR(), 3) || !slices.Contains(p.Replicas(), 3) {
			t.Errorf("partition %d: leader %d isr %v replicas %v; want a leader other than 3, 3 out of the ISR and still a replica", i, p.Leader, p.ISR(), p.Replicas())
		}
		if old := before.Partitions[i]; old.Leader == 3 && p.LeaderEpoch <= old.LeaderEpoch {
			t.Errorf("partition %d: new leader at epoch %d, was %d", i, p.LeaderEpoch, old.LeaderEpoch)
		}
	}

	for _, id := range []int32{3, 9} {
		resp = h.do(unregister(id)).(*kmsg.UnregisterBrokerResponse)
		if resp.ErrorCode != kerr.BrokerIDNotRegistered.Code || resp.ErrorMessage == nil {
			t.Errorf("unregister %d (not registered): %v %s, want BROKER_ID_NOT_REGISTERED with a message", id, kerr.ErrorForCode(resp.ErrorCode), str(resp.ErrorMessage))
		}
	}
	// The broker comes back as a new registration.
	if e := h.register(3, ""); h.image().Broker(3) == nil || h.image().Broker(3).Epoch != e {
		t.Fatalf("broker 3 registering again: %+v", h.image().Broker(3))
	}
}
