package tiered

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
)

// snapshotConfig holds the per-call options of Snapshot.
type snapshotConfig struct {
	metadata map[string]string
}

// SnapshotOption is a per-call option of Snapshot and SnapshotAsync.
type SnapshotOption func(*snapshotConfig)

// WithMetadata attaches user metadata (e.g. source offsets) to the snapshot;
// it is committed atomically with the state and returned by Store.Metadata
// after a restore of that version. The map is copied.
func WithMetadata(md map[string]string) SnapshotOption {
	md = maps.Clone(md)
	return func(c *snapshotConfig) { c.metadata = md }
}

// SnapshotResult reports a committed snapshot.
type SnapshotResult struct {
	// Version is the committed version; Parent the version the state
	// descended from (0 = none).
	Version, Parent uint64
	// Runs is the number of runs of the version; NewRuns those its parent
	// did not have (uploaded since the parent, in the background or by this
	// snapshot).
	Runs, NewRuns int
	// BytesUploaded is the size of the new runs; TotalBytes of all runs.
	BytesUploaded, TotalBytes int64
	// Duration is the wall time from seal to commit.
	Duration time.Duration
}

// Snapshot seals the engine (writers continue), makes sure every run of the
// checkpoint is durable in the remote, then commits manifest latest+1 with
// create-if-absent. It returns ErrFenced if another writer committed that
// version, and from then on refuses every commit with ErrFenced. Snapshots
// are serialized. ErrNoRemote without a remote.
func (s *Store) Snapshot(ctx context.Context, opts ...SnapshotOption) (SnapshotResult, error) {
	return s.snapshot(ctx, true, opts)
}

// snapshot is Snapshot; SnapshotAsync passes checkClosed false because Close
// waits for the snapshots started before it.
func (s *Store) snapshot(ctx context.Context, checkClosed bool, opts []SnapshotOption) (SnapshotResult, error) {
	var cfg snapshotConfig
	for _, o := range opts {
		o(&cfg)
	}
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if checkClosed {
		if err := s.checkOpen(); err != nil {
			return SnapshotResult{}, err
		}
	}
	if s.remote == nil {
		return SnapshotResult{}, fmt.Errorf("tiered: snapshot: %w", ErrNoRemote)
	}
	start := time.Now()
	res, err := s.snapshotLocked(ctx, cfg)
	switch {
	case errors.Is(err, ErrFenced):
		s.met.snapshots.WithLabelValues("fenced").Inc()
		s.log.Error("tiered: snapshot fenced: another writer owns the remote; no further commits", "remote", s.remoteName, "err", err)
		return SnapshotResult{}, err
	case err != nil:
		s.met.snapshots.WithLabelValues("error").Inc()
		s.log.Error("tiered: snapshot failed", "err", err)
		return SnapshotResult{}, err
	}
	res.Duration = time.Since(start)
	s.met.snapshots.WithLabelValues("ok").Inc()
	s.met.snapDuration.Observe(res.Duration.Seconds())
	s.met.snapBytes.Add(float64(res.BytesUploaded))
	s.log.Info("tiered: snapshot committed", "version", res.Version, "parent", res.Parent, "runs", res.Runs,
		"new_runs", res.NewRuns, "new_bytes", res.BytesUploaded, "total_bytes", res.TotalBytes, "duration", res.Duration)
	return res, nil
}

