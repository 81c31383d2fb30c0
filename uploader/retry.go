package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"syscall"
	"time"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/objstore"
)

// Retryable reports whether err is worth retrying: a transient failure of the
// network or the server. It accepts, first match wins:
//
//   - false for nil, context.Canceled (the caller gave up), corruption
//     (engines.ErrCorrupt), ErrMismatch, ErrClosed, objstore.ErrNotExist,
//     objstore.ErrPrecondition and the objstore invalid-argument errors;
//   - an *objstore.StatusError (found with errors.As): true for HTTP 5xx,
//     429 Too Many Requests, 408 Request Timeout and 409 Conflict (S3's
//     ConditionalRequestConflict and OperationAborted), false for other codes;
//   - any error in the chain with a StatusCode() int or HTTPStatusCode() int
//     method (SDK errors that reached us unmapped): the same codes;
//   - true for timeouts: context.DeadlineExceeded (a per-request deadline
//     inside the client; Retry itself stops when its own ctx expires) and any
//     error with Timeout() bool returning true (net.Error);
//   - true for network failures: *net.OpError, *net.DNSError that is
//     temporary or a timeout, ECONNRESET, ECONNREFUSED, ECONNABORTED, EPIPE,
//     ETIMEDOUT, io.ErrUnexpectedEOF, and io.EOF inside a *url.Error (a
//     server that hung up);
//   - false for anything else (local file errors, 4xx, unknown errors).
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	for _, permanent := range []error{
		engines.ErrCorrupt, ErrMismatch, ErrClosed, ErrUnknownRun,
		objstore.ErrNotExist, objstore.ErrPrecondition, objstore.ErrInvalidKey,
		objstore.ErrInvalidMetadata, objstore.ErrInvalidArgument, objstore.ErrInvalidURL,
	} {
		if errors.Is(err, permanent) {
			return false
		}
	}
	if errors.Is(err, errVanished) {
		return true
	}
	var se *objstore.StatusError
	if errors.As(err, &se) {
		return retryableStatus(se.Code)
	}
	var sc interface{ StatusCode() int }
	if errors.As(err, &sc) {
		return retryableStatus(sc.StatusCode())
	}
	var hc interface{ HTTPStatusCode() int }
	if errors.As(err, &hc) {
		return retryableStatus(hc.HTTPStatusCode())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsTemporary || dns.IsTimeout
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return true
	}
	for _, transient := range []error{
		syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED,
		syscall.EPIPE, syscall.ETIMEDOUT, io.ErrUnexpectedEOF,
	} {
		if errors.Is(err, transient) {
			return true
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) && errors.Is(ue.Err, io.EOF) {
		return true
	}
	return false
}

// retryableStatus classifies an HTTP status code.
func retryableStatus(code int) bool {
	return code >= 500 || code == 429 || code == 408 || code == 409
}

// Retry runs fn until it returns nil, returns an error Retryable refuses,
// Options.MaxAttempts attempts were made, or ctx is done, sleeping between
// attempts as the package documentation describes. Only the backoff fields
// of o are used (zero ones take their defaults). It returns nil, the
// permanent error as fn returned it, or the last error wrapped in "uploader:
// giving up after N attempts"; when ctx ends it, the error matches both the
// last failure and ctx.Err().
func Retry(ctx context.Context, o Options, fn func(ctx context.Context) error) error {
	return retry(ctx, o.EnsureDefaults(), fn, nil)
}

// retry is Retry with defaults already applied and a hook called before each
// backoff sleep.
func retry(ctx context.Context, o Options, fn func(ctx context.Context) error,
	onRetry func(attempt int, err error, sleep time.Duration)) error {
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return withCause(err, cerr)
		}
		if !Retryable(err) {
			return err
		}
		if attempt >= o.MaxAttempts {
			return fmt.Errorf("uploader: giving up after %d attempts: %w", attempt, err)
		}
		sleep := backoff(o, attempt)
		if onRetry != nil {
			onRetry(attempt, err, sleep)
		}
		t := time.NewTimer(sleep)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return withCause(err, ctx.Err())
		}
	}
}

// withCause returns err, wrapped so that it also matches cause.
func withCause(err, cause error) error {
	if errors.Is(err, cause) {
		return err
	}
	return fmt.Errorf("%w (%w)", err, cause)
}

// backoff returns the sleep after failed attempt n (1-based): uniform in
// [0, min(MaxBackoff, BaseBackoff·2^(n-1))].
func backoff(o Options, n int) time.Duration {
	limit := o.MaxBackoff
	if n-1 < 62 {
		if c := o.BaseBackoff << (n - 1); c > 0 && c>>(n-1) == o.BaseBackoff && c < limit {
			limit = c
		}
	}
	if limit <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(limit) + 1))
}
