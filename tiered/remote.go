package tiered

import (
	"context"
	"io"
	"time"

	"github.com/tierkv/tierkv/objstore"
)

// readRetry is the backoff policy of remote reads: a few quick attempts, so
// that a transient 503 or a reset does not fail an Open, a Restore's
// manifest load, a GC or a Verify, while an unreachable endpoint still fails
// within about a second.
var readRetry = objstore.Backoff{MaxAttempts: 4, Base: 50 * time.Millisecond, Max: time.Second}

// retryingReads wraps the remote so that its idempotent operations (Get,
// GetRange, Head, List, Delete) are retried on transient errors
// (objstore.Retryable). Put passes through: the uploader and manifest.Commit
// retry it themselves, because only they can settle an ambiguous create. A
// failure while reading a body is not retried here; downloads retry whole.
type retryingReads struct {
	objstore.Store
}

// unwrapRetries returns the store withReadRetries wrapped.
func unwrapRetries(st objstore.Store) objstore.Store {
	if r, ok := st.(retryingReads); ok {
		return r.Store
	}
	return st
}

// withReadRetries wraps st once.
func withReadRetries(st objstore.Store) objstore.Store {
	if _, ok := st.(retryingReads); ok || st == nil {
		return st
	}
	return retryingReads{st}
}

func (r retryingReads) Get(ctx context.Context, key string) (rc io.ReadCloser, info objstore.ObjectInfo, err error) {
	err = objstore.Retry(ctx, readRetry, func(ctx context.Context) error {
		rc, info, err = r.Store.Get(ctx, key)
		return err
	})
	return rc, info, err
}

func (r retryingReads) GetRange(ctx context.Context, key string, offset, length int64) (rc io.ReadCloser, err error) {
	err = objstore.Retry(ctx, readRetry, func(ctx context.Context) error {
		rc, err = r.Store.GetRange(ctx, key, offset, length)
		return err
	})
	return rc, err
}

func (r retryingReads) Head(ctx context.Context, key string) (info objstore.ObjectInfo, err error) {
	err = objstore.Retry(ctx, readRetry, func(ctx context.Context) error {
		info, err = r.Store.Head(ctx, key)
		return err
	})
	return info, err
}

func (r retryingReads) List(ctx context.Context, prefix string) (infos []objstore.ObjectInfo, err error) {
	err = objstore.Retry(ctx, readRetry, func(ctx context.Context) error {
		infos, err = r.Store.List(ctx, prefix)
		return err
	})
	return infos, err
}

func (r retryingReads) Delete(ctx context.Context, key string) error {
	return objstore.Retry(ctx, readRetry, func(ctx context.Context) error {
		return r.Store.Delete(ctx, key)
	})
}
