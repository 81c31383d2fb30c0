package tiered

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
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

// restoreJob is one restore of a manifest into a store directory, the one
// pipeline behind Store.Restore, the restore at Open and RestoreTo: planned
// by planRestore, then stage (RESTORING marker, new generation with the
// reused runs linked and the others downloaded and verified), commit (STORE
// names the new generation) and finish (the replaced generations and the
// marker go), or abort before the commit.
type restoreJob struct {
	fs         engines.FS
	local      *localDir
	m          *manifest.Manifest
	params     engines.Params
	plan       RestorePlan
	from       map[string]string // run name -> directory holding a reusable copy
	sums       *runSums
	remote     objstore.Store
	conc       int
	met        *metrics // may be nil
	log        *slog.Logger
	writerID   string
	rollbackOf uint64                  // remote latest when m is older (a rollback); 0 otherwise
	progress   func(done, total int64) // may be nil

	staged string         // the new generation, once stage created it
	marker *restoreMarker // the marker written by stage
}

// planRestore plans restoring m into the directory local describes: runs of
// the current generation and of generations left by interrupted restores
// (named by RESTORING) are reused when name, size and CRC-32C match.
func planRestore(local *localDir, m *manifest.Manifest, params engines.Params, sums *runSums) (*restoreJob, error) {
	cur := ""
	if local.store != nil {
		cur = filepath.Join(local.dir, local.store.Data)
	}
	var stale []string
	if local.marker != nil {
		for _, g := range local.marker.Staging {
			if slices.Contains(local.gens, g) && (local.store == nil || g != local.store.Data) {
				stale = append(stale, filepath.Join(local.dir, g))
			}
		}
	}
	j := &restoreJob{fs: local.fs, local: local, m: m, params: params, sums: sums, log: slog.New(slog.DiscardHandler)}
	j.plan = RestorePlan{Version: m.Version}
	j.from = map[string]string{}
	for _, r := range m.Runs {
		src := ""
		for i, dir := range append([]string{cur}, stale...) {
			s := sums
			if i > 0 {
				s = &runSums{} // sums describe files of the current generation only
			}
			ok, err := localRunMatches(j.fs, dir, r, s)
			if err != nil {
				return nil, fmt.Errorf("plan restore of version %d: %w", m.Version, err)
			}
			if ok {
				src = dir
				break
			}
		}
		if src != "" {
			j.from[r.Name] = src
			j.plan.Reuse = append(j.plan.Reuse, r)
			j.plan.ReuseBytes += r.Size
		} else {
			j.plan.Download = append(j.plan.Download, r)
			j.plan.DownloadBytes += r.Size
		}
	}
	return j, nil
}

// localRunMatches reports whether dir/<r.Name> is a regular file of r's size
// and CRC-32C (known from sums, or computed once and remembered there).
func localRunMatches(fsys engines.FS, dir string, r engines.RunInfo, sums *runSums) (bool, error) {
	if dir == "" {
		return false, nil
	}
	path := filepath.Join(dir, r.Name)
	f, err := engines.Open(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("open %s: %w", path, err)
	}
	fi, err := f.Stat()
	_ = f.Close()
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != r.Size {
		return false, nil
	}
	if ri, ok := sums.get(r.Name); ok && ri.Size == r.Size {
		return ri.CRC32C == r.CRC32C, nil
	}
	size, crc, err := engines.FileCRC32C(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checksum %s: %w", path, err)
	}
	sums.put(engines.RunInfo{Name: r.Name, Size: size, CRC32C: crc})
	return size == r.Size && crc == r.CRC32C, nil
}

// checkpoint returns the engine checkpoint the manifest records.
func (j *restoreJob) checkpoint() engines.Checkpoint {
	return engines.Checkpoint{Kind: j.m.Engine, Runs: slices.Clone(j.m.Runs), State: j.m.EngineState}
}

// stagedPath is the directory of the new generation.
func (j *restoreJob) stagedPath() string { return filepath.Join(j.local.dir, j.staged) }

