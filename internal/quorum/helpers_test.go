package quorum

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// listSM is a state machine that keeps every entry it applied, so tests can compare
// members' applied sequences exactly. It checks its own contract: indexes increase, and
// nothing is applied at or below the last restore.
type listSM struct {
	mu       sync.Mutex
	entries  []smEntry
	last     uint64 // the last index applied or restored
	restores int
	failNext error         // returned by the next Apply
	exact    bool          // Restore refuses a state whose last entry is not at the index, as metadata's does
	changed  chan struct{} // closed at the next Apply or Restore
}

// lastApplied returns the last index applied or restored, and a channel closed when it
// changes.
func (s *listSM) lastApplied() (uint64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.last, s.changed
}

func (s *listSM) notifyLocked() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

type smEntry struct {
	index uint64
	data  string
}

func (s *listSM) Apply(index, term uint64, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failNext; err != nil {
		s.failNext = nil
		return err
	}
	if index <= s.last {
		panic(fmt.Sprintf("listSM: apply index %d after %d", index, s.last))
	}
	s.entries = append(s.entries, smEntry{index, string(data)})
	s.last = index
	s.notifyLocked()
	return nil
}

func (s *listSM) Snapshot() ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b []byte
	for _, e := range s.entries {
		b = binary.BigEndian.AppendUint64(b, e.index)
		b = binary.BigEndian.AppendUint32(b, uint32(len(e.data)))
		b = append(b, e.data...)
	}
	return b, s.last, nil
}

func (s *listSM) Restore(data []byte, index uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ents []smEntry
	for len(data) > 0 {
		if len(data) < 12 {
			return fmt.Errorf("listSM: bad snapshot")
		}
		i := binary.BigEndian.Uint64(data)
		n := binary.BigEndian.Uint32(data[8:])
		data = data[12:]
		if int(n) > len(data) {
			return fmt.Errorf("listSM: bad snapshot")
		}
		ents = append(ents, smEntry{i, string(data[:n])})
		data = data[n:]
	}
	if n := len(ents); n > 0 && (ents[n-1].index > index || s.exact && ents[n-1].index != index) {
		return fmt.Errorf("listSM: snapshot at %d holds entry %d", index, ents[n-1].index)
	}
	s.entries, s.last = ents, index
	s.restores++
	s.notifyLocked()
	return nil
}

func (s *listSM) snapshotEntries() []smEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.entries)
}

// logBuffer is a slog handler target tests read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) contains(s string) bool { return strings.Contains(l.String(), s) }

func newTestLogger(t testing.TB, lb *logBuffer) *slog.Logger {
	if lb == nil {
		if testing.Verbose() {
			return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
		}
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// recTransport records what a core sends, and when relative to file operations.
type recTransport struct {
	sent    []*raftpb.Message
	events  *[]string // shared with an ErrorFS injector, if set
	peers   map[uint64]string
	removed []uint64
}

func (r *recTransport) Start(Reporter) error { return nil }
func (r *recTransport) Stop()                {}
func (r *recTransport) Send(msgs []*raftpb.Message) {
	r.sent = append(r.sent, msgs...)
	if r.events != nil {
		for _, m := range msgs {
			*r.events = append(*r.events, fmt.Sprintf("send %v to %d", m.GetType(), m.GetTo()))
		}
	}
}
func (r *recTransport) SetPeer(id uint64, addr string) {
	if r.peers == nil {
		r.peers = map[uint64]string{}
	}
	r.peers[id] = addr
}
func (r *recTransport) RemovePeer(id uint64) { r.removed = append(r.removed, id); delete(r.peers, id) }

func (r *recTransport) take() []*raftpb.Message {
	out := r.sent
	r.sent = nil
	return out
}

func (r *recTransport) takeType(t raftpb.MessageType) []*raftpb.Message {
	var out []*raftpb.Message
	r.sent = slices.DeleteFunc(r.sent, func(m *raftpb.Message) bool {
		if m.GetType() == t {
			out = append(out, m)
			return true
		}
		return false
	})
	return out
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func voters(ids ...uint64) map[uint64]string {
	m := map[uint64]string{}
	for _, id := range ids {
		m[id] = fmt.Sprintf("node%d:9093", id)
	}
	return m
}

func testConfig(id uint64, vs map[uint64]string) Config {
	return Config{NodeID: id, Voters: vs, ElectionTimeout: time.Second, TickInterval: 100 * time.Millisecond}
}
