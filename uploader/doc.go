// Package uploader is tierkv's background upload pipeline: it copies sealed,
// immutable run files from the local directory to the object store, with a
// bounded queue, a pool of workers, retries with backoff for transient
// failures, end-to-end checksums and metrics.
//
// # Basics
//
// The tiered store calls [Uploader.Enqueue] from the engine's RunSealed
// callback, so most runs are in the remote long before a snapshot needs them.
// At snapshot time it calls [Uploader.Wait] with the runs of the checkpoint,
// and commits the manifest only when Wait returns nil (data first, pointer
// last). Runs the remote already holds, learnt from a listing at open, are
// declared with [Uploader.MarkPresent] and never uploaded again; a run that is
// present, queued or being uploaded is not uploaded twice.
//
// # One upload
//
// A run named N goes to the key "runs/N" (manifest.RunKey):
//
//  1. open the local file; its size must be RunInfo.Size;
//  2. Put it with create-if-absent and user metadata crc32c = the run's
//     CRC-32C as 8 lowercase hex digits, computing the CRC-32C of the bytes
//     while they stream. The last chunk is handed to the store only after the
//     CRC of the whole file matched RunInfo.CRC32C, so a run that rotted on
//     local disk is never completed in the remote: the Put fails and the run
//     fails permanently with an engines.CorruptionError naming the file;
//  3. if the key exists (objstore.ErrPrecondition: an earlier attempt whose
//     reply was lost, or another process that uploaded the same run), Head
//     it: the same size and crc32c metadata is success; anything else fails
//     permanently with [ErrMismatch].
//
// # Retries
//
// Each upload is retried with objstore.Retry: up to Options.MaxAttempts
// attempts, sleeping between attempts for a random duration in
// [0, min(MaxBackoff, BaseBackoff·2^(attempt-1))] ("full jitter"), and only
// when objstore.Retryable says the failure is transient (a key that vanished
// between the lost create and the Head is: objstore.ErrVanished). A failure
// that is not transient (a missing local file, corruption, a 403, a
// mismatching object) fails the run at once. A run that failed is not
// retried by itself; enqueueing it again starts over.
//
// # Metrics
//
// With Options.Registerer set, New registers (names prefixed tierkv_upload_):
//
//	tierkv_upload_runs_total          counter    runs made durable (uploaded or found identical)
//	tierkv_upload_bytes_total         counter    bytes sent by successful uploads
//	tierkv_upload_retries_total       counter    attempts that were retried
//	tierkv_upload_failures_total      counter    runs that failed permanently
//	tierkv_upload_queue_depth         gauge      runs waiting for a worker
//	tierkv_upload_duration_seconds    histogram  first attempt to durable, per run
//	tierkv_upload_lag_seconds         histogram  Enqueue (seal) to durable, per run
//
// Several uploaders may share one Registerer (one per partition of a worker):
// the second one reuses the collectors the first registered, so the series
// add up across the process.
//
// # Concurrency
//
// All methods are safe for concurrent use. Enqueue blocks while the queue is
// full, which slows the sealing engine down to the upload rate. Close cancels
// queued and in-flight uploads (their waiters get [ErrClosed]) and returns once
// every goroutine the uploader started has stopped; callers that need runs
// durable call Wait first. The uploader never closes the object store.
package uploader
