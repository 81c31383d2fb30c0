package tiered

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/objstore"
)

// DefaultEngine is the engine kind of a new store when Options.Engine is
// empty: the LSM tree keeps only Bloom filters and fence pointers in memory,
// so the state may grow beyond RAM.
const DefaultEngine = "lsm"

// Defaults of Options.
const (
	// DefaultUploadConcurrency is the default of Options.UploadConcurrency.
	DefaultUploadConcurrency = 4
	// DefaultCacheBytes is the default of Options.CacheBytes (64 MiB).
	DefaultCacheBytes = 64 << 20
)

// Options configure Open. The zero value of every field but Dir works.
type Options struct {
	// Dir is the local directory of the store (see the package doc for its
	// layout). It is created if missing. Required.
	Dir string
	// Remote is the object-store URL (file:///abs/path, s3://bucket/prefix,
	// minio://host:port/bucket/prefix, mem://name). Default: "" (no remote;
	// the store is local only and Snapshot returns ErrNoRemote).
	Remote string
	// ObjectStore, when non-nil, is the object store to use instead of
	// Remote; tests inject mem, counting or fault-injecting stores. The Store
	// does not close it. Default: nil.
	ObjectStore objstore.Store
	// Engine is the engine kind: "lsm", "hybridlog", "appendlog" or
	// "memonly". Default: the kind recorded in the local state (with
	// ResumeLocal or without a remote) or in the restored manifest; for a new
	// store, DefaultEngine ("lsm"). A kind other than the recorded one is
	// refused with ErrKindMismatch.
	Engine string
	// Params are the engine parameters by their thesis names (snake_case).
	// Default: the parameters recorded in the local state or the restored
	// manifest; for a new store, the engine's defaults.
	Params engines.Params
	// UploadConcurrency is the number of parallel uploads, and of parallel
	// downloads during a restore. Default: 4.
	UploadConcurrency int
	// CacheBytes is the budget of the block cache engine reads go through.
	// Default: 64 MiB.
	CacheBytes int64
	// ResumeLocal reopens the local state instead of restoring a version
	// from the remote. Default: false (restore the latest version).
	ResumeLocal bool
	// Version is the version to restore at Open (with a remote and without
	// ResumeLocal). Default: 0, the latest.
	Version uint64
	// FS is the local file system under the store directory: STORE, the
	// generations, restore staging and the engine's files. Tests inject
	// faults through it. Default: engines.OSFS{}.
	FS engines.FS
	// LeaseTTL is how long the lease a writer keeps in the remote protects
	// the runs its next commit names from GC in other processes (see
	// "Writers and GC" in the package doc). A snapshot renews it when it has
	// less than half left. Default: DefaultLeaseTTL (1 h).
	LeaseTTL time.Duration
	// Logger receives the store's log lines. Default: discard.
	Logger *slog.Logger
	// Registerer, when non-nil, receives the store's and the uploader's
	// Prometheus metrics (names start with tierkv_). Default: nil (none).
	Registerer prometheus.Registerer
}

// EnsureDefaults returns o with its zero fields filled in (Engine and Params
// stay empty: they default to recorded state, resolved by Open).
func (o Options) EnsureDefaults() Options {
	if o.UploadConcurrency == 0 {
		o.UploadConcurrency = DefaultUploadConcurrency
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.FS == nil {
		o.FS = engines.OSFS{}
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate reports the first bad field of o (after EnsureDefaults).
func (o Options) Validate() error {
	switch {
	case o.Dir == "":
		return errors.New("tiered: Options.Dir is required: the local directory of the store")
	case o.UploadConcurrency < 1 || o.UploadConcurrency > 256:
		return fmt.Errorf("tiered: Options.UploadConcurrency=%d is invalid: want 1..256", o.UploadConcurrency)
	case o.LeaseTTL < time.Second:
		return fmt.Errorf("tiered: Options.LeaseTTL=%s is invalid: want at least 1s", o.LeaseTTL)
	case o.CacheBytes < 0:
		return fmt.Errorf("tiered: Options.CacheBytes=%d is invalid: want a positive size", o.CacheBytes)
	case o.Version != 0 && o.Remote == "" && o.ObjectStore == nil:
		return fmt.Errorf("tiered: Options.Version=%d needs a remote (Options.Remote or Options.ObjectStore)", o.Version)
	case o.Version != 0 && o.ResumeLocal:
		return fmt.Errorf("tiered: Options.Version=%d and Options.ResumeLocal exclude each other: a version is restored from the remote", o.Version)
	}
	return nil
}
