// Filtering records out of a batch, for log compaction.
package batch

import (
	"fmt"
	"math"
)

// Filter returns b with only the records keep accepts, re-encoded (and recompressed with
// b's codec) when any record goes. The header is preserved as Kafka's cleaner preserves
// it: base offset, lastOffsetDelta (so the batch still ends where it did and producer
// sequence numbers stay valid), leader epoch, attributes, producer fields and
// baseTimestamp; recordCount, maxTimestamp (for CreateTime) and the CRC are recomputed.
// A batch may end up with no records: its header then keeps its offsets in the log.
// changed is false, and b itself returned, when every record is kept.
func Filter(b Batch, keep func(r Record) bool, maxDecompressed int) (out Batch, changed bool, err error) {
	recs, err := Records(b, maxDecompressed)
	if err != nil {
		return nil, false, err
	}
	kept := recs[:0:0]
	for _, r := range recs {
		if keep(r) {
			kept = append(kept, r)
		}
	}
	if len(kept) == len(recs) {
		return b, false, nil
	}
	base, baseTs := b.BaseOffset(), b.BaseTimestamp()
	maxTs := int64(math.MinInt64)
	var body []byte
	for _, r := range kept {
		maxTs = max(maxTs, r.Timestamp)
		body = appendRecord(body, int32(r.Offset-base), r.Timestamp-baseTs, r)
	}
	comp, err := compress(b.Codec(), body, false)
	if err != nil {
		return nil, false, fmt.Errorf("filter batch at %d: %w", base, err)
	}
	out = make(Batch, HeaderSize, HeaderSize+len(comp))
	copy(out, b[:HeaderSize])
	out = append(out, comp...)
	be.PutUint32(out[offBatchLength:], uint32(len(out)-lengthFieldEnd))
	be.PutUint32(out[offRecordCount:], uint32(len(kept)))
	if len(kept) > 0 && !b.LogAppendTime() {
		be.PutUint64(out[offMaxTimestamp:], uint64(maxTs))
	}
	be.PutUint32(out[offCRC:], out.ComputeCRC())
	return out, true, nil
}
