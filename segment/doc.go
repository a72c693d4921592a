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
//	write:       pwritev(2) at an explicit offset (never through the mmap:
//	             a page fault would stall the writer)
//	small read:  View, a slice of a read-only MAP_SHARED mapping of the file
//	large read:  sendfile(2) on Fd at explicit offsets, or ReadAt
//	durability:  fdatasync(2) on Sync; new file names are made durable by
//	             syncing the directory before Create returns
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
package segment
