package tiered

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/engines/all"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
)

// RestorePlan says which runs of a version a restore downloads and which it
// reuses from the local state (same name, size and CRC-32C).
type RestorePlan struct {
	Version       uint64
	Download      []engines.RunInfo
	Reuse         []engines.RunInfo
	DownloadBytes int64
	ReuseBytes    int64
}

// RestoreResult reports a restore.
type RestoreResult struct {
	// Version is the version restored.
	Version uint64
	// RunsDownloaded and RunsReused count the version's runs fetched from the
	// remote and found locally.
	RunsDownloaded, RunsReused int
	// BytesDownloaded is the size of the downloaded runs: exactly what was
	// read from the remote for them, retries aside.
	BytesDownloaded int64
	// Duration is the wall time of the restore.
	Duration time.Duration
	// Metadata is the user metadata committed with the version.
	Metadata map[string]string
}

// retryOptions is the backoff policy of downloads and manifest commits:
// objstore's defaults.
var retryOptions = objstore.Backoff{}

// loadVersion loads version v, or the latest when v is 0.
func loadVersion(ctx context.Context, st objstore.Store, v uint64) (*manifest.Manifest, error) {
	if v == 0 {
		return manifest.Latest(ctx, st)
	}
	return manifest.Load(ctx, st, v)
}

// Restore switches the store to version (0 = the latest). The runs the
// current state lacks are downloaded in parallel and verified next to it; the
// engine is opened on the new state and only then replaces the old one,
// which serves reads and writes until that moment. On any error the old
// state is left intact and in use. Writes made during the restore belong to
// the discarded state. After Restore(v), the next snapshot is latest+1 with
// parent v. A manifest of another engine kind is refused with
// ErrKindMismatch.
func (s *Store) Restore(ctx context.Context, version uint64) (RestoreResult, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if err := s.checkOpen(); err != nil {
		return RestoreResult{}, err
	}
	if s.remote == nil {
		return RestoreResult{}, fmt.Errorf("tiered: restore: %w", ErrNoRemote)
	}
	m, err := loadVersion(ctx, s.remote, version)
	if err != nil {
		s.met.restores.WithLabelValues("error").Inc()
		return RestoreResult{}, fmt.Errorf("tiered: restore from remote %s: %w", s.remoteName, err)
	}
	if m.Engine != s.st.kind {
		s.met.restores.WithLabelValues("error").Inc()
		return RestoreResult{}, fmt.Errorf("tiered: restore version %d: %w: it holds a %q store, this store is %q; restore it into another directory with RestoreTo or open a store with Engine %q",
			m.Version, ErrKindMismatch, m.Engine, s.st.kind, m.Engine)
	}
	return s.restoreLocked(ctx, m)
}

// checkOpen returns ErrClosed after Close.
func (s *Store) checkOpen() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mu.closed {
		return ErrClosed
	}
	return nil
}

// restoreLocked switches to the state of m (snapMu held, or during Open, where
// no engine is open yet).
func (s *Store) restoreLocked(ctx context.Context, m *manifest.Manifest) (RestoreResult, error) {
	start := time.Now()
	res, err := s.switchTo(ctx, m)
	if err != nil {
		s.met.restores.WithLabelValues("error").Inc()
		s.log.Error("tiered: restore failed", "version", m.Version, "err", err)
		return RestoreResult{}, err
	}
	res.Duration = time.Since(start)
	s.met.restores.WithLabelValues("ok").Inc()
	s.met.restDuration.Observe(res.Duration.Seconds())
	s.met.restBytes.Add(float64(res.BytesDownloaded))
	s.log.Info("tiered: restored version", "version", res.Version, "runs_downloaded", res.RunsDownloaded,
		"runs_reused", res.RunsReused, "bytes_downloaded", res.BytesDownloaded, "duration", res.Duration)
	return res, nil
}

