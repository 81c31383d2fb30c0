// Package objstore is tierkv's narrow object-store interface (Store) and its
// backends: a local directory, Amazon S3 through aws-sdk-go-v2, any S3 API
// through minio-go/v7, and an in-process map, with the one retry policy of
// remote requests ([Retryable], [Retry]). The uploader, the manifest commit
// protocol and the tiered store sit on top of it; the block cache does not
// (it caches local engine files).
//
// # URLs
//
// Open picks the backend from a URL:
//
//	file:///abs/path
//	    Local directory, created by the first write. The path must be absolute.
//	s3://bucket/prefix?region=R&endpoint=URL&path_style=true
//	    aws-sdk-go-v2. region defaults to the SDK's configuration, then
//	    us-east-1; endpoint (http:// or https://) points at any S3 API;
//	    path_style=true sends bucket names in the path (MinIO, most
//	    non-AWS servers).
//	minio://host:port/bucket/prefix?secure=false&region=R
//	    minio-go/v7. secure defaults to true (HTTPS); region to us-east-1.
//	mem://name/prefix
//	    In-process store. Opens of the same name share objects for the life
//	    of the process (use unique names in tests); Close keeps them.
//
// The prefix (optional) is prepended to every key with a "/" (WithPrefix).
// Unknown query parameters, credentials in the URL, bad bucket names and
// prefixes with empty, "." or ".." segments are refused with a one-line
// error matching ErrInvalidURL that names the problem and lists these
// forms. Open never contacts a server. Redact makes any URL safe to log.
//
// # Credentials
//
// Credentials never go in a URL.
//
//   - s3: the SDK's default chain: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
//     (and AWS_SESSION_TOKEN), then AWS_PROFILE / shared config files,
//     web identity, ECS and EC2 instance roles. AWS_CA_BUNDLE is honoured.
//   - minio: MINIO_ACCESS_KEY and MINIO_SECRET_KEY, else AWS_ACCESS_KEY_ID,
//     AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. Open fails when neither
//     pair is set.
//
// Errors name the bucket and endpoint, never a credential.
//
// # Keys and metadata
//
// Keys use "/" as separator. Every backend refuses, with ErrInvalidKey, a
// key that is empty, longer than 1024 bytes, or has an empty, "." or ".."
// segment, a backslash or a control character (ValidateKey), so that the
// file backend can never write outside its root and all backends agree.
// List prefixes obey the same rules. Metadata keys are lowercase a-z, 0-9
// and '-'; values printable ASCII without surrounding spaces; 2 KB in all
// (ValidateMetadata, ErrInvalidMetadata).
//
// # Errors
//
// Every backend maps its failures onto the same vocabulary at the boundary:
//
//	ErrNotExist       missing object: S3 NoSuchKey / NotFound / 404, ENOENT.
//	                  Get reports it itself, never only at the first Read
//	                  (the minio backend waits for the response headers).
//	ErrPrecondition   a create-if-absent lost: S3 412 PreconditionFailed,
//	                  link(2) EEXIST.
//	*StatusError      any other HTTP error response, with its status code;
//	                  Retryable is true for 5xx, 429, 408 and 409 (S3's
//	                  ConditionalRequestConflict: a concurrent conditional
//	                  write; retry it).
//	ErrInvalidKey, ErrInvalidMetadata, ErrInvalidArgument, ErrInvalidURL
//	                  bad arguments; permanent.
//	ErrVanished       not returned by a Store: operations built on one (the
//	                  uploader, manifest.Commit) wrap it when an object a
//	                  lost create-if-absent found is gone at the next read;
//	                  retryable.
//
// A range that starts at or past the end of an object reads as empty (S3 416
// included).
//
// # Retries
//
// [Retryable] is the one rule for "is this error worth retrying", applied to
// whatever a Store (or an operation built on one) returned: HTTP 5xx, 429,
// 408 and 409, timeouts, connection failures, bodies cut short and
// [ErrVanished] are; the sentinels above, cancellation and anything unknown
// are not. [Retry] runs a function under that rule with exponential backoff
// and full jitter ([Backoff]), honouring its context. Beyond the SDKs' own
// few quick retries of a single request, the uploader, the manifest commit
// and the tiered store's reads call Retry.
//
// # Create-if-absent
//
// PutOptions.IfAbsent is the commit primitive of manifests. s3 sends
// If-None-Match: * on PutObject, and for objects over 16 MiB uploads 8 MiB
// parts (4 in flight) and sends If-None-Match: * on CompleteMultipartUpload,
// after a HeadObject that spares the upload when the key exists; a failed
// multipart upload is aborted. minio uses PutObjectOptions.SetMatchETagExcept("*");
// above 8 MiB it drives the multipart upload itself through minio.Core and
// sends the condition on CompleteMultipartUpload too (minio-go's PutObject
// sends it only when the upload starts, so two overlapping creates would both
// win). MinIO honours both.
// The file backend writes a temporary file in the target directory, fsyncs
// it and link(2)s it into place, which fails with EEXIST if the key exists;
// mem checks under its lock. Exactly one of concurrent creates wins.
//
// # File backend layout
//
// An object is a regular file at root/<key> (a key "runs/a" is the file
// root/runs/a), so the tree can be read with ordinary tools. A Put writes
// root/<dir>/.tierkv-tmp-<random>, fsyncs it, then links (if-absent) or
// renames (plain Put) it over the key and fsyncs the directory; new
// directories are fsynced into their parents. Temporary names are never
// listed, and keys with a segment starting ".tierkv-tmp-" are refused; a
// crash can leave one behind, which TempRemover.RemoveTemps collects. The
// root directory is created by the first Put; reads of a missing root find
// nothing and create nothing. Metadata is stored as JSON in the extended
// attribute user.tierkv.meta of the object file, set before the file is
// linked into place, so data and metadata appear atomically. It is a
// best-effort copy: on a file system without user xattrs Put stores none,
// and copies of the tree keep it only with xattr-preserving tools (cp -a,
// rsync -X), so Head and Get may return no metadata. Nothing in tierkv
// relies on it: the manifest records what each run must be. Because a key
// is a path, a key cannot also be a directory of
// other keys ("a" and "a/b" cannot coexist); such a Put fails with
// ErrInvalidKey. Empty directories are not removed on Delete.
//
// # Timeouts
//
// The s3 and minio backends dial with a 10 s timeout, bound the TLS
// handshake to 10 s and the wait for response headers (after the request
// is written) to 60 s, and fail a connection that delivers no byte for 60 s.
// The SDKs retry a request at most 3 times. An unreachable endpoint
// therefore fails within about a minute at worst (a refused connection at
// once) with an error naming the endpoint.
//
// # Concurrency
//
// Every Store is safe for concurrent use. Readers returned by Get and
// GetRange must be closed and are not safe for concurrent use themselves.
// Close releases the backend's connections; a store must not be used after
// Close (the remote backends then fail every call).
//
// # Test wrappers
//
// Counting counts calls and bytes and can log each call for protocol tests.
// Package faultstore injects HTTP-style errors, timeouts, resets, delays
// and ambiguous successes. Package objstoretest holds the conformance suite
// every backend runs and helpers that create MinIO buckets for tests.
package objstore
