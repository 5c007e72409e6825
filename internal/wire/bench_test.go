package wire

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkDecodeProduce measures what the broker does to a produce request before the
// batch checks: the header, then kmsg's decode of the body (records stay as bytes).
func BenchmarkDecodeProduce(b *testing.B) {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = -1
	for t := 0; t < 2; t++ {
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "bench-topic"
		for p := int32(0); p < 8; p++ {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = p
			rp.Records = make([]byte, 16<<10)
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	frame := binary.BigEndian.AppendUint16(nil, 0)
	frame = binary.BigEndian.AppendUint16(frame, 9)
	frame = binary.BigEndian.AppendUint32(frame, 1)
	frame = binary.BigEndian.AppendUint16(frame, 6)
	frame = append(frame, "client"...)
	frame = append(frame, 0)
	frame = req.AppendTo(frame)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		_, body, err := ParseHeader(frame, func(int16, int16) bool { return true })
		if err != nil {
			b.Fatal(err)
		}
		r := kmsg.NewPtrProduceRequest()
		r.SetVersion(9)
		if err := r.ReadFrom(body); err != nil {
			b.Fatal(err)
		}
	}
}
