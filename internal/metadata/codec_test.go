package metadata

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func sampleRecords() []Record {
	v := "compact"
	empty := ""
	return []Record{
		&ClusterIDRecord{ID: "MkU3OEVBNTcwNTJENDM2Qk"},
		&FeatureLevelRecord{Name: "metadata.version", Level: 7},
		&FeatureLevelRecord{Name: "kraft.version", Level: 0},
		&RegisterBrokerRecord{BrokerID: 3, IncarnationID: uuid.UUID{1, 2, 3}, BrokerEpoch: 1 << 40,
			Listeners: []Listener{{Name: "PLAINTEXT", Host: "10.0.0.3", Port: 9092}, {Name: "INTERNAL", Host: "h", Port: 65535, SecurityProtocol: ProtocolSASLSSL}},
			Rack:      "eu-1a", Fenced: true, InControlledShutdown: true, LogDirs: []uuid.UUID{{9}, {8}}},
		&RegisterBrokerRecord{BrokerID: 0},
		&BrokerRegistrationChangeRecord{BrokerID: 3, BrokerEpoch: 77, Fenced: FenceUnfence, InControlledShutdown: true},
		&UnregisterBrokerRecord{BrokerID: 2147483647, BrokerEpoch: -1},
		&TopicRecord{Name: "orders", ID: uuid.UUID{0xff}},
		&PartitionRecord{TopicID: uuid.UUID{0xff}, Partition: 12, Replicas: []int32{3, 1, 2}, ISR: []int32{3, 1},
			RemovingReplicas: []int32{2}, AddingReplicas: []int32{1}, Leader: 3, LeaderEpoch: 9, PartitionEpoch: 40,
			ELR: []int32{2}, LastKnownELR: []int32{2}},
		&PartitionRecord{TopicID: uuid.UUID{0xff}, Replicas: []int32{1}, Leader: NoLeader},
		&PartitionChangeRecord{TopicID: uuid.UUID{0xff}, Partition: 12, PartitionEpoch: 40, Set: SetISR | SetLeader,
			ISR: []int32{1}, Leader: 1},
		&PartitionChangeRecord{TopicID: uuid.UUID{0xff}, Partition: 1, Set: allPartitionFields, Replicas: []int32{1, 2},
			ISR: []int32{2}, Leader: -1, RemovingReplicas: []int32{1}, AddingReplicas: []int32{2}, ELR: []int32{1}, LastKnownELR: []int32{1}},
		&PartitionChangeRecord{TopicID: uuid.UUID{0xff}},
		&RemoveTopicRecord{ID: uuid.UUID{0xee}},
		&ConfigRecord{ResourceType: ResourceTopic, ResourceName: "orders", Name: "cleanup.policy", Value: &v},
		&ConfigRecord{ResourceType: ResourceBroker, Name: "compression.type"},
		&ConfigRecord{ResourceType: ResourceBroker, ResourceName: "3", Name: "x", Value: &empty},
		&ProducerIDsRecord{BrokerID: 1, BrokerEpoch: 5, FirstID: 1 << 50, Size: 1000},
		&NoOpRecord{},
	}
}

func TestBatchRoundTrip(t *testing.T) {
	rs := sampleRecords()
	b, err := AppendBatch(nil, rs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rs) {
		t.Fatalf("%d records back, want %d", len(got), len(rs))
	}
	for i := range rs {
		if !reflect.DeepEqual(got[i], rs[i]) {
			t.Errorf("record %d (%s): got %+v, want %+v", i, rs[i].Type(), got[i], rs[i])
		}
	}
}

// TestRecordLayout pins the bytes of a few records, so a change of layout is a
// deliberate one (a new record version), not an accident.
func TestRecordLayout(t *testing.T) {
	for _, tc := range []struct {
		r    Record
		want []byte
	}{
		{&TopicRecord{Name: "t", ID: uuid.UUID{0xab}}, append([]byte{0, 2, 0, 1, 't', 0xab}, make([]byte, 15)...)},
		{&ConfigRecord{ResourceType: ResourceBroker, Name: "k"}, []byte{0, 4, 0, 4, 0, 1, 'k', 0}},
		{&PartitionChangeRecord{Partition: -1, PartitionEpoch: 2, Set: SetLeader, Leader: 3},
			append(append([]byte{0, 5, 0}, make([]byte, 16)...), 1, 4, byte(SetLeader), 6)},
		{&NoOpRecord{}, []byte{0, 20, 0}},
		{&ClusterIDRecord{ID: "c"}, []byte{0x40, 0, 0, 1, 'c'}},
	} {
		b, err := AppendBatch(nil, []Record{tc.r})
		if err != nil {
			t.Fatal(err)
		}
		want := append([]byte{batchMagic, 1, byte(len(tc.want))}, tc.want...)
		if !bytes.Equal(b, want) {
			t.Errorf("%s: % x, want % x", tc.r.Type(), b, want)
		}
	}
}

// batchOf builds a batch of raw records: each is type, version and field bytes.
func batchOf(records ...[]byte) []byte {
	b := []byte{batchMagic}
	b = binary.AppendUvarint(b, uint64(len(records)))
	for _, r := range records {
		b = binary.AppendUvarint(b, uint64(len(r)))
		b = append(b, r...)
	}
	return b
}

func rec(t RecordType, version uint8, fields ...byte) []byte {
	return append([]byte{byte(t >> 8), byte(t), version}, fields...)
}

