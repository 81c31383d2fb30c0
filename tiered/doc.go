// Package tiered is the tierkv store: one engine, a local directory, and an
// object store that holds the engine's sealed runs and one manifest per
// snapshot.
//
// # Basics
//
// [Open] opens (or creates) a store in a local directory. With a remote (an
// object-store URL, or an [objstore.Store] injected through [Options.ObjectStore])
// Open lists the runs the remote already holds, so that nothing is uploaded
// twice, and restores the latest version (or [Options.Version]), downloading
// only the runs missing locally; [Store.Metadata] then returns the metadata
// committed with that version. With [Options.ResumeLocal], or without a
// remote, Open reopens the local state instead.
//
// Local state is never discarded implicitly. With a remote that holds no
// version, Open reopens the local state (its next snapshot becomes version
// 1). With a remote that holds versions, a local state that was never
// committed, or that belongs to another store, is refused ([ErrDiverged])
// rather than replaced: open it with ResumeLocal, or move it away.
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
// Snapshot, which reads back that one version first. STORE records each
// commit before it is attempted, so a process that dies before it knows the
// outcome has it settled by the next Open with the remote, and reopens as
// its own version rather than diverged from it. [Store.SnapshotAsync]
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
//   - the state of v descends from the remote's latest version before v (its
//     parent), or from a version this store was deliberately rolled back to
//     while that latest was already the latest (see "Descent");
//   - opening the same remote anywhere (Open, or [RestoreTo]) reproduces the
//     state of v exactly, downloading only the runs missing there, each
//     verified against its size and CRC-32C.
//
// Versions are never reused; Forget deletes manifests but never the latest,
// and GC deletes only runs that no remaining manifest and no live writer's
// lease references, older than a grace period (see "Writers and GC"). These
// hold for every process and machine that uses the same remote and
// directory, not only inside one Store.
//
// # Descent
//
// A store's base is the version its local state descends from: the one
// restored at Open or by Restore, opened from (ResumeLocal), or last
// committed. Snapshot commits only when the base is the remote's latest
// version, as listed at Open and followed since; a state rolled back with
// Restore or RestoreTo to a version below the latest L records L (STORE's
// rollback_of) and may commit while the latest is still L, continuing
// history at L+1 with the rolled-back parent, also from another process
// (tierkv restore --version, then tierkv put and tierkv snapshot). Anything
// else fails with [ErrDiverged], naming both versions and what to do, and
// commits nothing: a stale worker restarted on its old directory, a copied
// directory whose twin committed first, a new empty directory (base 0)
// over an existing history, a store of another remote. Another writer that
// commits after this store listed the versions is caught by the commit
// itself ([ErrFenced]).
//
// # Writers and GC
//
// A manifest never names a run that is not in the remote, whatever GC,
// Forget or other writers do meanwhile. Two kinds of objects beside runs/
// and manifests/ carry the protocol:
//
//	leases/<id>                one per open writer: the runs its next commit
//	                           may name (every run of the checkpoint being
//	                           committed), when it was written, and its
//	                           expiry (Options.LeaseTTL, default 1 h)
//	gc/<20-digit ns>-<nonce>   one per GC pass that deletes: its candidates
//	                           and deadline (start + 2 min), then done and
//	                           what it deleted; kept 2 h
//
// A GC pass (any process: [GC], [Store.GC], tierkv gc) reads every
// manifest, lists runs/, takes as candidates the runs no manifest names
// that are older than the grace period, writes its record
// (create-if-absent), only then lists the leases, and deletes the
// candidates no unexpired lease names, before its deadline; then it
// rewrites its record as done with the deleted names. An unreadable lease
// or manifest stops the pass before it deletes anything.
//
// A writer's Snapshot, once the checkpoint's runs are uploaded: (1) writes
// its lease naming them when the set changed or the lease has less than
// half its ttl left (no request otherwise: an idle store costs nothing);
// (2) lists gc/ and reads each record it has not processed, waiting while
// one is neither done nor past its deadline; every run a record deleted
// (or, past its deadline, may have deleted) is treated as absent from then
// on, and those the checkpoint names are uploaded again from the local
// files; (3) commits if the lease still has half its ttl, else repeats.
// When the last such check is more than an hour old (a writer paused or
// idle longer than half the records' retention) it also lists runs/ and
// uploads again what is missing.
//
// The races this closes: a GC that listed the leases before the writer
// wrote its lease wrote its record before that listing, so the writer's
// step 2 (after its lease write) sees the record and uploads again; a GC
// that writes its record after the writer's step 2 lists the leases after
// the lease write and spares the runs. Forget deleting the version a
// writer restored (its runs then named by no manifest) is the same case. A
// writer paused past its lease's expiry renews it and checks again before
// committing. A GC killed mid-pass leaves a record that writers honour once
// its deadline passed. The grace period is not what keeps data safe (gc
// --grace 0s is safe); it saves uploading again the runs written since the
// last snapshot. Assumed: clocks agree to well within half the lease ttl,
// and a writer is not paused for more than half the ttl between its last
// check and the manifest create. Requests per snapshot: one lease PUT when
// its runs changed and one LIST of gc/ (plus a GET per new record).
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
//	  RESTORING         during a restore only: the generations it may write
//
// The engine directory is a numbered generation so that a restore can build
// the new state next to the live one: runs the new version shares with the
// current state are hard-linked (copied if the file system has no links),
// missing ones downloaded to "<name>.tmp", verified (size and CRC-32C),
// fsynced and renamed. Before it creates the new generation, a restore
// writes RESTORING (JSON like STORE: format_version, version, previous =
// the generation STORE named, staging = the generations restores built,
// checksum). The new engine is opened on the new generation, then STORE is
// rewritten to point at it (the commit point of a restore; a failed write
// is read back, since its rename may have landed), the old engine closed,
// and the generations RESTORING names other than STORE's removed, then
// RESTORING. One pipeline does this for Store.Restore, the restore at Open
// and [PrepareRestore] / [RestoreTo].
//
// A crash leaves either the old state or the new one. A directory holding
// RESTORING whose restore did not commit is an interrupted restore: only a
// restore (Open with a remote, RestoreTo, tierkv restore) uses it, reusing
// the runs its staging generations hold that match the manifest (name, size
// and CRC-32C, so nothing verified is downloaded twice); everything else
// refuses it with [ErrRestoreUnfinished] and changes nothing. One whose
// restore did commit is finished by the next open.
//
// Local metadata fails closed. A new store is created only in a directory
// that does not exist or is empty (a LOCK alone counts as empty); creating
// it writes RESTORING of version 0 until its first STORE, so a crash in
// between leaves a directory the next open starts anew (nothing was written
// to it yet). A
// directory holding anything else that a store does not write is refused
// with [ErrNotAStore] and nothing is created in it. A missing or unreadable
// STORE (while data directories exist), RESTORING, or data directory named
// by STORE is an error naming the file (matching engines.ErrCorrupt), and
// nothing is deleted. Files are removed only when they are named as
// replaced: generations by RESTORING, engine files by the engine's own
// rule (package engines, "Opening: fail closed"). An Open that fails in a
// directory it created removes it again.
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
//	| rollback_of      | remote latest when version was restored below it  |
//	|                  | (a deliberate rollback); absent otherwise         |
//	| pending          | version and commit_id of a commit of this state   |
//	|                  | not known to have landed; absent otherwise        |
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
//	leases/<id>                one per open writer (see "Writers and GC")
//	gc/<20-digit ns>-<nonce>   one per deleting GC pass, kept 2 h
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
// A run a GC deleted while a writer held it only locally is uploaded again
// by the writer's next snapshot (see "Writers and GC"); with grace 0 that
// can mean uploading again the runs written since the last snapshot.
package tiered
