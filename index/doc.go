// Package index implements the ConsumeQueue of one topic-partition: a dense
// array of fixed-size entries, one per RecordBatch, that locates the batch
// in the CommitLog and lets fetches and ListOffsets binary-search by Kafka
// offset or timestamp without touching the CommitLog.
//
// It also implements the KeyIndex, RocketMQ's IndexFile, which finds
// records by key; see "Key index" below.
//
// # On-disk format
//
// The entries live in a segment.Queue under {root}/consumequeue/{topic}/{partition}.
// Entry i sits at logical byte i*EntrySize; each file holds entriesPerFile
// entries and is named by the logical position of its first byte:
//
//	{root}/consumequeue/{topic}/{partition}/    (entriesPerFile = 300000)
//	  00000000000000000000   entries [0, 300000)
//	  00000000000009600000   entries [300000, 600000)
//	  00000000000019200000   entries [600000, 900000)
//
// An entry is 32 bytes, big-endian:
//
//	0        8      12      16              24              32
//	+--------+------+-------+---------------+---------------+
//	| pos    | size | count | baseOffset    | maxTimestamp  |
//	| int64  | int32| int32 | int64         | int64         |
//	+--------+------+-------+---------------+---------------+
//	  pos           CommitLog position of the RecordBatch
//	  size          RecordBatch length in bytes; 0 marks an unused slot
//	  count         offsets the batch covers (lastOffsetDelta+1)
//	  baseOffset    Kafka offset of the batch's first record
//	  maxTimestamp  running maximum of batch max timestamps, so it never
//	                decreases and can be binary-searched
//
// Files are preallocated with zeros, so the used entries form a prefix and
// the length is recovered by finding the last entry whose size is not zero.
// A zero size before a used entry is corruption.
//
// Entries before FirstIndex are dead. Whole files below it are deleted, so
// after a restart FirstIndex is the first entry of the first file until the
// caller sets it again.
//
// # Writes: a write-behind tail
//
// As in RocketMQ, where the ConsumeQueue is built asynchronously from the
// CommitLog, entries reach their file behind the Append. Append encodes the
// entry into the tail, an in-memory buffer of up to 128 entries (4 KiB,
// one page) holding entries [flushed, Len), and returns. The tail is written
// to the file with one pwritev when its entries reach a page boundary of
// the file or the end of the file (so it never spans two files), on Sync,
// and on Close:
//
//	            files (page cache, read via the mapping)     tail (memory)
//	entries  [ 0 ................................ flushed )[ flushed .. Len )
//
// A pwrite per entry cost 1.8 µs (2.3 µs over 1000 partitions), as much
// as the CommitLog write of the whole batch; one per page amortises to a
// few tens of ns. Copying entries into a writable shared mapping instead
// looked faster still in a microbenchmark and was rejected after measuring
// the broker (see package segment: 92 CPU seconds per GB produced over
// 1000 partitions, against ~5 with pwrite). BenchmarkConsumeQueueAppend
// (medians of 5 runs, ext4 on a 2-vCPU VM, 0 allocations):
//
//	1 partition               61 ns
//	1000 partitions, in turn  107 ns
//
// An Append that fails (creating the next file, or the flush it triggers)
// leaves the queue as it was; the tail keeps its entries for the next
// attempt, and zeros are written over whatever the failed write may have
// left in the file past Len.
//
// # Reads
//
// Readers see every appended entry at once, flushed or not: At, Last,
// SearchOffset and SearchTimestamp treat the tail as the end of the
// searchable range. Entries below flushed are read through the segment's
// read-only mapping (ReadAt on MemFS) without a lock. Entries in the tail
// are copied out under a read lock, which a flush takes for writing only
// to advance flushed, so that the appender never reuses a slot a reader is
// still reading. Append fills the slot at Len without the lock and stores
// Len atomically afterwards, so no reader sees a half-written entry. Lookups
// allocate nothing.
//
// # Durability
//
// Sync writes the tail out and fdatasyncs; Close does the same, so after a
// clean shutdown every entry is on disk. A crash loses what was not synced,
// the tail included: up to 127 entries per queue that were never written,
// on top of written pages the kernel had not yet written back, as before.
// That costs nothing: after an unclean shutdown the store (package log)
// drops every ConsumeQueue and rebuilds it from the CommitLog.
//
// # Key index
//
// For topics with key indexing on, the store adds a KeyEntry per record
// key as batches are appended, so that one can ask for the records with key
// K in topic T between times A and B, which Kafka cannot. The KeyIndex
// knows nothing of the store: an entry is a 64-bit hash of (topic ID, key)
// and where the record is.
//
// As in RocketMQ, the index is a directory of IndexFiles, each a hash
// table: a slot table whose slots head chains of fixed-size entries, the
// entries appended in order. A file is named by the number of its first
// entry, 20 digits (segment.Name); numbers run on across files, with a gap
// where a file ended short of full (a crash). New entries go to the last
// file; a full one is never written again and the next Add rolls:
//
//	{root}/index/    (5000000 slots, 20000000 entries per file)
//	  00000000000000000000   entries [0, 20000000)
//	  00000000000020000000   entries [20000000, 40000000)
//	  00000000000040000000   entries [40000000, ...), taking entries
//
// A file is a segment of fixed size, preallocated: 4096 + 4*slots +
// 44*entries bytes, 900 MB with RocketMQ's geometry, the default
// (DefaultKeySlots, DefaultKeyEntriesPerFile). Each file keeps the geometry
// it was created with. Integers are big-endian.
//
//	0          64         512        576          4096           4096+4*slots             size
//	+----------+----------+----------+------------+--------------+------------------------+
//	| header   | zeros    | header   | zeros      | slot table   | entries                |
//	| copy 0   |          | copy 1   |            | slots*uint32 | entries*44 bytes       |
//	+----------+----------+----------+------------+--------------+------------------------+
//
// The header has two copies, written in turn (copy seq%2), so that a torn
// header write leaves the other; the valid copy with the later seq counts.
//
//	0       4       6       8       12      16      20       24      28      36      44       52       60      64
//	+-------+-------+-------+-------+-------+-------+--------+-------+-------+-------+--------+--------+-------+
//	| magic |version| flags | seq   | epoch | slots |capacity| count | minTs | maxTs | minPos | maxPos | crc   |
//	| RKIX  | u16=1 | u16   | u32   | u32   | u32   | u32    | u32   | i64   | i64   | i64    | i64    | u32   |
//	+-------+-------+-------+-------+-------+-------+--------+-------+-------+-------+--------+--------+-------+
//	  flags         bit 0, clean: every write to the file is durable and
//	                the slot table matches entries [0, count); none follows
//	  epoch         seeds the checksums of entries written since the
//	                header was last synced (see recovery)
//	  count         entries known durable: [0, count)
//	  minTs..maxPos bounds of the timestamps and CommitLog positions of
//	                entries [0, count) (timestamps are record timestamps,
//	                which need not increase); Lookup skips files whose
//	                timestamps miss the range, RemoveBefore goes by maxTs
//	  crc           CRC-32C of bytes 0..60
//
// Slot s holds 1 + the number (within the file) of the newest entry whose
// hash h has h % slots == s, or 0 for none. An entry is 44 bytes:
//
//	0        8           12       20          28       36       40       44
//	+--------+-----------+--------+-----------+--------+--------+--------+
//	| hash   | partition | offset | timestamp | pos    | prev   | crc    |
//	| u64    | i32       | i64    | i64 ms    | i64    | u32    | u32    |
//	+--------+-----------+--------+-----------+--------+--------+--------+
//	  hash       KeyHash(topic ID, key); never 0, so 0 marks an unused entry
//	  offset     the record's Kafka offset
//	  pos        CommitLog position of the batch holding the record
//	  prev       what the slot held before this entry: 1 + the number of
//	             the previous entry of the slot, 0 at the chain's end
//	  crc        CRC-32C of the epoch's 4 bytes then bytes 0..40
//
// KeyHash is FNV-1a 64 over the 16 bytes of the topic ID and then the key,
// passed through MurmurHash3's 64-bit finalizer (so that all of it reaches
// the low bits that pick the slot), 0 mapped to 1. It is part of the
// format.
//
// # Key index: writes
//
// Add runs for every record key on the append path, so it does no system
// call of its own most of the time and touches no header. The file that
// takes entries keeps its slot table in memory (20 MB by default), the
// authority for readers; Add reads the slot for the entry's link, encodes
// the entry into a write-behind tail as the ConsumeQueue does (512
// entries, 22 KiB, written with one pwritev when full or at the end of the
// file), then publishes the entry and stores the slot. A bitmap records
// which 4 KiB blocks of the table changed.
//
// Sync flushes the tail under the appender's lock, takes the bitmap, and
// then, without holding up Add: writes the changed blocks (one pwritev per
// run of blocks), fdatasyncs, and only then writes the header with the
// count it took. So the count on disk is updated once per Sync, never
// ahead of the entries it vouches for, and becomes durable with the next
// Sync. A full file's header gets the clean flag, its table is from then
// on read from the file (through the mapping), and once that header is
// synced the file is left alone. Close gives every file a clean header
// and syncs it.
//
// A roll creates the next file (fallocate and a directory fsync, a few
// milliseconds every 20 million keys) and writes its header unsynced: a
// file whose header never became durable holds nothing that was synced,
// and a reopen deletes it.
//
// # Key index: recovery
//
// A file with a clean header is trusted as it is; reopening the last one
// only loads its slot table (20 ms). Any other file is replayed: its
// entries are read in order from the first (with large preads) and the
// slot table is rebuilt as Add built it. The table on disk is not trusted
// because Sync writes its blocks before the fdatasync, so a crash can
// leave any of them, torn or pointing at entries that were lost. Entry i
// belongs to the file if its hash is not 0 and its link equals the slot
// as rebuilt so far; entries past the header's count must also pass their
// checksum. The first entry that fails ends the file; one below the count
// is corruption (ErrCorrupt). The rebuilt table is written back. Replay
// reads about 12 million entries a second (a full default file in under
// 2 s); the store's own recovery after a crash replays the CommitLog past
// its checkpoint.
//
// What lies past the end after a replay (entries torn, or written out of
// order by the kernel) must never pass for entries later. The epoch sees
// to that: before the last file takes entries again, its header gets
// epoch+1 and the clean flag cleared, and is fdatasynced. Entries are
// written with the new epoch in their checksum, and a crash replays with
// the epoch of the durable header, so leftovers from before, whose epoch
// is older, fail their checksum wherever they lie; and since the header
// is synced before any entry uses its epoch, no epoch is ever reused.
//
// A crash thus loses at most entries that were not synced, and some of
// those may survive: after a crash the index holds every synced entry,
// maybe some that were not, and nothing else. OpenKeyIndexAt instead
// keeps exactly the entries before an End recorded (after a Sync) by a
// checkpoint, so that the store can index again what it replays from the
// CommitLog past the checkpoint without duplicates or entries pointing at
// CommitLog bytes that recovery cut.
//
// # Key index: lookups and retention
//
// Lookup walks, newest file first and skipping files whose timestamps miss
// the range, the chain of the hash's slot, and returns the entries with
// that 64-bit hash and a timestamp in range, newest first. Other keys with
// the same hash come too: the caller compares the key of the record it
// reads at Pos. Timestamps need not increase along a chain, so the walk
// cannot stop early at an old entry as RocketMQ's does with store times;
// a hot key with a narrow range costs a walk of its whole chain per file.
// Slots come from memory or the mapping, entries from the mapping (ReadAt
// without one) or from the tail under a read lock; a lookup allocates
// nothing. RemoveBefore deletes the files whose newest entry is older than
// a time (any but the last); lookups already inside one finish reading it.
//
// On a 2-vCPU VM (ext4), 0 allocations per operation; the two figures are
// the medians of 5 runs in each of two sessions, this VM being noisy:
//
//	BenchmarkKeyIndexAdd (default geometry)                   250, 335 ns
//	  with a 4096-slot table, without the cache miss          ~90 ns
//	BenchmarkKeyHash (16-byte key)                             42, 44 ns
//	BenchmarkKeyIndexLookup, a random key of 10 million:
//	  one file (default geometry), all time                   2.3, 1.3 µs
//	  three files of 4 million, all time                      2.2, 1.9 µs
//	  three files of 4 million, one minute (one file probed)  0.8, 0.9 µs
//
// Lookups are cache and TLB misses (a slot, then about three entries of a
// chain spread over hundreds of MB), one after the other: the same lookups
// repeated over 16 keys take 100-200 ns. Adding the 10 million keys took
// 3.5-6 s.
package index
