package record

// Kafka's varints are zigzag-encoded LEB128. The decoders are kept small
// enough for the compiler to inline them into the record parser, which
// calls them several times per record.
//
// Both return n <= 0 when b ends mid-varint or the varint is longer or
// wider than its type allows. Java's decoder silently drops the excess
// bits of an over-wide last byte; no client writes one, so it is treated
// as corruption instead of guessing at the value.

// readVarint decodes a varint of at most 5 bytes into an int32.
func readVarint(b []byte) (int32, int) {
	var x uint32
	for i := 0; i < len(b) && i < 5; i++ {
		c := b[i]
		x |= uint32(c&0x7f) << (7 * i)
		if c < 0x80 {
			if i == 4 && c > 0x0f {
				break // bits past 32
			}
			return int32(x>>1) ^ -int32(x&1), i + 1
		}
	}
	return 0, -1
}

// readVarlong decodes a varint of at most 10 bytes into an int64.
func readVarlong(b []byte) (int64, int) {
	var x uint64
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if i == 9 && c > 0x01 {
				break // bits past 64
			}
			return int64(x>>1) ^ -int64(x&1), i + 1
		}
	}
	return 0, -1
}

func appendVarint(dst []byte, v int64) []byte {
	x := uint64(v<<1) ^ uint64(v>>63)
	for x >= 0x80 {
		dst = append(dst, byte(x)|0x80)
		x >>= 7
	}
	return append(dst, byte(x))
}

func varintLen(v int64) int {
	x := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
