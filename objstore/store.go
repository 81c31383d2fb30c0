package objstore

import (
	"context"
	"io"
	"time"
)

// Store is the narrow object-store interface every backend implements. Keys
// are relative to the store's prefix, use "/" as separator and never start
// with "/". All methods are safe for concurrent use.
type Store interface {
	// Put writes size bytes from r under key. With opts.IfAbsent the write
	// succeeds only if key does not exist yet; otherwise it returns an error
	// matching ErrPrecondition and the existing object is untouched. A Put
	// that returns an error leaves either no object or the complete one, never
	// a partial one.
	Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) error
	// Get opens the object for reading. A missing key returns an error
	// matching ErrNotExist (from Get itself, never only at the first Read).
	Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error)
	// GetRange reads length bytes starting at offset. length < 0 reads to the
	// end. A range beyond the end is clipped.
	GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Head returns the object's size, modification time and metadata.
	Head(ctx context.Context, key string) (ObjectInfo, error)
	// List returns every object whose key starts with prefix, sorted by key.
	// Metadata is not filled in.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Close releases the backend's resources.
	Close() error
}

// PutOptions are the per-call options of Put.
type PutOptions struct {
	// IfAbsent makes Put a create-if-absent (If-None-Match: *).
	IfAbsent bool
	// Metadata is stored with the object; keys are lowercase ASCII letters,
	// digits and '-'.
	Metadata map[string]string
}

// ObjectInfo describes one object.
type ObjectInfo struct {
	Key          string
	Size         int64
	LastModified time.Time
	Metadata     map[string]string
}
