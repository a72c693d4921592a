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
//	write:       pwritev(2) at an explicit offset; or, for a queue opened
//	             with MappedWrites, a copy into a writable MAP_SHARED
//	             mapping of the file (see "Which write path" below)
//	small read:  View, a slice of the MAP_SHARED mapping of the file,
//	             read-only to callers even where the mapping is writable
//	large read:  sendfile(2) on Fd at explicit offsets, or ReadAt
//	durability:  fdatasync(2) on Sync. It also writes back pages dirtied
//	             through a shared mapping, so mapped writes need nothing
//	             else; msync(MS_SYNC) of the written page measured the same
//	             (BenchmarkMappedSync: ~0.21 ms either way) and would need
//	             range tracking. New file names are made durable by syncing
//	             the directory before Create returns.
//
// # Which write path
//
// A pwrite pays a syscall on every write; a store into the mapping pays a
// page fault the first time each 4 KiB page is touched and nothing after.
// Writing fresh preallocated pages on ext4 here (BenchmarkSegmentWriteAt,
// medians of 5 runs on a 2-vCPU VM; the fault cost varies more than the
// syscall's, and an earlier measurement on the same machine put it near
// 10 µs, giving 1 KiB 3.0 µs mapped vs 2.4 µs pwrite and 4 KiB 10.2 µs vs
// 4.2 µs):
//
//	write     pwritev   mapped
//	32 B      1.4 µs    0.05 µs
//	1 KiB     2.7 µs    0.64 µs
//	4 KiB     5.3 µs    2.3 µs
//	64 KiB    19 µs     36 µs
//
// The CommitLog (1 GiB files, batches of a KiB and more) keeps pwritev: at
// its batch sizes the fault cost decides, 64 KiB batches are cheaper to
// pwrite, at 1 to 4 KiB the winner depends on a fault cost measured from
// ~2 µs to ~10 µs a page, and mapped writes into 1 GiB files would depend
// on every one of their blocks staying reserved (see below).
//
// A ConsumeQueue (32-byte entries, 128 to a page) writes through the
// mapping: one fault per 128 entries amortises to well under 0.1 µs an
// entry, against 1.4 to 2.4 µs of syscall for each 32-byte pwrite, as much
// as the CommitLog write of the whole batch. See package index for the
// end-to-end numbers.
//
// # Mapped writes and SIGBUS
//
// A store through a mapping into a file range with no disk block behind
// it raises SIGBUS when the filesystem is full, where pwrite would return
// ENOSPC. So a segment writes through its mapping only when its blocks are
// known to be reserved, and falls back to pwritev otherwise:
//
//   - it has a descriptor (MemFS files have none, so they keep pwrite and
//     the crash tests model the same writes as before);
//   - File.Allocate really preallocated, rather than falling back to a
//     sparse truncate where fallocate(2) is unsupported;
//   - the file was created at full size, or was already full size when
//     opened: a file found short lost its preallocation in a crash and is
//     only extended. A full-size file was fallocated when created, but
//     what a crash kept is unknown, so fallocate runs over it again
//     (idempotent, and cheap over allocated ranges);
//   - the filesystem overwrites preallocated blocks in place (ext4, XFS,
//     tmpfs). Copy-on-write filesystems (btrfs, ZFS) allocate on every
//     overwrite, so fallocate reserves nothing there. On XFS, a file shared
//     by reflink (cp --reflink) would be copy-on-write too.
//
// Should a store fault anyway (or fail to read a page in, EIO), the fault
// is caught (debug.SetPanicOnFault) instead of killing the process, the
// segment switches to pwritev for good, and the write is redone with it,
// which returns the real error, if any.
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
// Its files have no descriptor, so segments on it are never mapped and
// write with WritevAt even with MappedWrites.
package segment
