// Package appendlog is tierkv's Bitcask-like engine: an in-memory hash index
// maps every key to the place (run, offset, length) of its newest record, and
// every Set or Delete appends a framed record to the active log.
//
// # Basics
//
// Writes go to a write buffer in front of the active log (a private file,
// active.log; the buffer is an eighth of the threshold, at most 64 KiB).
// Get looks the key up in the index and reads exactly one record:
// from the write buffer if it has not reached the file yet, otherwise from the
// file through the block cache (OpenOptions.Cache). Every record read from a
// file is checked against its CRC-32C and against the key asked for.
//
// When the next record would take the active log past Params.Threshold
// bytes, or on Seal, the log is sealed: under the write lock the write buffer
// is written to the file, the file is renamed to a run name (engines.RunNamer,
// extension "log") and a new active.log is created; that is all writers wait
// for. Then, outside the lock, a footer is appended, the file is fsynced, a
// hint file (key -> offset, tombstones included) is written for it (its
// directory fsync also makes the rename durable), and CURRENT is rewritten. Threshold-triggered seals do this in a background goroutine;
// Seal does it before it returns, so the runs of its checkpoint are durable.
//
// Sealed runs are grouped in levels. A sealed log enters level 0. When a level
// holds Params.MaxRunsPerLevel sealed runs, a background goroutine merges all
// of them, oldest first, into one run (extension "run") at the next level and
// remaps the index entries that pointed into them. Level i+1 only ever holds
// data older than level i, so "newer" is well defined: lower level, or later
// in the same level.
//
// Reopen never rescans sealed data: it reads each live run's footer and loads
// its hint file (oldest run first, so newer entries win; a tombstone entry
// marks the key deleted), then replays the valid prefix of active.log.
//
// # Durability and recovery
//
// Set and Delete are durable once a later Seal or Close returns. After a
// crash, Open (without a checkpoint) reopens at least the state of the last
// Seal, plus whatever reached the files before the crash:
//
//   - runs and hint files named by CURRENT are loaded; a checksum, magic or
//     length failure in any of them is a *engines.CorruptionError naming the
//     file and offset, and Open fails;
//   - a sealed log that was renamed but not yet recorded in CURRENT (its
//     sequence number is at least CURRENT's seal_floor) is adopted: its valid
//     prefix is kept, the file truncated there, its footer rewritten, fsynced
//     and given a hint file;
//   - active.log is replayed up to the last valid record; everything from the
//     first record that is short or fails its checks (a torn tail) is cut off
//     by truncating the file there, and a warning is logged;
//   - temporary files (*.tmp) and run files that the recovered state does not
//     reference (an unfinished merge, a hint of an adopted log) are removed
//     (engines.RemoveLeftovers; a failed removal is only logged).
//
// A directory with files but no CURRENT, or with a damaged CURRENT, does not
// open (see "Opening: fail closed" in package engines); a new directory gets
// its CURRENT before active.log.
//
// Opening a checkpoint (OpenOptions.Checkpoint) adopts exactly that state:
// active.log is emptied and unreferenced runs are removed.
//
// A failed append, fsync, hint write or creation of the next active log
// makes the engine refuse later writes and seals with that error (reads go
// on); reopening recovers as above. A failed rename of the active log only
// fails the Set or Seal that attempted it.
//
// # Parameters
//
// The thesis (§4.1.3) gives the AppendLog one tunable parameter, the
// threshold; it shares max_runs_per_level with the other log-structured
// engines and compaction with the HybridLog (§4.1.2).
//
//   - threshold: "the maximum amount of bytes we can write to a runfile before
//     closing it and starting the next one". Default 4 MiB, range 1 KiB..4 GiB.
//     Too low: many small runs and frequent merges hinder writes. Higher:
//     writes get faster on average, but runs become large and merges
//     infrequent and cumbersome, which widens the gap between median and tail
//     write latency. Reads are hardly affected. A record larger than the
//     threshold gets a run of its own.
//   - max_runs_per_level: sealed runs a level may hold before they are merged
//     into one run at the next level. Default 10, range 2..1000. Reads do not
//     depend on it (the hash index points straight at the record); keep it
//     balanced so that merges are neither tiny and constant nor huge and rare.
//   - compaction: whether merges also drop dead records. Default false, as the
//     thesis recommends ("compaction should be avoided in log-structuring": it
//     helped neither reads nor writes in its experiments). With false, a merge
//     concatenates its input runs, record for record. With true, a merge
//     drops a record when it is durably superseded: the key's index entry
//     points at a newer record in a durable run (a merge input included), or
//     the key has no entry at all (its tombstone was purged, so nothing older
//     survives). A record superseded only by writes still in the active log
//     is kept, so that a crash losing those writes gives back the sealed
//     value. A tombstone that is the key's newest record is dropped (and
//     purged from the index) only when the merge includes the oldest data
//     (every level above the merged one is empty); until then an older record
//     outside the merge could still be shadowed by it.
//
// Deleted keys keep a tombstone entry in the index (and count in
// MemoryUsage) until a merge that includes the oldest data purges it; that
// happens with or without compaction. Deleting an absent or deleted key writes
// nothing.
//
// # On-disk format
//
// All integers are little-endian. All checksums are CRC-32C (Castagnoli).
// Format version 1. Files in the engine directory:
//
//	active.log                      the active log (private, mutable)
//	CURRENT                         the live state (private, replaced atomically)
//	<seq>-<nonce>.log               a sealed log (run, level 0 when sealed)
//	<seq>-<nonce>.run               a merge output (run)
//	<seq>-<nonce>.hint              the hint file of one run (run)
//	*.tmp                           files being written
//
// Records use the shared framing of package engines (11-byte header: crc32c,
// kind, key length, value length; the CRC covers everything after itself).
//
// active.log is a plain sequence of records, without header or footer:
//
//	+----------+----------+-----+----------+
//	| record 0 | record 1 | ... | record n |
//	+----------+----------+-----+----------+
//
// A run (.log or .run) is a sequence of records followed by a 40-byte footer:
//
//	+----------+-----+----------+---------------------+
//	| record 0 | ... | record n | footer (40 B)       |
//	+----------+-----+----------+---------------------+
//
//	footer:
//	+----------+--------+----------+----------+---------+----------+----------+------------+
//	| body_len | count  | body_crc | link_crc | version | reserved | magic    | footer_crc |
//	| u64      | u64    | u32      | u32      | u16     | u16      | 8 B      | u32        |
//	+----------+--------+----------+----------+---------+----------+----------+------------+
//	  0          8        16         20         24        26         28         36
//
// body_len is the number of bytes before the footer (the file is body_len+40
// bytes), count the number of records, body_crc the CRC-32C of the body,
// link_crc zero, version 1, reserved zero, magic "tkvalrun", and footer_crc
// the CRC-32C of footer bytes 0..35. Open checks the footer; record CRCs are
// checked on every read and every merge; body_crc lets a verifier check a run
// in one pass.
//
// A hint file has the same footer (magic "tkvalhnt") after a body of entries
// in increasing, non-overlapping run-offset order, one per record of its run
// except records that were durably superseded when the hint was written (by a
// later record of the same run, or for a merge output by a record in a
// durable run), and tombstones purged by a merge of the oldest data. An
// omitted record's successor has its own entry, later in the same hint or in
// a newer run's hint, and reopening applies hints oldest run first and then
// the active log, so the index comes out the same. (A hint written while
// adopting a log after a crash lists every record.)
//
//	+------+----------+----------+--------+--------+
//	| kind | key_len  | rec_len  | offset | key    |
//	| u8   | u16      | u32      | u64    | key_len|
//	+------+----------+----------+--------+--------+
//
// kind is engines.KindSet or engines.KindDelete, rec_len the whole record's
// size (header, key and value) and offset its position in the run. In a hint
// footer, count is the number of entries, body_crc the CRC-32C of all entries
// and link_crc the body_crc of the run it indexes, so a hint can never be
// paired with the wrong run. A hint is read whole and its checksums checked
// before any entry is used; an entry pointing outside its run, or out of
// order, is corruption.
//
// The engine state (Checkpoint.State) is JSON:
//
//	{"format":1,"kind":"appendlog","next_seq":N,
//	 "levels":[[{"run":"...","hint":"..."},...],...]}
//
// levels[0] is level 0 (the newest data); within a level runs are oldest
// first. next_seq is the sequence number the next run name will carry.
// Checkpoint.Runs lists, from the highest level down to level 0 and oldest
// first within a level, each run followed by its hint file.
//
// CURRENT holds the same JSON with one more field, "seal_floor" (the lowest
// sequence number a sealed log not yet recorded in CURRENT can carry), on the
// first line, and "crc32c <8 lowercase hex digits>" of the JSON bytes on the
// second line.
//
// # Concurrency
//
// Every method is safe for concurrent use. One sync.RWMutex guards the index,
// the write buffer and the level structure: Set and Delete hold it exclusively
// for the append and the index update (and, when the threshold is crossed,
// for the write of the buffer, one rename and one file creation); Get holds it
// shared for the lookup and the read of one record. Fsyncs, hint files, CURRENT
// and merges happen outside it, in a background sealer, a background merger
// (one merge at a time, taking the lock briefly per record to consult the
// index and per batch of 1024 entries to remap it) and Seal itself; making
// sealed logs durable and writing CURRENT are serialized by a second mutex.
// Close stops both goroutines. Listener callbacks run without engine locks
// held, on whichever goroutine sealed (Seal, the sealer, Open adopting a log),
// merged, or released the run (Release, the merger).
package appendlog
