// Package integration holds tierkv's end-to-end tests against a real MinIO
// server. It has no code of its own: everything is in its _test.go files.
//
// Every test runs once per remote backend, as the subtests "s3" (the
// s3:// URL, aws-sdk-go-v2) and "minio" (the minio:// URL, minio-go), each
// on a fresh bucket under a key prefix:
//
//   - TestModel: random writes, deletes, snapshots, restores to random
//     earlier versions and reopens (same directory, fresh directory at the
//     latest or an earlier version), every read compared with an oracle
//     map kept per version; once per engine kind.
//   - TestForgetGC: forget and gc, dry runs first, on a bare remote and
//     through a live store.
//   - TestVerify: shallow and deep verification, then objects overwritten
//     or deleted behind tierkv's back with a raw minio-go client.
//   - TestFencingRace: two stores on one prefix race for each version.
//   - TestConditionalCreate: create-if-absent on single-part and multipart
//     objects, sequential and racing.
//   - TestLargeObject and TestLargeRun: a 64 MiB object and a 64 MiB run
//     (multipart uploads), streamed and checksummed.
//   - TestCLI and TestCLIDemo: the tierkv command run as a subprocess
//     (built once per test binary) against the server.
//
// # Running
//
//	make test PKGS=./integration/...
//	scripts/with-minio.sh go test -race -count=1 -v ./integration/...
//
// The server comes from TIERKV_TEST_MINIO_ENDPOINT, _ACCESS_KEY and
// _SECRET_KEY (scripts/with-minio.sh sets them, and AWS_* and MINIO_*
// credentials for the backends). Without them the tests skip, or fail when
// TIERKV_TEST_REQUIRE_MINIO=1, as under make test. With -v each test logs
// the endpoint and the remote URL it used, and the binary ends with a
// summary line naming the server and the backends exercised.
//
// The randomized tests print their seed; replay one with
// -integration.seed=N (go test ./integration/ -run TestModel -args
// -integration.seed=N).
package integration
