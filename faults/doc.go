// Package faults is tierkv's reliability suite for the remote side: it holds
// tests only (this file documents them).
//
// # What it proves
//
//   - Object-store faults (faults_test.go). A writer takes N snapshots (200;
//     1,000 with TIERKV_STRESS=1) through objstore/faultstore with about 10%
//     of all requests failing: HTTP 500, 503, 429 and 409, timeouts,
//     connection resets in the middle of a body, slow answers, and the
//     ambiguous case where a write landed but the client saw an error; some
//     snapshots also run through an outage so that they fail. Each snapshot
//     either commits or returns an error, never ErrFenced; the next one after
//     an error works; versions stay contiguous; no run object is written
//     twice; every manifest passes tiered.Verify deep; restoring any version
//     gives exactly the state recorded for it (an oracle per version, checked
//     over the whole key space); no goroutine is left behind.
//   - Fencing (fencing_test.go). Two stores with separate directories race to
//     commit on one prefix (mem, file, MinIO through minio:// and s3://): each
//     version has exactly one winner, the loser gets tiered.ErrFenced (which
//     is manifest.ErrFenced) and writes no manifest afterwards, versions are
//     contiguous and every committed version restores exactly. A writer held
//     just before its commit while another writer commits several versions
//     never commits when it resumes.
//   - Hostile input (hostile_test.go). Manifests planted in the bucket with a
//     valid checksum whose run names hold '/', '\', ".." or absolute paths
//     are refused by Restore, Open, RestoreTo, PlanRestore, Verify, GC and the
//     CLI, and nothing is written outside the target directory. Secrets given
//     in the environment never appear in the CLI's output, errors or logs.
//   - Fuzzing (fuzz_test.go): native fuzz targets for the exported parsers
//     that had none, and one that plants arbitrary bytes as a manifest and
//     runs Verify, PlanRestore, RestoreTo and GC on them. Their seed corpora
//     run under plain go test.
//
// # Running
//
//	make test PKGS=./faults/...                        # with a private MinIO
//	TIERKV_STRESS=1 make test PKGS=./faults/...        # the long versions
//	go test -race ./faults/ -faults.seed=N             # replay a seed
//
// Without MinIO (TIERKV_TEST_MINIO_* unset) the MinIO cases are skipped,
// unless TIERKV_TEST_REQUIRE_MINIO=1 makes that a failure.
package faults
