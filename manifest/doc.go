// Package manifest defines tierkv's snapshot manifest: the small JSON object
// that names the runs forming a store's state at one version, how it is
// encoded, checked and named in the remote, and the protocol that commits it.
//
// # Remote layout
//
// Every store owns one prefix in an object store:
//
//	<prefix>/runs/<run-name>                 immutable run files (see [RunKey])
//	<prefix>/manifests/<20-digit version>    one per snapshot (see [Key])
//
// Versions are unsigned integers starting at 1, written as exactly 20 decimal
// digits with leading zeros ("manifests/00000000000000000012") so that a
// lexical listing is a numeric listing; the largest uint64 fits in 20 digits.
// [ParseKey] accepts exactly that form and version >= 1; [ListVersions] skips
// every other name under manifests/. Versions are strictly increasing and
// never reused; "latest" is the highest version present.
//
// # Schema (format version 1)
//
// A manifest is one JSON object, with the members in this order:
//
//	+----------------+-----------------+-------------------------------------------+
//	| member         | JSON type       | meaning                                   |
//	+----------------+-----------------+-------------------------------------------+
//	| format_version | number          | 1 (FormatVersion); anything else is       |
//	|                |                 | refused with ErrFormat                    |
//	| store_id       | string          | identity of the store (may be empty)      |
//	| version        | number (uint64) | this version, >= 1                        |
//	| parent         | number (uint64) | version the state descends from; 0 = none;|
//	|                |                 | always < version                          |
//	| writer_id      | string          | identity of the writing process           |
//	| commit_id      | string          | random per commit; recognises our own     |
//	|                |                 | manifest after an ambiguous create        |
//	| created        | string          | RFC 3339 time with nanoseconds            |
//	| engine         | string          | engine kind: "lsm", "hybridlog", ...      |
//	| params         | object or null  | engine parameters, string -> string       |
//	| engine_state   | string or null  | engine-state blob, standard base64        |
//	| runs           | array or null   | {"name", "size", "crc32c"} per run        |
//	| metadata       | object or null  | user metadata, string -> string           |
//	| stats          | object          | {"new_runs", "new_bytes", "total_runs",   |
//	|                |                 |  "total_bytes"}                           |
//	| checksum       | string          | CRC-32C of the body, 8 lowercase hex      |
//	+----------------+-----------------+-------------------------------------------+
//
// A run's crc32c is the CRC-32C (Castagnoli) of the whole run file as a JSON
// number (uint32); its size is the file size in bytes. The run object of the
// remote, runs/<name>, holds exactly those bytes and carries the same CRC as
// user metadata "crc32c" (8 lowercase hex digits).
//
// Run names must be plain file names: 1..255 bytes of ASCII letters, digits,
// '.', '_' and '-', starting with a letter or digit, never containing "..".
// That refuses empty names, path separators ('/' and '\'), NUL and control
// bytes, absolute and drive paths and parent references, so that a manifest
// read from a bucket can never make a restore write outside its directory.
// Names appear at most once per manifest.
//
// stats.total_runs and stats.total_bytes always equal the number of runs and
// the sum of their sizes ([Encode] fills them in); new_runs and new_bytes
// count the runs this version uploaded that its parent did not have and are
// at most the totals.
//
// # Canonical encoding and checksum
//
// The canonical encoding of a manifest is exactly what Go's encoding/json
// produces for the [Manifest] struct with MarshalIndent(m, "", "  "), followed
// by one "\n":
//
//   - members in the order of the table above, two-space indentation,
//     ": " between a name and its value;
//   - object keys of params and metadata sorted by byte value;
//   - strings escaped as encoding/json does: '"', '\' and control characters,
//     '<', '>', '&' as \u003c, \u003e, \u0026, and U+2028, U+2029 as
//     \u2028, \u2029; all strings are valid UTF-8;
//   - integers in plain decimal; engine_state in standard base64 with
//     padding; created as time.Time.MarshalJSON writes it (RFC 3339, fraction
//     of a second with trailing zeros removed, "Z" or the numeric offset);
//   - an absent (nil) params, engine_state, runs or metadata as null, an
//     empty one as {}, "" or [].
//
// The checksum member holds the CRC-32C (Castagnoli polynomial, the same table
// as everywhere in tierkv) of the canonical encoding of the manifest with
// checksum set to "", as 8 lowercase hex digits. [Encode] writes the canonical
// encoding with the checksum filled in, so for any object written by tierkv
// the check is reproducible by hand: replace the 8 digits of the checksum
// member by nothing (leaving "checksum": "") and compute the CRC-32C of the
// resulting bytes. [Decode] does not depend on the stored whitespace: it
// parses the object strictly, re-encodes it canonically with checksum "" and
// compares.
//
// # Decoding
//
// [Decode] checks, in this order, and refuses with a one-line error:
//
//   - more than MaxSize bytes, not a JSON object, or no numeric
//     format_version: corruption (engines.ErrCorrupt);
//   - a format_version other than 1: [ErrFormat] (written by a newer tierkv);
//   - invalid JSON, unknown members, wrong member types or trailing data:
//     corruption;
//   - a malformed or mismatching checksum: corruption;
//   - content that fails [Manifest.Validate] (bad or duplicate run names,
//     negative sizes, version 0, parent >= version, an empty engine, stats
//     that do not add up): corruption that also matches [ErrInvalid].
//
// Corruption errors are *engines.CorruptionError values naming the object
// (its key, or "manifest" for bare bytes given to Decode), with the byte
// offset when the JSON decoder knows it and engines.UnknownOffset otherwise;
// they match engines.ErrCorrupt.
//
// # Commit protocol
//
// Data first, pointer last. [Commit] must only be called once every run the
// manifest names is durable in the remote (the uploader's Wait); a manifest is
// never visible before its runs. Commit then:
//
//  1. fills in FormatVersion, CommitID (8 random bytes as 16 lowercase hex digits, [NewID]) and Created if
//     they are zero, and encodes the manifest;
//  2. lists the versions and returns ErrFenced if one above m.Version exists:
//     another writer moved past us, and a writer that was paused for a long
//     time must never slip a version in below (for example into a gap left by
//     Forget);
//  3. creates manifests/<version> with create-if-absent (If-None-Match: *);
//  4. if the key already exists (objstore.ErrPrecondition), loads it: the same
//     CommitID means an earlier attempt of ours whose answer was lost did
//     succeed, and Commit returns nil; anything else means another writer won
//     this version, and Commit returns an error matching [ErrFenced]; a key
//     that is gone by then (deleted in between) returns an error matching
//     objstore.ErrVanished, which objstore.Retryable retries;
//  5. once the manifest is in place (created now or by an earlier attempt),
//     lists the versions again: a writer paused between step 2 and step 3 can
//     land in a gap that Forget left below the latest version, which
//     create-if-absent cannot see. If a version above m.Version exists, m is
//     stale: Commit deletes it (it is ours) and returns ErrFenced. Between the
//     create and the delete a listing may show the stale version, never as
//     the latest.
//
// A Commit that fails with any other error may or may not have created the
// object; retry it with the same *Manifest (which keeps its CommitID) and steps
// 4 and 5 sort it out. A writer that got ErrFenced must stop committing.
//
// # Concurrency
//
// All functions are safe for concurrent use; a *Manifest is a plain value and
// must not be modified while another goroutine encodes it.
package manifest
