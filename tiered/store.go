package tiered

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tierkv/tierkv/cache"
	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/engines/all"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/uploader"
)

// remoteTimeout bounds the remote calls Open makes before any download (the
// listing of runs and manifests), so that an unreachable endpoint fails Open
// in bounded time with an error naming it.
const remoteTimeout = 30 * time.Second

// Store is a tiered key-value store: an engine over a local directory whose
// runs are uploaded to a remote, with versioned snapshots. See the package
// documentation. All methods are safe for concurrent use.
type Store struct {
	o          Options
	log        *slog.Logger
	dir        string
	remote     objstore.Store // nil: no remote
	remoteName string         // redacted, for errors and logs
	ownRemote  bool           // remote was opened from o.Remote; Close closes it
	up         *uploader.Uploader
	cache      *cache.Cache
	met        *metrics
	lock       *dirLock
	writerID   string
	userParams bool // o.Params was given: it overrides recorded parameters
	sums       runSums

	// mu guards the engine pointer against a restore's switch; Get, Set and
	// Delete hold it shared.
	mu struct {
		sync.RWMutex
		eng    engines.Engine
		gen    *generation
		closed bool
	}

	// stale are generation directories left by a crashed restore, whose
	// verified runs a restore during Open reuses; removed at the end of Open.
	stale []string

	// snapMu serializes Snapshot, Restore and Close, and guards st.
	snapMu sync.Mutex
	st     struct {
		storeID  string
		kind     string
		params   engines.Params
		version  uint64              // version the local state descends from
		latest   uint64              // highest version known to exist (lastKnownLatest)
		metadata map[string]string   // metadata of version
		prevRuns map[string]struct{} // runs of version
		fenced   bool
		pending  *manifest.Manifest // commit that failed ambiguously
		// pendingStale: a restore replaced the local state after pending
		// was attempted, so if pending did land it only raises latest.
		pendingStale bool
	}
	descent atomic.Pointer[descent] // st.version and st.metadata, readable without snapMu

	// prot holds the runs of the snapshot in flight, which GC must not delete.
	prot struct {
		sync.Mutex
		inflight map[string]struct{}
	}

	wg sync.WaitGroup // SnapshotAsync goroutines
}

// descent is the version the local state descends from and its metadata.
type descent struct {
	version  uint64
	metadata map[string]string
}

// setDescent records that the local state descends from version v with
// metadata md (snapMu held, or during Open).
func (s *Store) setDescent(v uint64, md map[string]string) {
	md = maps.Clone(md)
	s.st.version, s.st.metadata = v, md
	s.descent.Store(&descent{version: v, metadata: md})
}

// generation is one engine directory (see the package doc).
type generation struct {
	name    string
	path    string
	discard atomic.Bool // its engine's state is being discarded: do not upload its runs
}

func newGeneration(dir, name string) *generation {
	return &generation{name: name, path: filepath.Join(dir, name)}
}

// Open opens the store in o.Dir; see the package documentation for what it
// does with and without a remote.
func Open(ctx context.Context, o Options) (*Store, error) { return open(ctx, o) }

func open(ctx context.Context, o Options) (_ *Store, err error) {
	o = o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("tiered: create %s: %w", o.Dir, err)
	}
	s := &Store{o: o, log: o.Logger, dir: o.Dir, writerID: newWriterID(), userParams: o.Params != nil}
	s.sums.m = make(map[string]engines.RunInfo)
	s.prot.inflight = make(map[string]struct{})
	defer func() {
		if err != nil {
			if s.mu.eng != nil {
				_ = s.mu.eng.Close()
			}
			_ = s.release()
		}
	}()
	if s.lock, err = lockDir(o.Dir); err != nil {
		return nil, err
	}
	local, hasLocal, err := readStoreFile(o.Dir)
	if err != nil {
		return nil, err
	}
	keep := ""
	if hasLocal {
		keep = local.Data
	}
	// Generations STORE does not name were left by a restore that crashed:
	// a restore during Open reuses their verified runs; then they go.
	if s.stale, err = staleGenerations(o.Dir, keep); err != nil {
		return nil, err
	}
	if s.cache, err = cache.New(o.CacheBytes); err != nil {
		return nil, fmt.Errorf("tiered: %w", err)
	}
	if err := s.openRemote(ctx); err != nil {
		return nil, err
	}
	if s.met, err = newMetrics(o.Registerer, s); err != nil {
		return nil, err
	}

	var versions []uint64
	if s.remote != nil {
		if versions, err = s.scanRemote(ctx); err != nil {
			return nil, err
		}
		if len(versions) > 0 {
			s.st.latest = versions[len(versions)-1]
		}
	}

	switch {
	case s.remote != nil && !o.ResumeLocal:
		err = s.openFromRemote(ctx, local, hasLocal, versions)
	case hasLocal:
		err = s.openLocal(ctx, local)
	default:
		err = s.openFresh(ctx)
	}
	if err != nil {
		return nil, err
	}
	removeDirs(s.stale)
	s.stale = nil
	s.log.Info("tiered: opened store", "dir", s.dir, "remote", s.remoteName, "engine", s.st.kind,
		"store_id", s.st.storeID, "version", s.st.version, "latest", s.st.latest, "writer", s.writerID)
	return s, nil
}