// stage records the restore in RESTORING, then builds the new generation:
// reused runs hard-linked (or copied), the others downloaded in parallel and
// verified. On error the directory is as before (abort).
func (j *restoreJob) stage(ctx context.Context) (err error) {
	name := nextGen(j.local.gens)
	mk := restoreMarker{Version: j.m.Version}
	if j.local.store != nil {
		mk.Previous = j.local.store.Data
	}
	if j.local.marker != nil {
		for _, g := range j.local.marker.Staging {
			if slices.Contains(j.local.gens, g) && g != mk.Previous {
				mk.Staging = append(mk.Staging, g)
			}
		}
	}
	mk.Staging = append(mk.Staging, name)
	if err := writeRestoreMarker(j.fs, j.local.dir, mk); err != nil {
		// It may have landed (a failed directory sync): put back the
		// marker that was there, or remove it.
		j.marker = &mk
		j.abort()
		return err
	}
	j.marker, j.staged = &mk, name
	defer func() {
		if err != nil {
			j.abort()
		}
	}()
	path := j.stagedPath()
	if err := j.fs.MkdirAll(path, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	var reused []engines.RunInfo
	download, downloadBytes := slices.Clone(j.plan.Download), j.plan.DownloadBytes
	for _, r := range j.plan.Reuse {
		err := linkOrCopy(j.fs, filepath.Join(j.from[r.Name], r.Name), filepath.Join(path, r.Name))
		switch {
		case err == nil:
			reused = append(reused, r)
		case errors.Is(err, fs.ErrNotExist): // merged away since the plan
			download = append(download, r)
			downloadBytes += r.Size
		default:
			return fmt.Errorf("reuse local run %s: %w", r.Name, err)
		}
	}
	if err := j.downloadAll(ctx, path, download, downloadBytes); err != nil {
		return err
	}
	if err := syncDir(j.fs, path); err != nil {
		return err
	}
	if err := syncDir(j.fs, j.local.dir); err != nil {
		return err
	}
	j.plan.Reuse, j.plan.Download, j.plan.DownloadBytes = reused, download, downloadBytes
	j.plan.ReuseBytes = 0
	for _, r := range reused {
		j.plan.ReuseBytes += r.Size
	}
	return nil
}

// storeFile is the STORE that commit writes.
func (j *restoreJob) storeFile() storeFile {
	return storeFile{
		StoreID: j.m.StoreID, Engine: j.m.Engine, Params: j.params, Version: j.m.Version,
		RollbackOf: j.rollbackOf, Data: j.staged, WriterID: j.writerID, Metadata: j.m.Metadata,
	}
}

// commit writes STORE naming the new generation: the commit point. If the
// write reports an error after its rename landed (a failed directory sync),
// STORE is read back: committed is true when it names the new generation.
// When committed is false and err is not errUnknownCommit, STORE still names
// the old state and abort is safe.
func (j *restoreJob) commit() (committed bool, err error) {
	err = writeStoreFile(j.fs, j.local.dir, j.storeFile())
	if err == nil {
		return true, nil
	}
	back, rerr := readDescriptorFile(j.fs, j.local.dir, storeFileName, decodeStoreFile)
	switch {
	case rerr == nil && back.Data == j.staged:
		j.log.Warn("tiered: restore committed although writing STORE reported an error", "err", err)
		return true, nil
	case rerr == nil || errors.Is(rerr, fs.ErrNotExist):
		return false, err
	default:
		return false, fmt.Errorf("%w: %w (and reading it back: %w)", errUnknownCommit, err, rerr)
	}
}

// errUnknownCommit: STORE could not be read back after a failed write, so
// nothing of the restore may be removed.
var errUnknownCommit = errors.New("cannot tell whether the restore committed; nothing was removed")

// abort removes the new generation and puts RESTORING back as it was.
func (j *restoreJob) abort() {
	if j.staged != "" {
		if err := removeAll(j.fs, j.stagedPath()); err != nil {
			j.log.Warn("tiered: remove the staged generation of a failed restore", "dir", j.stagedPath(), "err", err)
			return // the marker keeps naming it
		}
		j.staged = ""
	}
	var err error
	if j.local.marker != nil {
		err = writeRestoreMarker(j.fs, j.local.dir, *j.local.marker)
	} else if j.marker != nil {
		err = removeFile(j.fs, j.local.dir, restoringFileName)
	}
	if err != nil {
		j.log.Warn("tiered: reset the restore marker after a failed restore", "err", err)
	}
	j.marker = nil
}

// finish removes, after the commit, the generations the restore replaced
// (the previous one and those of interrupted restores) and RESTORING. The
// previous generation's engine must be closed.
func (j *restoreJob) finish() error {
	sf := j.storeFile()
	j.local.store, j.local.marker = &sf, j.marker
	return j.local.settleMarker()
}

// result reports the restore as carried out.
func (j *restoreJob) result(start time.Time) RestoreResult {
	return RestoreResult{
		Version:         j.m.Version,
		RunsDownloaded:  len(j.plan.Download),
		RunsReused:      len(j.plan.Reuse),
		BytesDownloaded: j.plan.DownloadBytes,
		Duration:        time.Since(start),
		Metadata:        maps.Clone(j.m.Metadata),
	}
}

// downloadAll downloads runs into dir with j.conc parallel downloads; the
// first error cancels the others.
func (j *restoreJob) downloadAll(ctx context.Context, dir string, runs []engines.RunInfo, total int64) error {
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
		if j.progress != nil {
			j.progress(done, total)
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
	if j.progress != nil && len(runs) > 0 {
		j.progress(0, total)
	}
	sem := make(chan struct{}, max(j.conc, 1))
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
			if err := j.downloadRun(ctx, r, dir, report); err != nil {
				fail(err)
				return
			}
			j.sums.put(r)
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
func (j *restoreJob) downloadRun(ctx context.Context, r engines.RunInfo, dir string, report func(int64)) error {
	tmp := filepath.Join(dir, r.Name+engines.TempSuffix)
	err := objstore.Retry(ctx, retryOptions, func(ctx context.Context) error {
		return j.fetchRun(ctx, r, tmp, report)
	})
	if err == nil {
		err = j.fs.Rename(tmp, filepath.Join(dir, r.Name))
	}
	if err != nil {
		_ = j.fs.Remove(tmp)
		return fmt.Errorf("download run %s: %w", r.Name, err)
	}
	return nil
}

// fetchRun is one download attempt of downloadRun.
func (j *restoreJob) fetchRun(ctx context.Context, r engines.RunInfo, tmp string, report func(int64)) (err error) {
	key := manifest.RunKey(r.Name)
	rc, _, err := j.remote.Get(ctx, key)
	if err != nil {
		if errors.Is(err, objstore.ErrNotExist) {
			return fmt.Errorf("%s is missing from the remote (the version is damaged; try another one): %w", key, err)
		}
		return err
	}
	defer rc.Close()
	f, err := j.fs.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
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
	j.met.download(n)
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

// linker is implemented by file systems that can hard-link (engines.OSFS).
type linker interface {
	Link(oldname, newname string) error
}

// linkOrCopy hard-links src to dst where fsys can, or copies it (fsynced).
// A missing src returns an error matching fs.ErrNotExist.
func linkOrCopy(fsys engines.FS, src, dst string) error {
	if l, ok := fsys.(linker); ok {
		err := l.Link(src, dst)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	in, err := engines.Open(fsys, src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + engines.TempSuffix
	out, err := fsys.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
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
		err = fsys.Rename(tmp, dst)
	}
	if err != nil {
		_ = fsys.Remove(tmp)
	}
	return err
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
	if m.Engine != s.state.kind {
		s.met.restores.WithLabelValues("error").Inc()
		return RestoreResult{}, fmt.Errorf("tiered: restore version %d: %w: it holds a %q store, this store is %q; restore it into another directory with RestoreTo or open a store with Engine %q",
			m.Version, ErrKindMismatch, m.Engine, s.state.kind, m.Engine)
	}
	local, err := inspectDir(s.fs, s.dir)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("tiered: restore version %d: %w", m.Version, err)
	}
	return s.restoreLocked(ctx, local, m)
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
func (s *Store) restoreLocked(ctx context.Context, local *localDir, m *manifest.Manifest) (RestoreResult, error) {
	start := time.Now()
	res, err := s.switchTo(ctx, local, m)
	if err != nil {
		s.met.restores.WithLabelValues("error").Inc()
		s.log.Error("tiered: restore failed", "version", m.Version, "err", err)
		return RestoreResult{}, fmt.Errorf("tiered: restore version %d from remote %s: %w", m.Version, s.remoteName, err)
	}
	res.Duration = time.Since(start)
	s.met.restores.WithLabelValues("ok").Inc()
	s.met.restDuration.Observe(res.Duration.Seconds())
	s.met.restBytes.Add(float64(res.BytesDownloaded))
	s.log.Info("tiered: restored version", "version", res.Version, "runs_downloaded", res.RunsDownloaded,
		"runs_reused", res.RunsReused, "bytes_downloaded", res.BytesDownloaded, "duration", res.Duration)
	return res, nil
}

func (s *Store) switchTo(ctx context.Context, local *localDir, m *manifest.Manifest) (RestoreResult, error) {
	params, err := s.resolveParams(m.Engine, m.Params)
	if err != nil {
		return RestoreResult{}, err
	}
	j, err := planRestore(local, m, params, &s.sums)
	if err != nil {
		return RestoreResult{}, err
	}
	j.remote, j.conc, j.met, j.log, j.writerID = s.remote, s.o.UploadConcurrency, s.met, s.log, s.writerID
	if m.Version < s.state.latest {
		j.rollbackOf = s.state.latest
	}
	if err := j.stage(ctx); err != nil {
		return RestoreResult{}, err
	}
	g := newGeneration(s.dir, j.staged)
	cp := j.checkpoint()
	eng, err := s.openEngine(g, &cp, m.Engine, params)
	if err != nil {
		j.abort()
		return RestoreResult{}, err
	}
	committed, err := j.commit()
	if !committed {
		g.discard.Store(true)
		_ = eng.Close()
		if !errors.Is(err, errUnknownCommit) {
			j.abort()
		}
		return RestoreResult{}, err
	}
	s.sums.put(m.Runs...)
	s.state.storeID, s.state.kind, s.state.params = m.StoreID, m.Engine, params
	s.state.prevRuns = runSet(m.Runs)
	s.state.rollbackOf = j.rollbackOf
	s.setDescent(m.Version, m.Metadata)
	s.state.pendingStale = s.state.pending != nil
	s.up.MarkPresent(cp.Runs...) // the remote holds them: never upload them again

	s.mu.Lock()
	oldEng, oldGen := s.mu.eng, s.mu.gen
	s.mu.eng, s.mu.gen = eng, g
	s.mu.Unlock()
	if oldGen != nil {
		oldGen.discard.Store(true)
	}
	if oldEng != nil {
		if err := oldEng.Close(); err != nil {
			s.log.Warn("tiered: close the replaced engine", "dir", oldGen.path, "err", err)
		}
	}
	if err := j.finish(); err != nil {
		s.log.Warn("tiered: remove the replaced state (the next restore or open retries)", "err", err)
	}
	return j.result(time.Now()), nil
}

// resolveParams returns the canonical parameters to open kind with after a
// restore: Options.Params when given, else the recorded ones.
func (s *Store) resolveParams(kind string, recorded map[string]string) (engines.Params, error) {
	p := engines.Params(recorded)
	if s.userParams {
		p = s.o.Params
	}
	return canonicalParams(kind, p)
}

func canonicalParams(kind string, p engines.Params) (engines.Params, error) {
	if p == nil {
		p = engines.Params{}
	}
	cp, err := all.CanonicalParams(kind, p)
	if err != nil {
		return nil, fmt.Errorf("engine parameters: %w", err)
	}
	return cp, nil
}

// RestoreOptions configure PrepareRestore.
type RestoreOptions struct {
	// DryRun plans without creating, locking or changing anything; Run is
	// refused.
	DryRun bool
	// Progress, if non-nil, receives bytes downloaded so far and the total
	// to download while Run downloads.
	Progress func(done, total int64)
	// FS is the local file system (tests inject faults). Default: the OS's.
	FS engines.FS
	// Concurrency is the number of parallel downloads. Default: 4.
	Concurrency int
}

// PreparedRestore is a restore into a directory with no store open, planned
// and ready to run: PrepareRestore plans it (holding the directory's lock
// unless it is a dry run), the caller may show Plan, then Run carries it out.
// Close releases the lock.
type PreparedRestore struct {
	dir     string
	job     *restoreJob
	lock    *dirLock
	dryRun  bool
	created bool // the directory did not exist before PrepareRestore
	ran     bool
}

// PrepareRestore plans restoring version (0 = latest) of st into the store
// directory dir: the runs the directory already holds (its current state,
// or an interrupted restore's downloads) are reused, the others will be
// downloaded. The directory must be new, empty, a tierkv store, or hold an
// interrupted restore; anything else is refused and left untouched.
func PrepareRestore(ctx context.Context, dir string, st objstore.Store, version uint64, o RestoreOptions) (_ *PreparedRestore, err error) {
	if o.FS == nil {
		o.FS = engines.OSFS{}
	}
	st = withReadRetries(st)
	p := &PreparedRestore{dir: dir, dryRun: o.DryRun}
	defer func() {
		if err != nil {
			p.release(true)
		}
	}()
	if !o.DryRun {
		if p.created, err = createDir(o.FS, dir); err != nil {
			return nil, err
		}
		if p.lock, err = lockDir(dir); err != nil {
			return nil, err
		}
	}
	local, err := inspectDir(o.FS, dir)
	if err != nil {
		return nil, fmt.Errorf("tiered: restore into %s: %w", dir, err)
	}
	if err := local.checkForeign(); err != nil {
		return nil, err
	}
	if !o.DryRun {
		if err := local.settleMarker(); err != nil {
			return nil, fmt.Errorf("tiered: restore into %s: clean up after an interrupted restore or creation: %w", dir, err)
		}
	}
	if local.marker == nil || local.committedRestore() {
		if err := local.checkStore(); err != nil {
			return nil, err
		}
	}
	m, err := loadVersion(ctx, st, version)
	if err != nil {
		return nil, fmt.Errorf("tiered: restore: %w", err)
	}
	params, err := canonicalParams(m.Engine, m.Params)
	if err != nil {
		return nil, fmt.Errorf("tiered: restore version %d: %w", m.Version, err)
	}
	j, err := planRestore(local, m, params, &runSums{})
	if err != nil {
		return nil, fmt.Errorf("tiered: %w", err)
	}
	j.remote, j.conc, j.progress, j.writerID = st, o.Concurrency, o.Progress, newWriterID()
	if j.conc <= 0 {
		j.conc = DefaultUploadConcurrency
	}
	if version != 0 {
		vs, err := manifest.ListVersions(ctx, st)
		if err != nil {
			return nil, fmt.Errorf("tiered: restore: %w", err)
		}
		if n := len(vs); n > 0 && vs[n-1] > m.Version {
			j.rollbackOf = vs[n-1]
		}
	}
	p.job = j
	return p, nil
}

// Plan returns what Run downloads and reuses.
func (p *PreparedRestore) Plan() RestorePlan { return p.job.plan }

// Run carries the restore out: the new state is staged beside the old one
// and replaces it only once complete; on error the directory is left as it
// was (a kill leaves an interrupted restore that the next one resumes). The
// directory can then be opened with Options.ResumeLocal.
func (p *PreparedRestore) Run(ctx context.Context) (RestoreResult, error) {
	j := p.job
	switch {
	case p.dryRun:
		return RestoreResult{}, errors.New("tiered: restore: prepared as a dry run; prepare it again without DryRun")
	case p.ran:
		return RestoreResult{}, errors.New("tiered: restore: already run; prepare it again")
	}
	p.ran = true
	start := time.Now()
	if err := j.stage(ctx); err != nil {
		return RestoreResult{}, fmt.Errorf("tiered: restore version %d: %w", j.m.Version, err)
	}
	cp := j.checkpoint()
	eng, err := all.Open(j.m.Engine, j.params, engines.OpenOptions{Dir: j.stagedPath(), Checkpoint: &cp, FS: j.fs})
	if err == nil {
		// Opening from the checkpoint writes the engine's own state file;
		// closing persists it.
		err = eng.Close()
	}
	if err != nil {
		j.abort()
		return RestoreResult{}, fmt.Errorf("tiered: restore version %d: open %s engine: %w", j.m.Version, j.m.Engine, err)
	}
	committed, err := j.commit()
	if !committed {
		if !errors.Is(err, errUnknownCommit) {
			j.abort()
		}
		return RestoreResult{}, fmt.Errorf("tiered: restore version %d: %w", j.m.Version, err)
	}
	p.created = false // the directory holds a store now: keep it
	if err := j.finish(); err != nil {
		return RestoreResult{}, fmt.Errorf("tiered: restored version %d, but removing the replaced state failed (the next restore retries): %w", j.m.Version, err)
	}
	return j.result(start), nil
}

// Close releases the directory (and removes it if PrepareRestore created it
// and nothing was restored into it).
func (p *PreparedRestore) Close() { p.release(p.created) }

func (p *PreparedRestore) release(removeCreated bool) {
	if p.lock == nil {
		return
	}
	if removeCreated && p.created {
		removeNewDir(p.dir)
	}
	p.lock.unlock()
	p.lock = nil
}

// PlanRestore says what restoring version (0 = latest) into the store
// directory dir would download and reuse. It reads the local run files it
// could reuse to check their CRC-32C, and changes nothing.
func PlanRestore(ctx context.Context, dir string, st objstore.Store, version uint64) (RestorePlan, error) {
	p, err := PrepareRestore(ctx, dir, st, version, RestoreOptions{DryRun: true})
	if err != nil {
		return RestorePlan{}, err
	}
	defer p.Close()
	return p.Plan(), nil
}

// RestoreTo restores version (0 = latest) into the store directory dir
// without keeping a store open (PrepareRestore, then Run; progress, if
// non-nil, receives bytes done and the total to download). The directory
// can then be opened with Options.ResumeLocal. Whatever was in dir before
// is replaced, but only once the new state is complete; on error it is left
// as it was.
func RestoreTo(ctx context.Context, dir string, st objstore.Store, version uint64, progress func(done, total int64)) (RestoreResult, error) {
	p, err := PrepareRestore(ctx, dir, st, version, RestoreOptions{Progress: progress})
	if err != nil {
		return RestoreResult{}, err
	}
	defer p.Close()
	return p.Run(ctx)
}

// createDir creates dir if it does not exist; created reports whether it did.
func createDir(fsys engines.FS, dir string) (created bool, err error) {
	if existsDir(fsys, dir) {
		return false, nil
	}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("tiered: create %s: %w", dir, err)
	}
	return true, nil
}

// removeNewDir removes a directory this process created when what it was
// created for failed: its LOCK, then the directory if it is empty.
func removeNewDir(dir string) {
	_ = os.Remove(filepath.Join(dir, lockFileName))
	_ = os.Remove(dir) // fails, harmlessly, unless empty
}
