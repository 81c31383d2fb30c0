// Package hybridlog is tierkv's HybridLog engine: FASTER's hybrid log
// (Chandramouli et al., SIGMOD 2018) with the thesis's parameters, spilling to
// sealed, immutable runs that the tiered store uploads.
//
// # Basics
//
// A hash index maps every key to a pointer: either a logical address in one
// ever-growing log address space, or (after a merge) a run and an offset.
// Records use the shared framing of package engines (CRC-32C, kind, lengths,
// key, value). The newest part of the log lives in memory, in a ring buffer
// of mem_segment_len bytes; older parts live in run files. Reading from the
// oldest address upwards, the log is:
//
//	 runs on disk | in memory: the window, at most mem_segment_len bytes
//	--------------+--------------+---------------+----------------+------
//	 log / merged | flushed,     | flush segment | mutable region | free
//	 runs         | read-only    | (read-only)   |                |
//	--------------+--------------+---------------+----------------+------
//	            head          flushed        read-only          tail
//	              |<- ~ro_lag -->|<- < flush --->|<- M - R - F -->|
//
// The regions, newest first:
//
//   - Mutable region [read-only, tail): the newest mem_segment_len -
//     ro_lag_interval - flush_interval bytes. A Set of a key whose record is
//     here and has a value of the same length overwrites the value (and the
//     record checksum) in place: no append, no allocation.
//   - Read-only region [head, read-only): records are immutable. A Set of a
//     key whose record is here, on disk, or of another value length appends a
//     new record at the tail and repoints the index (read-copy-update). So do
//     Delete (a tombstone record) and every Set of a new key.
//   - Flush segment [flushed, read-only): read-only records not yet on disk.
//     When it reaches flush_interval bytes the background flusher writes it,
//     in one sequential write, as one log run (whole records, so a run ends
//     at the first record boundary at or beyond flush_interval).
//   - [head, flushed): records already in a run but still served from memory:
//     about ro_lag_interval bytes. It is also the headroom writers append
//     into while a flush is in progress; when the window is full of records
//     not yet on disk, writers wait for the flusher (back-pressure).
//
// As the tail advances the read-only boundary follows it at a distance of
// the mutable region, and the head follows at a distance of mem_segment_len
// (never passing flushed). A record larger than the window empties the window
// and gets a ring buffer of its own size until it is evicted.
//
// Seal makes the whole window read-only (later writes of those keys append)
// and writes everything not yet on disk as one log run. So a seal adds about
// the bytes appended since the previous seal, which is the distinct records
// updated since then (an in-place update appends nothing): snapshots are
// incremental. Runs form levels: flushes and seals add runs to level 0; when a
// level holds max_runs_per_level runs, the background merger merges them into
// one run of the next level, keeping only records the index still points to
// (and, for crash safety, older records whose newer version is not on disk
// yet), and repoints the index to the merged copies. Tombstones are kept
// until a merge includes the oldest run. Reads of run records go through the
// block cache (OpenOptions.Cache), 4 KiB blocks.
//
// Every run file has a hint file written when it is sealed: the keys, kinds
// and value lengths of its records, so that Open builds the index from the
// hint files (newest run last) without reading the runs. The private file
// CURRENT names the live runs and the counters; it is rewritten atomically
// after every flush, merge and seal, so a crash reopens at least the state of
// the last seal (in fact the state of the last flush). A directory with files
// but no CURRENT, or with a damaged CURRENT, does not open (see "Opening: fail
// closed" in package engines).
//
// # Parameters
//
// All sizes are bytes of framed records (engines.RecordSize: 11 + key +
// value). The thesis's words and trade-offs:
//
//   - mem_segment_len (default 64 MiB, 256 B..1 TiB): the in-memory window
//     (the thesis's ring-buffer "memory segment"). Memory use is dominated by
//     it and the index; by itself it hardly changes latency, so keep it
//     slightly larger than ro_lag_interval + flush_interval plus the mutable
//     region the workload's hot set needs. Must exceed ro_lag_interval +
//     flush_interval.
//   - ro_lag_interval (default 8 MiB, 0..1 TiB): the read-only region kept in
//     memory behind the flush segment (the thesis's "read-only segment"). It
//     raises the probability of an in-memory hit for reads, and is the
//     write headroom during a flush.
//   - flush_interval (default 8 MiB, 64 B..1 TiB): the flush segment: the
//     size of one sequential write to a run. Too small means many small runs
//     and frequent merges; too large needs a larger window.
//   - max_runs_per_level (default 10, 2..1000): runs a level collects before
//     they are merged. Higher is faster for writes (fewer merges), lower
//     keeps fewer files; reads do not depend on it (the index points into
//     the run directly).
//
// The mutable region is mem_segment_len - ro_lag_interval - flush_interval.
// The thesis's compaction_enabled is not offered: the thesis found it
// useless, since merges already drop dead records.
//
// # On-disk format
//
// All integers are little-endian. Version 1. A store's directory holds, per
// run, a data file <seq>-<nonce>.hlog and a hint file <seq>-<nonce>.hint
// (engines.RunNamer names; both are runs for the tiered store), plus CURRENT.
//
// Run file (.hlog): the records, then a 44-byte footer.
//
//	+-----------------------------------------------------------+
//	| record 0 | record 1 | ... (engines framing, back to back) |  data: dataLen bytes
//	+-----------+-----------+-----------+-----------+-----------+
//	| dataLen 8 | count 8   | start 8   | flags 4   | version 4 |  footer
//	+-----------+-----------+-----------+-----------+-----------+
//	| magic "tkvhlrun" 8    | crc32c 4  |
//	+-----------------------+-----------+
//
// A log run (flags 0) is the verbatim log [start, start+dataLen): the record
// at file offset o has logical address start+o. A merged run (flags bit 0)
// has start 0. Each record's CRC-32C covers it (see package engines); the
// footer CRC-32C covers the 40 footer bytes before it. dataLen must equal the
// footer's offset, count the number of records.
//
// Hint file (.hint): one entry per record of the run, in file order.
//
//	+------------------------+-----------+---------+---------+-----------+-----------+
//	| magic "tkvhhint" 8     | version 4 | flags 4 | start 8 | dataLen 8 | count 8   |  header (40 B)
//	+------------------------+-----------+---------+---------+-----------+-----------+
//	| uvarint klen | uvarint kv | key (klen B) |  ... count entries
//	+--------------+------------+--------------+
//	| crc32c 4 |  covers every byte before it
//	+----------+
//
// kv is 0 for a tombstone and value length + 1 for a value. Record offsets are
// implicit: each entry's record starts where the previous one ended
// (engines.RecordSize(klen, vlen)); the sum must equal dataLen. flags, start,
// dataLen and count repeat the run's footer, and Open checks they match.
//
// CURRENT (private; never uploaded):
//
//	+-------------------------+-----------+-------------+-------------------+
//	| magic "tkvhlcur" 8      | version 4 | stateLen 4  | state (stateLen)  |
//	+-------------------------+-----------+-------------+-------------------+
//	| nfiles 4 | nfiles x (nameLen 2 | name | size 8 | crc32c 4) | crc32c 4 |
//	+----------+-----------------------------------------------+----------+
//
// The final CRC-32C covers every byte before it. The files are the
// checkpoint's Runs (each live run's data file then its hint file, deepest
// level first, oldest first within a level), with sizes and whole-file
// CRC-32Cs.
//
// State blob (CURRENT's state and engines.Checkpoint.State):
//
//	"HLST" | version 1 B | uvarint nextSeq | uvarint nextAddr | uvarint nlevels |
//	  per level (level 0 = newest): uvarint nruns | per run, oldest first: uvarint len | name
//
// nextSeq is the sequence number of the next run name; nextAddr the logical
// address at which the log continues (the end of the last flushed record).
//
// # Concurrency
//
// Every method is safe for concurrent use. DB groups each lock with the
// fields it guards (mu, runs, files, merges). One RWMutex (mu) guards the
// index, the ring buffer and the region boundaries: Set and Delete hold it exclusively
// (an update in place is a hash probe, a copy and a CRC), Get shares it and
// releases it before reading a run file (the run is reference-counted so a
// merge cannot delete it under the read). The flusher writes read-only
// records without the lock (they never change). Seal holds writers only to
// move the read-only boundary to the tail; it then writes the run, waits for
// the merges it triggered, and pins the runs of the checkpoint until Release.
// Flushes, merges and seals are serialized among themselves. Close writes
// everything not yet on disk, stops both background goroutines and closes the
// files; afterwards every method returns engines.ErrClosed. A failed flush or
// merge is sticky: writes and seals return it, reads go on.
package hybridlog
