// Package reliability holds tierkv's reliability suite (issue 6): tests that
// crash, corrupt and starve a real store and check that nothing committed is
// lost and nothing uncommitted is ever shown. The package has no API of its
// own besides the file-system fault injector in reliability/faultfs.
//
// # Scenarios
//
//   - Kill -9 (TestKill9File, TestKill9MinIO): a driver re-executes the test
//     binary as a writer process (TestHelperWriter) that runs random writes,
//     deletes, snapshots, restores, forgets and GCs on a tiered store, one
//     store per engine, and journals every operation. The driver SIGKILLs
//     it at a random moment (a delay, or inside the n-th write, snapshot,
//     restore, GC or open) and checks: the remote's latest version is the
//     newest committed one, or the snapshot in flight whose commit landed;
//     it and an older version restore exactly into a fresh directory with
//     their metadata; a deep tiered.Verify finds no problem; reopening the
//     killed directory with ResumeLocal gives, per key, the value at the
//     last durable point or one written since (or exactly one of the
//     versions the restores in flight were switching to). Sometimes the
//     driver leaves the crashed directory to the next writer, which then
//     restores the latest version over it. TestJournalModel checks this
//     oracle itself on hand-written histories.
//   - Crash during restore (TestCrashDuringRestore): the restore process is
//     killed after some runs were downloaded and verified; opening again
//     gives the same state, and the runs already verified are not
//     downloaded again (counted with objstore.NewCounting).
//   - Corruption (TestCorruption*): single-byte flips and truncations of
//     every engine's local files, of remote runs and of manifests; each case
//     is detected (an error matching engines.ErrCorrupt naming the file or
//     object and the offset) or provably harmless: every
//     read returns the right value and the damaged file was dead (Open
//     removed it), or its damaged bytes were never read and the reopened
//     engine's checkpoint still records the run's original CRC-32C (so an
//     upload, a restore or a verify rejects it), or a JSON file (STORE, a
//     manifest) decodes to the same content. No read ever returns a wrong
//     value. Remote runs are always detected (size and CRC-32C per run).
//   - Local disk faults (TestDiskFault*): reliability/faultfs fails the n-th
//     write-class or fsync-class operation under each engine, for n = 0, 1,
//     2, ... until the workload runs clean; a failed fsync also drops the
//     file's unsynced bytes, as Linux may. The engine returns the error,
//     never panics, and reopening gives every write acknowledged by a Seal or
//     Close that succeeded. A third sweep fails every write and fsync from
//     the n-th on (a dying disk). TestDiskFaultCurrentDirSync is the
//     smallest reproduction of the bug the sweeps found (see below).
//   - Cross-process guarantees (TestCrossProc*, issue 9): real tierkv CLI
//     processes (built once per test binary, without -race) and writer
//     processes (TestHelperSnapWriter) share one remote, file:// and, with
//     scripts/with-minio.sh, MinIO. TestCrossProcDescent: a snapshot commits
//     only from the remote's latest version (two restores of one version, a
//     fresh directory, a stale reopened store and an overtaken rollback fail
//     with "diverged"; a deliberate rollback commits latest+1 with the
//     restored version as parent). TestCrossProcWriters: two writers and a
//     stale one interleaved at random with GC passes; each commit is
//     predicted exactly and latest always restores to its writer's model.
//     TestCrossProcGCDuringSnapshots, TestCrossProcGCSimpleSequence,
//     TestCrossProcGCRollback: GC and forget in another process never break
//     a commit (every version reported committed restores exactly, a deep
//     verify is clean, a failed snapshot commits nothing).
//     TestCrossProcLocalMetadata, TestCrossProcNotAStore,
//     TestCrossProcKillRestore: a missing or truncated STORE, engine CURRENT
//     or generation directory, a directory of other files and a restore
//     killed with SIGKILL are refused with an error naming the cause, and
//     the directory is left byte for byte as it was (a killed restore then
//     resumes, downloading only the runs it lacks). TestCrossProcAddRemote
//     and TestCrossProcReadOnlyNoStore: a local store's first snapshot to
//     an empty remote, and read-only commands on a missing file:// remote.
//   - Disk faults under a tiered store (TestTieredDiskFaultSweep): the same
//     injector as tiered's Options.FS and RestoreOptions.FS, under each
//     engine, fails the n-th write-class or fsync-class call (or every one
//     from the n-th on: a dying disk) of a workload of writes, three
//     Snapshots, a Restore and Close, then two PrepareRestore(...).Run into a
//     second directory; the object store is in memory and never fails.
//     Afterwards, on the real file system (no fsyncs: nothing crashes while
//     checking): every version in the remote restores, into a fresh
//     directory, to exactly the state read when its Snapshot returned (or one
//     a failed Snapshot may have committed), and every version a Snapshot
//     returned is there; both directories reopen with a state they durably
//     held (per key the value at the last successful snapshot, restore or
//     Close, or one written since; for the restore directory one of the
//     versions restored into it) and say the version of their last
//     successful snapshot or restore, or refuse with an error naming STORE,
//     RESTORING, CURRENT or a data-* directory (an interrupted restore then
//     resumes with a restore); a successful reopen and Close leave no
//     RESTORING; nothing is written outside the two directories.
//
// # Bugs found and fixed
//
//   - TestTieredFreshOpenFault: when the first STORE write of a new store
//     failed, Open left data-000001 without STORE and the directory never
//     opened again, although nothing was written to the store. Now the
//     generation goes with the failed Open.
//   - TestTieredRestoreMarkerDirSync: when the directory fsync of RESTORING
//     failed in Store.Restore, the marker stayed; after the failed Restore,
//     a write and a successful Close, the directory no longer reopened
//     locally. Now a failed marker write is undone like any failed stage.
//   - TestTieredSnapshotStoreLag (and TestKill9File at stress scale: a
//     writer killed between its manifest create and the STORE write): the
//     directory reopened as the previous version and the next Snapshot
//     failed with ErrDiverged. Now STORE records the commit in flight
//     (pending: version and commit id) before the manifest is created, and
//     Open settles it against the remote.
//   - TestDiskFaultCurrentDirSync, TestDiskFaultSweep: when the directory
//     fsync of engines.WriteFileAtomic failed after its rename took effect,
//     memonly, hybridlog and lsm deleted the run the new CURRENT named, and
//     the directory no longer opened. They now keep the files of a run whose
//     publication failed; Open removes them if CURRENT does not name them.
//   - TestCrashDuringRestore: runs a killed restore had downloaded and
//     verified were downloaded again, because Open and RestoreTo deleted the
//     unfinished generation directory. A restore now reuses the matching runs
//     of such a directory and removes it afterwards.
//
// # Running
//
//	go test -race ./reliability/                     short versions (make test)
//	TIERKV_STRESS=1 go test -race -timeout 60m ./reliability/   long versions
//
// TIERKV_STRESS=1 raises the counts (300 kills on file://, 60 on MinIO,
// 10,000 corruption cases, longer sweeps; 2,000 snapshots under concurrent
// GC, 20 killed restores, 600 interleaved writer steps). The MinIO test runs when
// scripts/with-minio.sh provides a server. Every randomized test logs its
// seed; -reliability.seed=N replays it (kill timing aside).
// TIERKV_RELIABILITY_TRIGGER=open,restore (any of delay, set, snap,
// restore, forget, open) makes the kill tests kill only in those phases.
// Counts (kills, faults injected, corruptions detected) are logged with
// t.Logf; run with -v to see them.
package reliability
