package server

// Sending a fetch response's records from their segment files with sendfile(2), so they
// never pass through user space. The response is pieces in order: encoded fields
// (Response.Vec) with record bytes in memory (partitions read the ordinary way) and
// file ranges (Response.Files) between them. Bytes go out with sendmsg (the last piece
// with writev), file ranges with sendfile at an explicit offset (never the file's own
// position: the descriptor is a duplicate whose offset is shared with the segment's),
// all on the non-blocking socket through Go's poller, so the connection's write deadline
// holds throughout.
//
// The files are pinned by the handler (log.PinnedRange: a descriptor of their own), so
// retention closing or deleting a segment does not take the bytes away. A file that has
// become shorter than its range (truncated under us) is an error after part of the frame
// is on the wire: the frame length is already sent, so the caller closes the connection
// rather than send anything else in those bytes' place. The kernel sends from the page
// cache without copying, so bytes rewritten in place after sendfile returned could still
// change what leaves; the log never rewrites what lies below its published size, except
// a truncation followed by appends (TruncateTo, for replication), which races with the
// read path's pread in the same way, over a shorter window.
//
// Go sets TCP_NODELAY, so each piece would leave in a packet of its own: the byte pieces
// before a file range are sent with MSG_MORE, which holds them for the range's bytes (the
// end of each range still leaves in a short packet: sendfile pushes its last chunk).
// Corking the socket (TCP_CORK) around the response instead fills every packet, but costs
// two more system calls a response, and measured dearer (BenchmarkSendfileBatching, on
// loopback, writer thread CPU per response of 8 partitions: 1 MiB each 1.78 ms with
// MSG_MORE, 2.00 ms corked; 64 KiB each 127 and 195 us; 16 KiB each 77 and 90 us).

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/vltava/vltava/internal/handler"
)

// canSendfile says this platform sends fetch records with sendfile.
const canSendfile = true

// maxSendfileChunk bounds one sendfile call (Linux moves at most 0x7ffff000 bytes per
// call anyway).
const maxSendfileChunk = 1 << 30

// errShortFile is a pinned range that the file no longer holds in full.
var errShortFile = errors.New("file shorter than its range")

// batching is how a response's pieces are kept from leaving in small packets.
type batching int

const (
	batchCork    batching = iota // TCP_CORK around the response
	batchMsgMore                 // MSG_MORE on every byte piece but the last
	batchNone                    // neither (for comparison only)
)

// fileSender writes responses with file pieces to one TCP connection.
type fileSender struct {
	tc   *net.TCPConn
	raw  syscall.RawConn
	mode batching
	// sent counts the bytes sent with sendfile (tests check the path is taken).
	sent atomic.Int64
}

func newFileSender(tc *net.TCPConn) (*fileSender, error) {
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &fileSender{tc: tc, raw: raw, mode: batchMsgMore}, nil
}

// write sends the frame of resp (whose Files are set). Any error leaves the connection
// in an unknown state: the caller closes it.
func (s *fileSender) write(resp *handler.Response) error {
	if s.mode == batchCork {
		if err := s.setCork(true); err != nil {
			return err
		}
	}
	vec := resp.Vec
	prev := 0
	for _, f := range resp.Files {
		if f.At > prev {
			if err := s.writeBytes(vec[prev:f.At], true); err != nil {
				return err
			}
			prev = f.At
		}
		if err := s.sendFile(f.File, f.Pos, f.Len); err != nil {
			return fmt.Errorf("send %s at %d: %w", f.File.Name(), f.Pos, err)
		}
	}
	if err := s.writeBytes(vec[prev:], false); err != nil {
		return err
	}
	if s.mode == batchCork {
		return s.setCork(false) // sends what the cork held
	}
	return nil
}

func (s *fileSender) setCork(on bool) error {
	v := 0
	if on {
		v = 1
	}
	var serr error
	if err := s.raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, v)
	}); err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt TCP_CORK", serr)
}

// writeBytes writes bufs; more says further pieces of the response follow.
func (s *fileSender) writeBytes(bufs [][]byte, more bool) error {
	if s.mode != batchMsgMore || !more {
		nb := net.Buffers(bufs)
		_, err := nb.WriteTo(s.tc)
		return err
	}
	for _, b := range bufs {
		var serr error
		err := s.raw.Write(func(fd uintptr) bool {
			for len(b) > 0 {
				n, err := syscall.SendmsgN(int(fd), b, nil, nil, syscall.MSG_MORE|syscall.MSG_NOSIGNAL)
				if n > 0 {
					b = b[n:]
				}
				switch err {
				case nil:
				case syscall.EINTR:
				case syscall.EAGAIN:
					return false
				default:
					serr = os.NewSyscallError("sendmsg", err)
					return true
				}
			}
			return true
		})
		if err == nil {
			err = serr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sendFile sends n bytes at off of f. f is pinned: Control only reads its descriptor.
func (s *fileSender) sendFile(f *os.File, off, n int64) error {
	frc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var werr, serr error
	sent := int64(0)
	err = frc.Control(func(infd uintptr) {
		werr = s.raw.Write(func(outfd uintptr) bool {
			for sent < n {
				m, err := syscall.Sendfile(int(outfd), int(infd), &off, int(min(n-sent, maxSendfileChunk)))
				if m > 0 {
					sent += int64(m) // and the kernel moved off on
				}
				switch err {
				case nil:
					if m <= 0 {
						serr = errShortFile
						return true
					}
				case syscall.EINTR:
				case syscall.EAGAIN:
					return false // the poller waits for room, up to the write deadline
				default:
					serr = os.NewSyscallError("sendfile", err)
					return true
				}
			}
			return true
		})
	})
	s.sent.Add(sent)
	if err == nil {
		err = werr
	}
	if err == nil {
		err = serr
	}
	if err != nil && sent == 0 && unsupported(err) {
		// A file system that cannot sendfile: copy this range the ordinary way.
		return s.copyFile(f, off, n)
	}
	return err
}

// unsupported reports a sendfile failure that says the files or the socket do not
// support it at all (so nothing was sent).
func unsupported(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EOPNOTSUPP)
}

// copyFile writes n bytes at off of f with pread and write.
func (s *fileSender) copyFile(f *os.File, off, n int64) error {
	// The writer is wrapped so io.Copy does not hand the copy back to sendfile.
	m, err := io.Copy(struct{ io.Writer }{s.tc}, io.NewSectionReader(f, off, n))
	if err == nil && m < n {
		err = errShortFile
	}
	return err
}
