package tiered

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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
	fs         engines.FS
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

	// snapMu serializes Snapshot, Restore and Close, and guards state.
	snapMu sync.Mutex
	state  struct {
		storeID string
		kind    string
		params  engines.Params
		latest  uint64 // highest version known to exist (lastKnownLatest)
		// rollbackOf: the state was rolled back to version while latest was
		// rollbackOf; a commit may continue history while latest still is.
		rollbackOf uint64
		prevRuns   map[string]struct{} // runs of the base version
		fenced     bool
		pending    *manifest.Manifest // commit that failed ambiguously
		// pendingStale: a restore replaced the local state after pending
		// was attempted, so if pending did land it only raises latest.
		pendingStale bool
	}
	// descent is the base: the version the local state descends from and its
	// metadata. Written under snapMu (or during Open), read without it.
	descent atomic.Pointer[descent]

	// prot holds the runs of the snapshot in flight, which GC must not delete.
	prot struct {
		sync.Mutex
		inflight map[string]struct{}
	}

	// guard is the writer's side of the GC protocol (nil without a remote);
	// used under snapMu.
	guard *guard

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
	s.descent.Store(&descent{version: v, metadata: maps.Clone(md)})
}

// base returns the version the local state descends from and its metadata
// (the zero descent for a new store).
func (s *Store) base() descent {
	if d := s.descent.Load(); d != nil {
		return *d
	}
	return descent{}
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
	s := &Store{o: o, log: o.Logger, dir: o.Dir, fs: o.FS, writerID: newWriterID(), userParams: o.Params != nil}
	s.sums.m = make(map[string]engines.RunInfo)
	s.prot.inflight = make(map[string]struct{})
	created, err := createDir(s.fs, o.Dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if s.mu.eng != nil {
				_ = s.mu.eng.Close()
			}
			if created && s.mu.gen == nil {
				removeNewDir(o.Dir)
			}
			_ = s.release()
		}
	}()
	if s.lock, err = lockDir(o.Dir); err != nil {
		return nil, err
	}
	local, err := inspectDir(s.fs, o.Dir)
	if err != nil {
		return nil, fmt.Errorf("tiered: open %s: %w", o.Dir, err)
	}
	if err := local.checkForeign(); err != nil {
		return nil, err
	}
	// A restore that committed but was cut short before its cleanup, or
	// the creation of a new store cut short before its first STORE.
	if err := local.settleMarker(); err != nil {
		return nil, fmt.Errorf("tiered: open %s: clean up after an interrupted restore or creation: %w", o.Dir, err)
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
		listed := time.Now()
		if versions, err = s.scanRemote(ctx); err != nil {
			return nil, err
		}
		if len(versions) > 0 {
			s.state.latest = versions[len(versions)-1]
		}
		s.guard = newGuard(s.remote, manifest.NewID(8), s.writerID, o.LeaseTTL, listed)
	}

	switch {
	case s.remote != nil && !o.ResumeLocal:
		err = s.openFromRemote(ctx, local, versions)
	default:
		if err = local.checkOpenable(); err == nil {
			err = s.openLocalOrFresh(ctx, local)
		}
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("tiered: opened store", "dir", s.dir, "remote", s.remoteName, "engine", s.state.kind,
		"store_id", s.state.storeID, "version", s.base().version, "latest", s.state.latest, "writer", s.writerID)
	return s, nil
}