func (s *Store) snapshotLocked(ctx context.Context, cfg snapshotConfig) (SnapshotResult, error) {
	if s.state.fenced {
		return SnapshotResult{}, fmt.Errorf("tiered: snapshot: %w: an earlier commit lost; open a new store to take over", ErrFenced)
	}
	if err := s.resolvePending(ctx); err != nil {
		return SnapshotResult{}, err
	}
	if err := s.checkDescent(); err != nil {
		return SnapshotResult{}, err
	}
	next := s.state.latest + 1
	eng, gen := s.mu.eng, s.mu.gen // stable: only Restore (holding snapMu) changes them
	cp, err := eng.Seal()
	if err != nil {
		return SnapshotResult{}, fmt.Errorf("tiered: snapshot: seal: %w", err)
	}
	defer eng.Release(cp)
	s.sums.put(cp.Runs...)
	s.protect(cp.Runs)
	defer s.unprotect()

	names := make([]string, len(cp.Runs))
	runs := make([]engines.RunInfo, len(cp.Runs))
	copy(runs, cp.Runs)
	var stats manifest.Stats
	for i, r := range cp.Runs {
		names[i] = r.Name
		if !s.up.Present(r.Name) {
			// Sealed before a restart, or an upload that failed: (re)queue.
			s.up.Enqueue(r, filepath.Join(gen.path, r.Name))
		}
		if _, ok := s.state.prevRuns[r.Name]; !ok {
			stats.NewRuns++
			stats.NewBytes += r.Size
		}
	}
	if err := s.up.Wait(ctx, names); err != nil {
		return SnapshotResult{}, fmt.Errorf("tiered: snapshot: upload runs to remote %s: %w", s.remoteName, err)
	}
	if err := s.secureRuns(ctx, cp.Runs, gen); err != nil {
		return SnapshotResult{}, fmt.Errorf("tiered: snapshot: %w", err)
	}
	m := &manifest.Manifest{
		StoreID:     s.state.storeID,
		Version:     next,
		Parent:      s.base().version,
		WriterID:    s.writerID,
		Created:     time.Now().UTC(),
		Engine:      s.state.kind,
		Params:      s.state.params,
		EngineState: cp.State,
		Runs:        runs,
		Metadata:    cfg.metadata,
		Stats:       stats,
	}
	// STORE records the commit before it is attempted, so that a process
	// that dies before it records the outcome settles it at the next Open
	// (otherwise the directory would reopen as the parent, diverged from its
	// own commit).
	m.CommitID = manifest.NewID(8)
	s.state.pending, s.state.pendingStale = m, false
	if err := s.persistLocked(); err != nil {
		s.state.pending = nil
		return SnapshotResult{}, fmt.Errorf("tiered: snapshot: record the commit of version %d in %s first: %w", next, storeFileName, err)
	}
	// Transient failures are retried with the same manifest (same commit
	// id): Commit recognises our own manifest if an attempt did land. The
	// version is never re-chosen.
	err = objstore.Retry(ctx, retryOptions, func(ctx context.Context) error {
		return manifest.Commit(ctx, s.remote, m)
	})
	if err != nil {
		if errors.Is(err, manifest.ErrFenced) {
			s.state.fenced = true
			s.state.pending = nil
			if perr := s.persistLocked(); perr != nil {
				s.log.Warn("tiered: clear the lost commit in STORE (the next open settles it)", "err", perr)
			}
			return SnapshotResult{}, fmt.Errorf("tiered: snapshot: commit version %d: %w", next, err)
		}
		// Ambiguous: the manifest may exist. The next snapshot (or Open)
		// checks.
		return SnapshotResult{}, fmt.Errorf("tiered: snapshot: commit version %d to remote %s: %w", next, s.remoteName, err)
	}
	res := SnapshotResult{Version: m.Version, Parent: m.Parent}
	if err := s.committed(m); err != nil {
		return res, err
	}
	return SnapshotResult{
		Version: m.Version, Parent: m.Parent,
		Runs: len(m.Runs), NewRuns: m.Stats.NewRuns,
		BytesUploaded: m.Stats.NewBytes, TotalBytes: m.Stats.TotalBytes,
	}, nil
}

// checkDescent refuses a commit whose state does not descend from the
// remote's latest version (ErrDiverged): the base must be latest, or the
// state was rolled back deliberately while latest was what it still is.
func (s *Store) checkDescent() error {
	base, latest := s.base().version, s.state.latest
	switch {
	case base == latest:
		return nil
	case s.state.rollbackOf != 0 && s.state.rollbackOf == latest:
		return nil
	case latest == 0:
		return fmt.Errorf("tiered: snapshot: %w: remote %s holds none of this store's versions (the local state descends from version %d of store %s); check the remote, or restore into a new directory",
			ErrDiverged, s.remoteName, base, s.state.storeID)
	case base == 0:
		return fmt.Errorf("tiered: snapshot: %w: the local state descends from no version, but remote %s holds versions up to %d; restore the latest first (tierkv restore, or Open without ResumeLocal) and write there",
			ErrDiverged, s.remoteName, latest)
	case s.state.rollbackOf != 0:
		return fmt.Errorf("tiered: snapshot: %w: the local state was rolled back to version %d while the latest was %d, and the latest is now %d (another writer committed since); restore again",
			ErrDiverged, base, s.state.rollbackOf, latest)
	default:
		return fmt.Errorf("tiered: snapshot: %w: the local state descends from version %d, but the remote's latest is %d (another writer committed since); restore the latest (tierkv restore, or Open without ResumeLocal), or roll back to %d deliberately with Restore",
			ErrDiverged, base, latest, base)
	}
}

