package group

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzReplayRecord feeds arbitrary records to the load path: whatever is in
// __consumer_offsets (anyone allowed to produce to it can write anything),
// replay must return an error or apply it, never panic.
func FuzzReplayRecord(f *testing.F) {
	oc := offsetValue(offsetCommit{offset: 5, leaderEpoch: 1, metadata: "m"})
	gv := kmsg.NewGroupMetadataValue()
	gv.Version = 3
	gv.ProtocolType = "consumer"
	gv.Members = []kmsg.GroupMetadataValueMember{{MemberID: "m", Subscription: []byte{0}}}
	f.Add(offsetKey("g", "t", 0), oc)
	f.Add(groupKey("g"), gv.AppendTo(nil))
	f.Add(consumerGroupKey("g"), encodeJSONValue(consumerGroupValue{Epoch: 3}))
	f.Add(consumerMemberKey("g", "m"), encodeJSONValue(consumerMemberValue{MemberEpoch: 2, Assigned: map[string][]int32{"01000000000000000000000000000000": {0}}}))
	f.Add([]byte{0, 9}, []byte(nil))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		c := New(testConfig(), newMemStore())
		defer c.Close()
		c.mu.Lock()
		defer c.mu.Unlock()
		_ = c.replayRecord(0, Record{Key: key, Value: value})
		_ = c.replayRecord(0, Record{Key: key})
	})
}
