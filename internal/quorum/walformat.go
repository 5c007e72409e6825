// The write-ahead log's file format: segment files of CRC32C-framed records.
//
// A segment file is named <seq>.wal, seq zero-padded to 20 digits, and holds records back
// to back, nothing else (no file header, no padding). All integers are big-endian.
//
//	record:
//	  offset  size  field
//	  0       4     crc: CRC32C (Castagnoli) of bytes [4, 8+n): the length and the body
//	  4       4     n: length of the body, 1 <= n <= walMaxRecordBytes
//	  8       1     type (below)
//	  9       n-1   payload, by type:
//
//	  1 marker     (n = 17)   0 index u64, 8 term u64
//	     The log restarts after the snapshot at (index, term): every entry before this
//	     record is discarded and the next entry is index+1. Every segment starts with one
//	     (see storage.go), and nothing else writes one.
//	  2 entry      (n >= 18)  0 index u64, 8 term u64, 16 entry type u8 (raftpb.EntryType),
//	     17 data (the rest). An entry at index i replaces the entries at i and after it
//	     (a follower's log being overwritten by a new leader's), so i <= last+1.
//	  3 hard state (n = 25)   0 term u64, 8 vote u64, 16 commit u64
//	     The latest one wins.
//
// Recovery reads the newest segment from its start. A record that is cut short, or whose
// length is out of range, or whose CRC or type is wrong, ends the valid part. If no valid
// record starts anywhere after it, the rest is a torn tail (the last write of a crashed
// process) and is truncated; if one does, the file is corrupt (a flipped bit or a lost
// block in the middle), and opening fails naming the segment and the offset: dropping the
// valid records after it could forget entries that were acknowledged.
package quorum

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"go.etcd.io/raft/v3/raftpb"
)

const (
	walRecordHeader = 8 // crc and length
	// walMaxRecordBytes bounds one record's body, so a corrupt length is recognised
	// without allocating it. Entries are bounded far below it by MaxEntryBytes.
	walMaxRecordBytes = 256 << 20

	recMarker    byte = 1
	recEntry     byte = 2
	recHardState byte = 3

	markerBodyLen    = 1 + 16
	entryBodyMin     = 1 + 17
	hardStateBodyLen = 1 + 24
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// walRecord is one decoded record. Entry data aliases the buffer it was decoded from.
type walRecord struct {
	typ byte
	// marker: index, term; entry: index, term, entryType, data; hard state: term, vote,
	// commit.
	index, term uint64
	entryType   raftpb.EntryType
	data        []byte
	vote        uint64
	commit      uint64
}

// appendRecord appends one framed record with the given body to dst.
func appendRecord(dst []byte, body ...[]byte) []byte {
	n := 0
	for _, b := range body {
		n += len(b)
	}
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	for _, b := range body {
		dst = append(dst, b...)
	}
	binary.BigEndian.PutUint32(dst[start:], crc32.Checksum(dst[start+4:], castagnoli))
	return dst
}

func appendMarker(dst []byte, index, term uint64) []byte {
	var b [markerBodyLen]byte
	b[0] = recMarker
	binary.BigEndian.PutUint64(b[1:], index)
	binary.BigEndian.PutUint64(b[9:], term)
	return appendRecord(dst, b[:])
}

func appendEntry(dst []byte, e *raftpb.Entry) []byte {
	var b [entryBodyMin]byte
	b[0] = recEntry
	binary.BigEndian.PutUint64(b[1:], e.GetIndex())
	binary.BigEndian.PutUint64(b[9:], e.GetTerm())
	b[17] = byte(e.GetType())
	return appendRecord(dst, b[:], e.GetData())
}

func appendHardState(dst []byte, hs *raftpb.HardState) []byte {
	var b [hardStateBodyLen]byte
	b[0] = recHardState
	binary.BigEndian.PutUint64(b[1:], hs.GetTerm())
	binary.BigEndian.PutUint64(b[9:], hs.GetVote())
	binary.BigEndian.PutUint64(b[17:], hs.GetCommit())
	return appendRecord(dst, b[:])
}

// entryRecordSize is the bytes appendEntry writes for an entry with n bytes of data.
func entryRecordSize(n int) int { return walRecordHeader + entryBodyMin + n }

// decodeRecord decodes the record at the start of b. ok is false if b does not start with
// a whole, valid record; size is the record's length when ok.
func decodeRecord(b []byte) (r walRecord, size int, ok bool) {
	if len(b) < walRecordHeader {
		return r, 0, false
	}
	n := binary.BigEndian.Uint32(b[4:])
	if n < 1 || n > walMaxRecordBytes || uint64(len(b)-walRecordHeader) < uint64(n) {
		return r, 0, false
	}
	size = walRecordHeader + int(n)
	body := b[walRecordHeader:size]
	r.typ = body[0]
	switch r.typ {
	case recMarker:
		if len(body) != markerBodyLen {
			return r, 0, false
		}
	case recEntry:
		if len(body) < entryBodyMin {
			return r, 0, false
		}
	case recHardState:
		if len(body) != hardStateBodyLen {
			return r, 0, false
		}
	default:
		return r, 0, false
	}
	if crc32.Checksum(b[4:size], castagnoli) != binary.BigEndian.Uint32(b) {
		return r, 0, false
	}
	switch r.typ {
	case recMarker:
		r.index = binary.BigEndian.Uint64(body[1:])
		r.term = binary.BigEndian.Uint64(body[9:])
	case recEntry:
		r.index = binary.BigEndian.Uint64(body[1:])
		r.term = binary.BigEndian.Uint64(body[9:])
		r.entryType = raftpb.EntryType(body[17])
		r.data = body[entryBodyMin:]
	case recHardState:
		r.term = binary.BigEndian.Uint64(body[1:])
		r.vote = binary.BigEndian.Uint64(body[9:])
		r.commit = binary.BigEndian.Uint64(body[17:])
	}
	return r, size, true
}

// CorruptError is a segment whose valid records do not end at its torn tail: a bad record
// is followed by a valid one.
type CorruptError struct {
	File   string
	Offset int64 // of the bad record
	Next   int64 // of the first valid record after it
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("metadata log segment %s is corrupt: bad record at offset %d is followed by a valid record at offset %d; refusing to open (truncating would drop data that may have been acknowledged)",
		e.File, e.Offset, e.Next)
}

// scanSegment decodes the records of a segment's bytes. valid is the length of the valid
// prefix: less than len(buf) when the segment ends in a torn tail, which the caller
// truncates. A bad record followed by a valid one is a *CorruptError.
func scanSegment(name string, buf []byte) (recs []walRecord, valid int, err error) {
	off := 0
	for off < len(buf) {
		r, size, ok := decodeRecord(buf[off:])
		if !ok {
			if next := findValidRecord(buf, off+1); next >= 0 {
				return nil, 0, &CorruptError{File: name, Offset: int64(off), Next: int64(next)}
			}
			return recs, off, nil
		}
		recs = append(recs, r)
		off += size
	}
	return recs, off, nil
}

// findValidRecord returns the offset of the first valid record starting at or after from,
// or -1. Most offsets fail the length and type checks before any CRC is computed.
func findValidRecord(buf []byte, from int) int {
	for off := from; off+walRecordHeader < len(buf); off++ {
		if _, _, ok := decodeRecord(buf[off:]); ok {
			return off
		}
	}
	return -1
}
