package engines

import (
	"log/slog"

	"github.com/tierkv/tierkv/cache"
)

// Engine is the contract every tierkv engine implements. All methods are safe
// for concurrent use.
type Engine interface {
	// Get returns the value stored under key. found is false when the key is
	// absent or deleted. The returned slice is owned by the caller.
	Get(key []byte) (value []byte, found bool, err error)
	// Set stores value under key. An empty (or nil) value is a value. Keys and
	// values beyond the limits are refused with a *LimitError and nothing is
	// written. The engine copies key and value.
	Set(key, value []byte) error
	// Delete writes a tombstone for key.
	Delete(key []byte) error
	// Seal turns all in-memory state into sealed runs and returns the
	// checkpoint that reproduces the current state. Writers wait only for the
	// swap of the in-memory buffer. Sealing twice with no write in between
	// creates no new run. The runs of the returned checkpoint are pinned (never
	// deleted by a merge) until Release is called with it.
	Seal() (Checkpoint, error)
	// Release unpins the runs of a checkpoint returned by Seal. Releasing a
	// checkpoint twice is a no-op.
	Release(cp Checkpoint)
	// MemoryUsage reports the bytes held by the engine's own in-memory
	// structures: index, buffers, filters and fences. Blocks in the shared
	// block cache (OpenOptions.Cache) are not counted; the cache reports them.
	MemoryUsage() int64
	// Close persists everything (reopening gives the identical state), stops
	// background work and releases resources. Methods called after Close
	// return ErrClosed.
	Close() error
}

// RunInfo describes one sealed, immutable run file.
type RunInfo struct {
	// Name is the file name inside the engine directory; see RunNamer.
	Name string `json:"name"`
	// Size is the file size in bytes.
	Size int64 `json:"size"`
	// CRC32C is the CRC-32C (Castagnoli) of the whole file.
	CRC32C uint32 `json:"crc32c"`
}

// Checkpoint is the result of Seal: the live runs and a small engine-state
// blob. Opening an engine of the same kind from it reproduces the state.
type Checkpoint struct {
	// Kind is the engine kind ("lsm", "hybridlog", "appendlog", "memonly").
	Kind string `json:"kind"`
	// Runs lists every file the state needs, in an engine-defined order.
	Runs []RunInfo `json:"runs"`
	// State is the engine's private state blob (levels, sequence numbers...).
	State []byte `json:"state"`
	// Seq identifies the seal that produced the checkpoint within one open
	// engine; Release uses it. It is not persisted.
	Seq uint64 `json:"-"`
}

// Listener receives run lifecycle events. Either field may be nil. Callbacks
// are invoked synchronously from the goroutine that sealed or retired the run
// and must not call back into the engine.
type Listener struct {
	// RunSealed is called once the run file is durable under its final name
	// (after the fsync of the file and of its directory). Merge outputs and
	// index (hint) files are runs too.
	RunSealed func(RunInfo)
	// RunRetired is called after a run stopped being live, nothing pins it any
	// more, and its file was deleted.
	RunRetired func(name string)
}

// OpenOptions are the options every engine takes besides its own parameters.
type OpenOptions struct {
	// Dir is the directory holding the engine's run files and private files.
	// It is created if missing. Required.
	Dir string
	// Checkpoint, when non-nil, is the state to open: its runs must be present
	// in Dir. When nil the engine recovers its own local state from Dir (an
	// empty Dir gives an empty store).
	Checkpoint *Checkpoint
	// Listener receives run lifecycle events. Default: none.
	Listener Listener
	// Cache is the block cache disk reads go through. Default: no cache.
	Cache *cache.Cache
	// FS is the file system. Default: OSFS.
	FS FS
	// Logger receives background events (merges, recovery). Default: discard.
	Logger *slog.Logger
}

// EnsureDefaults fills in the zero fields of o and returns it.
func (o OpenOptions) EnsureDefaults() OpenOptions {
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