func TestDecodeBatchRefusesBadInput(t *testing.T) {
	id := make([]byte, 16)
	topic := func(name ...byte) []byte {
		return rec(TypeTopic, 0, append(append(binary.AppendUvarint(nil, uint64(len(name))), name...), id...)...)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "not a batch"},
		{"JSON", []byte(`{"topic":{}}`), "not a batch"},
		{"no records", []byte{batchMagic, 0}, "an empty batch"},
		{"more records than the cap", binary.AppendUvarint([]byte{batchMagic}, MaxBatchRecords+1), "over the limit"},
		{"more records than bytes", []byte{batchMagic, 100, 3, 0, 20, 0}, "with 4 bytes left"},
		{"bad count varint", []byte{batchMagic, 0xff, 0xff}, "bad varint"},
		{"record shorter than its header", append(batchOf([]byte{0, 20}), 0), "a record of 2 bytes"},
		{"record length past the end", append([]byte{batchMagic, 1, 9}, rec(TypeNoOp, 0)...), "with 3 bytes left"},
		{"unknown type", batchOf(rec(777, 0)), "unknown metadata record type 777"},
		{"version too new", batchOf(rec(TypeNoOp, 1)), "version 1 is newer"},
		{"bytes after the fields", batchOf(rec(TypeNoOp, 0, 1)), "1 bytes after the fields"},
		{"bytes after the batch", append(batchOf(rec(TypeNoOp, 0)), 0), "after the last record"},
		{"truncated uuid", batchOf(rec(TypeRemoveTopic, 0, 1, 2, 3)), "truncated at topic ID"},
		{"string past the end", batchOf(rec(TypeClusterID, 0, 5, 'a')), "with 1 bytes left"},
		{"string over its cap", batchOf(topic(bytes.Repeat([]byte{'a'}, 256)...)), "over the limit of 255"},
		{"string not UTF-8", batchOf(topic(0xff, 0xfe)), "not UTF-8"},
		{"bool of 2", batchOf(rec(TypeBrokerRegistrationChange, 0, 2, 2, 0, 2)), "not a bool"},
		{"int32 out of range", batchOf(rec(TypeUnregisterBroker, 0, 0x80, 0x80, 0x80, 0x80, 0x20, 0)), "out of range"},
		{"port 0", batchOf(rec(TypeRegisterBroker, 0, append(append([]byte{2}, id...), 2, 1, 1, 'l', 1, 'h', 0, 0, 0, 0, 0, 0)...)), "listener port 0 out of range"},
		{"unknown changed fields", batchOf(rec(TypePartitionChange, 0, append(id, 0, 0, 0x80)...)), "unknown changed fields"},
		{"replica list longer than its bytes", batchOf(rec(TypePartitionChange, 0, append(id, 0, 0, byte(SetISR), 50, 2)...)), "ISR 50 with 1 bytes left"},
		{"nullable string past the end", batchOf(rec(TypeConfig, 0, 4, 0, 1, 'k', 9, 'v')), "config value of 8 bytes with 1 left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := DecodeBatch(tc.b)
			if err == nil {
				t.Fatalf("decoded %+v", rs)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to say %q", err, tc.want)
			}
			var unsupported *UnsupportedError
			if !errors.Is(err, ErrCorrupt) && !errors.As(err, &unsupported) {
				t.Fatalf("error %v is neither ErrCorrupt nor UnsupportedError", err)
			}
		})
	}
}

func TestEncodeRefusesWhatCannotBeRead(t *testing.T) {
	big := strings.Repeat("x", maxConfigValue+1)
	for _, tc := range []struct {
		name string
		rs   []Record
	}{
		{"no records", nil},
		{"too many records", make([]Record, MaxBatchRecords+1)},
		{"config value over its cap", []Record{&ConfigRecord{ResourceType: ResourceTopic, ResourceName: "t", Name: "k", Value: &big}}},
		{"topic name over its cap", []Record{&TopicRecord{Name: strings.Repeat("t", 256)}}},
		{"replica list over its cap", []Record{&PartitionRecord{Replicas: make([]int32, maxReplicas+1)}}},
		{"unknown changed fields", []Record{&PartitionChangeRecord{Set: 0x80}}},
		{"too many listeners", []Record{&RegisterBrokerRecord{Listeners: make([]Listener, maxListeners+1)}}},
	} {
		if _, err := AppendBatch(nil, tc.rs); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v, want ErrTooLarge", tc.name, err)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	b, _ := AppendBatch(nil, sampleRecords())
	f.Add(b)
	for _, r := range sampleRecords() {
		b, _ := AppendBatch(nil, []Record{r})
		f.Add(b)
	}
	base := testImage(f, 2, 3)
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := DecodeBatch(data)
		if err != nil {
			var unsupported *UnsupportedError
			if !errors.Is(err, ErrCorrupt) && !errors.As(err, &unsupported) {
				t.Fatalf("error %v is neither ErrCorrupt nor UnsupportedError", err)
			}
			return
		}
		again, err := AppendBatch(nil, rs)
		if err != nil {
			t.Fatalf("a decoded batch does not encode: %v", err)
		}
		rs2, err := DecodeBatch(again)
		if err != nil || !reflect.DeepEqual(rs, rs2) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, rs, rs2)
		}
		// Whatever decodes applies or is refused, and a refusal changes nothing.
		next, d, err := base.Apply(Offset{Index: base.offset.Index + 1, Term: 1}, rs)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || next != nil || d != nil {
				t.Fatalf("refused batch: %v, image %v", err, next)
			}
			return
		}
		checkImage(t, next)
	})
}
