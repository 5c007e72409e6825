package server

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/vltava/vltava/internal/handler"
	"github.com/vltava/vltava/internal/log"
)

// BenchmarkSendfileBatching writes fetch-shaped responses (a few dozen bytes of fields
// before each partition's records, which are sent from a file) over loopback to a reader
// that discards them, keeping packets full by corking the socket around each response,
// by MSG_MORE on the byte pieces, or by neither; and, for comparison, as the read path
// does: pread into a buffer, then one writev ("read"). cpu-ns/op is the process's user
// and system time (writer and reader) per response, writer-cpu-ns/op the writing
// thread's alone (on loopback it includes much of the receiving side's kernel work).
// Sending from a file includes pinning the range (a duplicate descriptor) and
// unpinning it, as a fetch does.
//
//	go test -run x -bench SendfileBatching -benchtime 3s ./internal/server
func BenchmarkSendfileBatching(b *testing.B) {
	if !canSendfile {
		b.Skip("no sendfile on this platform")
	}
	f, err := os.Create(filepath.Join(b.TempDir(), "segment"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const fileSize = 64 << 20
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	for off := int64(0); off < fileSize; off += int64(len(chunk)) {
		if _, err := f.WriteAt(chunk, off); err != nil {
			b.Fatal(err)
		}
	}
	for _, shape := range []struct {
		parts int
		size  int64
	}{{8, 1 << 20}, {8, 256 << 10}, {8, 64 << 10}, {8, 16 << 10}, {1, 512}} {
		for _, mode := range []struct {
			name string
			m    batching
		}{{"cork", batchCork}, {"msgmore", batchMsgMore}, {"none", batchNone}, {"read", -1}} {
			b.Run(fmt.Sprintf("%dx%d/%s", shape.parts, shape.size, mode.name), func(b *testing.B) {
				benchBatching(b, f, fileSize, shape.parts, shape.size, mode.m)
			})
		}
	}
}

func benchBatching(b *testing.B, f *os.File, fileSize int64, parts int, size int64, mode batching) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan int64)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			done <- -1
			return
		}
		defer c.Close()
		n, _ := io.CopyBuffer(io.Discard, c, make([]byte, 256<<10))
		done <- n
	}()
	nc, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	tc := nc.(*net.TCPConn)
	s, err := newFileSender(tc)
	if err != nil {
		b.Fatal(err)
	}
	s.mode = mode
	var bufs [][]byte
	for p := 0; p < parts; p++ {
		bufs = append(bufs, make([]byte, size))
	}
	fields := make([]byte, 60)
	binary.BigEndian.PutUint32(fields, uint32(int64(parts)*(size+60)))
	resp := &handler.Response{}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var before, beforeThread syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	syscall.Getrusage(rusageThread, &beforeThread)
	b.SetBytes(int64(parts) * (size + 60))
	b.ResetTimer()
	pos := int64(0)
	for i := 0; i < b.N; i++ {
		resp.Vec, resp.Files = resp.Vec[:0], resp.Files[:0]
		for p := 0; p < parts; p++ {
			resp.Vec = append(resp.Vec, fields)
			if pos+size > fileSize {
				pos = 0
			}
			pr := log.PinnedRange{File: f, Pos: pos, Len: size}
			if mode >= 0 {
				pins, ok := log.PinRanges(nil, []log.Range{{File: f, Pos: pos, Len: size}})
				if !ok {
					b.Fatal("pin failed")
				}
				pr = pins[0]
			}
			resp.Files = append(resp.Files, handler.FilePiece{At: len(resp.Vec), PinnedRange: pr})
			pos += size
		}
		resp.Vec = append(resp.Vec, fields[:2])
		tc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if mode < 0 {
			// The read path: records into buffers, then the fields and them in one writev.
			var vec net.Buffers
			for p, fp := range resp.Files {
				if _, err := fp.File.ReadAt(bufs[p], fp.Pos); err != nil {
					b.Fatal(err)
				}
				vec = append(vec, resp.Vec[p], bufs[p])
			}
			vec = append(vec, resp.Vec[len(resp.Vec)-1])
			if _, err := vec.WriteTo(tc); err != nil {
				b.Fatal(err)
			}
			continue
		}
		if err := s.write(resp); err != nil {
			b.Fatal(err)
		}
		for _, fp := range resp.Files {
			fp.Close()
		}
	}
	var afterThread syscall.Rusage
	syscall.Getrusage(rusageThread, &afterThread)
	tc.Close()
	<-done
	b.StopTimer()
	var after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := func(a, b syscall.Rusage) float64 {
		return float64(a.Utime.Nano() + a.Stime.Nano() - b.Utime.Nano() - b.Stime.Nano())
	}
	b.ReportMetric(cpu(after, before)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(cpu(afterThread, beforeThread)/float64(b.N), "writer-cpu-ns/op")
}

// rusageThread is Linux's RUSAGE_THREAD: the calling thread's usage.
const rusageThread = 1
