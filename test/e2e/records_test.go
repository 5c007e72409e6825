package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
)

// rec is one record as every client reports it. Key and value keep the
// difference between null (nil) and empty (non-nil, length 0).
type rec struct {
	P      int32  `json:"p"`
	O      int64  `json:"o"`
	TS     int64  `json:"ts"`
	TSType int    `json:"tstype"` // 0 CreateTime, 1 LogAppendTime
	K      []byte `json:"k"`
	V      []byte `json:"v"`
	H      []hdr  `json:"h"`
}

// hdr is a record header; JSON form [key, base64 value].
type hdr struct {
	K string
	V []byte
}

func (h hdr) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{h.K, h.V})
}

func (h *hdr) UnmarshalJSON(b []byte) error {
	var pair []json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	if len(pair) != 2 {
		return fmt.Errorf("header %s: want [key, value]", b)
	}
	if err := json.Unmarshal(pair[0], &h.K); err != nil {
		return err
	}
	var v *string
	if err := json.Unmarshal(pair[1], &v); err != nil {
		return err
	}
	if v != nil {
		d, err := base64.StdEncoding.DecodeString(*v)
		if err != nil {
			return err
		}
		h.V = d
	}
	return nil
}

// UnmarshalJSON decodes base64 keys and values by hand so that "" (empty,
// a non-nil slice) and null (nil) stay apart visibly, not by a detail of
// encoding/json.
func (r *rec) UnmarshalJSON(b []byte) error {
	var raw struct {
		P      int32   `json:"p"`
		O      int64   `json:"o"`
		TS     int64   `json:"ts"`
		TSType int     `json:"tstype"`
		K      *string `json:"k"`
		V      *string `json:"v"`
		H      []hdr   `json:"h"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	dec := func(s *string) ([]byte, error) {
		if s == nil {
			return nil, nil
		}
		d, err := base64.StdEncoding.DecodeString(*s)
		if d == nil {
			d = []byte{}
		}
		return d, err
	}
	var err error
	*r = rec{P: raw.P, O: raw.O, TS: raw.TS, TSType: raw.TSType, H: raw.H}
	if r.K, err = dec(raw.K); err != nil {
		return err
	}
	r.V, err = dec(raw.V)
	return err
}

func (r rec) String() string {
	q := func(b []byte) string {
		if b == nil {
			return "null"
		}
		if len(b) > 24 {
			return fmt.Sprintf("%q...(%d bytes)", b[:24], len(b))
		}
		return fmt.Sprintf("%q", b)
	}
	var hs []string
	for _, h := range r.H {
		hs = append(hs, fmt.Sprintf("%q=%s", h.K, q(h.V)))
	}
	return fmt.Sprintf("p%d@%d ts=%d/%d k=%s v=%s h=[%s]", r.P, r.O, r.TS, r.TSType, q(r.K), q(r.V), strings.Join(hs, " "))
}

// sameBytes compares with null and empty told apart.
func sameBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}

// diffRec says how got differs from want, or "" when they are equal field
// for field and byte for byte.
func diffRec(want, got rec) string {
	var d []string
	if want.P != got.P || want.O != got.O {
		d = append(d, fmt.Sprintf("position p%d@%d, want p%d@%d", got.P, got.O, want.P, want.O))
	}
	if want.TS != got.TS {
		d = append(d, fmt.Sprintf("timestamp %d, want %d", got.TS, want.TS))
	}
	if want.TSType != got.TSType {
		d = append(d, fmt.Sprintf("timestamp type %d, want %d", got.TSType, want.TSType))
	}
	if !sameBytes(want.K, got.K) {
		d = append(d, "key differs")
	}
	if !sameBytes(want.V, got.V) {
		d = append(d, "value differs")
	}
	if len(want.H) != len(got.H) {
		d = append(d, fmt.Sprintf("%d headers, want %d", len(got.H), len(want.H)))
	} else {
		for i := range want.H {
			if want.H[i].K != got.H[i].K || !bytes.Equal(want.H[i].V, got.H[i].V) {
				d = append(d, fmt.Sprintf("header %d differs", i))
			}
		}
	}
	if d == nil {
		return ""
	}
	return strings.Join(d, "; ") + "\n\tgot  " + got.String() + "\n\twant " + want.String()
}

// diffRecs compares two record lists after sorting both by (partition,
// offset); it reports at most a few differences.
func diffRecs(want, got []rec) string {
	sortRecs(want)
	sortRecs(got)
	var out []string
	if len(want) != len(got) {
		out = append(out, fmt.Sprintf("got %d records, want %d", len(got), len(want)))
	}
	for i := 0; i < len(want) && i < len(got) && len(out) < 5; i++ {
		if d := diffRec(want[i], got[i]); d != "" {
			out = append(out, fmt.Sprintf("record %d: %s", i, d))
		}
	}
	return strings.Join(out, "\n")
}

func sortRecs(rs []rec) {
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].P != rs[j].P {
			return rs[i].P < rs[j].P
		}
		return rs[i].O < rs[j].O
	})
}

// genSpec says what a producer can express, so generated records stay inside
// it; everything else is exercised.
type genSpec struct {
	partitions int32
	perPart    int
	// avoid bytes are kept out of keys and values (kcat's delimiters).
	avoid []byte
	// avoidInHeaders are kept out of header values (kcat takes them from
	// its command line, where NUL cannot appear).
	avoidInHeaders []byte
	// fixedHeaders: headers are the same for runs of records (kcat sets them
	// per process); headerGroups such runs per partition.
	headerGroups int
	// noTimestamps: the producer cannot set a record's timestamp (kcat).
	noTimestamps bool
	// emptyIsNull: the producer sends an empty value as null (kcat -Z), so
	// it gets no empty values, only null ones.
	emptyIsNull bool
	// emptyKeyIsNull: the producer sends an empty key as null (kcat -K).
	emptyKeyIsNull bool
	baseTS         int64
}

// genRecords makes records with binary keys and values (null, empty, every
// byte value, some large and compressible), binary header values and
// strictly increasing explicit timestamps per partition. Offsets are what a
// fresh topic assigns: 0.. per partition in order.
func genRecords(seed uint64, g genSpec) []rec {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ok := func(c byte) bool { return bytes.IndexByte(g.avoid, c) < 0 }
	randBytes := func(n int) []byte {
		b := make([]byte, 0, n)
		for len(b) < n {
			c := byte(rng.UintN(256))
			if ok(c) {
				b = append(b, c)
			}
		}
		return b
	}
	allBytes := func() []byte {
		var b []byte
		for c := 0; c < 256; c++ {
			if ok(byte(c)) {
				b = append(b, byte(c))
			}
		}
		return b
	}
	hdrBytes := func(n int) []byte {
		b := make([]byte, 0, n)
		for len(b) < n {
			c := byte(rng.UintN(256))
			if ok(c) && bytes.IndexByte(g.avoidInHeaders, c) < 0 {
				b = append(b, c)
			}
		}
		return b
	}
	var out []rec
	for p := int32(0); p < g.partitions; p++ {
		groupLen := (g.perPart + g.headerGroups - 1) / max(g.headerGroups, 1)
		var hs []hdr
		for i := 0; i < g.perPart; i++ {
			r := rec{P: p, O: int64(i)}
			if !g.noTimestamps {
				r.TS = g.baseTS + int64(p)*100_000 + int64(i)*1000 + int64(rng.UintN(500))
			}
			switch i % 5 {
			case 0:
				r.K = nil // null key
			case 1:
				r.K = []byte(fmt.Sprintf("key-%d-%d", p, i))
			default:
				r.K = append([]byte(fmt.Sprintf("k%d", i)), randBytes(1+rng.IntN(16))...)
			}
			if i%13 == 6 && !g.emptyKeyIsNull {
				r.K = []byte{} // empty, not null
			}
			switch {
			case i == 2:
				r.V = allBytes()
			case i%11 == 10:
				r.V = nil // null value (a tombstone)
			case i%11 == 9 && !g.emptyIsNull:
				r.V = []byte{} // empty, not null
			case i%7 == 3:
				// Large and compressible, so every codec shrinks the batch
				// and producers do not fall back to sending it uncompressed.
				r.V = append(bytes.Repeat([]byte("vltava compresses "), 200+rng.IntN(200)), randBytes(32)...)
			default:
				r.V = append([]byte(strings.Repeat(fmt.Sprintf("value %d/%d ", p, i), 1+rng.IntN(8))), randBytes(rng.IntN(64))...)
			}
			if r.V == nil && r.K == nil {
				// A tombstone has a key; python3-kafka refuses a record
				// with neither ("Need at least one: key or value") and
				// kcat skips an empty message.
				r.K = []byte(fmt.Sprintf("tombstone-%d", i))
			}
			if g.headerGroups > 0 {
				if i%groupLen == 0 {
					hs = genHeaders(rng, i/groupLen, hdrBytes)
				}
				r.H = hs
			} else {
				r.H = genHeaders(rng, i, hdrBytes)
			}
			out = append(out, r)
		}
	}
	return out
}

// genHeaders: sometimes none, sometimes several, with an empty value, a
// repeated key and binary values.
func genHeaders(rng *rand.Rand, i int, randBytes func(int) []byte) []hdr {
	switch i % 4 {
	case 0:
		return []hdr{}
	case 1:
		return []hdr{{K: "trace-id", V: []byte(fmt.Sprintf("t-%d", rng.Uint64()))}}
	case 2:
		return []hdr{{K: "bin", V: randBytes(1 + rng.IntN(40))}, {K: "empty", V: []byte{}}, {K: "dup", V: []byte("1")}, {K: "dup", V: []byte("2")}}
	default:
		return []hdr{{K: "ünïcode-κλειδί", V: []byte("värde ✓")}, {K: "bin", V: randBytes(8)}}
	}
}

// fromOffset keeps the records at or after offset in every partition.
func fromOffset(rs []rec, off int64) []rec {
	var out []rec
	for _, r := range rs {
		if r.O >= off {
			out = append(out, r)
		}
	}
	return out
}

// fromTimestamp keeps, per partition, the records from the first one whose
// timestamp is >= ts (ListOffsets semantics; timestamps increase per
// partition in these tests).
func fromTimestamp(rs []rec, ts int64) []rec {
	first := map[int32]int64{}
	for _, r := range rs {
		if r.TS >= ts {
			if o, ok := first[r.P]; !ok || r.O < o {
				first[r.P] = r.O
			}
		}
	}
	var out []rec
	for _, r := range rs {
		if o, ok := first[r.P]; ok && r.O >= o {
			out = append(out, r)
		}
	}
	return out
}