func (s *Store) switchTo(ctx context.Context, m *manifest.Manifest) (RestoreResult, error) {
	params, err := s.resolveParams(m.Engine, m.Params)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("tiered: restore version %d: %w", m.Version, err)
	}
	oldGen := s.mu.gen
	cur := ""
	if oldGen != nil {
		cur = oldGen.path
	}
	plan, from, err := planRuns(cur, s.stale, m, &s.sums)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("tiered: restore version %d: %w", m.Version, err)
	}
	stg := stager{dir: s.dir, from: from, remote: s.remote, sums: &s.sums, conc: s.o.UploadConcurrency, met: s.met, log: s.log}
	name, plan, err := stg.stage(ctx, plan)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("tiered: restore version %d from remote %s: %w", m.Version, s.remoteName, err)
	}
	g := newGeneration(s.dir, name)
	cp := checkpointOf(m)
	eng, err := s.openEngine(g, &cp, m.Engine, params)
	if err != nil {
		_ = os.RemoveAll(g.path)
		return RestoreResult{}, fmt.Errorf("tiered: restore version %d: %w", m.Version, err)
	}
	// The commit point: STORE names the new generation.
	err = writeStoreFile(s.dir, storeFile{
		StoreID: m.StoreID, Engine: m.Engine, Params: params, Version: m.Version,
		Data: name, WriterID: s.writerID, Metadata: m.Metadata,
	})
	if err != nil {
		g.discard.Store(true)
		_ = eng.Close()
		_ = os.RemoveAll(g.path)
		return RestoreResult{}, fmt.Errorf("tiered: restore version %d: %w", m.Version, err)
	}
	s.sums.put(m.Runs...)
	s.st.storeID, s.st.kind, s.st.params = m.StoreID, m.Engine, params
	s.st.prevRuns = runSet(m.Runs)
	s.setDescent(m.Version, m.Metadata)
	s.st.pendingStale = s.st.pending != nil
	s.up.MarkPresent(cp.Runs...) // the remote holds them: never upload them again

	s.mu.Lock()
	oldEng := s.mu.eng
	s.mu.eng, s.mu.gen = eng, g
	s.mu.Unlock()
	if oldGen != nil {
		oldGen.discard.Store(true)
		if oldEng != nil {
			if err := oldEng.Close(); err != nil {
				s.log.Warn("tiered: close the replaced engine", "dir", oldGen.path, "err", err)
			}
		}
		if err := os.RemoveAll(oldGen.path); err != nil {
			s.log.Warn("tiered: remove the replaced state", "dir", oldGen.path, "err", err)
		}
	}
	return RestoreResult{
		Version:         m.Version,
		RunsDownloaded:  len(plan.Download),
		RunsReused:      len(plan.Reuse),
		BytesDownloaded: plan.DownloadBytes,
		Metadata:        maps.Clone(m.Metadata),
	}, nil
}

// resolveParams returns the canonical parameters to open kind with after a
// restore: Options.Params when given, else the recorded ones.
func (s *Store) resolveParams(kind string, recorded map[string]string) (engines.Params, error) {
	p := engines.Params(recorded)
	if s.userParams {
		p = s.o.Params
	}
	if p == nil {
		p = engines.Params{}
	}
	cp, err := all.CanonicalParams(kind, p)
	if err != nil {
		return nil, fmt.Errorf("engine parameters: %w", err)
	}
	return cp, nil
}

// checkpointOf returns the engine checkpoint a manifest records.
func checkpointOf(m *manifest.Manifest) engines.Checkpoint {
	runs := make([]engines.RunInfo, len(m.Runs))
	copy(runs, m.Runs)
	return engines.Checkpoint{Kind: m.Engine, Runs: runs, State: m.EngineState}
}

// planRuns sorts the runs of m into those present locally (same name, size
// and CRC-32C) and those to download. It looks in the current generation
// directory cur ("" = no local state), then in the stale generations left by
// a restore that crashed, whose downloaded and verified runs are reused
// rather than downloaded again. Checksums come from sums when known (they
// describe files of cur only); others are computed once. from maps every
// reused run to the directory holding it.
func planRuns(cur string, stale []string, m *manifest.Manifest, sums *runSums) (plan RestorePlan, from map[string]string, err error) {
	plan = RestorePlan{Version: m.Version}
	from = map[string]string{}
	for _, r := range m.Runs {
		src := ""
		ok, err := localRunMatches(cur, r, sums)
		if err != nil {
			return RestorePlan{}, nil, err
		}
		if ok {
			src = cur
		}
		for _, dir := range stale {
			if src != "" {
				break
			}
			if ok, err := localRunMatches(dir, r, &runSums{}); err != nil {
				return RestorePlan{}, nil, err
			} else if ok {
				src = dir
			}
		}
		if src != "" {
			from[r.Name] = src
			plan.Reuse = append(plan.Reuse, r)
			plan.ReuseBytes += r.Size
		} else {
			plan.Download = append(plan.Download, r)
			plan.DownloadBytes += r.Size
		}
	}
	return plan, from, nil
}

func localRunMatches(cur string, r engines.RunInfo, sums *runSums) (bool, error) {
	if cur == "" {
		return false, nil
	}
	path := filepath.Join(cur, r.Name)
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != r.Size {
		return false, nil
	}
	if ri, ok := sums.get(r.Name); ok && ri.Size == r.Size {
		return ri.CRC32C == r.CRC32C, nil
	}
	size, crc, err := engines.FileCRC32C(engines.OSFS{}, path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checksum %s: %w", path, err)
	}
	sums.put(engines.RunInfo{Name: r.Name, Size: size, CRC32C: crc})
	return size == r.Size && crc == r.CRC32C, nil
}