// openRemote opens o.Store or o.Remote and starts the uploader.
func (s *Store) openRemote(ctx context.Context) error {
	switch {
	case s.o.Store != nil:
		s.remote = withReadRetries(s.o.Store)
		s.remoteName = "(Options.Store)"
		if str, ok := s.o.Store.(fmt.Stringer); ok {
			s.remoteName = objstore.Redact(str.String())
		}
	case s.o.Remote != "":
		s.remoteName = objstore.Redact(s.o.Remote)
		st, err := objstore.Open(ctx, s.o.Remote)
		if err != nil {
			return fmt.Errorf("tiered: open remote %s: %w", s.remoteName, err)
		}
		s.remote, s.ownRemote = withReadRetries(st), true
	default:
		return nil
	}
	up, err := uploader.New(s.remote, uploader.Options{
		Concurrency: s.o.UploadConcurrency,
		Logger:      s.log,
		Registerer:  s.o.Registerer,
	})
	if err != nil {
		return fmt.Errorf("tiered: start uploader: %w", err)
	}
	s.up = up
	return nil
}

// scanRemote lists the runs the remote holds (so that they are never uploaded
// again) and the versions, within remoteTimeout.
func (s *Store) scanRemote(ctx context.Context) ([]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	objs, err := s.remote.List(ctx, manifest.RunKey(""))
	if err != nil {
		return nil, fmt.Errorf("tiered: list runs in remote %s: %w", s.remoteName, err)
	}
	present := make([]engines.RunInfo, 0, len(objs))
	for _, obj := range objs {
		name := strings.TrimPrefix(obj.Key, manifest.RunKey(""))
		if manifest.CheckRunName(name) == nil {
			present = append(present, engines.RunInfo{Name: name, Size: obj.Size})
		}
	}
	s.up.MarkPresent(present...)
	versions, err := manifest.ListVersions(ctx, s.remote)
	if err != nil {
		return nil, fmt.Errorf("tiered: list versions in remote %s: %w", s.remoteName, err)
	}
	return versions, nil
}

// openFromRemote restores o.Version (or the latest) at Open, reusing the
// runs of the local state; with an empty remote it starts a fresh store.
func (s *Store) openFromRemote(ctx context.Context, local storeFile, hasLocal bool, versions []uint64) error {
	if hasLocal {
		s.mu.gen = newGeneration(s.dir, local.Data) // its runs may be reused; it is not opened
	}
	if len(versions) == 0 && s.o.Version == 0 {
		if hasLocal && local.Version != 0 {
			s.log.Warn("tiered: remote holds no version; discarding local state", "dir", s.dir, "local_version", local.Version)
		}
		return s.openFresh(ctx)
	}
	m, err := loadVersion(ctx, s.remote, s.o.Version)
	if err != nil {
		return fmt.Errorf("tiered: open from remote %s: %w", s.remoteName, err)
	}
	if s.o.Engine != "" && m.Engine != s.o.Engine {
		return fmt.Errorf("tiered: open: %w: remote version %d holds a %q store, Options.Engine is %q; open with Engine %q (or leave it empty)",
			ErrKindMismatch, m.Version, m.Engine, s.o.Engine, m.Engine)
	}
	s.st.kind = m.Engine
	_, err = s.restoreLocked(ctx, m)
	return err
}

