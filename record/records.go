package record

// Record is one decoded record. Its absolute offset is the batch's
// BaseOffset+OffsetDelta and its timestamp FirstTimestamp+TimestampDelta
// (or MaxTimestamp for a LogAppendTime batch).
type Record struct {
	OffsetDelta    int32
	TimestampDelta int64
	Key, Value     []byte // nil when null
	Headers        []RecordHeader
}

// RecordHeader is one record header. Kafka does not allow a null key.
type RecordHeader struct {
	Key   string
	Value []byte // nil when null
}

// maxLimit caps maxDecompressed: more than 1 GiB of records in one batch is
// certainly hostile, and the cap keeps size arithmetic from overflowing
// even where int has 32 bits.
const maxLimit = 1 << 30

// Records decodes the batch's records, decompressing them first if
// needed, and calls fn for each in order until fn returns false.
//
// Snappy is accepted both raw and in the xerial framing the Java client
// writes; LZ4 is the LZ4 frame format. Decompressing to more than
// maxDecompressed bytes fails with ErrTooLarge, so a small batch cannot
// expand into unbounded memory; limits above 1 GiB act as 1 GiB. The limit
// does not apply to uncompressed batches, which are already in memory.
//
// A Record is only valid during its call to fn: Key, Value and header
// values alias batch or a decompression buffer, and the Headers slice is
// reused for the next record. Copy what must outlive the call.
//
// Records checks the batch's length, magic and codec, and that it holds
// exactly NumRecords well-formed records, but not the CRC (see Validate)
// nor the offset deltas, which compaction leaves with gaps. Errors found
// after some records were passed to fn are still returned.
func Records(batch []byte, maxDecompressed int, fn func(Record) bool) error {
	h, err := ParseHeader(batch)
	if err != nil {
		return err
	}
	if h.Size() != len(batch) {
		return ErrCorrupt
	}
	if h.Magic != magicV2 {
		return ErrUnsupportedMagic
	}
	codec := h.Codec()
	if !codec.valid() {
		return ErrUnsupportedCodec
	}
	body := batch[HeaderSize:]
	if codec != None {
		limit := min(max(maxDecompressed, 0), maxLimit)
		if body, err = decompress(codec, body, limit); err != nil {
			return err
		}
	}

	var r Record
	n := 0
	for len(body) > 0 {
		size := readRecord(body, &r, true)
		if size < 0 {
			return ErrCorrupt
		}
		body = body[size:]
		// Records past NumRecords are parsed, not delivered, to report
		// a wrong count rather than corruption, as Validate does.
		if n < int(h.NumRecords) && !fn(r) {
			return nil
		}
		n++
	}
	if n != int(h.NumRecords) {
		return ErrInvalidRecord
	}
	return nil
}
