package group

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// benchSpec is 100 members subscribed to 10 topics of 100 partitions each.
func benchSpec() assignSpec {
	spec := assignSpec{topics: make(map[[16]byte]int32)}
	all := make(map[[16]byte]bool)
	for i := range 10 {
		id := [16]byte{byte(i + 1)}
		spec.topics[id] = 100
		all[id] = true
	}
	for i := range 100 {
		spec.members = append(spec.members, assignMember{id: fmt.Sprintf("m%03d", i), topics: all})
	}
	return spec
}

func BenchmarkAssignUniform(b *testing.B) {
	spec := benchSpec()
	prev := assignUniform(spec)
	// One member leaves and one joins: the sticky path.
	spec.members = append(spec.members[1:], assignMember{id: "new", topics: spec.members[0].topics})
	spec.prev = prev
	b.ResetTimer()
	for b.Loop() {
		assignUniform(spec)
	}
}

func BenchmarkAssignRange(b *testing.B) {
	spec := benchSpec()
	for b.Loop() {
		assignRange(spec)
	}
}

func BenchmarkOffsetCommit(b *testing.B) {
	c := New(testConfig(), newMemStore())
	defer c.Close()
	if err := c.Load(bg); err != nil {
		b.Fatal(err)
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group = "g"
	for p := range int32(10) {
		if len(req.Topics) == 0 {
			req.Topics = append(req.Topics, kmsg.OffsetCommitRequestTopic{Topic: "t"})
		}
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, kmsg.OffsetCommitRequestTopicPartition{Partition: p, Offset: 1})
	}
	b.ReportAllocs()
	for b.Loop() {
		c.OffsetCommit(bg, req)
	}
}
