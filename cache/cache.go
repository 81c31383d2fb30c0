// Package cache is the byte-budgeted block cache that engine disk reads go
// through, built on github.com/dgraph-io/ristretto/v2.
//
// # Basics
//
// A block is identified by a file id and a byte offset. File ids come from
// NewFileID and are unique within the process; because run files are
// immutable and their names never reused, a cached block can never be stale:
// blocks of deleted files simply age out. The budget counts the bytes of the
// cached blocks plus a small per-entry overhead.
//
// # Concurrency
//
// All methods are safe for concurrent use. A nil *Cache is valid and caches
// nothing, so engines need no special case.
package cache

import (
	"fmt"
	"sync/atomic"

	"github.com/dgraph-io/ristretto/v2"
)

// entryOverhead approximates ristretto's per-item bookkeeping, charged
// against the budget together with the block bytes.
const entryOverhead = 64

// MaxOffset is the largest offset that can be cached (1 TiB); blocks beyond
// are simply not cached.
const MaxOffset = 1<<40 - 1

var fileIDs atomic.Uint64

// NewFileID returns a process-unique id for an open file, for cache keys.
func NewFileID() uint64 { return fileIDs.Add(1) }

// Cache is a byte-budgeted block cache.
type Cache struct {
	c      *ristretto.Cache[uint64, []byte]
	budget int64
	hits   atomic.Uint64
	misses atomic.Uint64
}

// Stats is a point-in-time view of the cache's counters.
type Stats struct {
	Hits   uint64 // lookups that found a block
	Misses uint64 // lookups that did not
	Bytes  int64  // bytes currently charged against the budget
	Budget int64  // the configured budget
}

// New returns a cache holding at most budget bytes. budget must be positive.
func New(budget int64) (*Cache, error) {
	if budget <= 0 {
		return nil, fmt.Errorf("cache: budget must be positive, got %d bytes", budget)
	}
	// ristretto recommends ~10 counters per expected item; assume 4 KiB blocks.
	counters := budget / 4096 * 10
	if counters < 1000 {
		counters = 1000
	}
	rc, err := ristretto.NewCache(&ristretto.Config[uint64, []byte]{
		NumCounters:        counters,
		MaxCost:            budget,
		BufferItems:        64,
		IgnoreInternalCost: true,
		Metrics:            true,
		KeyToHash: func(k uint64) (uint64, uint64) {
			// splitmix64 for the bucket hash; the key itself detects conflicts.
			z := k + 0x9e3779b97f4a7c15
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
			z = (z ^ (z >> 27)) * 0x94d049bb133111eb
			return z ^ (z >> 31), k
		},
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return &Cache{c: rc, budget: budget}, nil
}

func key(file uint64, off int64) (uint64, bool) {
	if off < 0 || off > MaxOffset || file >= 1<<24 {
		return 0, false
	}
	return file<<40 | uint64(off), true
}

// Get returns the block cached for (file, off). The returned slice must not be
// modified.
func (c *Cache) Get(file uint64, off int64) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	k, ok := key(file, off)
	if !ok {
		c.misses.Add(1)
		return nil, false
	}
	b, ok := c.c.Get(k)
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return b, ok
}

// Set caches block for (file, off). The cache keeps block; the caller must not
// modify it afterwards. The cache may drop the block (admission policy).
func (c *Cache) Set(file uint64, off int64, block []byte) {
	if c == nil {
		return
	}
	k, ok := key(file, off)
	if !ok {
		return
	}
	c.c.Set(k, block, int64(len(block))+entryOverhead)
}

// Wait blocks until buffered Sets are applied; tests use it.
func (c *Cache) Wait() {
	if c != nil {
		c.c.Wait()
	}
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	if c == nil {
		return Stats{}
	}
	m := c.c.Metrics
	return Stats{
		Hits:   c.hits.Load(),
		Misses: c.misses.Load(),
		Bytes:  int64(m.CostAdded() - m.CostEvicted()),
		Budget: c.budget,
	}
}

// Close stops the cache's goroutines and drops every block.
func (c *Cache) Close() {
	if c != nil {
		c.c.Close()
	}
}