// stager builds a new generation directory holding every run of a plan.
type stager struct {
	dir      string            // store directory
	from     map[string]string // directory holding each reused run (planRuns)
	remote   objstore.Store
	sums     *runSums
	conc     int
	met      *metrics
	log      *slog.Logger
	progress func(done, total int64) // may be nil
}

// stage creates the next generation directory, hard-links (or copies) the
// reused runs into it and downloads the others, verified, in parallel. It
// returns the directory name and the plan as carried out (a reused run that
// vanished meanwhile is downloaded instead). On error nothing is left behind.
func (st *stager) stage(ctx context.Context, plan RestorePlan) (_ string, _ RestorePlan, err error) {
	name, err := nextGen(st.dir)
	if err != nil {
		return "", plan, err
	}
	path := filepath.Join(st.dir, name)
	if err := os.Mkdir(path, 0o755); err != nil {
		return "", plan, fmt.Errorf("create %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(path)
		}
	}()
	done := RestorePlan{Version: plan.Version, Download: plan.Download, DownloadBytes: plan.DownloadBytes}
	for _, r := range plan.Reuse {
		err := linkOrCopy(filepath.Join(st.from[r.Name], r.Name), filepath.Join(path, r.Name))
		switch {
		case err == nil:
			done.Reuse = append(done.Reuse, r)
			done.ReuseBytes += r.Size
		case errors.Is(err, os.ErrNotExist): // merged away since the plan
			done.Download = append(done.Download, r)
			done.DownloadBytes += r.Size
		default:
			return "", plan, fmt.Errorf("reuse local run %s: %w", r.Name, err)
		}
	}
	if err := st.downloadAll(ctx, path, done.Download, done.DownloadBytes); err != nil {
		return "", plan, err
	}
	if err := syncDir(path); err != nil {
		return "", plan, err
	}
	if err := syncDir(st.dir); err != nil {
		return "", plan, err
	}
	return name, done, nil
}

// downloadAll downloads runs into dir with st.conc parallel downloads; the
// first error cancels the others.
func (st *stager) downloadAll(ctx context.Context, dir string, runs []engines.RunInfo, total int64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		done     int64
		firstErr error
	)
	report := func(delta int64) {
		mu.Lock()
		defer mu.Unlock()
		done += delta
		if st.progress != nil {
			st.progress(done, total)
		}
	}
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	if st.progress != nil && len(runs) > 0 {
		st.progress(0, total)
	}
	sem := make(chan struct{}, max(st.conc, 1))
	for _, r := range runs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := downloadRun(ctx, st.remote, r, dir, st.met, report); err != nil {
				fail(err)
				return
			}
			st.sums.put(r)
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// downloadRun fetches run r into dir: to "<name>.tmp", checking size and
// CRC-32C while streaming, then fsync and rename. Transient errors are
// retried with the uploader's backoff. report receives byte counts as they
// arrive (negative to take back a failed attempt's).
func downloadRun(ctx context.Context, remote objstore.Store, r engines.RunInfo, dir string, met *metrics, report func(int64)) error {
	tmp := filepath.Join(dir, r.Name+engines.TempSuffix)
	err := objstore.Retry(ctx, retryOptions, func(ctx context.Context) error {
		return fetchRun(ctx, remote, r, tmp, met, report)
	})
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("download run %s: %w", r.Name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, r.Name)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("download run %s: %w", r.Name, err)
	}
	return nil
}

