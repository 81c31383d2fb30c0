package tiered

import (
	"errors"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/manifest"
)

// Errors of the tiered store; compare with errors.Is.
var (
	// ErrFenced: another writer committed the version this store was about
	// to commit, or a later one. The store refuses every later commit.
	ErrFenced = manifest.ErrFenced
	// ErrDiverged: the local state does not descend from the remote's
	// latest version (a stale worker, a copied directory, a new empty one,
	// a store of another remote), so committing it would drop history. The
	// message names both versions and what to do: restore the latest, or
	// roll back deliberately with Restore. Nothing was committed.
	ErrDiverged = errors.New("tiered: local state diverged from the remote")
	// ErrVersionNotFound: the requested version does not exist; the message
	// names the nearest existing versions.
	ErrVersionNotFound = manifest.ErrVersionNotFound
	// ErrNoVersions: the remote holds no version at all.
	ErrNoVersions = manifest.ErrNoVersions
	// ErrKindMismatch: local state or a manifest is of another engine kind.
	ErrKindMismatch = engines.ErrKindMismatch
	// ErrClosed: the store was closed.
	ErrClosed = engines.ErrClosed
	// ErrNoRemote: a remote operation (snapshot, restore, versions, forget,
	// gc) on a store opened without a remote.
	ErrNoRemote = errors.New("tiered: no remote configured")
	// ErrLocked: the directory is in use by another Store or RestoreTo.
	ErrLocked = errors.New("tiered: directory is locked by another store")
	// ErrEmptyPolicy: Forget with a policy that keeps nothing but the latest
	// version by accident; say KeepLast: 1 to mean that.
	ErrEmptyPolicy = errors.New("tiered: empty retention policy")
)
