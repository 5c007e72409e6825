package broker

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

type fakeChannel struct{ resp kmsg.Response }

func (f fakeChannel) Send(_ context.Context, req kmsg.Request) (kmsg.Response, error) {
	if _, ok := req.(*kmsg.AlterPartitionRequest); !ok {
		panic("not an AlterPartition")
	}
	return f.resp, nil
}

// TestChannelISR: an AlterPartition sent through a controller channel comes back as its
// response; any other answer is an error, never a panic.
func TestChannelISR(t *testing.T) {
	want := kmsg.NewPtrAlterPartitionResponse()
	want.ThrottleMillis = 7
	got, err := channelISR{fakeChannel{want}}.AlterPartition(context.Background(), kmsg.NewPtrAlterPartitionRequest())
	if err != nil || got != want {
		t.Fatalf("AlterPartition through a channel: %v %v", got, err)
	}
	if _, err := (channelISR{fakeChannel{kmsg.NewPtrMetadataResponse()}}).AlterPartition(context.Background(), kmsg.NewPtrAlterPartitionRequest()); err == nil {
		t.Fatal("a Metadata response to an AlterPartition was taken")
	}
}