// openLocal reopens the local state recorded in STORE.
func (s *Store) openLocal(ctx context.Context, local storeFile) error {
	if s.o.Engine != "" && s.o.Engine != local.Engine {
		return fmt.Errorf("tiered: open %s: %w: the local state is a %q store, Options.Engine is %q; open with Engine %q, restore from the remote (ResumeLocal false), or use an empty directory",
			s.dir, ErrKindMismatch, local.Engine, s.o.Engine, local.Engine)
	}
	s.st.kind, s.st.storeID = local.Engine, local.StoreID
	s.setDescent(local.Version, local.Metadata)
	if err := s.setParams(local.Params); err != nil {
		return err
	}
	if s.remote != nil && local.Version == 0 && s.st.latest != 0 {
		// A local store that never committed joins the remote's history.
		m, err := manifest.Load(ctx, s.remote, s.st.latest)
		if err != nil {
			return fmt.Errorf("tiered: open: read latest version from remote %s: %w", s.remoteName, err)
		}
		s.st.storeID = m.StoreID
	}
	if s.remote != nil && local.Version != 0 {
		m, err := manifest.Load(ctx, s.remote, local.Version)
		switch {
		case err == nil:
			if m.StoreID != local.StoreID {
				return fmt.Errorf("tiered: open %s: the local state belongs to store %s, but version %d in remote %s belongs to store %s; open without ResumeLocal to restore from the remote, or use another directory",
					s.dir, local.StoreID, local.Version, s.remoteName, m.StoreID)
			}
			s.st.prevRuns = runSet(m.Runs)
			s.sums.put(m.Runs...)
		case errors.Is(err, manifest.ErrVersionNotFound):
			s.log.Warn("tiered: the version the local state descends from is not in the remote", "version", local.Version, "remote", s.remoteName)
		default:
			return fmt.Errorf("tiered: open %s: read version %d from remote %s: %w", s.dir, local.Version, s.remoteName, err)
		}
	}
	g := newGeneration(s.dir, local.Data)
	eng, err := s.openEngine(g, nil, s.st.kind, s.st.params)
	if err != nil {
		return err
	}
	s.mu.eng, s.mu.gen = eng, g
	return s.persistLocked()
}

// openFresh starts an empty store in a new generation. The store id is the
// remote's (from its latest manifest) when it has versions.
func (s *Store) openFresh(ctx context.Context) error {
	s.st.kind = s.o.Engine
	if s.st.kind == "" {
		s.st.kind = DefaultEngine
	}
	if err := s.setParams(nil); err != nil {
		return err
	}
	s.st.storeID = manifest.NewID(8)
	if s.remote != nil && s.st.latest != 0 {
		m, err := manifest.Load(ctx, s.remote, s.st.latest)
		if err != nil {
			return fmt.Errorf("tiered: open: read latest version from remote %s: %w", s.remoteName, err)
		}
		s.st.storeID = m.StoreID
	}
	name, err := nextGen(s.dir)
	if err != nil {
		return err
	}
	g := newGeneration(s.dir, name)
	eng, err := s.openEngine(g, nil, s.st.kind, s.st.params)
	if err != nil {
		_ = os.RemoveAll(g.path)
		return err
	}
	old := s.mu.gen
	s.mu.eng, s.mu.gen = eng, g
	if err := s.persistLocked(); err != nil {
		return err
	}
	if old != nil {
		if err := os.RemoveAll(old.path); err != nil {
			s.log.Warn("tiered: remove old local state", "dir", old.path, "err", err)
		}
	}
	return nil
}

// setParams resolves the engine parameters of s.st.kind (see resolveParams).
func (s *Store) setParams(recorded map[string]string) error {
	p, err := s.resolveParams(s.st.kind, recorded)
	if err != nil {
		return fmt.Errorf("tiered: %w", err)
	}
	s.st.params = p
	return nil
}

// openEngine opens the engine on generation g, from cp (nil: its own local
// state).
func (s *Store) openEngine(g *generation, cp *engines.Checkpoint, kind string, params engines.Params) (engines.Engine, error) {
	eng, err := all.Open(kind, params, engines.OpenOptions{
		Dir:        g.path,
		Checkpoint: cp,
		Listener:   s.listener(g),
		Cache:      s.cache,
		Logger:     s.log.With("engine", kind),
	})
	if err != nil {
		return nil, fmt.Errorf("tiered: open %s engine in %s: %w", kind, g.path, err)
	}
	return eng, nil
}

// listener uploads every run sealed in generation g (unless g is being
// discarded) and remembers its checksum.
func (s *Store) listener(g *generation) engines.Listener {
	return engines.Listener{
		RunSealed: func(ri engines.RunInfo) {
			if g.discard.Load() {
				return
			}
			s.sums.put(ri)
			if s.up != nil {
				s.up.Enqueue(ri, filepath.Join(g.path, ri.Name))
			}
		},
		RunRetired: func(name string) {
			if !g.discard.Load() {
				s.sums.del(name)
			}
		},
	}
}

