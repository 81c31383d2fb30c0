package objstore

import "errors"

// Errors every backend reports the same way; compare with errors.Is.
var (
	// ErrNotExist: the object does not exist.
	ErrNotExist = errors.New("objstore: object does not exist")
	// ErrPrecondition: a create-if-absent lost because the key exists.
	ErrPrecondition = errors.New("objstore: object already exists")
	// ErrInvalidURL: a remote URL that cannot be used.
	ErrInvalidURL = errors.New("objstore: invalid remote URL")
	// ErrVanished: an object one request found was gone at the next request
	// of the same operation (another client deleted it in between, e.g. a
	// create-if-absent lost and the Head that followed found nothing).
	// Retrying the operation may succeed; Retryable is true for it.
	ErrVanished = errors.New("objstore: object vanished between two requests")
)
