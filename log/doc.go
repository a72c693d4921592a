// Package log is the store: ONE CommitLog that every partition of every
// topic appends to, a ConsumeQueue per partition that indexes it, and the
// catalogue of topics. It gives Kafka's semantics (offsets, log start
// offset, high watermark, idempotent producers) on RocketMQ's layout.
//
// # Data directory
//
//	{log.dirs}/
//	  meta.properties            cluster.id, written once on first start
//	  metadata.json              topics (name, id, partitions, configs) and the reserved producer-ID block
//	  checkpoint.json            the last checkpoint: CommitLog position, ConsumeQueue lengths, producer state, clean flag
//	  log-start-offsets.json     log start offsets moved by retention and DeleteRecords
//	  commitlog/00000000000000000000      fixed-size preallocated files named by
//	  commitlog/00000000001073741824      their 20-digit starting position
//	  consumequeue/{topic}/{partition}/00000000000000000000   see package index
//
// # CommitLog entry
//
// Each Produce batch becomes one entry. Integers are big-endian.
//
//	+--------+--------+------+-------+---------+----------+-----------+------------+--------+------------------+
//	| length | crc    | type | flags | namelen | topic id | partition | store time | topic  | RecordBatch      |
//	| uint32 | uint32 | u8=1 | u8=0  | uint16  | 16 bytes | int32     | int64 ms   | namelen| length-40-namelen|
//	+--------+--------+------+-------+---------+----------+-----------+------------+--------+------------------+
//	0        4        8      9       10        12         28          32           40
//
// length counts the whole entry. crc is CRC32C over bytes 8..40+namelen and
// the first 21 bytes of the RecordBatch (base offset, length, leader epoch,
// magic and the batch's own CRC32C, which covers the rest of the batch). So
// the append path checksums only the header, while recovery, which checks
// both, still detects any torn or flipped byte. The RecordBatch is stored
// exactly as Fetch serves it, with the broker-assigned base offset written
// in, compressed batches still compressed.
//
// The topic ID is what survives topic re-creation: entries whose ID is not
// a live topic's are skipped, so a re-created topic never serves old
// records. The topic name is kept so a CommitLog alone tells which topic an
// entry belonged to.
//
// When an entry does not fit in the rest of a file, a padding marker fills
// it and the entry starts the next file:
//
//	+--------------------+--------+------+---------
//	| length = rest      | 0      | u8=2 | ignored ...
//	+--------------------+--------+------+---------
//
// A tail shorter than 12 bytes is left as zeros. A zero length marks the
// end of written data in a preallocated file.
//
// # Durability and recovery
//
// Writes go with pwritev to the page cache; the flusher fsyncs on
// flush.interval.ms (ASYNC_FLUSH) or, in SYNC_FLUSH, once per group of
// waiting acks=all producers. A Produce request's batches, whatever their
// partitions, go to the CommitLog in pwritev calls of about 1 MiB (one
// call for a whole large request costs the kernel more). Each ConsumeQueue entry is
// appended right after its CommitLog entry, under the partition's lock, so
// offsets are assigned in CommitLog order; the ConsumeQueue writes its
// entries to its file a page at a time (see package index), which is safe
// because an unclean start rebuilds every ConsumeQueue from the CommitLog.
//
// A checkpoint is a consistent cut of the store, taken every
// checkpoint.interval.ms and by Close: appends pause while it copies the
// CommitLog position P, every ConsumeQueue's length and the idempotent
// producer state; then the CommitLog and the ConsumeQueues are synced, and
// the cut is written to checkpoint.json (atomically, fsynced). Close marks
// its checkpoint clean. Open trusts the ConsumeQueues up to the recorded
// lengths (clearing whatever a crash left past them) and the recorded
// producer state, then replays the CommitLog from P: each entry's header
// checksum and batch CRC are checked, the intact ones re-indexed, and the
// log cut at the first bad byte (the rest of that file is zeroed, so stale
// bytes can never be mistaken for entries after another crash, and later
// files are deleted). After a clean close the replay is skipped. Without a
// checkpoint every index is rebuilt from the first CommitLog file.
package log