// persistLocked writes STORE from the current state (snapMu held, or during
// Open).
func (s *Store) persistLocked() error {
	return writeStoreFile(s.dir, storeFile{
		StoreID:  s.st.storeID,
		Engine:   s.st.kind,
		Params:   s.st.params,
		Version:  s.st.version,
		Data:     s.mu.gen.name,
		WriterID: s.writerID,
		Metadata: s.st.metadata,
	})
}

// Metadata returns the user metadata of the version the state came from (a
// copy; nil for a new store).
func (s *Store) Metadata() map[string]string {
	if d := s.descent.Load(); d != nil {
		return maps.Clone(d.metadata)
	}
	return nil
}

// Version returns the version the current state descends from: the one
// restored at Open or by Restore, or the last one committed by Snapshot (0 =
// none).
func (s *Store) Version() uint64 {
	if d := s.descent.Load(); d != nil {
		return d.version
	}
	return 0
}

// engine returns the current engine with mu held shared; the caller must
// call s.mu.RUnlock.
func (s *Store) engine() (engines.Engine, error) {
	s.mu.RLock()
	if s.mu.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	return s.mu.eng, nil
}

// Get returns the value of key; found is false when it is absent.
func (s *Store) Get(key []byte) ([]byte, bool, error) {
	eng, err := s.engine()
	if err != nil {
		return nil, false, err
	}
	defer s.mu.RUnlock()
	return eng.Get(key)
}

// Set stores value under key.
func (s *Store) Set(key, value []byte) error {
	eng, err := s.engine()
	if err != nil {
		return err
	}
	defer s.mu.RUnlock()
	return eng.Set(key, value)
}

// Delete removes key.
func (s *Store) Delete(key []byte) error {
	eng, err := s.engine()
	if err != nil {
		return err
	}
	defer s.mu.RUnlock()
	return eng.Delete(key)
}

// MemoryUsage returns the bytes held in memory: the engine's structures plus
// the block cache.
func (s *Store) MemoryUsage() int64 { return s.engineMemory() + s.cache.Stats().Bytes }

func (s *Store) engineMemory() int64 {
	eng, err := s.engine()
	if err != nil {
		return 0
	}
	defer s.mu.RUnlock()
	return eng.MemoryUsage()
}

// Close waits for the snapshots started before it, closes the engine (which
// persists its state locally), stops the uploader and releases the
// directory. It does not take a snapshot: runs sealed since the last one and
// not yet uploaded stay local, and the next Snapshot (of this directory with
// ResumeLocal) uploads them. Later calls return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.mu.closed = true
	s.mu.Unlock()
	s.wg.Wait()
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	var errs []error
	if s.mu.eng != nil {
		if err := s.mu.eng.Close(); err != nil {
			errs = append(errs, fmt.Errorf("tiered: close engine: %w", err))
		}
	}
	if err := s.persistLocked(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, s.release())
	s.log.Info("tiered: closed store", "dir", s.dir, "version", s.st.version)
	return errors.Join(errs...)
}

// release frees everything but the engine: uploader, metrics, cache, remote,
// lock.
func (s *Store) release() error {
	var errs []error
	if s.up != nil {
		s.up.Close()
		s.up = nil
	}
	s.met.unregister()
	s.cache.Close()
	if s.ownRemote && s.remote != nil {
		if err := s.remote.Close(); err != nil {
			errs = append(errs, fmt.Errorf("tiered: close remote %s: %w", s.remoteName, err))
		}
	}
	s.lock.unlock()
	return errors.Join(errs...)
}

// runSums caches the size and CRC-32C of local run files by name, learnt
// when runs are sealed or downloaded, so that planning a restore does not
// re-read files. Names are never reused and runs never change, so an entry
// stays true while its file exists.
type runSums struct {
	mu sync.Mutex
	m  map[string]engines.RunInfo
}

func (c *runSums) get(name string) (engines.RunInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ri, ok := c.m[name]
	return ri, ok
}

func (c *runSums) put(ris ...engines.RunInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]engines.RunInfo)
	}
	for _, ri := range ris {
		c.m[ri.Name] = ri
	}
}

func (c *runSums) del(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, name)
}

// runSet returns the names of runs.
func runSet(runs []engines.RunInfo) map[string]struct{} {
	set := make(map[string]struct{}, len(runs))
	for _, r := range runs {
		set[r.Name] = struct{}{}
	}
	return set
}

// newWriterID identifies this process: host/pid/nonce.
func newWriterID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), manifest.NewID(4))
}
