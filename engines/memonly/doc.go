// Package memonly is the thesis's naive baseline engine ("MemOnly"): the
// whole state is a Go map in memory, and every Seal that follows a change
// dumps the entire map to one new run file. It exists to show what incremental
// snapshots save: its snapshot cost is the state size, not the delta.
//
// # Basics
//
// Get, Set and Delete work on the map under a sync.RWMutex. Seal writes a
// dump of every live key (sorted, so that the bytes are deterministic) to a
// new run named by an engines.RunNamer with the extension "dump", makes it
// the current state by rewriting the private file CURRENT, and returns a
// checkpoint naming that single run. Sealing again with no write in between
// writes nothing and returns an equal checkpoint. The previous dump is
// retired (file deleted, Listener.RunRetired called) as soon as it is neither
// current nor pinned by an unreleased checkpoint.
//
// Open loads the whole dump into memory, verifying every checksum, so reads
// never touch the disk and the block cache (OpenOptions.Cache) is unused.
// Without a checkpoint, Open recovers the dump named by CURRENT: after a crash
// the store holds exactly the last sealed state, since writes after it live
// only in memory. On open, leftover "*.tmp" files and dumps that the
// adopted state does not reference are removed (without RunRetired: no run
// of this open is retired). A directory with files but no CURRENT, or with a
// damaged CURRENT, does not open (see "Opening: fail closed" in package
// engines).
//
// # Parameters
//
// None. The thesis gives MemOnly no parameters; ParseParams refuses every
// name and Params.Map is empty.
//
// # On-disk format
//
// All integers are little-endian. CRC-32C is the Castagnoli polynomial
// (engines.CastagnoliTable).
//
// A dump run, "<seq>-<nonce>.dump", is a body of records followed by a
// 24-byte footer:
//
//	+-----------------------------+  offset 0
//	| record 0                    |  engines record framing (see package
//	| record 1                    |  engines): crc32c, kind, key len, value
//	| ...                         |  len, key, value; kind is always
//	| record count-1              |  KindSet; keys strictly ascending
//	+-----------------------------+  offset size-24
//	| record count     8 B        |
//	| body crc32c      4 B        |  CRC-32C of bytes [0, size-24)
//	| format version   4 B        |  1
//	| magic            8 B        |  "TKVMEMDP"
//	+-----------------------------+  offset size
//
// Each record's own CRC-32C covers its kind, lengths, key and value; the body
// CRC covers all records, so a flipped byte anywhere in the body or the
// footer is detected: by the body CRC, the record count, the version or the
// magic. A dump of an empty state is just the footer.
//
// The checkpoint State blob (16 bytes) carries the next run sequence number:
//
//	+----------------+----------------+----------------+
//	| format version | next run seq   | crc32c         |
//	| 4 B (1)        | 8 B            | 4 B of [0, 12) |
//	+----------------+----------------+----------------+
//
// The private file CURRENT (rewritten atomically with
// engines.WriteFileAtomic at every seal and on open from a checkpoint) names
// the current dump:
//
//	+--------+---------+----------+-------+----------+---------+----------+------+---------+
//	| magic  | version | next seq | flags | run size | run crc | name len | name | crc32c  |
//	| 8 B    | 4 B (1) | 8 B      | 1 B   | 8 B      | 4 B     | 2 B      | n B  | 4 B     |
//	+--------+---------+----------+-------+----------+---------+----------+------+---------+
//
// magic is "TKVMEMCU"; flags bit 0 is set when there is a dump (otherwise the
// state is empty and size, crc and name are zero/empty); run crc is the
// CRC-32C of the whole dump file, checked when it is loaded; the final
// CRC-32C covers every byte before it.
//
// Format version history: 1, the initial format.
//
// # Concurrency
//
// Every method is safe for concurrent use. Get runs under the read lock;
// Set and Delete under the write lock. Seal holds the write lock only to
// freeze the map and install an empty delta map that takes the writes made
// during the dump (deletes are recorded there as tombstones), and again
// afterwards to fold the delta back into the map (O(writes during the dump)).
// The dump itself and the file I/O run without the lock. Seals are serialized
// with each other and with Close. Listener callbacks are called from the
// goroutine calling Seal, Release or Close. There are no background
// goroutines.
package memonly
