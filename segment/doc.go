// Package segment stores a logical byte space in fixed-size, preallocated
// files, RocketMQ style. The CommitLog is one such space (1 GiB files) and
// every ConsumeQueue is another (small files of fixed-size index entries).
//
// # On-disk format
//
// A Queue is one directory. Each file is named by the logical position of
// its first byte, 20 decimal digits, zero padded, so that lexical order is
// position order. Files are contiguous: each starts where the previous one
// ends, and every base is a multiple of the file size.
//
//	{dir}/
//	  00000000000000000000   logical bytes [0, size)
//	  00000000001073741824   logical bytes [size, 2*size)
//	  00000000002147483648   logical bytes [2*size, 3*size)
//	  ...                    (anything whose name does not parse is ignored)
//
// Every file is exactly size bytes, allocated up front with fallocate(2) so
// that writes never change file metadata and fdatasync(2) stays cheap.
// Bytes never written read as zeros; the package gives the bytes no other
// meaning, so callers (CommitLog, ConsumeQueue) encode where their data ends.
//
//	one segment file
//	+--------------------------------+-------------------------------+
//	| written bytes                  | zeros (preallocated, unused)  |
//	+--------------------------------+-------------------------------+
//	0                          caller's write position             size
//
// # I/O paths
//
//	write:       pwritev(2) at an explicit offset, never through the mmap
//	             (see "Why writes use pwritev" below)
//	small read:  View, a slice of a read-only MAP_SHARED mapping of the file
//	large read:  sendfile(2) on Fd at explicit offsets, or ReadAt
//	durability:  fdatasync(2) on Sync; new file names are made durable by
//	             syncing the directory before Create returns
//	zeroing:     Zero of 64 KiB and more by fallocate(FALLOC_FL_ZERO_RANGE),
//	             a metadata update that keeps the blocks reserved; smaller
//	             ranges, and files without a descriptor, by writing zeros
//
// # Why writes use pwritev
//
// Copying into a writable MAP_SHARED mapping was tried for the
// ConsumeQueue's 32-byte entries and rejected. In a single-file
// microbenchmark it looked 18 times faster than a pwrite per entry (99 ns
// against 1.8 µs), but in the broker, producing 128 MiB of 1 KiB records
// round-robin over 1000 partitions, a CPU profile put 99% of the broker's
// CPU in the memmove into the mappings: 92 CPU seconds per GB produced,
// against about 5 with pwrite. The likely cause: on ext4 the first write
// fault on each page of a fallocated (unwritten-extent) file goes through
// page_mkwrite with a journal handle, and writeback write-protects a page
// again each time it is written back, so with a thousand files the faults
// are frequent and each is expensive. A store into a mapping also turns
// ENOSPC or EIO into SIGBUS.
//
// Small writes are instead batched by the caller: package index buffers
// ConsumeQueue entries and writes a page of them with one pwritev.
//
// # Lifetime
//
// Readers may race with retention deleting a segment. A reader that touches
// a segment's mapping or descriptor brackets the access with Acquire and
// Release; Close and Remove drop the owner's reference and the mapping and
// descriptor go away when the last reference does.
//
// # Testing
//
// MemFS is an in-memory FS that keeps only what was synced across Crash,
// can tear the last write (CrashTorn) and can fail writes (FailWrites).
// Its files have no descriptor, so segments on it are not mapped and
// readers take the ReadAt path.
package segment
