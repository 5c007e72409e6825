// The cleaner's offset map: key hash -> offset of the key's latest record, in a fixed
// memory budget (log.cleaner.dedupe.buffer.size), like Kafka's SkimpyOffsetMap.
//
// Keys are not stored, only their MD5 (16 bytes): a slot is 24 bytes whatever the key's
// size, so the budget bounds the number of keys, not their bytes. A 128-bit hash makes a
// collision (one key's record dropped because another key was written later) as unlikely
// as it is in Kafka, which makes the same trade.
//
// The table starts small and doubles until it reaches the budget, so cleaning a small
// log costs little memory; once at the budget it reports itself full at the load factor
// and the cleaner stops mapping there (the rest is left for the next round).
package log

import (
	"crypto/md5"
	"encoding/binary"
)

const (
	mapSlotBytes      = 24
	mapLoadFactor     = 0.9
	mapInitialSlots   = 1 << 10
	minDedupeBufBytes = mapSlotBytes * 64
)

type mapSlot struct {
	hash   [md5.Size]byte
	offset int64 // offset+1; 0 marks an empty slot, so clear() empties the table
}

type offsetMap struct {
	maxSlots int // from the byte budget
	slots    []mapSlot
	used     int
}

func newOffsetMap(budgetBytes int64) *offsetMap {
	n := max(budgetBytes, minDedupeBufBytes) / mapSlotBytes
	return &offsetMap{maxSlots: int(min(n, 1<<31))}
}

// reset empties the map, keeping its table for the next clean.
func (m *offsetMap) reset() {
	clear(m.slots)
	m.used = 0
}

// full reports whether one more new key may not fit.
func (m *offsetMap) full() bool {
	return len(m.slots) >= m.maxSlots && float64(m.used+1) > mapLoadFactor*float64(len(m.slots))
}

// put records offset as the latest of key; the caller checks full first.
func (m *offsetMap) put(key []byte, offset int64) {
	h := md5.Sum(key)
	if float64(m.used+1) > mapLoadFactor*float64(len(m.slots)) && len(m.slots) < m.maxSlots {
		m.grow()
	}
	i := m.find(&h)
	if m.slots[i].offset == 0 {
		m.used++
		m.slots[i].hash = h
	}
	m.slots[i].offset = offset + 1
}

// get returns the latest offset recorded for key, or -1.
func (m *offsetMap) get(key []byte) int64 {
	if len(m.slots) == 0 {
		return -1
	}
	h := md5.Sum(key)
	return m.slots[m.find(&h)].offset - 1
}

// find returns the slot holding h, or the empty slot where it belongs (linear probing;
// the load factor keeps an empty slot).
func (m *offsetMap) find(h *[md5.Size]byte) int {
	n := uint64(len(m.slots))
	i := binary.BigEndian.Uint64(h[:8]) % n
	for {
		s := &m.slots[i]
		if s.offset == 0 || s.hash == *h {
			return int(i)
		}
		i++
		if i == n {
			i = 0
		}
	}
}

func (m *offsetMap) grow() {
	n := min(max(2*len(m.slots), mapInitialSlots), m.maxSlots)
	old := m.slots
	m.slots = make([]mapSlot, n)
	for _, s := range old {
		if s.offset != 0 {
			m.slots[m.find(&s.hash)] = s
		}
	}
}
