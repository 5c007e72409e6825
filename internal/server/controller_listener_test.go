package server_test

import (
	"context"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeController answers DescribeQuorum, as the active controller will.
type fakeController struct{ calls int }

func (f *fakeController) Handle(_ context.Context, req kmsg.Request) kmsg.Response {
	f.calls++
	r := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
	r.ErrorMessage = kmsg.StringPtr("from the fake")
	return r
}

func (f *fakeController) APIs() []kmsg.ApiVersionsResponseApiKey {
	return []kmsg.ApiVersionsResponseApiKey{{ApiKey: 55, MinVersion: 0, MaxVersion: 2}}
}

func apiKeys(resp *kmsg.ApiVersionsResponse) []int16 {
	var keys []int16
	for _, k := range resp.ApiKeys {
		keys = append(keys, k.ApiKey)
	}
	return keys
}

// TestControllerListener: the controller listener answers ApiVersions with itself and
// the installed controller's APIs (the node's own, internal/controller); without a controller, the controller APIs answer
// NOT_CONTROLLER and are not advertised; with one, it answers them; a client API, a
// quorum frame of another cluster (after its rejection) and a frame over vltava.quorum.max.frame.bytes close
// the connection.
func TestControllerListener(t *testing.T) {
	n := startNode(t, map[string]string{"listeners": "PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"controller.listener.names": "CONTROLLER", "vltava.quorum.max.entry.bytes": "4096", "vltava.quorum.max.frame.bytes": "65536"})
	addr := n.srv.ControllerAddrs()[0]
	r := dialRaw(t, addr)
	// The node's own controller is installed: its APIs are advertised.
	av := r.do(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	if want := []int16{18, 19, 20, 33, 37, 43, 44, 45, 46, 55, 56, 62, 63, 64, 67, 80, 81}; av.ErrorCode != 0 || !slices.Equal(apiKeys(av), want) {
		t.Fatalf("ApiVersions with the node's controller: %d %v, want %v", av.ErrorCode, apiKeys(av), want)
	}
	n.srv.SetController(nil)
	av = r.do(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	if av.ErrorCode != 0 || !slices.Equal(apiKeys(av), []int16{18}) {
		t.Fatalf("ApiVersions without a controller: %d %v", av.ErrorCode, apiKeys(av))
	}
	dq := kmsg.NewPtrDescribeQuorumRequest()
	if resp := r.do(dq).(*kmsg.DescribeQuorumResponse); resp.ErrorCode != kerr.NotController.Code {
		t.Fatalf("DescribeQuorum without a controller: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "x", NumPartitions: 1, ReplicationFactor: 1}}
	if resp := r.do(ct).(*kmsg.CreateTopicsResponse); len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != kerr.NotController.Code {
		t.Fatalf("CreateTopics without a controller: %+v", resp.Topics)
	}

	fake := &fakeController{}
	n.srv.SetController(fake)
	av = r.do(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	if !slices.Equal(apiKeys(av), []int16{18, 55}) {
		t.Fatalf("ApiVersions with a controller: %v", apiKeys(av))
	}
	dq.Version = 2 // with the error message
	if resp := r.do(dq).(*kmsg.DescribeQuorumResponse); resp.ErrorCode != 0 || fake.calls != 1 ||
		resp.ErrorMessage == nil || *resp.ErrorMessage != "from the fake" {
		t.Fatalf("DescribeQuorum with a controller: %+v, %d calls", resp, fake.calls)
	}
	r.write(frame(ct, 99)) // not one of its APIs
	r.expectClosed()

	// A client API is not served here.
	r = dialRaw(t, addr)
	r.write(frame(kmsg.NewPtrMetadataRequest(), 1))
	r.expectClosed()

	// A quorum frame of another cluster is answered INCONSISTENT_CLUSTER_ID with this
	// cluster's id, then the connection is closed.
	r = dialRaw(t, addr)
	body := binary.BigEndian.AppendUint16(nil, 5)
	body = append(body, "other"...)
	body = binary.BigEndian.AppendUint32(body, 1)
	r.write(quorumFrame(body))
	_, rej, err := r.readFrame()
	cid := n.srv.Broker().ClusterID()
	if err != nil || len(rej) != 4+len(cid) || int16(binary.BigEndian.Uint16(rej)) != kerr.InconsistentClusterID.Code ||
		string(rej[4:]) != cid {
		t.Fatalf("a frame of another cluster: answered %x (%v), want INCONSISTENT_CLUSTER_ID and %q", rej, err, cid)
	}
	r.expectClosed()

	// A frame over vltava.quorum.max.frame.bytes.
	r = dialRaw(t, addr)
	r.write(binary.BigEndian.AppendUint32(nil, 65537))
	r.expectClosed()

	// The clients' listener does not route quorum frames.
	r = dialRaw(t, n.addr)
	r.write(quorumFrame(body))
	r.expectClosed()
}

// quorumFrame is a frame of the quorum's private API key 1000 around body.
func quorumFrame(body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint16(b, 1000)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len("vltava-raft-2")))
	b = append(b, "vltava-raft-2"...)
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}
