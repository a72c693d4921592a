package log

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Entry layout constants; doc.go draws the format.
const (
	entryFixedSize = 40 // length, crc, type, flags, name length, topic id, partition, store time
	// minEntrySize is the smallest span that can carry a length and a type,
	// so a file tail shorter than this is left as zeros instead of padded.
	minEntrySize = 12

	entryTypeBatch   = 1
	entryTypePadding = 2

	// batchCRCEnd is where a RecordBatch's own CRC field ends: the entry
	// checksum covers the batch up to here, and the batch CRC covers the rest.
	batchCRCEnd = 21
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// TopicID is Kafka's topic UUID; a re-created topic gets a new one, which is
// what keeps its old CommitLog entries from ever being served again.
type TopicID [16]byte

func (id TopicID) String() string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16])
}

// entryHeader is the decoded fixed part of a CommitLog entry.
type entryHeader struct {
	length    uint32
	typ       byte
	topicID   TopicID
	partition int32
	storeTime int64
	topic     string
}

// appendEntryHeader encodes the header of a batch entry for batch, checksum
// included, onto dst.
func appendEntryHeader(dst []byte, topic string, id TopicID, partition int32, storeTime int64, batch []byte) []byte {
	start := len(dst)
	total := entryFixedSize + len(topic) + len(batch)
	var fixed [entryFixedSize]byte
	binary.BigEndian.PutUint32(fixed[0:], uint32(total))
	fixed[8] = entryTypeBatch
	binary.BigEndian.PutUint16(fixed[10:], uint16(len(topic)))
	copy(fixed[12:28], id[:])
	binary.BigEndian.PutUint32(fixed[28:], uint32(partition))
	binary.BigEndian.PutUint64(fixed[32:], uint64(storeTime))
	dst = append(dst, fixed[:]...)
	dst = append(dst, topic...)
	crc := entryChecksum(dst[start:], batch)
	binary.BigEndian.PutUint32(dst[start+4:], crc)
	return dst
}

// entryChecksum covers the header after the checksum field and the batch
// prefix through the batch's own CRC; that CRC covers the rest of the batch,
// so the append path never checksums record bytes twice.
func entryChecksum(header, batch []byte) uint32 {
	crc := crc32.Checksum(header[8:], castagnoli)
	n := min(len(batch), batchCRCEnd)
	return crc32.Update(crc, castagnoli, batch[:n])
}

// paddingMarker returns the marker that fills the rest of a file of n bytes.
func paddingMarker(n int) []byte {
	b := make([]byte, minEntrySize)
	binary.BigEndian.PutUint32(b[0:], uint32(n))
	b[8] = entryTypePadding
	return b
}

// decodeEntry decodes the entry at the start of b, which holds at least the
// whole entry when it is intact. It returns ErrCorrupt when the bytes are
// not a complete, checksummed entry, and errEndOfData at preallocated zeros.
// For a padding entry batch is nil.
func decodeEntry(b []byte) (h entryHeader, batch []byte, err error) {
	if len(b) < minEntrySize {
		return h, nil, errEndOfData
	}
	h.length = binary.BigEndian.Uint32(b[0:])
	if h.length == 0 {
		return h, nil, errEndOfData
	}
	h.typ = b[8]
	switch h.typ {
	case entryTypePadding:
		if uint64(h.length) != uint64(len(b)) {
			return h, nil, fmt.Errorf("%w: padding of %d bytes where %d remain", ErrCorrupt, h.length, len(b))
		}
		return h, nil, nil
	case entryTypeBatch:
	default:
		return h, nil, fmt.Errorf("%w: unknown entry type %d", ErrCorrupt, h.typ)
	}
	if h.length < entryFixedSize || uint64(h.length) > uint64(len(b)) {
		return h, nil, fmt.Errorf("%w: entry length %d with %d bytes left", ErrCorrupt, h.length, len(b))
	}
	nameLen := int(binary.BigEndian.Uint16(b[10:]))
	if entryFixedSize+nameLen+batchCRCEnd > int(h.length) {
		return h, nil, fmt.Errorf("%w: entry of %d bytes too short for its topic name and batch", ErrCorrupt, h.length)
	}
	entry := b[:h.length]
	header := entry[:entryFixedSize+nameLen]
	batch = entry[entryFixedSize+nameLen:]
	if got, want := entryChecksum(header, batch), binary.BigEndian.Uint32(b[4:]); got != want {
		return h, nil, fmt.Errorf("%w: entry checksum %08x, stored %08x", ErrCorrupt, got, want)
	}
	copy(h.topicID[:], b[12:28])
	h.partition = int32(binary.BigEndian.Uint32(b[28:]))
	h.storeTime = int64(binary.BigEndian.Uint64(b[32:]))
	h.topic = string(header[entryFixedSize:])
	return h, batch, nil
}

// batchBaseOffset reads a stored batch's base offset.
func batchBaseOffset(batch []byte) int64 {
	return int64(binary.BigEndian.Uint64(batch))
}
