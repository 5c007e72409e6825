package partition

// The producer state snapshot, producer-state.snapshot in the partition directory, is
// written at a clean close so that the next open does not rebuild the state by reading
// every batch header of the log. Layout, big endian:
//
//	 0 magic        "VPS1"
//	 4 offset       int64: the log end offset the state covers
//	12 count        uint32: producers
//	   count times:
//	     producerId int64, epoch int16, batches uint8,
//	     batches times: firstSeq int32, lastSeq int32, firstOffset int64,
//	                    lastOffset int64, timestamp int64
//	   crc          uint32: CRC32C of every byte before it
//
// Open trusts a snapshot only if it is whole (length and CRC), its offset is not past the
// recovered log end, and the log start has not passed it; it then reads only the batches
// after the offset. The file is removed once read, so a later crash, whose recovery may
// truncate the log below the snapshot's offset, can never meet a stale one: that open
// rebuilds from the log. What Open could not use, and why, it says (ProducerStateNote).
//
// A snapshot is at most snapshotMax bytes (about 390,000 producers with five batches
// each): producer.id.expiration.ms keeps the state below that in any ordinary use. If the
// state is larger still, the snapshot keeps the most recently active producers that fit
// and the writer reports ErrSnapshotTrimmed with the count left out; a producer left out
// is unknown after the next open and its next batch is accepted at any sequence (as
// Kafka accepts a producer it does not know), so only its duplicate detection is lost.
// Before this bound was applied on writing, a larger snapshot was written whole, could
// not be read back, and every open rebuilt the state from the whole log without a word.

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"

	"github.com/vltava/vltava/internal/vfs"
)

const (
	snapshotFile  = "producer-state.snapshot"
	snapshotMagic = "VPS1"
	// snapshotMax bounds a producer state snapshot, written (trimmed to fit) and read.
	snapshotMax = 64 << 20
)

// ErrSnapshotTrimmed reports a snapshot written without its least recently active
// producers because the whole state would pass snapshotMax. The snapshot itself is good.
var ErrSnapshotTrimmed = errors.New("producer state snapshot trimmed to its size bound")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// snapshotHeader and snapshotEntry are the encoded sizes: magic, offset, count and the
// CRC; one producer with n batches.
const snapshotHeader = 4 + 8 + 4 + 4

func snapshotEntry(n int) int { return 8 + 2 + 1 + 32*n }

// encodeSnapshot encodes the producers in at most max bytes: if they do not all fit it
// keeps the most recently active (by last timestamp) and returns how many it dropped.
func encodeSnapshot(offset int64, producers map[int64]*producerEntry, max int) (snap []byte, dropped int) {
	size := snapshotHeader
	for _, e := range producers {
		size += snapshotEntry(e.n)
	}
	keep := func(int64, *producerEntry) bool { return true }
	if size > max {
		pids := make([]int64, 0, len(producers))
		for pid := range producers {
			pids = append(pids, pid)
		}
		slices.SortFunc(pids, func(a, b int64) int {
			return cmp.Or(cmp.Compare(producers[b].lastTS, producers[a].lastTS), cmp.Compare(a, b))
		})
		kept := make(map[int64]bool, len(pids))
		size = snapshotHeader
		for _, pid := range pids {
			if n := snapshotEntry(producers[pid].n); size+n <= max {
				size += n
				kept[pid] = true
			}
		}
		dropped = len(producers) - len(kept)
		keep = func(pid int64, _ *producerEntry) bool { return kept[pid] }
	}
	b := make([]byte, 0, size)
	b = append(b, snapshotMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(len(producers)-dropped))
	for pid, e := range producers {
		if !keep(pid, e) {
			continue
		}
		b = binary.BigEndian.AppendUint64(b, uint64(pid))
		b = binary.BigEndian.AppendUint16(b, uint16(e.epoch))
		b = append(b, byte(e.n))
		for _, m := range e.batches[:e.n] {
			b = binary.BigEndian.AppendUint32(b, uint32(m.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(m.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(m.firstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.lastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.timestamp))
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), dropped
}

// trimmedError is the error a writer returns for a snapshot that left dropped of the
// producers out.
func (p *Partition) trimmedError(dropped, producers int) error {
	if dropped == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s-%d: %d of %d producers left out to fit %d bytes, the most recently active kept; the others lose their duplicate detection at the next open",
		ErrSnapshotTrimmed, p.Topic, p.Index, dropped, producers, p.snapshotMax)
}

var errBadSnapshot = errors.New("bad producer state snapshot")

func decodeSnapshot(b []byte) (int64, map[int64]*producerEntry, error) {
	if len(b) < 16+4 || string(b[:4]) != snapshotMagic {
		return 0, nil, errBadSnapshot
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return 0, nil, errBadSnapshot
	}
	offset := int64(binary.BigEndian.Uint64(body[4:]))
	count := binary.BigEndian.Uint32(body[12:])
	body = body[16:]
	producers := make(map[int64]*producerEntry, min(count, 1<<16))
	for i := uint32(0); i < count; i++ {
		if len(body) < 11 {
			return 0, nil, errBadSnapshot
		}
		pid := int64(binary.BigEndian.Uint64(body))
		e := &producerEntry{epoch: int16(binary.BigEndian.Uint16(body[8:]))}
		n := int(body[10])
		body = body[11:]
		if n > cachedBatches || len(body) < n*32 {
			return 0, nil, errBadSnapshot
		}
		for j := 0; j < n; j++ {
			e.add(batchMeta{
				firstSeq:    int32(binary.BigEndian.Uint32(body)),
				lastSeq:     int32(binary.BigEndian.Uint32(body[4:])),
				firstOffset: int64(binary.BigEndian.Uint64(body[8:])),
				lastOffset:  int64(binary.BigEndian.Uint64(body[16:])),
				timestamp:   int64(binary.BigEndian.Uint64(body[24:])),
			})
			body = body[32:]
		}
		producers[pid] = e
	}
	if len(body) != 0 {
		return 0, nil, errBadSnapshot
	}
	return offset, producers, nil
}

// loadSnapshot reads and removes the snapshot; ok is false if there is none usable, and
// note then says why if there was one.
func loadSnapshot(fsys vfs.FS, dir string, logStart, logEnd int64) (offset int64, producers map[int64]*producerEntry, ok bool, note string) {
	path := filepath.Join(dir, snapshotFile)
	data, err := vfs.ReadFile(fsys, path, snapshotMax)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil, false, ""
	}
	if err != nil {
		return 0, nil, false, fmt.Sprintf("clean-close snapshot not read: %v", err)
	}
	if err := fsys.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		// A snapshot we cannot remove could outlive its truth.
		return 0, nil, false, fmt.Sprintf("clean-close snapshot not used: cannot remove it: %v", err)
	}
	offset, producers, err = decodeSnapshot(data)
	switch {
	case err != nil:
		return 0, nil, false, fmt.Sprintf("clean-close snapshot not used: %v", err)
	case offset > logEnd || offset < logStart:
		return 0, nil, false, fmt.Sprintf("clean-close snapshot not used: its offset %d is outside the log [%d, %d]", offset, logStart, logEnd)
	}
	return offset, producers, true, ""
}
