package record

import (
	"encoding/binary"
	"hash/crc32"
	"math"
)

// Build appends to dst a batch holding records, compressed with codec, and
// returns the extended slice. It is meant for tests, benchmarks and tools
// rather than the produce path, which stores batches as sent.
//
// From h it takes BaseOffset, PartitionLeaderEpoch, ProducerID,
// ProducerEpoch and BaseSequence (-1, -1, -1 for a producer that is not
// idempotent), and the attribute bits other than the codec. It computes
// everything else: Length, Magic, CRC, NumRecords, LastOffsetDelta and the
// timestamps.
//
// Records are numbered as a producer numbers them: record i gets offset
// delta i whatever its OffsetDelta says. Record timestamps are read as
// h.FirstTimestamp+TimestampDelta; the batch's FirstTimestamp becomes the
// first record's timestamp, the deltas are rebased on it, and
// MaxTimestamp is the largest timestamp.
//
// Build fails with ErrInvalidRecord for no records, ErrUnsupportedCodec
// for an unknown codec and ErrTooLarge if the batch or a record outgrows
// its int32 length.
func Build(dst []byte, h Header, records []Record, codec Codec) ([]byte, error) {
	if len(records) == 0 {
		return dst, ErrInvalidRecord
	}
	if !codec.valid() {
		return dst, ErrUnsupportedCodec
	}

	first := records[0].TimestampDelta
	maxDelta := int64(0)
	for i := range records {
		maxDelta = max(maxDelta, records[i].TimestampDelta-first)
	}

	start := len(dst)
	dst = append(dst, make([]byte, HeaderSize)...)
	var err error
	if codec == None {
		dst, err = appendRecords(dst, records, first)
	} else {
		var raw []byte
		if raw, err = appendRecords(nil, records, first); err == nil {
			dst, err = compress(dst, raw, codec)
		}
	}
	if err != nil {
		return dst[:start], err
	}
	length := len(dst) - start - lengthOverhead
	if length > math.MaxInt32 {
		return dst[:start], ErrTooLarge
	}

	b := dst[start:]
	be := binary.BigEndian
	be.PutUint64(b[offBaseOffset:], uint64(h.BaseOffset))
	be.PutUint32(b[offLength:], uint32(length))
	be.PutUint32(b[offLeaderEpoch:], uint32(h.PartitionLeaderEpoch))
	b[offMagic] = magicV2
	be.PutUint16(b[offAttributes:], uint16(h.Attributes&^attrCodecMask|int16(codec)))
	be.PutUint32(b[offLastOffsetDelta:], uint32(len(records)-1))
	be.PutUint64(b[offFirstTimestamp:], uint64(h.FirstTimestamp+first))
	be.PutUint64(b[offMaxTimestamp:], uint64(h.FirstTimestamp+first+maxDelta))
	be.PutUint64(b[offProducerID:], uint64(h.ProducerID))
	be.PutUint16(b[offProducerEpoch:], uint16(h.ProducerEpoch))
	be.PutUint32(b[offBaseSequence:], uint32(h.BaseSequence))
	be.PutUint32(b[offNumRecords:], uint32(len(records)))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return dst, nil
}

// appendRecords appends the records, numbered from zero, with timestamp
// deltas rebased on the first record's.
func appendRecords(dst []byte, records []Record, firstTimestampDelta int64) ([]byte, error) {
	for i := range records {
		r := &records[i]
		tsDelta := r.TimestampDelta - firstTimestampDelta
		size := 1 + varintLen(tsDelta) + varintLen(int64(i)) +
			bytesLen(r.Key) + bytesLen(r.Value) + varintLen(int64(len(r.Headers)))
		for _, h := range r.Headers {
			size += varintLen(int64(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
		}
		if size > math.MaxInt32 {
			return dst, ErrTooLarge
		}
		dst = appendVarint(dst, int64(size))
		dst = append(dst, 0) // attributes, unused
		dst = appendVarint(dst, tsDelta)
		dst = appendVarint(dst, int64(i))
		dst = appendBytes(dst, r.Key)
		dst = appendBytes(dst, r.Value)
		dst = appendVarint(dst, int64(len(r.Headers)))
		for _, h := range r.Headers {
			dst = appendVarint(dst, int64(len(h.Key)))
			dst = append(dst, h.Key...)
			dst = appendBytes(dst, h.Value)
		}
	}
	return dst, nil
}

func bytesLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return appendVarint(dst, -1)
	}
	dst = appendVarint(dst, int64(len(b)))
	return append(dst, b...)
}
