// Package kv adapts every store the benchmark suite measures to one small
// interface: tierkv's four engines, Pebble v2 with its WAL off (the fair
// setting: a snapshot-based backend needs no per-write log), Badger v4 without
// synchronous writes, and a Go map updated in place (the in-memory limit).
package kv

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	badger "github.com/dgraph-io/badger/v4"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/engines/all"
)

// Store is a point key-value store under benchmark.
type Store interface {
	Get(key []byte) ([]byte, bool, error)
	Set(key, value []byte) error
	// MemoryUsage reports bytes held in memory, or -1 when unknown.
	MemoryUsage() int64
	Close() error
}

// Names of the peers besides tierkv's engines.
const (
	Pebble = "pebble"
	Badger = "badger"
	GoMap  = "gomap"
)

// Open opens the store called name (an engine kind or a peer) in dir. params
// are engine parameters (ignored by peers).
func Open(name, dir string, params engines.Params) (Store, error) {
	switch name {
	case Pebble:
		db, err := pebble.Open(dir, &pebble.Options{DisableWAL: true, Logger: quietLogger{}})
		if err != nil {
			return nil, fmt.Errorf("open pebble: %w", err)
		}
		return pebbleStore{db}, nil
	case Badger:
		opts := badger.DefaultOptions(dir).WithSyncWrites(false).WithLogger(nil)
		db, err := badger.Open(opts)
		if err != nil {
			return nil, fmt.Errorf("open badger: %w", err)
		}
		return badgerStore{db}, nil
	case GoMap:
		return &mapStore{m: map[string][]byte{}}, nil
	}
	e, err := all.Open(name, params, engines.OpenOptions{Dir: dir})
	if err != nil {
		return nil, err
	}
	return engineStore{e}, nil
}

type engineStore struct{ engines.Engine }

type pebbleStore struct{ db *pebble.DB }

func (p pebbleStore) Get(k []byte) ([]byte, bool, error) {
	v, c, err := p.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	return out, true, c.Close()
}
func (p pebbleStore) Set(k, v []byte) error { return p.db.Set(k, v, pebble.NoSync) }
func (p pebbleStore) MemoryUsage() int64 {
	m := p.db.Metrics()
	return int64(m.MemTable.Size) + m.BlockCache.Size
}
func (p pebbleStore) Close() error { return p.db.Close() }

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

type badgerStore struct{ db *badger.DB }

func (b badgerStore) Get(k []byte) (v []byte, found bool, err error) {
	err = b.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(k)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		v, err = it.ValueCopy(nil)
		return err
	})
	return v, found, err
}
func (b badgerStore) Set(k, v []byte) error {
	return b.db.Update(func(txn *badger.Txn) error { return txn.Set(k, v) })
}
func (b badgerStore) MemoryUsage() int64 { return -1 }
func (b badgerStore) Close() error       { return b.db.Close() }

// mapStore is the in-memory limit: a Go map whose values are updated in place
// when the length matches, so that an update allocates nothing.
type mapStore struct {
	mu    sync.RWMutex
	m     map[string][]byte
	bytes int64
}

func (s *mapStore) Get(k []byte) ([]byte, bool, error) {
	s.mu.RLock()
	v, ok := s.m[string(k)]
	var out []byte
	if ok {
		out = append([]byte(nil), v...)
	}
	s.mu.RUnlock()
	return out, ok, nil
}

func (s *mapStore) Set(k, v []byte) error {
	s.mu.Lock()
	if old, ok := s.m[string(k)]; ok && len(old) == len(v) {
		copy(old, v)
	} else {
		s.m[string(k)] = append([]byte(nil), v...)
		s.bytes += int64(len(k) + len(v) + 48)
	}
	s.mu.Unlock()
	return nil
}

func (s *mapStore) MemoryUsage() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.bytes
}

func (s *mapStore) Close() error { return nil }
