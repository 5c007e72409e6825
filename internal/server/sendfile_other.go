//go:build !linux

package server

import (
	"errors"
	"net"
	"sync/atomic"

	"github.com/vltava/vltava/internal/handler"
)

// canSendfile says this platform sends fetch records with sendfile: not here (the
// BSDs' sendfile differs), so fetches read records into buffers.
const canSendfile = false

type fileSender struct{ sent atomic.Int64 }

func newFileSender(*net.TCPConn) (*fileSender, error) {
	return nil, errors.New("sendfile is not used on this platform")
}

func (*fileSender) write(*handler.Response) error {
	return errors.New("sendfile is not used on this platform")
}
