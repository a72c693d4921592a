package record

import "hash/crc32"

// Validate checks that b is exactly one well-formed magic 2 batch, the
// way Apache Kafka's broker does before appending one from a producer,
// and returns its header. When b is long enough to hold a header, the
// header is returned alongside an error too, for logging.
//
// The checks, in order:
//   - b holds a header and Length+12 == len(b), else ErrCorrupt;
//   - Magic is 2, else ErrUnsupportedMagic;
//   - the CRC-32C of b[21:] matches CRC, else ErrCorrupt;
//   - NumRecords >= 1 and LastOffsetDelta == NumRecords-1, else
//     ErrInvalidRecord;
//   - the codec is None..Zstd, else ErrUnsupportedCodec;
//   - for an uncompressed batch, the records fill the rest of b exactly,
//     each one parsing and filling its own length exactly, and there are
//     NumRecords of them with offset deltas 0, 1, 2, ..., else
//     ErrInvalidRecord: the CRC matched, so the producer wrote bad
//     records, which Kafka reports as INVALID_RECORD (an
//     InvalidRecordException), not as corruption in transit.
//
// Validate does not allocate.
func Validate(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Size() != len(b) {
		return h, ErrCorrupt
	}
	if h.Magic != magicV2 {
		return h, ErrUnsupportedMagic
	}
	if crc32.Checksum(b[offAttributes:], castagnoli) != h.CRC {
		return h, ErrCorrupt
	}
	if h.NumRecords < 1 || h.LastOffsetDelta != h.NumRecords-1 {
		return h, ErrInvalidRecord
	}
	switch c := h.Codec(); {
	case !c.valid():
		return h, ErrUnsupportedCodec
	case c != None:
		// Kafka decompresses compressed batches to check every record.
		// That costs more CPU than the rest of the produce path put
		// together, so only the header is checked here; consumers still
		// verify the CRC, and the records were written by the producer
		// that owns them.
		return h, nil
	}
	return h, walk(b[HeaderSize:], h.NumRecords)
}

// walk checks that body consists of exactly numRecords records with offset
// deltas 0, 1, 2, ...
func walk(body []byte, numRecords int32) error {
	var r Record
	n := 0
	for len(body) > 0 {
		size := readRecord(body, &r, false)
		if size < 0 {
			return ErrInvalidRecord
		}
		if int(r.OffsetDelta) != n {
			return ErrInvalidRecord
		}
		body = body[size:]
		n++
	}
	if n != int(numRecords) {
		return ErrInvalidRecord
	}
	return nil
}

// readRecord parses the record at the start of b into r and returns its
// encoded size, or -1 if it is malformed. Key and Value alias b. Headers
// are decoded into r.Headers, reusing its backing array, only when
// withHeaders is set; otherwise they are only checked, which keeps
// Validate free of allocations.
func readRecord(b []byte, r *Record, withHeaders bool) int {
	length, n := readVarint(b)
	if n <= 0 || length < 0 || int(length) > len(b)-n {
		return -1
	}
	size := n + int(length)
	p := b[n:size]

	// p[0] is the record attributes byte, unused since magic 2.
	if len(p) == 0 {
		return -1
	}
	i := 1
	tsDelta, n := readVarlong(p[i:])
	if n <= 0 {
		return -1
	}
	i += n
	offDelta, n := readVarint(p[i:])
	if n <= 0 {
		return -1
	}
	i += n
	if r.Key, i = readBytes(p, i); i < 0 {
		return -1
	}
	if r.Value, i = readBytes(p, i); i < 0 {
		return -1
	}
	count, n := readVarint(p[i:])
	if n <= 0 {
		return -1
	}
	i += n
	// Every header takes at least two bytes; checking that up front
	// also bounds how far r.Headers can grow.
	if count < 0 || int(count) > (len(p)-i)/2 {
		return -1
	}
	if withHeaders {
		r.Headers = r.Headers[:0]
	}
	for range count {
		var k, v []byte
		if k, i = readBytes(p, i); i < 0 || k == nil {
			return -1
		}
		if v, i = readBytes(p, i); i < 0 {
			return -1
		}
		if withHeaders {
			r.Headers = append(r.Headers, RecordHeader{Key: string(k), Value: v})
		}
	}
	if i != len(p) {
		return -1
	}
	r.TimestampDelta = tsDelta
	r.OffsetDelta = offDelta
	return size
}

// readBytes reads the varint-length-prefixed bytes at p[i:] and returns
// them, nil for length -1, and the index after them, or -1 if they do not
// fit. The result's capacity ends with it, so appending to a key cannot
// overwrite the value that follows.
func readBytes(p []byte, i int) ([]byte, int) {
	l, n := readVarint(p[i:])
	if n <= 0 {
		return nil, -1
	}
	i += n
	if l == -1 {
		return nil, i
	}
	// Kafka reads any negative length as null; only -1 is ever written,
	// so anything else is taken for corruption.
	if l < 0 || int(l) > len(p)-i {
		return nil, -1
	}
	end := i + int(l)
	return p[i:end:end], end
}
