// Package wire is Kafka's framing and request/response headers. Every frame is a
// 4-byte big-endian size followed by that many bytes. Request bodies are decoded and
// responses encoded with franz-go's kmsg; this package only owns the envelope: size
// limits, the request header (v1, or v2 with tagged fields for flexible versions),
// and the response header (v0, or v1 with tagged fields; ApiVersions always v0).
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrFrameTooLarge is returned when a size prefix exceeds the limit
// (socket.request.max.bytes). The connection must be closed: the rest of the stream
// cannot be trusted, and the frame is never allocated.
var ErrFrameTooLarge = errors.New("frame larger than socket.request.max.bytes")

// ErrBadFrame is returned for a negative or too-small size prefix.
var ErrBadFrame = errors.New("malformed frame size")

// ReadSize reads the 4-byte size prefix and checks it against max.
func ReadSize(r io.Reader, max int32) (int32, error) {
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return 0, err
	}
	n := int32(binary.BigEndian.Uint32(sz[:]))
	switch {
	case n < 8: // api key, version and correlation id at the least
		return 0, fmt.Errorf("%w: %d", ErrBadFrame, n)
	case n > max:
		return 0, fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, n, max)
	}
	return n, nil
}

// Header is a request header.
type Header struct {
	APIKey        int16
	APIVersion    int16
	CorrelationID int32
	ClientID      string // empty for a null client id (length -1; other negative lengths are malformed)
}

// ParseHeader parses the request header from the start of a frame body. flexible says
// whether the request at this key and version uses header v2 (tagged fields after the
// client id); the caller knows it only after reading the key and version, so ParseHeader
// takes a function. It returns the header and the body that follows it.
func ParseHeader(frame []byte, flexible func(key, version int16) bool) (Header, []byte, error) {
	var h Header
	if len(frame) < 10 {
		return h, nil, ErrBadFrame
	}
	h.APIKey = int16(binary.BigEndian.Uint16(frame[0:]))
	h.APIVersion = int16(binary.BigEndian.Uint16(frame[2:]))
	h.CorrelationID = int32(binary.BigEndian.Uint32(frame[4:]))
	n := int16(binary.BigEndian.Uint16(frame[8:]))
	rest := frame[10:]
	switch {
	case n == -1: // null
	case n < -1:
		return h, nil, fmt.Errorf("%w: client id length %d", ErrBadFrame, n)
	case int(n) > len(rest):
		return h, nil, ErrBadFrame
	default:
		h.ClientID = string(rest[:n])
		rest = rest[n:]
	}
	if flexible(h.APIKey, h.APIVersion) {
		var err error
		if rest, err = SkipTags(rest); err != nil {
			return h, nil, err
		}
	}
	return h, rest, nil
}

// ParseKeyVersion returns just the api key, version and correlation id: enough to answer
// a request whose header we cannot otherwise interpret.
func ParseKeyVersion(frame []byte) (key, version int16, correlationID int32, ok bool) {
	if len(frame) < 8 {
		return 0, 0, 0, false
	}
	return int16(binary.BigEndian.Uint16(frame[0:])), int16(binary.BigEndian.Uint16(frame[2:])),
		int32(binary.BigEndian.Uint32(frame[4:])), true
}

// SkipTags skips a header's tagged fields (a request's v2 header, a response's v1).
func SkipTags(b []byte) ([]byte, error) {
	n, b, err := uvarint(b)
	if err != nil {
		return nil, err
	}
	for i := uint64(0); i < n; i++ {
		if _, b, err = uvarint(b); err != nil { // tag
			return nil, err
		}
		var sz uint64
		if sz, b, err = uvarint(b); err != nil {
			return nil, err
		}
		if sz > uint64(len(b)) {
			return nil, ErrBadFrame
		}
		b = b[sz:]
	}
	return b, nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, ErrBadFrame
	}
	return v, b[n:], nil
}

// AppendResponseHeader starts a response frame in dst: a size placeholder, the correlation
// id and, for flexible responses, an empty tagged-field section. FinishFrame fills the size.
func AppendResponseHeader(dst []byte, correlationID int32, flexible bool) []byte {
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if flexible {
		dst = append(dst, 0)
	}
	return dst
}

// FinishFrame writes the size prefix of a frame that starts at dst[start].
func FinishFrame(dst []byte, start int) {
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
}
