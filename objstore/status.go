package objstore

import (
	"fmt"
	"net/http"
)

// StatusError is a failed request that carries the HTTP status code the
// server answered with, so that Retryable can classify it (errors.As). The
// s3 and minio backends return it for every error response that is not
// mapped to ErrNotExist or ErrPrecondition; the faultstore wrapper returns it
// for injected 5xx, 429 and 409 faults.
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