// secureRuns makes sure every run of the checkpoint is in the remote and
// stays there until the commit: the lease names them, and runs that a GC in
// another process may have deleted since the last check are uploaded again
// from the local files (see "Writers and GC" in the package doc).
func (s *Store) secureRuns(ctx context.Context, runs []engines.RunInfo, gen *generation) error {
	names := make([]string, len(runs))
	byName := make(map[string]engines.RunInfo, len(runs))
	for i, r := range runs {
		names[i] = r.Name
		byName[r.Name] = r
	}
	slices.Sort(names)
	s.guard.storeID = s.state.storeID
	for attempt := 1; ; attempt++ {
		if err := s.guard.cover(ctx, names); err != nil {
			return err
		}
		lost, err := s.guard.lost(ctx, names)
		if err != nil {
			return err
		}
		// Every lost run is uploaded again when a checkpoint names it: now
		// for this one, at a later snapshot for the others.
		s.up.Forget(lost...)
		var suspects []string
		for _, name := range lost {
			if _, ok := byName[name]; ok {
				suspects = append(suspects, name)
			}
		}
		if len(suspects) > 0 {
			s.log.Info("tiered: uploading again runs a gc may have deleted", "runs", len(suspects))
			for _, name := range suspects {
				s.up.Enqueue(byName[name], filepath.Join(gen.path, name))
			}
			if err := s.up.Wait(ctx, suspects); err != nil {
				return fmt.Errorf("upload again runs a gc deleted: %w", err)
			}
		}
		if s.guard.fresh() {
			return nil
		}
		if attempt == 3 {
			return fmt.Errorf("lease %s keeps lapsing before the commit (ttl %s); check the clock and the remote's latency", s.guard.key, s.o.LeaseTTL)
		}
	}
}

// committed records that m is now the version the local state descends
// from. If STORE cannot be rewritten, it still names m as the commit in
// flight, which the next Open settles; the error says so.
func (s *Store) committed(m *manifest.Manifest) error {
	s.state.rollbackOf = 0
	s.state.latest = m.Version
	s.state.prevRuns = runSet(m.Runs)
	s.state.pending = nil
	s.setDescent(m.Version, m.Metadata)
	if err := s.persistLocked(); err != nil {
		return fmt.Errorf("tiered: snapshot: version %d is committed, but recording it in %s failed (the next open settles it from the remote): %w", m.Version, storeFileName, err)
	}
	return nil
}

// resolvePending settles a commit that failed ambiguously: if the manifest
// exists and is ours it was committed; if it exists and is not, we are
// fenced; if it does not exist, nothing happened.
func (s *Store) resolvePending(ctx context.Context) error {
	p := s.state.pending
	if p == nil {
		return nil
	}
	got, err := manifest.Load(ctx, s.remote, p.Version)
	switch {
	case err == nil && got.CommitID == p.CommitID && s.state.pendingStale:
		// It landed, but a restore has replaced the state it described since:
		// the version exists (so the next one is above it) while the local
		// state, its parent and metadata stay those of the restored version.
		s.log.Info("tiered: an earlier ambiguous commit did succeed; the state has been restored since", "version", p.Version, "state_version", s.base().version)
		s.state.latest = max(s.state.latest, got.Version)
		if s.base().version < s.state.latest {
			// The restore was a deliberate rollback, taken before this
			// store knew its own commit had landed: against that version.
			s.state.rollbackOf = s.state.latest
		}
		s.state.pending = nil
	case err == nil && got.CommitID == p.CommitID:
		s.log.Info("tiered: an earlier ambiguous commit did succeed", "version", p.Version)
		return s.committed(got)
	case err == nil:
		s.state.fenced = true
		s.state.pending = nil
		return fmt.Errorf("tiered: snapshot: %w: version %d was committed by writer %s", ErrFenced, p.Version, got.WriterID)
	case errors.Is(err, manifest.ErrVersionNotFound):
		s.state.pending = nil
		if err := s.persistLocked(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("tiered: snapshot: check earlier commit of version %d: %w", p.Version, err)
	}
	return nil
}

// protect marks runs of a snapshot in flight, which Store.GC never deletes.
func (s *Store) protect(runs []engines.RunInfo) {
	s.prot.Lock()
	defer s.prot.Unlock()
	for _, r := range runs {
		s.prot.inflight[r.Name] = struct{}{}
	}
}

func (s *Store) unprotect() {
	s.prot.Lock()
	defer s.prot.Unlock()
	clear(s.prot.inflight)
}

// SnapshotHandle is a snapshot running in the background.
type SnapshotHandle struct {
	done chan struct{}
	res  SnapshotResult
	err  error
}

// Wait blocks until the snapshot finished and returns its result.
func (h *SnapshotHandle) Wait() (SnapshotResult, error) {
	<-h.done
	return h.res, h.err
}

// Done returns a channel closed when the snapshot finished.
func (h *SnapshotHandle) Done() <-chan struct{} { return h.done }

// SnapshotAsync starts Snapshot in the background and returns at once, so
// the caller can keep processing while runs upload. Close waits for it.
func (s *Store) SnapshotAsync(ctx context.Context, opts ...SnapshotOption) *SnapshotHandle {
	h := &SnapshotHandle{done: make(chan struct{})}
	s.mu.RLock()
	if s.mu.closed {
		s.mu.RUnlock()
		h.err = ErrClosed
		close(h.done)
		return h
	}
	s.wg.Add(1)
	s.mu.RUnlock()
	go func() {
		defer s.wg.Done()
		defer close(h.done)
		h.res, h.err = s.snapshot(ctx, false, opts)
	}()
	return h
}
