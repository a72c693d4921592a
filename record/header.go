package record

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strconv"
)

// HeaderSize is the size of the fixed batch header that precedes the
// records.
const HeaderSize = 61

// Byte offsets of the header fields; see the package documentation.
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offFirstTimestamp  = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57
)

// lengthOverhead is the part of a batch that batchLength does not count:
// baseOffset and batchLength itself.
const lengthOverhead = 12

// magicV2 is the only message format this package handles.
const magicV2 = 2

const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// castagnoli is resolved once: crc32 only takes its hardware path when
// handed the table it built for the Castagnoli polynomial.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrCorrupt reports bytes that are not one well-formed batch: a bad
	// length, a CRC mismatch, a record that does not parse, or compressed
	// data that does not decompress. Kafka answers CORRUPT_MESSAGE for
	// the first two and INVALID_RECORD for the others.
	ErrCorrupt = errors.New("record: corrupt batch")
	// ErrInvalidRecord reports a batch that parses but whose record count
	// or offset deltas disagree with its header. Kafka answers
	// INVALID_RECORD.
	ErrInvalidRecord = errors.New("record: invalid record batch")
	// ErrUnsupportedMagic reports a batch in the v0 or v1 message format.
	// Kafka answers INVALID_RECORD for those in Produce v3+.
	ErrUnsupportedMagic = errors.New("record: unsupported magic")
	// ErrUnsupportedCodec reports a codec field of 5, 6 or 7.
	ErrUnsupportedCodec = errors.New("record: unsupported compression codec")
	// ErrTooLarge reports records that decompress to more than the
	// caller's limit, or a batch too big for its int32 length.
	ErrTooLarge = errors.New("record: batch too large")
)

// Codec is the compression codec of a batch, stored in the low three
// attribute bits.
type Codec int8

// The codecs Kafka defines.
const (
	None   Codec = 0
	Gzip   Codec = 1
	Snappy Codec = 2
	LZ4    Codec = 3
	Zstd   Codec = 4
)

func (c Codec) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Snappy:
		return "snappy"
	case LZ4:
		return "lz4"
	case Zstd:
		return "zstd"
	}
	return "codec(" + strconv.Itoa(int(c)) + ")"
}

func (c Codec) valid() bool { return c >= None && c <= Zstd }

// Header is the fixed part of a batch, field for field.
type Header struct {
	BaseOffset           int64
	Length               int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Codec returns the compression codec; it may be outside None..Zstd for a
// batch that has not been validated.
func (h Header) Codec() Codec { return Codec(h.Attributes & attrCodecMask) }

// LogAppendTime reports whether the timestamp type bit says the broker's
// append time (MaxTimestamp) replaces the records' create times.
func (h Header) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// Transactional reports whether the batch belongs to a transaction.
func (h Header) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports whether the batch holds a transaction marker rather than
// user records.
func (h Header) Control() bool { return h.Attributes&attrControl != 0 }

// Size returns the size of the whole batch as its Length field claims it.
func (h Header) Size() int { return int(h.Length) + lengthOverhead }

// LastOffset returns the offset of the batch's last record, from which the
// broker derives the next offset to assign.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// ParseHeader decodes the first HeaderSize bytes of b. It checks neither
// the CRC nor that b holds the whole batch; see Validate.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, ErrCorrupt
	}
	b = b[:HeaderSize]
	be := binary.BigEndian
	return Header{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		Length:               int32(be.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:       int64(be.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offNumRecords:])),
	}, nil
}

// SetBaseOffset rewrites the batch's base offset in place. The field lies
// before the CRC'd range, so the CRC stays valid. b must hold at least a
// batch header.
func SetBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off))
}

// SetPartitionLeaderEpoch rewrites the batch's partition leader epoch in
// place; like the base offset it is outside the CRC'd range. b must hold
// at least a batch header.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// SetMaxTimestampLogAppendTime stamps a batch for a topic with
// message.timestamp.type=LogAppendTime the way Kafka does: it sets the
// timestamp type bit and MaxTimestamp to ts, leaves FirstTimestamp and the
// records alone (readers take every record's timestamp from MaxTimestamp
// once the bit is set), and recomputes the CRC, which covers both fields.
// b must be a whole batch, typically one Validate accepted.
func SetMaxTimestampLogAppendTime(b []byte, ts int64) {
	be := binary.BigEndian
	attrs := be.Uint16(b[offAttributes:])
	if attrs&attrLogAppendTime != 0 && int64(be.Uint64(b[offMaxTimestamp:])) == ts {
		// Nothing changes, so skip rehashing the whole batch, as Kafka
		// does.
		return
	}
	be.PutUint16(b[offAttributes:], attrs|attrLogAppendTime)
	be.PutUint64(b[offMaxTimestamp:], uint64(ts))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}