// fetchRun is one download attempt of downloadRun.
func fetchRun(ctx context.Context, remote objstore.Store, r engines.RunInfo, tmp string, met *metrics, report func(int64)) (err error) {
	key := manifest.RunKey(r.Name)
	rc, _, err := remote.Get(ctx, key)
	if err != nil {
		if errors.Is(err, objstore.ErrNotExist) {
			return fmt.Errorf("%s is missing from the remote (the version is damaged; try another one): %w", key, err)
		}
		return err
	}
	defer rc.Close()
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if f != nil {
			_ = f.Close()
		}
	}()
	h := crc32.New(engines.CastagnoliTable)
	var n int64
	cw := writerFunc(func(p []byte) (int, error) {
		n += int64(len(p))
		report(int64(len(p)))
		return len(p), nil
	})
	_, err = io.Copy(io.MultiWriter(f, h, cw), io.LimitReader(rc, r.Size+1))
	met.download(n)
	if err == nil {
		switch {
		case n != r.Size:
			err = &engines.CorruptionError{File: key, Offset: min(n, r.Size),
				Reason: fmt.Sprintf("object is %s, manifest records %d bytes", sizeDesc(n, r.Size), r.Size)}
		case h.Sum32() != r.CRC32C:
			err = engines.Corruptf(key, engines.UnknownOffset, "content crc32c %08x, manifest records %08x", h.Sum32(), r.CRC32C)
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	f = nil
	if err != nil {
		report(-n)
	}
	return err
}

func sizeDesc(n, want int64) string {
	if n > want {
		return "longer"
	}
	return fmt.Sprintf("%d bytes", n)
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

// linkOrCopy hard-links src to dst, or copies it (fsynced) where links fail.
// A missing src returns an error matching os.ErrNotExist.
func linkOrCopy(src, dst string) error {
	err := os.Link(src, dst)
	if err == nil || errors.Is(err, os.ErrNotExist) {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst+engines.TempSuffix, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(dst+engines.TempSuffix, dst)
	}
	if err != nil {
		_ = os.Remove(dst + engines.TempSuffix)
	}
	return err
}

func syncDir(dir string) error {
	if err := (engines.OSFS{}).SyncDir(dir); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// PlanRestore says what restoring version (0 = latest) into the store
// directory dir would download and reuse. It reads the local run files it
// could reuse to check their CRC-32C, and changes nothing.
func PlanRestore(ctx context.Context, dir string, st objstore.Store, version uint64) (RestorePlan, error) {
	st = withReadRetries(st)
	m, err := loadVersion(ctx, st, version)
	if err != nil {
		return RestorePlan{}, fmt.Errorf("tiered: plan restore: %w", err)
	}
	local, hasLocal, err := readStoreFile(dir)
	if err != nil {
		return RestorePlan{}, err
	}
	cur := ""
	if hasLocal {
		cur = filepath.Join(dir, local.Data)
	}
	stale, err := staleGenerations(dir, local.Data)
	if err != nil {
		return RestorePlan{}, err
	}
	plan, _, err := planRuns(cur, stale, m, &runSums{})
	if err != nil {
		return RestorePlan{}, fmt.Errorf("tiered: plan restore of version %d: %w", m.Version, err)
	}
	return plan, nil
}

// RestoreTo restores version (0 = latest) into the store directory dir
// without keeping a store open, reusing the local runs that match and
// downloading the others (progress, if non-nil, receives bytes done and the
// total to download). The directory can then be opened with
// Options.ResumeLocal. Whatever was in dir before is replaced, but only once
// the new state is complete; on error it is left as it was.
func RestoreTo(ctx context.Context, dir string, st objstore.Store, version uint64, progress func(done, total int64)) (RestoreResult, error) {
	st = withReadRetries(st)
	start := time.Now()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return RestoreResult{}, fmt.Errorf("tiered: create %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return RestoreResult{}, err
	}
	defer lock.unlock()
	local, hasLocal, err := readStoreFile(dir)
	if err != nil {
		return RestoreResult{}, err
	}
	cur := ""
	if hasLocal {
		cur = filepath.Join(dir, local.Data)
	}
	// Generations STORE does not name are left by a restore that crashed:
	// their verified runs are reused, and they are removed once this restore
	// is done.
	stale, err := staleGenerations(dir, local.Data)
	if err != nil {
		return RestoreResult{}, err
	}
	m, err := loadVersion(ctx, st, version)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("tiered: restore: %w", err)
	}
	params, err := all.CanonicalParams(m.Engine, m.Params)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("tiered: restore version %d: engine parameters: %w", m.Version, err)
	}
	plan, from, err := planRuns(cur, stale, m, &runSums{})
	if err != nil {
		return RestoreResult{}, fmt.Errorf("tiered: restore version %d: %w", m.Version, err)
	}
	stg := stager{dir: dir, from: from, remote: st, sums: &runSums{}, conc: DefaultUploadConcurrency, progress: progress}
	name, plan, err := stg.stage(ctx, plan)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("tiered: restore version %d: %w", m.Version, err)
	}
	path := filepath.Join(dir, name)
	cp := checkpointOf(m)
	eng, err := all.Open(m.Engine, params, engines.OpenOptions{Dir: path, Checkpoint: &cp})
	if err == nil {
		// Opening from the checkpoint writes the engine's own state file;
		// closing persists it.
		err = eng.Close()
	}
	if err == nil {
		err = writeStoreFile(dir, storeFile{
			StoreID: m.StoreID, Engine: m.Engine, Params: params, Version: m.Version,
			Data: name, WriterID: newWriterID(), Metadata: m.Metadata,
		})
	}
	if err != nil {
		_ = os.RemoveAll(path)
		return RestoreResult{}, fmt.Errorf("tiered: restore version %d: open %s engine: %w", m.Version, m.Engine, err)
	}
	if hasLocal {
		_ = os.RemoveAll(cur)
	}
	removeDirs(stale)
	return RestoreResult{
		Version:         m.Version,
		RunsDownloaded:  len(plan.Download),
		RunsReused:      len(plan.Reuse),
		BytesDownloaded: plan.DownloadBytes,
		Duration:        time.Since(start),
		Metadata:        maps.Clone(m.Metadata),
	}, nil
}
