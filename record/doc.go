// Package record validates, rewrites and decodes Kafka record batches in
// the v2 message format ("magic 2"), the only format Produce v3+ accepts.
//
// A produce request carries, per partition, exactly one batch. The broker
// checks it with [Validate], assigns offsets and its leader epoch in place
// with [SetBaseOffset] and [SetPartitionLeaderEpoch], and stores the bytes
// unchanged, so consumers later fetch exactly what the producer sent.
// Everything here is a pure function over byte slices.
//
// # Batch layout
//
// All header integers are big endian. The CRC is CRC-32C (Castagnoli) and
// covers everything from the attributes to the end of the batch, which is
// why the first three fields can be rewritten without recomputing it.
//
//	byte  +---------------------------------+
//	   0  | baseOffset             int64    |  \
//	   8  | batchLength            int32    |   > not covered by the CRC:
//	  12  | partitionLeaderEpoch   int32    |  /  rewritten by the broker
//	  16  | magic (= 2)            int8     |
//	  17  | crc                    uint32   |  CRC-32C of bytes 21..end
//	  21  +=================================+  <- CRC coverage starts
//	      | attributes             int16    |
//	  23  | lastOffsetDelta        int32    |  numRecords-1 when produced
//	  27  | firstTimestamp         int64    |  timestamp of the first record
//	  35  | maxTimestamp           int64    |
//	  43  | producerId             int64    |  -1 unless idempotent
//	  51  | producerEpoch          int16    |  -1 unless idempotent
//	  53  | baseSequence           int32    |  -1 unless idempotent
//	  57  | numRecords             int32    |
//	  61  +---------------------------------+  <- HeaderSize
//	      | records...                      |  compressed as one blob
//	      |                                 |  unless the codec is None
//	      +---------------------------------+
//
// batchLength counts the bytes after itself, so a whole batch is
// batchLength+12 bytes long.
//
//	attributes:
//	   15 ............ 7      6          5         4          3     2..0
//	  +-----------------+---------+---------+---------+---------+-------+
//	  |     unused      | delete  | control | transac-| tstype  | codec |
//	  |                 | horizon |         | tional  | 1 = log |       |
//	  |                 |         |         |         | append  |       |
//	  +-----------------+---------+---------+---------+---------+-------+
//	  codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
//
// # Record layout
//
// Records follow one another without padding. "varint" is a zigzag
// encoded int32 in at most 5 bytes, "varlong" a zigzag int64 in at most
// 10. A length of -1 encodes null.
//
//	+----------------+------------+------------------+---------------+
//	| length varint  | attributes | timestampDelta   | offsetDelta   |
//	| (of the rest)  | int8 (0)   | varlong          | varint        |
//	+----------------+------------+------------------+---------------+
//	| keyLength varint | key | valueLength varint | value |
//	+------------------+-----+--------------------+-------+
//	| headerCount varint | headers...                     |
//	+--------------------+--------------------------------+
//
//	header:
//	+------------------+-----+--------------------+-------+
//	| keyLength varint | key | valueLength varint | value |
//	+------------------+-----+--------------------+-------+
//	(a header key cannot be null; its value can)
//
// A record's timestamp is firstTimestamp+timestampDelta and its offset
// baseOffset+offsetDelta.
package record
