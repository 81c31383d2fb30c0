// Package lsm is tierkv's log-structured merge-tree engine: a memtable in
// memory, sorted immutable runs on disk, each with sparse fence pointers and a
// Bloom filter, and tiered merging in the background.
//
// # Basics
//
// Set and Delete go into the memtable, a skiplist that readers traverse
// without locks while one writer at a time inserts. When the memtable holds
// memtable_bytes_limit bytes it is frozen (a pointer swap under the write
// lock) and a fresh one takes its place; a background goroutine writes frozen
// memtables, oldest first, as runs into level 0. A run is a file of records
// sorted by key (at most one record per key) followed by a fence index, a
// Bloom filter and a footer.
//
// Levels are numbered from 0. Within a level, runs are ordered newest first,
// and every run of level L+1 is older than every run of level L. When a flush
// or a merge gives a level more than max_runs_per_level runs, a background
// merger k-way merges all runs of that level into one run that becomes the
// newest run of the next level. For a key present in several inputs the newest
// record wins. A tombstone is dropped by a merge only when its output lands in
// the bottom level (no run at that level or below), because then nothing older
// can be shadowed by it.
//
// Get looks in the memtable, then the frozen memtables newest first, then the
// runs level by level, newest first. For each run it asks the Bloom filter,
// binary-searches the in-memory fence keys for the block (the records between
// two fence pointers) that may hold the key, and reads that block with one
// pread through the block cache (key: a cache.NewFileID per open run and the
// block's offset). Blocks read from disk are checked in full (every record's
// CRC-32C, key order, agreement with the fences) before they are cached.
//
// Seal freezes a non-empty memtable, flushes every frozen memtable
// synchronously (outside the write lock; writers go on into the new
// memtable), and returns the checkpoint: all live runs, and as State the
// levels and the next run sequence number (the format of the CURRENT file
// below). The runs of a checkpoint are pinned until Release. When no Set or
// Delete happened since the previous Seal, Seal returns that checkpoint again
// (equal runs and state), even if a background merge has replaced its runs
// in the meantime: the DB keeps the runs of its last checkpoint pinned until
// a Seal after a write supersedes it. A run that a merge made dead is deleted
// (then Listener.RunRetired is called) once no checkpoint pins it, no reader
// uses it, and CURRENT no longer names it. Dead runs still pinned when Close
// runs are not deleted by Close; the next Open removes them (as it removes
// every run file CURRENT does not name, without a RunRetired call).
//
// There is no write-ahead log: writes that were not sealed or flushed are
// lost in a crash; reopening after a crash gives at least the state of the
// last flush or Seal (CURRENT is rewritten after each one). Close flushes
// everything, so reopening after Close gives the identical state.
//
// Background failures: a failed flush keeps its memtable in memory and is
// retried with backoff (50 ms doubling to 10 s); meanwhile writers that
// would have to wait for it get the error instead, and Seal retries the
// flush itself and returns the error if it fails again. A failed merge
// (an I/O error, or corruption found in an input) leaves its inputs live,
// is logged and retried with the same backoff.
//
// Reopening reads CURRENT and, for each run, only its footer, fence index and
// Bloom filter; data is never rescanned. Leftover temporary files and run files
// that CURRENT does not name are removed (engines.RemoveLeftovers). A
// directory with files but no CURRENT, or with a damaged CURRENT, does not
// open (see "Opening: fail closed" in package engines).
//
// # Parameters
//
// max_runs_per_level (default 10, 1..1000) is the most runs a level holds at
// rest; when a flush or merge makes a level hold more, all of its runs are
// merged into one run at the next level. In the thesis's words, as it grows
// the store degrades into "a large fragmented log spread over several smaller
// logs with infrequent merges": writes get cheaper (each record is rewritten
// about once per level) and reads slower (a miss in memory may probe up to
// max_runs_per_level runs per level). Kept close to 1 the store is optimized
// for reads. With 1 every level holds at most one run and runs double in size
// from level to level (a merge of two runs pushes one run down), which behaves
// like a leveled LSM-tree: a read probes at most one run per level.
//
// density_factor (default 16, 1..1000000) is the gap between fence pointers:
// one fence (the key and offset of a record) is kept in memory for every
// density_factor-th record of a run. A larger value means less memory and
// disk for fences but more bytes read and scanned per lookup ("reads become
// drastically slower"); a smaller one the reverse. With 16-byte keys and
// 100-byte values the default gives blocks of about 2 KiB and about 1.75
// bytes of fence memory per key. Each run records the density it was built
// with, so the parameter may change between opens.
//
// memtable_bytes_limit (default 4 MiB, 1 KiB..1 GiB) is how many bytes the
// memtable holds before it is frozen and flushed as a run. It counts the
// framed size of every record written into it (header, key and value),
// overwrites included, so it bounds the memtable's memory; the skiplist adds
// about 100 bytes of nodes per distinct key, which MemoryUsage reports. Larger
// memtables serve more reads from memory and make fewer, larger runs (fewer
// merges); they cost memory. Up to 4 frozen memtables may wait for the
// flusher; when that many are waiting and the memtable is full again, writers
// wait for a flush to finish (or get the flush error, if flushing fails).
//
// Bloom filters use 10 bits per key and 7 probes (about 1% false
// positives). MemoryUsage counts memtables (records and nodes), fences and
// filters, not the shared block cache.
//
// # On-disk format
//
// All integers are little-endian. Every checksum is CRC-32C (Castagnoli).
// Runs are named by engines.RunNamer with extension "sst". A run file:
//
//	+---------------------------------------------------------------+ 0
//	| data: record_count records in the shared framing (see package |
//	| engines: crc32c | kind | key len | value len | key | value),   |
//	| sorted by key (bytes.Compare), keys unique; kind 2 = tombstone |
//	+---------------------------------------------------------------+ data_len
//	| fence index:                                                  |
//	|   fence_count u32 = ceil(record_count / density_factor)       |
//	|   fence_count x { key_len u16 | key | record_offset u64 }     |
//	|       fence i points at record i*density_factor; offsets      |
//	|       strictly increase, the first is 0                       |
//	|   last_key_len u16 | last_key     (largest key of the run)    |
//	+---------------------------------------------------------------+ data_len + fence_len
//	| Bloom filter:                                                 |
//	|   probes u8 (1..30) | bitmap (m bits, m a multiple of 64)     |
//	+---------------------------------------------------------------+ file size - 52
//	| footer (52 bytes):                                            |
//	|   data_len u64 | fence_len u64 | filter_len u64               |
//	|   record_count u64 | density_factor u32                       |
//	|   format_version u32 (= 1) | magic "TKVLSMRN" (8 bytes)       |
//	|   crc32c u32                                                  |
//	+---------------------------------------------------------------+
//
// The footer's crc32c covers the fence index, the filter and the first 48
// bytes of the footer (everything but itself); each record carries its own
// CRC-32C over kind, lengths, key and value. data_len + fence_len +
// filter_len + 52 must equal the file size. A block is the records from one
// fence's offset to the next fence's offset (or data_len); it holds exactly
// density_factor records except possibly the last, and starts with its fence
// key. The whole file's CRC-32C is the RunInfo.CRC32C the uploader checks.
//
// Bloom probes: h = fmix64(FNV-1a-64(key)) (fmix64 is MurmurHash3's 64-bit
// finalizer); delta = h>>33 | h<<31; for i in 0..probes-1 the bit
// (h + i*delta) mod m is set (bit b is bit b%8 of byte b/8 of the bitmap).
//
// The private state file CURRENT (rewritten with engines.WriteFileAtomic
// whenever the set of live runs changes: every flush, including the flushes
// of Seal and Close, every merge, and Open from a checkpoint) holds the same
// bytes as Checkpoint.State. ParseRunName rejects its name.
//
//	+---------------------------------------------------------------+
//	| magic "TKVLSMST" (8) | format_version u32 (= 1)               |
//	| next_run_seq u64 | level_count u32 (0..255)                   |
//	| level_count x { run_count u32 |                               |
//	|     run_count x { name_len u16 | name | size u64 | crc32c u32 }|
//	|   }            (runs newest first, levels from 0)             |
//	| crc32c u32 over every byte before it                          |
//	+---------------------------------------------------------------+
//
// Format version history: 1 is the first version of both files.
//
// # Concurrency
//
// Every method of DB is safe for concurrent use. Set and Delete serialize on
// one mutex held only for the skiplist insert (and, when the memtable is full,
// for the swap to a fresh one); Get takes no lock beyond a reference on an
// immutable read state (memtables plus levels), so reads run concurrently with
// writes, flushes and merges. One background goroutine flushes frozen
// memtables and another merges; writers never merge. Seal does its flush I/O
// on the caller's goroutine, serialized with the background flusher. Close
// stops both goroutines (an in-progress merge is abandoned; its inputs stay
// live) after which every method returns engines.ErrClosed. Listener
// callbacks run on the goroutine that sealed or retired the run, while an
// internal lock is held: they must not call back into the DB.
package lsm
