// Package tiered is the tierkv store: one engine, a local directory, and an
// object store that holds the engine's sealed runs and one manifest per
// snapshot.
//
// # Basics
//
// [Open] opens (or creates) a store in a local directory. With a remote (an
// object-store URL, or an [objstore.Store] injected through [Options.Store])
// Open lists the runs the remote already holds, so that nothing is uploaded
// twice, and restores the latest version (or [Options.Version]), downloading
// only the runs missing locally; [Store.Metadata] then returns the metadata
// committed with that version. With [Options.ResumeLocal], or without a
// remote, Open reopens the local state instead.
//
// Get, Set and Delete go straight to the engine. Every run the engine seals
// (a flush, a merge output, an index file) is queued for upload at once, so
// by the time a snapshot is asked for most of the state is already remote.
//
// [Store.Snapshot] seals the engine (writers go on), waits until every run of
// the checkpoint is durable in the remote, then creates manifest latest+1
// with create-if-absent, where latest is the highest version this store
// knows of (listed at Open, then its own commits); it never re-reads latest
// to pick another number. Transient commit failures are retried with the
// same manifest (same commit id), so an attempt that landed is recognised as
// ours; a commit that still fails ambiguously is settled by the next
// Snapshot, which reads back that one version first. [Store.SnapshotAsync]
// does the same in the background and returns a handle. Snapshots are
// serialized.
//
// [Store.Restore] switches the store to another version: the runs it lacks
// are downloaded and verified next to the live state, the engine is opened
// on the new state, and only then does the store switch over. Until the
// switch the old state keeps serving reads and writes; a failure at any
// point leaves it intact. After restoring version v the next snapshot is
// latest+1 with parent v: history is never rewritten.
//
// [Store.Forget] and [Store.GC] apply retention and delete unreferenced runs;
// [Forget], [GC], [Verify], [PlanRestore] and [RestoreTo] do the same on a
// bare object store for operators with no store open.
//
// # What a committed snapshot guarantees
//
// When Snapshot returns a version v without error:
//
//   - every run named by manifest v was durable in the remote, with its size
//     and CRC-32C checked while it was uploaded, before the manifest was
//     created: a manifest is never visible before its runs;
//   - manifest v holds the engine state, the run list (name, size, CRC-32C of
//     each), the engine kind and parameters and the metadata given with
//     [WithMetadata], all under one checksum: metadata and state are
//     committed atomically;
//   - the state of v contains every write that returned before Snapshot was
//     called, and no write that started after Snapshot returned;
//   - v was created with create-if-absent as exactly lastKnownLatest+1: no
//     other writer can have committed v, and a writer that lost a version
//     never commits again ([ErrFenced]);
//   - opening the same remote anywhere (Open, or [RestoreTo]) reproduces the
//     state of v exactly, downloading only the runs missing there, each
//     verified against its size and CRC-32C.
//
// Versions are never reused; Forget deletes manifests but never the latest,
// and GC deletes only runs that no remaining manifest references, that are
// older than a grace period, and (for [Store.GC]) that are not live in the
// local state or part of a snapshot in flight.
//
// # Local layout
//
//	<dir>/
//	  LOCK              flock(2)ed while a Store or RestoreTo uses <dir>
//	  STORE             the local state descriptor (JSON, below), replaced atomically
//	  data-000001/      the engine directory named by STORE ("generation" 1)
//	    <run files>     sealed runs, named by engines.RunNamer, immutable
//	    <engine files>  the engine's private files (state file, active log)
//	  data-000002/      during a restore only: the next generation being built
//
// The engine directory is a numbered generation so that a restore can build
// the new state next to the live one: runs the new version shares with the
// current state are hard-linked (copied if the file system has no links),
// missing ones downloaded to "<name>.tmp", verified (size and CRC-32C),
// fsynced and renamed. The new engine is opened on the new generation, then
// STORE is rewritten to point at it (the commit point of a restore), the old
// engine closed and its generation deleted. A data-NNNNNN directory STORE
// does not name is left by a restore that crashed before its commit point:
// the next restore (in Open, Restore or RestoreTo) reuses the runs in it that
// match its manifest (name, size and CRC-32C, so nothing verified is
// downloaded twice), and Open removes it afterwards. A crash at any point
// leaves either the old state or the new one.
//
// STORE is JSON (encoding/json, keys sorted), written with
// engines.WriteFileAtomic (temporary file, fsync, rename, fsync of <dir>):
//
//	+------------------+---------------------------------------------------+
//	| format_version   | 1                                                 |
//	| store_id         | id of the store; the remote's manifests carry it  |
//	| engine           | engine kind: "lsm", "hybridlog", ...              |
//	| params           | canonical engine parameters (decimal strings)     |
//	| version          | remote version the local state descends from; 0   |
//	| data             | engine directory, "data-" + 6+ decimal digits     |
//	| writer_id        | host/pid/nonce of the process that last opened it |
//	| metadata         | user metadata of that version (may be absent)     |
//	| checksum         | CRC-32C, 8 lowercase hex digits, of the compact   |
//	|                  | JSON encoding of the same object with checksum "" |
//	+------------------+---------------------------------------------------+
//
// A STORE that fails its checksum or names an invalid directory is reported
// as corruption (errors.Is(err, engines.ErrCorrupt)). Opening local state
// with an engine kind other than the one recorded is refused with an error
// saying how to proceed.
//
// # Remote layout
//
// Per store (one prefix per partition), as DESIGN.md fixes it:
//
//	runs/<run name>            immutable, uploaded with create-if-absent and
//	                           metadata crc32c=<8 hex digits>
//	manifests/<20-digit v>     one per snapshot (package manifest)
//
// # Options and defaults
//
// The engine kind defaults to the kind recorded in the local state or in the
// restored manifest; a new store gets [DefaultEngine] ("lsm": it keeps only
// filters and fences in memory, so the state may outgrow RAM). Parameters
// default likewise to the recorded ones, then to the engine's defaults.
//
// # Observability
//
// Options.Logger receives one line per open, snapshot, restore, forget and
// gc. Remote URLs appear in logs and errors only through objstore.Redact
// (no userinfo, no secret query parameters). With
// Options.Registerer the store registers, besides the uploader's metrics,
// tierkv_snapshots_total{result}, tierkv_snapshot_duration_seconds,
// tierkv_snapshot_new_bytes_total, tierkv_restores_total{result},
// tierkv_restore_duration_seconds, tierkv_restore_bytes_total,
// tierkv_download_bytes_total, tierkv_downloads_total,
// tierkv_engine_memory_bytes, tierkv_cache_bytes, tierkv_cache_hits_total,
// tierkv_cache_misses_total and tierkv_store_version. They are unregistered
// by Close. Several stores in one process need distinct registerers, e.g.
// prometheus.WrapRegistererWith(prometheus.Labels{"partition": "7"}, reg).
//
// # Concurrency
//
// All methods are safe for concurrent use. Get, Set and Delete run
// concurrently with each other and with Snapshot (which blocks writers only
// for the engine's in-memory swap). Snapshot, Restore, and Close are
// serialized; a Restore blocks reads and writes only for the pointer swap to
// the new engine. Forget, GC, Versions and Manifest only touch the remote.
// A directory is used by one Store at a time (LOCK).
//
// # Caveats
//
// During a restore both engines are open, so memory use briefly doubles.
// Forget and GC on a bare object store do not know the local state of a
// live writer: a run that such a writer still holds but that no remaining
// manifest references is protected only by the grace period, so keep the
// grace period longer than the interval between snapshots and never forget
// the version a live writer restored. [Store.Forget] and [Store.GC] protect
// their own store's state.
package tiered
