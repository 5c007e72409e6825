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
// rebuilds from the log.

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/vltava/vltava/internal/vfs"
)

const (
	snapshotFile  = "producer-state.snapshot"
	snapshotMagic = "VPS1"
	snapshotMax   = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeSnapshot(offset int64, producers map[int64]*producerEntry) []byte {
	b := append([]byte(nil), snapshotMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(len(producers)))
	for pid, e := range producers {
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
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
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

// loadSnapshot reads and removes the snapshot; ok is false if there is none usable.
func loadSnapshot(fsys vfs.FS, dir string, logStart, logEnd int64) (int64, map[int64]*producerEntry, bool) {
	path := filepath.Join(dir, snapshotFile)
	data, err := vfs.ReadFile(fsys, path, snapshotMax)
	if err != nil {
		return 0, nil, false
	}
	if err := fsys.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, nil, false // a snapshot we cannot remove could outlive its truth
	}
	offset, producers, err := decodeSnapshot(data)
	if err != nil || offset > logEnd || offset < logStart {
		return 0, nil, false
	}
	return offset, producers, true
}
