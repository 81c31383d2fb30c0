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
// # Format versions
//
// Every manifest carries its format in format_version. This build writes
// format [FormatVersion] and reads formats 1 to FormatVersion:
//
//	+--------+------------------------------------------------------------+
//	| format | changes                                                    |
//	+--------+------------------------------------------------------------+
//	| 1      | the schema below. Checksum over the bytes as written (see  |
//	|        | "Checksum"). Readers ignore members they do not know.      |
//	+--------+------------------------------------------------------------+
//
// Format 1's checksum rule was first stated as "the CRC-32C of Go's
// canonical re-encoding of the decoded manifest with checksum """, and
// readers refused unknown members. Every manifest tierkv wrote was that
// canonical encoding itself, so for all of them the raw-bytes rule below
// gives the same value: they decode unchanged, and the rule changed without
// a new format number.
//
// # Evolving the format
//
// Two kinds of change, told apart by what an older reader would do:
//
//   - An optional member is one a reader may ignore and still reproduce the
//     state exactly (the runs, engine_state, params, version and parent keep
//     their meaning without it): statistics, hints, provenance. It is added
//     without changing format_version, at the top level or inside a run or
//     stats object. Readers ignore members they do not know at any depth,
//     and the checksum covers them because it covers the bytes as written.
//     Its name is lowercase snake_case and differs from every existing
//     member's, compared without case (encoding/json matches names without
//     case).
//   - A required feature is anything a reader must understand to reproduce
//     the state: a new meaning for an existing member, runs stored elsewhere
//     than runs/ (tiering), a writer epoch that fences older writers. It
//     bumps format_version to the next integer and adds a row to the table
//     above. A reader refuses a format above the newest it knows with
//     [ErrFormat] ("written by a newer tierkv ... upgrade tierkv"), whatever
//     else the manifest holds; it never guesses. Readers keep reading every
//     older format.
//
// tierkv builds from before these rules refuse unknown members as
// corruption: they read every manifest without added members, and report
// one with added members as corrupt rather than newer.
//
// The goldens in testdata pin both directions: v1.json (written before these
// rules) decodes; v1-optional.json (format 1 with added members) decodes to
// the same manifest; v2-newer.json (format 2) is refused with ErrFormat.
//
// # Schema (format version 1)
//
// A manifest is one JSON object, with the members in this order:
//
//	+----------------+-----------------+-------------------------------------------+
//	| member         | JSON type       | meaning                                   |
//	+----------------+-----------------+-------------------------------------------+
//	| format_version | number          | 1 (FormatVersion); see "Format versions"  |
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
// # Checksum
//
// The checksum member holds the CRC-32C (Castagnoli polynomial, the same
// table as everywhere in tierkv), as 8 lowercase hex digits, of the exact
// bytes of the object as stored with the value of the checksum member left
// empty: the 8 digits between its quotes removed, so that the bytes read
// "checksum": "" at that place. Everything else is covered as written:
// whitespace, member order, escapes, and members the reader does not know.
// The check is reproducible by hand: delete the 8 digits and compute the
// CRC-32C of the file.
//
// The checksum member is the top-level member named exactly "checksum"; it
// must appear once, and its value must be a JSON string of exactly 8
// lowercase hex digits, without escapes. [Decode] finds it by scanning the
// JSON tokens of the top-level object, never by searching the text.
//
// # Canonical encoding
//
// [Encode] writes the canonical encoding, exactly what Go's encoding/json
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
// Encode computes the checksum over that encoding with checksum "" and
// inserts the 8 digits between the quotes. Readers do not depend on the
// canonical form: any bytes that carry a correct checksum and decode are a
// manifest.
//
// # Decoding
//
// [Decode] checks, in this order, and refuses with a one-line error:
//
//   - more than MaxSize bytes, invalid JSON, trailing data, or no numeric
//     format_version: corruption (engines.ErrCorrupt);
//   - a format_version above FormatVersion: [ErrFormat] (written by a newer
//     tierkv); below 1: ErrFormat too;
//   - no checksum member, two of them, a value that is not 8 lowercase hex
//     digits, or a mismatching checksum: corruption;
//   - wrong member types (a string for a number, a negative version...):
//     corruption. Unknown members are ignored;
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
