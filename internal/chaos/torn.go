package chaos

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vltava/vltava/internal/batch"
)

// A torn tail is what a power loss leaves at the end of the active segment:
// the last batches cut short or garbled. The battery makes one while the
// node is down after a kill -9. With flush.messages=1 every batch is
// fsynced before it is acknowledged or shown to a consumer, so a real power
// loss can only take batches nobody observed: TearTail cuts only after the
// last batch holding an observed (acknowledged or read) offset. TearAcked
// cuts into observed batches on purpose, and the checker must then report
// exactly the records from the cut on as lost, expected by the fault.

// batchSpan is one record batch of a segment file: its bytes [Pos, End)
// and offsets [Base, Last].
type batchSpan struct {
	Pos, End   int64
	Base, Last int64
}

// scanBatches walks the v2 batch headers of a segment and stops at the
// first batch that does not fit in it.
func scanBatches(b []byte) []batchSpan {
	var out []batchSpan
	var pos int64
	for pos+batch.HeaderSize <= int64(len(b)) {
		bt := batch.Batch(b[pos:])
		n := int64(bt.Size())
		if n < batch.HeaderSize || pos+n > int64(len(b)) {
			break
		}
		out = append(out, batchSpan{Pos: pos, End: pos + n, Base: bt.BaseOffset(), Last: bt.LastOffset()})
		pos += n
	}
	return out
}

// ActiveSegment is the path of the segment with the highest base offset of
// topic-partition under dataDir.
func ActiveSegment(dataDir, topic string, p int32) (string, error) {
	dir := filepath.Join(dataDir, fmt.Sprintf("%s-%d", topic, p))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var logs []string
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ".log") && len(n) == 24 {
			logs = append(logs, n)
		}
	}
	if len(logs) == 0 {
		return "", fmt.Errorf("no segment in %s", dir)
	}
	sort.Strings(logs) // 20 zero-padded digits sort as numbers
	return filepath.Join(dir, logs[len(logs)-1]), nil
}

// TearTail damages the bytes of segment path after the last batch that
// holds an offset at or below observed (-1: none observed): truncating
// them part way, or overwriting some, or, when there are none, appending
// garbage (a write that was torn before anything of it was observed).
// pick makes the choices, so they follow from the seed.
func TearTail(path string, observed int64, pick uint64) (Torn, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Torn{}, err
	}
	rng := rand.New(rand.NewPCG(pick, 1))
	t := Torn{Segment: path, FromOffset: -1}
	spans := scanBatches(b)
	cut := int64(len(b))
	for _, s := range spans {
		if s.Base > observed {
			cut, t.FromOffset = s.Pos, s.Base
			break
		}
	}
	if len(spans) > 0 && t.FromOffset < 0 {
		cut = spans[len(spans)-1].End // a torn partial batch may follow
	}
	size := int64(len(b))
	switch {
	case cut == size:
		// Nothing unobserved: append a header promising more than follows.
		g := make([]byte, 12+rng.IntN(64))
		for i := range g {
			g[i] = byte(rng.Uint32())
		}
		binary.BigEndian.PutUint32(g[8:], uint32(1<<20))
		t.Mode, t.Cut, t.Bytes = "append", size, int64(len(g))
		err = appendFile(path, g)
	case rng.IntN(2) == 0:
		at := cut + rng.Int64N(size-cut)
		t.Mode, t.Cut, t.Bytes = "truncate", at, size-at
		err = os.Truncate(path, at)
	default:
		n := 1 + rng.Int64N(min(64, size-cut))
		at := cut + rng.Int64N(size-cut-n+1)
		for i := at; i < at+n; i++ {
			b[i] ^= byte(1 + rng.IntN(255))
		}
		t.Mode, t.Cut, t.Bytes = "corrupt", at, n
		err = writeAt(path, b[at:at+n], at)
	}
	return t, err
}

// TearAcked truncates segment path part way into one of its last three
// batches at or below observed, destroying observed records: every offset
// from that batch's base on is gone.
func TearAcked(path string, observed int64, pick uint64) (Torn, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Torn{}, err
	}
	rng := rand.New(rand.NewPCG(pick, 2))
	var seen []batchSpan
	for _, s := range scanBatches(b) {
		if s.Base <= observed {
			seen = append(seen, s)
		}
	}
	if len(seen) == 0 {
		return Torn{}, errors.New("no observed batch in the active segment")
	}
	s := seen[len(seen)-1-rng.IntN(min(3, len(seen)))]
	at := s.Pos + 1 + rng.Int64N(s.End-s.Pos-1)
	t := Torn{Segment: path, Mode: "truncate", Cut: at, Bytes: int64(len(b)) - at, FromOffset: s.Base, Acked: true}
	return t, os.Truncate(path, at)
}

func appendFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	return errors.Join(err, f.Close())
}

func writeAt(path string, b []byte, at int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, at)
	return errors.Join(err, f.Close())
}
