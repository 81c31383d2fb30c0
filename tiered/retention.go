package tiered

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
)

// Versions returns every manifest of the remote, oldest first.
func (s *Store) Versions(ctx context.Context) ([]*manifest.Manifest, error) {
	if s.remote == nil {
		return nil, fmt.Errorf("tiered: versions: %w", ErrNoRemote)
	}
	vs, err := manifest.ListVersions(ctx, s.remote)
	if err != nil {
		return nil, fmt.Errorf("tiered: list versions in remote %s: %w", s.remoteName, err)
	}
	out := make([]*manifest.Manifest, 0, len(vs))
	for _, v := range vs {
		m, err := manifest.Load(ctx, s.remote, v)
		if errors.Is(err, manifest.ErrVersionNotFound) {
			continue // forgotten meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("tiered: versions: %w", err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Manifest returns the manifest of version (0 = the latest).
func (s *Store) Manifest(ctx context.Context, version uint64) (*manifest.Manifest, error) {
	if s.remote == nil {
		return nil, fmt.Errorf("tiered: manifest: %w", ErrNoRemote)
	}
	m, err := loadVersion(ctx, s.remote, version)
	if err != nil {
		return nil, fmt.Errorf("tiered: read manifest from remote %s: %w", s.remoteName, err)
	}
	return m, nil
}

// Policy says which versions Forget keeps. A version is kept if any rule
// keeps it; the latest version is always kept.
type Policy struct {
	// KeepLast keeps the KeepLast highest versions.
	KeepLast int
	// KeepWithin keeps versions created within this duration of now.
	KeepWithin time.Duration
	// Pins keeps these versions; each must exist.
	Pins []uint64
}

// Forget deletes the manifests of the remote that p does not keep (never the
// latest, nor the version this store's state descends from) and returns
// their versions, ascending. With dryRun it only returns them. Runs are
// deleted later by GC.
func (s *Store) Forget(ctx context.Context, p Policy, dryRun bool) ([]uint64, error) {
	if s.remote == nil {
		return nil, fmt.Errorf("tiered: forget: %w", ErrNoRemote)
	}
	return forget(ctx, s.remote, p, dryRun, s.log, s.Version())
}

// Forget deletes the manifests of st that p does not keep (never the latest)
// and returns their versions, ascending; with dryRun it only lists them.
func Forget(ctx context.Context, st objstore.Store, p Policy, dryRun bool) ([]uint64, error) {
	st = withReadRetries(st)
	return forget(ctx, st, p, dryRun, slog.New(slog.DiscardHandler), 0)
}

func forget(ctx context.Context, st objstore.Store, p Policy, dryRun bool, log *slog.Logger, keepAlso uint64) ([]uint64, error) {
	switch {
	case p.KeepLast < 0:
		return nil, fmt.Errorf("tiered: forget: Policy.KeepLast=%d is invalid: want 0 or more", p.KeepLast)
	case p.KeepWithin < 0:
		return nil, fmt.Errorf("tiered: forget: Policy.KeepWithin=%s is invalid: want 0 or more", p.KeepWithin)
	case p.KeepLast == 0 && p.KeepWithin == 0 && len(p.Pins) == 0:
		return nil, fmt.Errorf("%w: set KeepLast, KeepWithin or Pins (KeepLast 1 keeps only the latest version)", ErrEmptyPolicy)
	}
	vs, err := manifest.ListVersions(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("tiered: forget: list versions: %w", err)
	}
	if len(vs) == 0 {
		return nil, nil
	}
	keep := map[uint64]bool{vs[len(vs)-1]: true, keepAlso: true}
	for i := 0; i < p.KeepLast && i < len(vs); i++ {
		keep[vs[len(vs)-1-i]] = true
	}
	for _, pin := range p.Pins {
		if _, found := slices.BinarySearch(vs, pin); !found {
			return nil, fmt.Errorf("tiered: forget: pin: %w", manifest.VersionNotFound(pin, vs))
		}
		keep[pin] = true
	}
	var forgotten []uint64
	cutoff := time.Now().Add(-p.KeepWithin)
	for _, v := range vs {
		if keep[v] {
			continue
		}
		if p.KeepWithin > 0 {
			m, err := manifest.Load(ctx, st, v)
			switch {
			case errors.Is(err, manifest.ErrVersionNotFound):
				continue
			case errors.Is(err, engines.ErrCorrupt), errors.Is(err, manifest.ErrFormat):
				// Its age is unknown: keep it; Verify reports it.
				log.Warn("tiered: forget: keeping an unreadable manifest", "version", v, "err", err)
				continue
			case err != nil:
				return nil, fmt.Errorf("tiered: forget: %w", err)
			case m.Created.After(cutoff):
				continue
			}
		}
		forgotten = append(forgotten, v)
	}
	if dryRun {
		return forgotten, nil
	}
	for i, v := range forgotten {
		if err := st.Delete(ctx, manifest.Key(v)); err != nil {
			return forgotten[:i], fmt.Errorf("tiered: forget version %d: %w", v, err)
		}
	}
	if len(forgotten) > 0 {
		log.Info("tiered: forgot versions", "count", len(forgotten), "first", forgotten[0], "last", forgotten[len(forgotten)-1])
	}
	return forgotten, nil
}

// GCResult reports a garbage collection.
type GCResult struct {
	// Deleted lists the object keys deleted (with a dry run: that would be
	// deleted), sorted.
	Deleted []string
	// Bytes is their total size.
	Bytes int64
}

// GC deletes the runs/ objects of the remote that no manifest references and
// that are older than grace, except the runs of the local state and of a
// snapshot in flight. With dryRun it only lists them.
func (s *Store) GC(ctx context.Context, grace time.Duration, dryRun bool) (GCResult, error) {
	if s.remote == nil {
		return GCResult{}, fmt.Errorf("tiered: gc: %w", ErrNoRemote)
	}
	return gc(ctx, s.remote, grace, dryRun, s.log, s.protectedRuns)
}

// GC deletes the runs/ objects of st that no manifest references and that are
// older than grace; with dryRun it only lists them. It refuses to run while a
// manifest cannot be read, since it could not know what that one references.
func GC(ctx context.Context, st objstore.Store, grace time.Duration, dryRun bool) (GCResult, error) {
	st = withReadRetries(st)
	return gc(ctx, st, grace, dryRun, slog.New(slog.DiscardHandler), nil)
}

// protectedRuns returns the runs of the current local state (every run file in
// the engine directory) and of the snapshot in flight.
func (s *Store) protectedRuns() (map[string]bool, error) {
	prot := make(map[string]bool)
	s.prot.Lock()
	for name := range s.prot.inflight {
		prot[name] = true
	}
	s.prot.Unlock()
	s.mu.RLock()
	gen := s.mu.gen
	s.mu.RUnlock()
	if gen == nil {
		return prot, nil
	}
	ents, err := s.fs.ReadDir(gen.path)
	if err != nil {
		return nil, fmt.Errorf("list local runs in %s: %w", gen.path, err)
	}
	for _, e := range ents {
		prot[e.Name()] = true
	}
	return prot, nil
}

func gc(ctx context.Context, st objstore.Store, grace time.Duration, dryRun bool, log *slog.Logger, protected func() (map[string]bool, error)) (_ GCResult, err error) {
	if grace < 0 {
		return GCResult{}, fmt.Errorf("tiered: gc: grace %s is invalid: want 0 or more", grace)
	}
	start := time.Now()
	referenced, err := referencedRuns(ctx, st)
	if err != nil {
		return GCResult{}, err
	}
	// Runs are listed after the manifests: a run uploaded meanwhile is newer
	// than the grace period, or named by its writer's lease.
	objs, err := st.List(ctx, manifest.RunKey(""))
	if err != nil {
		return GCResult{}, fmt.Errorf("tiered: gc: list runs: %w", err)
	}
	cutoff := start.Add(-grace)
	var candidates []objstore.ObjectInfo
	for _, obj := range objs {
		name := strings.TrimPrefix(obj.Key, manifest.RunKey(""))
		if !referenced[name] && !obj.LastModified.After(cutoff) {
			candidates = append(candidates, obj)
		}
	}
	var rec *sweep
	var recKey string
	if !dryRun && len(candidates) > 0 {
		// The record goes up before the leases are read: a writer whose
		// lease was not seen here lists sweeps after writing it, sees this
		// record and re-uploads what it deleted.
		rec = &sweep{Started: start.UTC(), Deadline: start.Add(sweepTimeout).UTC()}
		for _, obj := range candidates {
			rec.Candidates = append(rec.Candidates, strings.TrimPrefix(obj.Key, manifest.RunKey("")))
		}
		recKey = sweepKey(start)
		if err := putDescriptor(ctx, st, recKey, rec, &rec.FormatVersion, true); err != nil {
			return GCResult{}, fmt.Errorf("tiered: gc: write sweep record %s: %w", recKey, err)
		}
		defer func() {
			// A pass that stops early still says what it deleted, so that
			// writers need not wait for its deadline.
			if err != nil && !rec.Done {
				rec.Done = true
				if perr := putDescriptor(ctx, st, recKey, rec, &rec.FormatVersion, false); perr != nil {
					log.Warn("tiered: gc: mark the sweep record of a failed pass done (writers wait for its deadline)", "record", recKey, "err", perr)
				}
			}
		}()
	}
	leased, staleLeases, err := liveLeaseRuns(ctx, st, time.Now())
	if err != nil {
		return GCResult{}, fmt.Errorf("tiered: gc: %w", err)
	}
	var prot map[string]bool
	if protected != nil {
		if prot, err = protected(); err != nil {
			return GCResult{}, fmt.Errorf("tiered: gc: %w", err)
		}
	}
	var res GCResult
	for _, obj := range candidates {
		name := strings.TrimPrefix(obj.Key, manifest.RunKey(""))
		if leased[name] || prot[name] {
			continue
		}
		if !dryRun {
			if rec != nil && time.Now().After(rec.Deadline) {
				return res, fmt.Errorf("tiered: gc: sweep ran past its deadline (%s) after deleting %d runs; run gc again", sweepTimeout, len(res.Deleted))
			}
			// Recorded first: a delete that fails may still have happened.
			rec.Deleted = append(rec.Deleted, name)
			if err := st.Delete(ctx, obj.Key); err != nil {
				return res, fmt.Errorf("tiered: gc: delete %s: %w", obj.Key, err)
			}
		}
		res.Deleted = append(res.Deleted, obj.Key)
		res.Bytes += obj.Size
	}
	// Temporary files of uploads killed half-way (file:// only) are never
	// listed as objects; they go after the same grace, but never younger
	// than tempMinAge: an upload in flight is writing them.
	if tr, ok := unwrapRetries(st).(objstore.TempRemover); ok {
		tempCutoff := cutoff
		if young := start.Add(-tempMinAge); young.Before(tempCutoff) {
			tempCutoff = young
		}
		temps, err := tr.RemoveTemps(ctx, tempCutoff, dryRun)
		if err != nil {
			return res, fmt.Errorf("tiered: gc: remove temporary files: %w", err)
		}
		for _, obj := range temps {
			res.Deleted = append(res.Deleted, obj.Key)
			res.Bytes += obj.Size
		}
		slices.Sort(res.Deleted)
	}
	if dryRun {
		return res, nil
	}
	if rec != nil {
		rec.Done = true
		if err := putDescriptor(ctx, st, recKey, rec, &rec.FormatVersion, false); err != nil {
			return res, fmt.Errorf("tiered: gc: mark sweep record %s done: %w", recKey, err)
		}
	}
	if err := expireProtocolObjects(ctx, st, staleLeases, start); err != nil {
		return res, err
	}
	if len(res.Deleted) > 0 {
		log.Info("tiered: gc deleted runs", "count", len(res.Deleted), "bytes", res.Bytes)
	}
	return res, nil
}

// tempMinAge is the youngest an upload's temporary file may be for GC to
// remove it, whatever the grace period: far longer than any upload takes.
const tempMinAge = 15 * time.Minute

// referencedRuns returns the runs named by the manifests of st. It fails
// while a manifest cannot be read, since what that one references is
// unknown.
func referencedRuns(ctx context.Context, st objstore.Store) (map[string]bool, error) {
	vs, err := manifest.ListVersions(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("tiered: gc: list versions: %w", err)
	}
	referenced := make(map[string]bool)
	for _, v := range vs {
		m, err := manifest.Load(ctx, st, v)
		if errors.Is(err, manifest.ErrVersionNotFound) {
			continue // forgotten meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("tiered: gc: refusing to delete runs while manifest %d cannot be read (forget it or repair it first): %w", v, err)
		}
		for _, r := range m.Runs {
			referenced[r.Name] = true
		}
	}
	return referenced, nil
}

// expireProtocolObjects deletes the leases of writers that expired long ago
// and the sweep records older than sweepRetention.
func expireProtocolObjects(ctx context.Context, st objstore.Store, staleLeases []string, now time.Time) error {
	objs, err := st.List(ctx, sweepPrefix)
	if err != nil {
		return fmt.Errorf("tiered: gc: list sweep records: %w", err)
	}
	doomed := staleLeases
	for _, obj := range objs {
		if now.Sub(obj.LastModified) > sweepRetention {
			doomed = append(doomed, obj.Key)
		}
	}
	for _, key := range doomed {
		if err := st.Delete(ctx, key); err != nil {
			return fmt.Errorf("tiered: gc: delete expired %s: %w", key, err)
		}
	}
	return nil
}
