package metadata

// Snapshots: an image as the records that rebuild it from an empty one.
//
//	snapshot := magic(1 byte, 0x5D) index(uint64 big endian) term(uint64 big endian)
//	            count(uvarint) record{count}
//
// where a record is as in a batch (codec.go): length-prefixed type, version and fields.
// The records come in a fixed order (cluster ID, features, brokers, broker configs,
// topics by name each with its partitions and configs, producer IDs), so two nodes with
// the same image write the same bytes. Decoding replays the records through the same
// validation as any batch, one at a time, without holding them all; the snapshot's
// offset becomes the image's. There is no checksum here: whoever stores a snapshot
// frames it (the local store's frames, the quorum's snapshot files).

import (
	"encoding/binary"
	"fmt"
	"math"
)

const snapshotMagic = 0x5D

// eachRecord calls fn with each record that rebuilds im, in snapshot order, until fn
// returns false. The records are reused from call to call and share the image's
// slices: fn must not keep or modify them.
func (im *Image) eachRecord(fn func(Record) bool) {
	if im.clusterID != "" && !fn(&ClusterIDRecord{ID: im.clusterID}) {
		return
	}
	for _, name := range sortedKeys(im.features) {
		if !fn(&FeatureLevelRecord{Name: name, Level: im.features[name]}) {
			return
		}
	}
	ok := true
	var br RegisterBrokerRecord
	im.brokers.All(func(_ int32, b *Broker) bool {
		br = RegisterBrokerRecord{BrokerID: b.ID, IncarnationID: b.IncarnationID, BrokerEpoch: b.Epoch,
			Listeners: b.Listeners, Rack: b.Rack, Fenced: b.Fenced, InControlledShutdown: b.InControlledShutdown, LogDirs: b.LogDirs}
		ok = fn(&br)
		return ok
	})
	if !ok {
		return
	}
	var cr ConfigRecord
	for _, res := range sortedKeys(im.configs) {
		if !eachConfig(&cr, ResourceBroker, res, im.configs[res], fn) {
			return
		}
	}
	var tr TopicRecord
	var pr PartitionRecord
	im.topics.All(func(_ string, t *Topic) bool {
		tr = TopicRecord{Name: t.Name, ID: t.ID}
		if ok = fn(&tr); !ok {
			return false
		}
		for i := range t.Partitions {
			p := &t.Partitions[i]
			pr = PartitionRecord{TopicID: t.ID, Partition: int32(i), Replicas: p.Replicas(), ISR: p.ISR(),
				RemovingReplicas: p.RemovingReplicas(), AddingReplicas: p.AddingReplicas(), Leader: p.Leader,
				LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ELR: p.ELR(), LastKnownELR: p.LastKnownELR()}
			if ok = fn(&pr); !ok {
				return false
			}
		}
		ok = eachConfig(&cr, ResourceTopic, t.Name, t.Configs, fn)
		return ok
	})
	if !ok {
		return
	}
	if im.producerIDs.Size > 0 {
		r := im.producerIDs
		fn(&r)
	}
}

func eachConfig(cr *ConfigRecord, typ int8, name string, m map[string]string, fn func(Record) bool) bool {
	for _, k := range sortedKeys(m) {
		v := m[k]
		*cr = ConfigRecord{ResourceType: typ, ResourceName: name, Name: k, Value: &v}
		if !fn(cr) {
			return false
		}
	}
	return true
}

// recordCount returns the number of records eachRecord yields, without making them.
func (im *Image) recordCount() int {
	n := len(im.features) + im.brokers.Len() + im.topics.Len() + im.partitions
	if im.clusterID != "" {
		n++
	}
	if im.producerIDs.Size > 0 {
		n++
	}
	for _, m := range im.configs {
		n += len(m)
	}
	im.topics.All(func(_ string, t *Topic) bool { n += len(t.Configs); return true })
	return n
}

// AppendSnapshot appends the snapshot of im to dst.
func AppendSnapshot(dst []byte, im *Image) ([]byte, error) {
	dst = append(dst, snapshotMagic)
	dst = binary.BigEndian.AppendUint64(dst, im.offset.Index)
	dst = binary.BigEndian.AppendUint64(dst, im.offset.Term)
	dst = binary.AppendUvarint(dst, uint64(im.recordCount()))
	var (
		w   writer
		err error
	)
	im.eachRecord(func(r Record) bool {
		dst, err = appendRecord(dst, &w, r)
		return err == nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return dst, nil
}

// DecodeSnapshot rebuilds the image a snapshot holds. Its error wraps ErrCorrupt or
// ErrInvalid, or is an *UnsupportedError.
func DecodeSnapshot(b []byte) (*Image, error) {
	if len(b) < 17 || b[0] != snapshotMagic {
		return nil, fmt.Errorf("%w: not a metadata snapshot", ErrCorrupt)
	}
	off := Offset{Index: binary.BigEndian.Uint64(b[1:]), Term: binary.BigEndian.Uint64(b[9:])}
	r := reader{b: b[17:], scratch: &PartitionRecord{}}
	n := r.count(math.MaxInt32, 4, "records in a snapshot")
	if r.err != nil {
		return nil, r.err
	}
	bl := newBuilder(Empty())
	for i := range n {
		rec, err := r.record()
		if err != nil {
			return nil, fmt.Errorf("snapshot record %d: %w", i, err)
		}
		if why := bl.record(rec); why != "" {
			return nil, &ApplyError{Record: i, Type: rec.Type(), Reason: why}
		}
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last record of a snapshot", ErrCorrupt, len(r.b))
	}
	im, _ := bl.finish(off)
	return im, nil
}
