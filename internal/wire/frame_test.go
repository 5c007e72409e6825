package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestReadSize(t *testing.T) {
	cases := []struct {
		size int32
		want error
	}{
		{100, nil},
		{1024, nil},
		{1025, ErrFrameTooLarge},
		{-1, ErrBadFrame},
		{3, ErrBadFrame},
	}
	for _, c := range cases {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(c.size))
		n, err := ReadSize(bytes.NewReader(b[:]), 1024)
		if !errors.Is(err, c.want) || (err == nil && n != c.size) {
			t.Errorf("size %d: got %d, %v; want %v", c.size, n, err, c.want)
		}
	}
}

func TestParseHeaderMatchesKmsg(t *testing.T) {
	for _, req := range []kmsg.Request{kmsg.NewPtrMetadataRequest(), kmsg.NewPtrProduceRequest(), kmsg.NewPtrApiVersionsRequest()} {
		for v := int16(0); v <= req.MaxVersion(); v++ {
			req.SetVersion(v)
			id := "client-1"
			b := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
			b = binary.BigEndian.AppendUint16(b, uint16(v))
			b = binary.BigEndian.AppendUint32(b, 42)
			b = binary.BigEndian.AppendUint16(b, uint16(len(id)))
			b = append(b, id...)
			if req.IsFlexible() {
				b = append(b, 1, 7, 2, 0xaa, 0xbb) // one unknown tagged field
			}
			body := req.AppendTo(nil)
			b = append(b, body...)
			h, rest, err := ParseHeader(b, func(int16, int16) bool { return req.IsFlexible() })
			if err != nil {
				t.Fatalf("key %d v%d: %v", req.Key(), v, err)
			}
			if h.APIKey != req.Key() || h.APIVersion != v || h.CorrelationID != 42 || h.ClientID != id || !bytes.Equal(rest, body) {
				t.Fatalf("key %d v%d: header %+v", req.Key(), v, h)
			}
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0, 3, 0, 12, 0, 0, 0, 1, 0, 1, 'x', 0})
	f.Add([]byte{0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 1, 5, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, flex := range []bool{false, true} {
			h, rest, err := ParseHeader(b, func(int16, int16) bool { return flex })
			if err == nil && len(rest) > len(b) {
				t.Fatalf("rest longer than input: %+v", h)
			}
		}
	})
}

// The request header's client id is a nullable string: length -1 is null, any other
// negative length is a malformed header (Kafka closes the connection).
func TestParseHeaderClientIDLength(t *testing.T) {
	hdr := func(n int16, rest ...byte) []byte {
		b := []byte{0, 18, 0, 0, 0, 0, 0, 9}
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		return append(b, rest...)
	}
	notFlexible := func(int16, int16) bool { return false }
	h, rest, err := ParseHeader(hdr(-1, 'x'), notFlexible)
	if err != nil || h.ClientID != "" || string(rest) != "x" {
		t.Fatalf("length -1 (null): %+v %q %v", h, rest, err)
	}
	for _, n := range []int16{-2, -3, -32768} {
		if h, _, err := ParseHeader(hdr(n, 'x'), notFlexible); !errors.Is(err, ErrBadFrame) {
			t.Errorf("client id length %d: got %+v, %v; want ErrBadFrame", n, h, err)
		}
	}
}
