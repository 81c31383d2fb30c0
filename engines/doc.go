// Package engines defines the contract shared by tierkv's storage engines
// (lsm, hybridlog, appendlog, memonly) and the pieces they share: the record
// framing with its checksum, run files and their names, checkpoints, limits,
// errors and a small file-system seam.
//
// # Basics
//
// An [Engine] is an embedded key-value store. Every write path ends in runs:
// files that are immutable once sealed, with names that are unique and never
// reused (see [RunNamer]). [Engine.Seal] turns all in-memory state into sealed
// runs and returns a [Checkpoint]: the list of live runs plus a small
// engine-state blob. Opening an engine from exactly that checkpoint reproduces
// the state. The tiered store learns about runs through a [Listener]: it is told
// when a run is sealed (so it can upload it at once) and when one is retired.
//
// # Record framing
//
// Every engine frames key/value records the same way, so the checksum and the
// limits live here once:
//
//	+----------+------+----------+------------+--------+----------+
//	| crc32c   | kind | key len  | value len  | key    | value    |
//	| 4 B (LE) | 1 B  | 2 B (LE) | 4 B (LE)   | klen B | vlen B   |
//	+----------+------+----------+------------+--------+----------+
//
// The header is [RecordHeaderSize] (11) bytes. The CRC-32C (Castagnoli) covers
// every byte after itself: kind, both lengths, key and value. kind is
// [KindSet] (1) or [KindDelete] (2); a delete carries a zero-length value.
// Key length is 1..[MaxKeySize] (a key length of zero is corruption), value
// length 0..[MaxValueSize]. An empty value is a value, distinct from absent.
//
// [DecodeRecord] checks the lengths against the bytes it was given before it
// looks at the payload, so a torn tail (fewer bytes than the header promises)
// is reported as [ErrTruncated] and can be cut off by a log's recovery, while a
// complete record with a bad checksum is corruption ([ErrCorrupt]).
//
// # Run files
//
// Each engine documents the layout of its own run files in its doc.go. Every
// run file is written through a [RunWriter]: to a temporary name, fsynced,
// renamed into place and the directory fsynced, after which it never changes.
// [RunInfo.CRC32C] is the CRC-32C of the whole file, computed while writing; the
// uploader stores it with the object and restore checks it.
//
// # Opening: fail closed
//
// Every engine keeps a private state file (CURRENT) naming its live runs. An
// engine opened without a checkpoint reads it through [ReadStateFile]: only a
// directory holding nothing but temporaries (*.tmp) is a new engine, and a new
// engine writes its CURRENT before any other file. A missing CURRENT in a
// directory holding anything else, or one that cannot be read or decoded, is
// an error naming it ([ErrCorrupt]), and nothing is removed. Once the opened
// state is durable in CURRENT, [RemoveLeftovers] deletes the temporaries and
// the engine's run files it does not name; a failure to remove one is logged
// and does not fail the open.
//
// # Concurrency
//
// Every exported method of an Engine is safe for concurrent use. Writers are
// blocked by Seal only for the swap of the in-memory buffer, not for I/O.
package engines