// openRemote opens o.ObjectStore or o.Remote and starts the uploader.
func (s *Store) openRemote(ctx context.Context) error {
	switch {
	case s.o.ObjectStore != nil:
		s.remote = withReadRetries(s.o.ObjectStore)
		s.remoteName = "(Options.ObjectStore)"
		if str, ok := s.o.ObjectStore.(fmt.Stringer); ok {
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
// runs of the local state and of an interrupted restore. Local state the
// remote has no version of is never discarded: with an empty remote it is
// reopened (its next snapshot becomes version 1), and a never-committed
// state or one of another store is refused while the remote has versions.
func (s *Store) openFromRemote(ctx context.Context, local *localDir, versions []uint64) error {
	if local.marker == nil {
		if err := local.checkStore(); err != nil {
			return err
		}
	}
	if len(versions) == 0 && s.o.Version == 0 {
		if local.marker != nil {
			return fmt.Errorf("tiered: open %s: %w of version %d, but remote %s holds no version now: restore from the remote it came from, or move the directory away",
				s.dir, ErrRestoreUnfinished, local.marker.Version, s.remoteName)
		}
		if local.store != nil {
			s.log.Info("tiered: remote holds no version; reopening the local state", "dir", s.dir, "remote", s.remoteName, "local_version", local.store.Version)
		}
		return s.openLocalOrFresh(ctx, local)
	}
	m, err := loadVersion(ctx, s.remote, s.o.Version)
	if err != nil {
		return fmt.Errorf("tiered: open from remote %s: %w", s.remoteName, err)
	}
	if s.o.Engine != "" && m.Engine != s.o.Engine {
		return fmt.Errorf("tiered: open: %w: remote version %d holds a %q store, Options.Engine is %q; open with Engine %q (or leave it empty)",
			ErrKindMismatch, m.Version, m.Engine, s.o.Engine, m.Engine)
	}
	if ls := local.store; ls != nil && local.marker == nil {
		switch {
		case ls.Version == 0:
			return fmt.Errorf("tiered: open %s: %w: it holds local state that was never committed, and remote %s holds versions up to %d; open with ResumeLocal to keep using it, or move it away to restore",
				s.dir, ErrDiverged, s.remoteName, versions[len(versions)-1])
		case ls.StoreID != m.StoreID:
			return fmt.Errorf("tiered: open %s: %w: its local state belongs to store %s, remote %s holds store %s; check the remote, or move the directory away to restore",
				s.dir, ErrDiverged, ls.StoreID, s.remoteName, m.StoreID)
		}
	}
	s.state.kind = m.Engine
	_, err = s.restoreLocked(ctx, local, m)
	return err
}

// openLocalOrFresh reopens the local state recorded in STORE, or starts a
// new store when the directory is new.
func (s *Store) openLocalOrFresh(ctx context.Context, local *localDir) error {
	if local.store == nil {
		return s.openFresh()
	}
	return s.openLocal(ctx, *local.store)
}

// openLocal reopens the local state recorded in STORE.
func (s *Store) openLocal(ctx context.Context, local storeFile) error {
	if s.o.Engine != "" && s.o.Engine != local.Engine {
		return fmt.Errorf("tiered: open %s: %w: the local state is a %q store, Options.Engine is %q; open with Engine %q, restore from the remote (ResumeLocal false), or use an empty directory",
			s.dir, ErrKindMismatch, local.Engine, s.o.Engine, local.Engine)
	}
	s.state.kind, s.state.storeID, s.state.rollbackOf = local.Engine, local.StoreID, local.RollbackOf
	s.setDescent(local.Version, local.Metadata)
	if err := s.setParams(local.Params); err != nil {
		return err
	}
	if s.remote != nil && local.Version != 0 {
		m, err := manifest.Load(ctx, s.remote, local.Version)
		switch {
		case err == nil:
			if m.StoreID != local.StoreID {
				return fmt.Errorf("tiered: open %s: the local state belongs to store %s, but version %d in remote %s belongs to store %s; open without ResumeLocal to restore from the remote, or use another directory",
					s.dir, local.StoreID, local.Version, s.remoteName, m.StoreID)
			}
			s.state.prevRuns = runSet(m.Runs)
			s.sums.put(m.Runs...)
		case errors.Is(err, manifest.ErrVersionNotFound):
			s.log.Warn("tiered: the version the local state descends from is not in the remote", "version", local.Version, "remote", s.remoteName)
		default:
			return fmt.Errorf("tiered: open %s: read version %d from remote %s: %w", s.dir, local.Version, s.remoteName, err)
		}
	}
	g := newGeneration(s.dir, local.Data)
	eng, err := s.openEngine(g, nil, s.state.kind, s.state.params)
	if err != nil {
		return err
	}
	s.mu.eng, s.mu.gen = eng, g
	if p := local.Pending; p != nil {
		// A commit of this state whose outcome was never recorded (the
		// process died): settled now when the remote is here, else kept.
		s.state.pending = &manifest.Manifest{Version: p.Version, CommitID: p.CommitID}
		if s.remote != nil {
			if err := s.resolvePending(ctx); err != nil {
				return fmt.Errorf("tiered: open %s: settle the commit of version %d recorded in %s: %w", s.dir, p.Version, storeFileName, err)
			}
		}
	}
	return s.persistLocked()
}

// openFresh starts an empty store in the first generation of a new
// directory.
func (s *Store) openFresh() error {
	s.state.kind = s.o.Engine
	if s.state.kind == "" {
		s.state.kind = DefaultEngine
	}
	if err := s.setParams(nil); err != nil {
		return err
	}
	s.state.storeID = manifest.NewID(8)
	g := newGeneration(s.dir, genName(1))
	// RESTORING of version 0 names the generation while the store is being
	// created: a crash before STORE leaves a directory the next open
	// recognises as new (settleMarker), since nothing was written to it.
	abandon := func() {
		_ = removeAll(s.fs, g.path)
		_ = removeFile(s.fs, s.dir, restoringFileName)
	}
	if err := writeRestoreMarker(s.fs, s.dir, restoreMarker{Staging: []string{g.name}}); err != nil {
		abandon()
		return err
	}
	eng, err := s.openEngine(g, nil, s.state.kind, s.state.params)
	if err != nil {
		abandon()
		return err
	}
	s.mu.eng, s.mu.gen = eng, g
	if err := s.persistLocked(); err != nil {
		// STORE may have landed (a failed directory sync): then the
		// generation stays and the next open finishes the creation. If
		// not, nothing names it: it goes, and the directory is new again.
		if _, rerr := engines.ReadFile(s.fs, filepath.Join(s.dir, storeFileName)); errors.Is(rerr, fs.ErrNotExist) {
			_ = eng.Close()
			s.mu.eng, s.mu.gen = nil, nil
			abandon()
		}
		return err
	}
	if err := removeFile(s.fs, s.dir, restoringFileName); err != nil {
		s.log.Warn("tiered: remove the creation marker (the next open does)", "err", err)
	}
	return nil
}

// setParams resolves the engine parameters of s.state.kind (see resolveParams).
func (s *Store) setParams(recorded map[string]string) error {
	p, err := s.resolveParams(s.state.kind, recorded)
	if err != nil {
		return fmt.Errorf("tiered: %w", err)
	}
	s.state.params = p
	return nil
}

// openEngine opens the engine on generation g, from cp (nil: its own local
// state).
func (s *Store) openEngine(g *generation, cp *engines.Checkpoint, kind string, params engines.Params) (engines.Engine, error) {
	eng, err := all.Open(kind, params, engines.OpenOptions{
		Dir:        g.path,
		FS:         s.fs,
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
	var pending *pendingCommit
	if p := s.state.pending; p != nil && !s.state.pendingStale {
		pending = &pendingCommit{Version: p.Version, CommitID: p.CommitID}
	}
	err := writeStoreFile(s.fs, s.dir, storeFile{
		Pending:    pending,
		StoreID:    s.state.storeID,
		Engine:     s.state.kind,
		Params:     s.state.params,
		Version:    s.base().version,
		RollbackOf: s.state.rollbackOf,
		Data:       s.mu.gen.name,
		WriterID:   s.writerID,
		Metadata:   s.base().metadata,
	})
	if err != nil {
		return fmt.Errorf("tiered: %w", err)
	}
	return nil
}

// Metadata returns the user metadata of the version the state came from (a
// copy; nil for a new store).
func (s *Store) Metadata() map[string]string { return maps.Clone(s.base().metadata) }

// Version returns the version the current state descends from: the one
// restored at Open or by Restore, or the last one committed by Snapshot (0 =
// none).
func (s *Store) Version() uint64 { return s.base().version }

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
	if s.guard != nil {
		ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
		if err := s.guard.release(ctx); err != nil {
			// Harmless: GC ignores the lease once it expires.
			s.log.Warn("tiered: delete lease", "remote", s.remoteName, "err", err)
		}
		cancel()
	}
	errs = append(errs, s.release())
	s.log.Info("tiered: closed store", "dir", s.dir, "version", s.base().version)
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
