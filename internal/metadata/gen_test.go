package metadata

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/google/uuid"
)

// gen makes random batches that apply to the image they are made for: topics created
// and deleted, leaders elected, ISRs shrunk and grown, replicas reassigned, configs,
// brokers registered, fenced and unfenced, producer IDs handed out. Tests use it to
// check properties over many histories.
type gen struct {
	rng   *rand.Rand
	topic int
}

func newGen(seed uint64) *gen { return &gen{rng: rand.New(rand.NewPCG(seed, 99))} }

const genBrokers = 5

// batch returns a batch for im of one to a few records.
func (g *gen) batch(im *Image) []Record {
	var rs []Record
	cur := im
	for n := 1 + g.rng.IntN(3); n > 0; n-- {
		r := g.one(cur)
		next, _, err := cur.Apply(Offset{Index: cur.offset.Index + 1, Term: max(cur.offset.Term, 1)}, r)
		if err != nil {
			panic(fmt.Sprintf("generated records do not apply: %v", err))
		}
		rs, cur = append(rs, r...), next
	}
	return rs
}

func (g *gen) replicas(n int) []int32 {
	perm := g.rng.Perm(genBrokers)[:n]
	out := make([]int32, n)
	for i, b := range perm {
		out[i] = int32(b + 1)
	}
	return out
}

func (g *gen) pickTopic(im *Image) *Topic {
	names := im.TopicNames()
	if len(names) == 0 {
		return nil
	}
	return im.Topic(names[g.rng.IntN(len(names))])
}

func (g *gen) one(im *Image) []Record {
	t := g.pickTopic(im)
	switch k := g.rng.IntN(12); {
	case k < 3 || t == nil:
		g.topic++
		id := uuid.UUID{0xa, byte(g.topic >> 8), byte(g.topic)}
		name := fmt.Sprintf("g%d", g.topic)
		if g.rng.IntN(4) == 0 && t != nil {
			// A name deleted and created again, in one batch.
			name = t.Name
			return append([]Record{&RemoveTopicRecord{ID: t.ID}}, g.topicRecords(name, id)...)
		}
		return g.topicRecords(name, id)
	case k < 7:
		i := int32(g.rng.IntN(len(t.Partitions)))
		return []Record{g.change(t, i)}
	case k == 7:
		return []Record{&RemoveTopicRecord{ID: t.ID}}
	case k == 8:
		v := fmt.Sprint(g.rng.IntN(3))
		var val *string
		if v != "0" {
			val = &v
		}
		if g.rng.IntN(2) == 0 {
			return []Record{&ConfigRecord{ResourceType: ResourceBroker, ResourceName: []string{"", "1", "2"}[g.rng.IntN(3)], Name: "k" + v, Value: val}}
		}
		return []Record{&ConfigRecord{ResourceType: ResourceTopic, ResourceName: t.Name, Name: "k" + v, Value: val}}
	case k == 9:
		id := int32(1 + g.rng.IntN(genBrokers))
		var epoch int64 = 1
		if b := im.Broker(id); b != nil {
			if g.rng.IntN(2) == 0 {
				return []Record{&BrokerRegistrationChangeRecord{BrokerID: id, BrokerEpoch: b.Epoch,
					Fenced: int8(g.rng.IntN(3) - 1), InControlledShutdown: g.rng.IntN(4) == 0}}
			}
			epoch = b.Epoch + 1
		}
		return []Record{&RegisterBrokerRecord{BrokerID: id, IncarnationID: uuid.UUID{byte(epoch)}, BrokerEpoch: epoch,
			Listeners: []Listener{{Name: "PLAINTEXT", Host: "h", Port: uint16(9000 + id)}}, Fenced: g.rng.IntN(2) == 0}}
	case k == 10:
		return []Record{&ProducerIDsRecord{BrokerID: 1, FirstID: im.NextProducerID() + int64(g.rng.IntN(2)), Size: 1000}}
	default:
		return []Record{&FeatureLevelRecord{Name: "f", Level: int16(g.rng.IntN(3))}}
	}
}

func (g *gen) topicRecords(name string, id uuid.UUID) []Record {
	rs := []Record{&TopicRecord{Name: name, ID: id}}
	for p := range int32(1 + g.rng.IntN(4)) {
		r := g.replicas(1 + g.rng.IntN(3))
		rs = append(rs, &PartitionRecord{TopicID: id, Partition: p, Replicas: r, ISR: slices.Clone(r), Leader: r[0]})
	}
	return rs
}

// change makes a valid PartitionChangeRecord for partition i of t.
func (g *gen) change(t *Topic, i int32) *PartitionChangeRecord {
	p := t.Partition(i)
	r := &PartitionChangeRecord{TopicID: t.ID, Partition: i, PartitionEpoch: p.PartitionEpoch}
	isr := p.ISR()
	switch g.rng.IntN(4) {
	case 0: // a new leader from the ISR, or none
		r.Set = SetLeader
		r.Leader = NoLeader
		if len(isr) > 0 {
			r.Leader = isr[g.rng.IntN(len(isr))]
		}
	case 1: // the ISR shrinks to the leader, or grows back to every replica
		r.Set = SetISR | SetELR
		if len(isr) > 1 && p.Leader != NoLeader {
			r.ISR = []int32{p.Leader}
		} else {
			r.ISR = slices.Clone(p.Replicas())
			if p.Leader == NoLeader {
				r.Set |= SetLeader
				r.Leader = r.ISR[0]
			}
		}
	case 2: // reassigned to new replicas, led by the first
		r.Set = SetReplicas | SetISR | SetLeader | SetELR | SetLastKnownELR
		r.Replicas = g.replicas(1 + g.rng.IntN(3))
		r.ISR, r.Leader = slices.Clone(r.Replicas), r.Replicas[0]
	default: // nothing but the partition epoch
	}
	return r
}
