package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
)

// StatusError is a failed request that carries the HTTP status code the
// server answered with, so that callers (the uploader's retry loop) can
// classify it with errors.As. The s3 and minio backends return it for every
// error response that is not mapped to ErrNotExist or ErrPrecondition; the
// faultstore wrapper returns it for injected 5xx, 429 and 409 faults.
type StatusError struct {
	// Op is the operation: "put", "get", "getrange", "head", "list" or "delete".
	Op string
	// Key is the object key (the prefix for "list").
	Key string
	// Code is the HTTP status code, e.g. 503.
	Code int
	// Err is the underlying error (the SDK's, or a sentinel).
	Err error
}

// Error implements error: "objstore: put runs/x: http 503 Service Unavailable: …".
func (e *StatusError) Error() string {
	return fmt.Sprintf("objstore: %s %s: http %d %s: %v", e.Op, e.Key, e.Code, http.StatusText(e.Code), e.Err)
}

// Unwrap returns the underlying error.
func (e *StatusError) Unwrap() error { return e.Err }

// Temporary reports whether retrying the same request may succeed: 5xx
// server errors, 429 Too Many Requests (and S3's SlowDown, a 503), 408
// Request Timeout, and 409, which S3 answers for ConditionalRequestConflict
// (a conditional write racing another one on the same key) and
// OperationAborted.
func (e *StatusError) Temporary() bool {
	switch {
	case e.Code >= 500:
		return true
	case e.Code == http.StatusTooManyRequests, e.Code == http.StatusRequestTimeout, e.Code == http.StatusConflict:
		return true
	}
	return false
}

// IsTemporary classifies an error returned by a Store: true for a
// StatusError whose Temporary() is true, for timeouts (an error with a
// Timeout() bool method returning true, context.DeadlineExceeded included),
// for connection resets, refusals and broken pipes, and for a body cut short
// (io.ErrUnexpectedEOF). It is false for nil, ErrNotExist, ErrPrecondition,
// the invalid-argument errors, context.Canceled and anything unknown.
func IsTemporary(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, ErrNotExist) || errors.Is(err, ErrPrecondition) ||
		errors.Is(err, ErrInvalidKey) || errors.Is(err, ErrInvalidMetadata) ||
		errors.Is(err, ErrInvalidArgument) || errors.Is(err, ErrInvalidURL) {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Temporary()
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return true
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF)
}
