package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// Retryable reports whether err, returned by a Store or by an operation
// built on one, is worth retrying: a transient failure of the network or the
// server. It is the one classification every retry loop of tierkv uses
// (through [Retry]). First match wins:
//
//   - false for nil and context.Canceled (the caller gave up);
//   - false for ErrNotExist, ErrPrecondition and the invalid-argument errors
//     (ErrInvalidKey, ErrInvalidMetadata, ErrInvalidArgument, ErrInvalidURL);
//   - true for ErrVanished (another client deleted an object between two
//     requests of one operation);
//   - a *StatusError (found with errors.As): true for HTTP 5xx, 429 Too Many
//     Requests (and S3's SlowDown, a 503), 408 Request Timeout and 409
//     Conflict (S3's ConditionalRequestConflict and OperationAborted), false
//     for other codes;
//   - any error in the chain with a StatusCode() int or HTTPStatusCode() int
//     method (SDK errors that reached us unmapped): the same codes; a code
//     of 0 (no response at all, e.g. the aws SDK's error for a refused
//     connection) is classified by the rules below;
//   - true for timeouts: context.DeadlineExceeded (a per-request deadline
//     inside the client; Retry itself stops when its own ctx expires) and any
//     error with Timeout() bool returning true (net.Error,
//     os.ErrDeadlineExceeded);
//   - true for network failures: *net.OpError, *net.DNSError that is
//     temporary or a timeout, ECONNRESET, ECONNREFUSED, ECONNABORTED, EPIPE,
//     ETIMEDOUT, io.ErrUnexpectedEOF (a body cut short), and io.EOF inside a
//     *url.Error (a server that hung up);
//   - false for anything else: local file errors, other 4xx, corruption,
//     unknown errors. Callers' own permanent errors need no registration as
//     long as they wrap nothing transient.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	for _, permanent := range []error{
		ErrNotExist, ErrPrecondition, ErrInvalidKey, ErrInvalidMetadata, ErrInvalidArgument, ErrInvalidURL,
	} {
		if errors.Is(err, permanent) {
			return false
		}
	}
	if errors.Is(err, ErrVanished) {
		return true
	}
	var se *StatusError
	if errors.As(err, &se) {
		return retryableStatus(se.Code)
	}
	var sc interface{ StatusCode() int }
	if errors.As(err, &sc) && sc.StatusCode() != 0 {
		return retryableStatus(sc.StatusCode())
	}
	var hc interface{ HTTPStatusCode() int }
	if errors.As(err, &hc) && hc.HTTPStatusCode() != 0 {
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
	return errors.As(err, &ue) && errors.Is(ue.Err, io.EOF)
}

// retryableStatus classifies an HTTP status code.
func retryableStatus(code int) bool {
	return code >= 500 || code == http.StatusTooManyRequests ||
		code == http.StatusRequestTimeout || code == http.StatusConflict
}

// Backoff is the policy of [Retry]: how many attempts, and how long to sleep
// between them. The zero value is valid.
//
// The sleep after failed attempt n (1-based) is uniformly random in
// [0, min(Max, Base·2^(n-1))] ("full jitter"), so that many clients failing
// together do not retry together.
type Backoff struct {
	// MaxAttempts is the number of attempts, the first included. Default: 8.
	MaxAttempts int
	// Base is the sleep cap after the first failed attempt; it doubles with
	// every further attempt up to Max. Default: 50ms.
	Base time.Duration
	// Max bounds the sleep cap. Default: 5s.
	Max time.Duration
	// OnRetry, when set, is called before each sleep with the attempt that
	// failed (1-based), its error and the sleep. Default: none.
	OnRetry func(attempt int, err error, sleep time.Duration)
}

// Defaults of Backoff.
const (
	DefaultMaxAttempts = 8
	DefaultBaseBackoff = 50 * time.Millisecond
	DefaultMaxBackoff  = 5 * time.Second
)

// EnsureDefaults fills in the zero fields of b and returns it.
func (b Backoff) EnsureDefaults() Backoff {
	if b.MaxAttempts == 0 {
		b.MaxAttempts = DefaultMaxAttempts
	}
	if b.Base == 0 {
		b.Base = DefaultBaseBackoff
	}
	if b.Max == 0 {
		b.Max = DefaultMaxBackoff
	}
	return b
}

// Retry runs fn until it returns nil, returns an error [Retryable] refuses,
// b.MaxAttempts attempts were made, or ctx is done, sleeping between attempts
// as [Backoff] describes. It returns nil, the permanent error as fn returned
// it, or the last error wrapped in "giving up after N attempts"; when ctx
// ends it, the error matches both the last failure and ctx.Err(). fn must be
// safe to repeat: Retry suits idempotent requests, and operations such as
// manifest.Commit that settle an ambiguous earlier attempt themselves.
func Retry(ctx context.Context, b Backoff, fn func(ctx context.Context) error) error {
	b = b.EnsureDefaults()
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
		if attempt >= b.MaxAttempts {
			return fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		sleep := b.sleep(attempt)
		if b.OnRetry != nil {
			b.OnRetry(attempt, err, sleep)
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

// sleep returns the sleep after failed attempt n (1-based): uniform in
// [0, min(Max, Base·2^(n-1))].
func (b Backoff) sleep(n int) time.Duration {
	limit := b.Max
	if n-1 < 62 {
		if c := b.Base << (n - 1); c > 0 && c>>(n-1) == b.Base && c < limit {
			limit = c
		}
	}
	if limit <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(limit) + 1))
}
