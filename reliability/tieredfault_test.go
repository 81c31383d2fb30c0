package reliability

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/reliability/faultfs"
	"github.com/tierkv/tierkv/tiered"
)

// cands is what a state may hold per key: the set of entries each key may
// have (the zero entry: absent). Keys not in the map may only be absent.
type cands map[int]map[entry]bool

// exact returns the candidates that admit s and nothing else.
func exact(s state) cands {
	c := cands{}
	for k, e := range s {
		c[k] = map[entry]bool{e: true}
	}
	return c
}

func (c cands) clone() cands {
	o := make(cands, len(c))
	for k, es := range c {
		o[k] = make(map[entry]bool, len(es))
		for e := range es {
			o[k][e] = true
		}
	}
	return o
}

// add admits e for key k besides what c admitted.
func (c cands) add(k int, e entry) {
	if c[k] == nil {
		c[k] = map[entry]bool{{}: true}
	}
	c[k][e] = true
}

// set admits e and nothing else for key k.
func (c cands) set(k int, e entry) { c[k] = map[entry]bool{e: true} }

// union admits, besides c, everything o admits.
func (c cands) union(o cands) {
	for k := 0; k < numKeys; k++ {
		if _, ok := c[k]; !ok {
			c[k] = map[entry]bool{{}: true}
		}
		if _, ok := o[k]; !ok {
			c[k][entry{}] = true
		}
		for e := range o[k] {
			c[k][e] = true
		}
	}
}

// admits returns nil if s is one of the states c admits, else what differs.
func (c cands) admits(s state) error {
	for k := 0; k < numKeys; k++ {
		got := s[k]
		es, ok := c[k]
		if (!ok && got != (entry{})) || (ok && !es[got]) {
			want := []entry{{}}
			if ok {
				want = want[:0]
				for e := range es {
					want = append(want, e)
				}
			}
			return fmt.Errorf("%s holds %v, expected one of %v", keyName(k), got, want)
		}
	}
	return nil
}

// pathGuard is an engines.FS that records every changing call (create or
// open for writing, rename, remove, mkdir) on a path outside its roots.
type pathGuard struct {
	engines.FS
	roots []string

	mu      sync.Mutex
	escaped []string
}

func (g *pathGuard) check(op string, paths ...string) {
	for _, p := range paths {
		p = filepath.Clean(p)
		inside := false
		for _, r := range g.roots {
			if p == r || strings.HasPrefix(p, r+string(filepath.Separator)) {
				inside = true
			}
		}
		if !inside {
			g.mu.Lock()
			g.escaped = append(g.escaped, op+" "+p)
			g.mu.Unlock()
		}
	}
}

func (g *pathGuard) OpenFile(name string, flag int, perm os.FileMode) (engines.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0 {
		g.check("open for writing", name)
	}
	return g.FS.OpenFile(name, flag, perm)
}

func (g *pathGuard) Remove(name string) error { g.check("remove", name); return g.FS.Remove(name) }

func (g *pathGuard) Rename(oldpath, newpath string) error {
	g.check("rename", oldpath, newpath)
	return g.FS.Rename(oldpath, newpath)
}

func (g *pathGuard) MkdirAll(dir string, perm os.FileMode) error {
	g.check("mkdir", dir)
	return g.FS.MkdirAll(dir, perm)
}

// tieredFaultRun is one run of the tiered workload under one fault setting,
// with the model of what every directory and version may hold.
type tieredFaultRun struct {
	root      string // holds dir and dir2, nothing else
	dir, dir2 string
	remote    objstore.Store
	fs        *faultfs.FS
	guard     *pathGuard

	surfaced []error          // every error the workload got, in order
	problems []string         // guarantees broken during the workload
	snaps    map[uint64]cands // what each version this store committed holds
	pending  cands            // union of the states of snapshots that failed (and may have committed)
	cur      cands            // what the live store may hold now
	durable  cands            // what the store directory may reopen with
	// The versions the STORE of each directory may name on reopen: the
	// version of its last successful snapshot or restore, and those of the
	// snapshots and restores that failed since (above: any newer version).
	storeVersions, dir2Versions versionSet
	dir2Alt                     []cands // the states dir2 may hold (any one of them)
}

// tieredWorkload runs, in a fresh directory through fs: Open, writes,
// Snapshot, writes, Snapshot, Restore of the first version, writes,
// Snapshot, Close; then PrepareRestore(...).Run of the latest version and
// of the first one into a second directory. It goes on after errors.
func tieredWorkload(t *testing.T, kind string, seed uint64, writes int, o faultfs.Options) *tieredFaultRun {
	ctx := context.Background()
	root := t.TempDir()
	r := &tieredFaultRun{
		root: root, dir: filepath.Join(root, "store"), dir2: filepath.Join(root, "restore"),
		remote: objstore.NewMem(), snaps: map[uint64]cands{},
		cur: cands{}, durable: cands{}, dir2Alt: []cands{{}},
		storeVersions: versionSet{exact: map[uint64]bool{0: true}}, dir2Versions: versionSet{exact: map[uint64]bool{0: true}},
	}
	r.guard = &pathGuard{FS: engines.OSFS{}, roots: []string{r.dir, r.dir2}}
	r.fs = faultfs.New(r.guard, o)
	rng := rand.New(rand.NewPCG(seed, 11))
	fail := func(op string, err error) bool {
		if err != nil {
			r.surfaced = append(r.surfaced, fmt.Errorf("%s: %w", op, err))
			return true
		}
		return false
	}
	s, err := tiered.Open(ctx, tiered.Options{Dir: r.dir, ObjectStore: r.remote, FS: r.fs, Engine: kind, Params: tinyParams(kind), UploadConcurrency: 2})
	fail("open", err)
	seq := uint64(0)
	doWrites := func() {
		for i := 0; i < writes; i++ {
			seq++
			k := rng.IntN(numKeys)
			e := entry{}
			if rng.IntN(7) == 0 {
				err = s.Delete([]byte(keyName(k)))
			} else {
				e = entry{Seq: seq, Pad: rng.IntN(60)}
				err = s.Set([]byte(keyName(k)), makeValue(k, e.Seq, e.Pad))
			}
			r.durable.add(k, e)
			if fail("write", err) {
				r.cur.add(k, e)
			} else {
				r.cur.set(k, e)
			}
		}
	}
	// pin reads the live state after op and checks it against what the
	// model admits; it returns the state read (nil if reads failed).
	pin := func(op string, admitted cands) state {
		got, err := readState(s)
		if err != nil {
			if strings.Contains(err.Error(), "wrong value") {
				r.problems = append(r.problems, fmt.Sprintf("after %s: %v", op, err))
			} else {
				fail("read after "+op, err)
			}
			return nil
		}
		if err := admitted.admits(got); err != nil {
			r.problems = append(r.problems, fmt.Sprintf("after %s the live store holds the wrong state: %v", op, err))
		}
		return got
	}
	var first uint64
	snapshot := func() {
		res, err := s.Snapshot(ctx)
		if fail("snapshot", err) {
			r.storeVersions.above = true
			if r.pending == nil {
				r.pending = r.cur.clone()
			} else {
				r.pending.union(r.cur)
			}
			return
		}
		if first == 0 {
			first = res.Version
		}
		r.snaps[res.Version] = r.cur.clone()
		r.storeVersions = versionSet{exact: map[uint64]bool{res.Version: true}}
		if got := pin(fmt.Sprintf("snapshot %d", res.Version), r.cur); got != nil {
			r.snaps[res.Version], r.cur, r.durable = exact(got), exact(got), exact(got)
		}
	}
	if s != nil {
		doWrites()
		snapshot()
		doWrites()
		snapshot()
		if first != 0 {
			_, err := s.Restore(ctx, first)
			op := fmt.Sprintf("restore %d", first)
			if fail(op, err) {
				pin("failed "+op+" (the old state must be intact)", r.cur)
				r.storeVersions.exact[first] = true
			} else {
				r.storeVersions = versionSet{exact: map[uint64]bool{first: true}}
				if got := pin(op, r.snaps[first]); got != nil {
					r.cur, r.durable = exact(got), exact(got)
				}
			}
		}
		doWrites()
		snapshot()
		got := pin("the last writes", r.cur)
		if !fail("close", s.Close()) && got != nil {
			r.durable = exact(got)
		}
	}
	// Restores into a second directory with no store open.
	vs, err := manifest.ListVersions(ctx, r.remote)
	if err != nil {
		t.Fatalf("list versions of the in-memory remote: %v", err)
	}
	if len(vs) == 0 {
		return r
	}
	for _, v := range []uint64{vs[len(vs)-1], vs[0]} {
		want, err := r.versionCands(v)
		if err != nil {
			r.problems = append(r.problems, err.Error())
			continue
		}
		op := fmt.Sprintf("restore %d into a second directory", v)
		p, err := tiered.PrepareRestore(ctx, r.dir2, r.remote, v, tiered.RestoreOptions{FS: r.fs, Concurrency: 2})
		if fail("prepare "+op, err) {
			continue
		}
		_, err = p.Run(ctx)
		p.Close()
		if fail(op, err) {
			r.dir2Alt = append(r.dir2Alt, want)
			r.dir2Versions.exact[v] = true
		} else {
			r.dir2Alt = []cands{want}
			r.dir2Versions = versionSet{exact: map[uint64]bool{v: true}}
		}
	}
	return r
}

// versionSet is a set of versions: those in exact, and with above every
// version above the highest of them.
type versionSet struct {
	exact map[uint64]bool
	above bool
}

func (vs versionSet) has(v uint64) bool {
	if vs.exact[v] {
		return true
	}
	for e := range vs.exact {
		if vs.above && v > e {
			return true
		}
	}
	return false
}

func (vs versionSet) String() string {
	var out []uint64
	for v := range vs.exact {
		out = append(out, v)
	}
	slices.Sort(out)
	if vs.above {
		return fmt.Sprintf("%v or above", out)
	}
	return fmt.Sprint(out)
}

// versionCands returns what version v of the remote may hold: the state
// pinned when its Snapshot returned, or for a version whose Snapshot failed
// (a commit that landed anyway), one of the states of the failed snapshots.
func (r *tieredFaultRun) versionCands(v uint64) (cands, error) {
	if c, ok := r.snaps[v]; ok {
		return c, nil
	}
	if r.pending != nil {
		return r.pending, nil
	}
	return nil, fmt.Errorf("the remote holds version %d, which no Snapshot of the workload was committing", v)
}

// tieredFaultStats tallies one engine and fault class.
type tieredFaultStats struct {
	runs, injected, surfaced, swallowed, chainLost int
	reopenOK, reopenNamed, resumed                 int // the store directory
	dir2OK, dir2Named, dir2Resumed                 int // the restore directory
	versions                                       int // committed versions restored and compared
}

// checkTieredFaultRun checks one faulted run with the real file system; it
// returns the broken guarantees.
func checkTieredFaultRun(t *testing.T, r *tieredFaultRun, st *tieredFaultStats) []string {
	t.Helper()
	ctx := context.Background()
	problems := slices.Clone(r.problems)
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// (a) Every committed version restores exactly to what it was committed
	// with.
	vs, err := manifest.ListVersions(ctx, r.remote)
	if err != nil {
		t.Fatalf("list versions of the in-memory remote: %v", err)
	}
	for _, v := range vs {
		want, err := r.versionCands(v)
		if err != nil {
			bad("%v", err)
			continue
		}
		got, err := restoreState(ctx, t.TempDir(), r.remote, v)
		if err != nil {
			bad("committed version %d does not restore: %v", v, err)
			continue
		}
		if err := want.admits(got); err != nil {
			bad("committed version %d restores to the wrong state: %v", v, err)
		}
		st.versions++
	}
	// A version whose Snapshot succeeded must be in the remote.
	for v := range r.snaps {
		if !slices.Contains(vs, v) {
			bad("Snapshot returned version %d, but the remote does not hold it", v)
		}
	}

	// (b) The store directory reopens with its durable state, or refuses
	// with an error naming one of its files.
	latest := uint64(0)
	if len(vs) > 0 {
		latest = vs[len(vs)-1]
	}
	reopen := func(dir string, alts []cands, versions versionSet, ok, named, resumed *int) {
		s, err := tiered.Open(ctx, tiered.Options{Dir: dir, FS: checkFS})
		if err != nil {
			if !namesLocalFile(err, dir) {
				bad("reopening %s fails with an error that names none of its files: %v", dir, err)
				return
			}
			*named++
			t.Logf("reopening %s refused (%v): %v", dir, r.fs.Injected(), err)
			if !errors.Is(err, tiered.ErrRestoreUnfinished) || latest == 0 {
				return
			}
			// An interrupted restore: a restore (real FS) finishes it.
			want, cerr := r.versionCands(latest)
			if cerr != nil {
				return // reported by (a)
			}
			got, rerr := restoreState(ctx, dir, r.remote, latest)
			if rerr != nil {
				bad("the restore interrupted in %s does not resume: %v", dir, rerr)
				return
			}
			if aerr := want.admits(got); aerr != nil {
				bad("the resumed restore in %s gives the wrong state of version %d: %v", dir, latest, aerr)
			}
			*resumed++
			return
		}
		if v := s.Version(); !versions.has(v) {
			bad("reopened %s says it holds version %d, but its last snapshot or restore that succeeded (or failed since) is of version %s: STORE lags the state", dir, v, versions)
		}
		got, rerr := readState(s)
		cerr := s.Close()
		switch {
		case rerr != nil:
			bad("reopened %s: %v", dir, rerr)
		case cerr != nil:
			bad("close reopened %s: %v", dir, cerr)
		default:
			var why []string
			for _, c := range alts {
				aerr := c.admits(got)
				if aerr == nil {
					why = nil
					break
				}
				why = append(why, aerr.Error())
			}
			if len(why) > 0 {
				bad("reopened %s holds a state it never durably had (%d keys): %s", dir, len(got), strings.Join(why, "; or "))
			}
		}
		// (c) A successful reopen and Close leave no RESTORING behind.
		if _, err := os.Stat(filepath.Join(dir, "RESTORING")); err == nil {
			bad("RESTORING is left in %s after a successful reopen and Close", dir)
		}
		*ok++
	}
	reopen(r.dir, []cands{r.durable}, r.storeVersions, &st.reopenOK, &st.reopenNamed, &st.resumed)
	reopen(r.dir2, r.dir2Alt, r.dir2Versions, &st.dir2OK, &st.dir2Named, &st.dir2Resumed)

	// (c) Nothing was written outside the two directories.
	for _, e := range r.guard.escaped {
		bad("written outside the store directories: %s", e)
	}
	ents, err := os.ReadDir(r.root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != filepath.Base(r.dir) && e.Name() != filepath.Base(r.dir2) {
			bad("%s appeared beside the store directories", filepath.Join(r.root, e.Name()))
		}
	}
	return problems
}

// namesLocalFile reports whether err names one of the files of the store
// directory dir.
func namesLocalFile(err error, dir string) bool {
	msg := err.Error()
	if !strings.Contains(msg, dir) {
		return false
	}
	for _, name := range []string{"STORE", "RESTORING", "CURRENT", "data-"} {
		if strings.Contains(msg, name) {
			return true
		}
	}
	return false
}

// checkFS is the file system of the checks: the real one without faults,
// and without fsyncs (nothing crashes during a check; fsyncs on a shared
// disk would make the sweep slow).
var checkFS = faultfs.New(nil, faultfs.Options{FailAt: -1, NoSync: true})

// restoreState restores version v of remote into dir with checkFS (as
// RestoreTo does), reopens it and reads its state.
func restoreState(ctx context.Context, dir string, remote objstore.Store, v uint64) (state, error) {
	p, err := tiered.PrepareRestore(ctx, dir, remote, v, tiered.RestoreOptions{FS: checkFS})
	if err != nil {
		return nil, err
	}
	_, err = p.Run(ctx)
	p.Close()
	if err != nil {
		return nil, err
	}
	s, err := tiered.Open(ctx, tiered.Options{Dir: dir, FS: checkFS})
	if err != nil {
		return nil, fmt.Errorf("open the restored directory: %w", err)
	}
	got, err := readState(s)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return got, err
}

// TestTieredDiskFaultSweep runs a tiered workload (Open, writes, three
// Snapshots, a Restore, Close, then two PrepareRestore(...).Run into a
// second directory) with Options.FS and RestoreOptions.FS a faultfs that
// fails the n-th write-class call, separately the n-th fsync-class call (a
// failed file fsync drops the bytes written since the last good one), and
// separately every write and fsync from the n-th on (a dying disk), under
// each engine. The object store is in memory and never fails. n sweeps the
// calls of a clean run (every call under TIERKV_STRESS=1, a spread of them
// otherwise) until a run injects nothing. After each run, on the real file
// system (checkFS): every version in the remote restores into a fresh
// directory to exactly the state read when its Snapshot returned (or, for
// a snapshot that reported an error, to a state it may have committed),
// and every version a Snapshot returned is there; both directories reopen
// with a state they durably held (per key: the value at the last
// successful snapshot, restore or Close, or one written since; for the
// restore directory: one of the versions restored into it, or its state
// before) and say the version of their last successful snapshot or restore
// (or of one that failed since), or refuse with an error naming one of
// their files (an interrupted restore must then resume with a restore); a
// successful reopen and Close leave no RESTORING; and nothing is written
// outside the two directories.
func TestTieredDiskFaultSweep(t *testing.T) {
	seed := testSeed(t)
	writes := pick(40, 150)
	for _, kind := range kinds {
		for _, cl := range faultClasses {
			t.Run(kind+"/"+cl.name, func(t *testing.T) {
				clean := tieredWorkload(t, kind, seed, writes, faultfs.Options{Ops: cl.ops, FailAt: -1, NoSync: true})
				if len(clean.surfaced) > 0 {
					t.Fatalf("clean run failed: %v", clean.surfaced)
				}
				var st tieredFaultStats
				if p := checkTieredFaultRun(t, clean, &st); len(p) > 0 {
					t.Fatalf("clean run: %s", strings.Join(p, "\n"))
				}
				calls := clean.fs.Count()
				step := max(1, calls/pick(8, calls))
				st = tieredFaultStats{}
				for n := 0; ; n += step {
					r := tieredWorkload(t, kind, seed, writes, faultfs.Options{Ops: cl.ops, FailAt: n, Sticky: cl.sticky, NoSync: true})
					injected := r.fs.Injected()
					if len(injected) == 0 && n >= calls {
						// Past the last call: a clean run ends the sweep.
						if len(r.surfaced) > 0 {
							t.Errorf("n=%d: no fault injected, yet: %v", n, r.surfaced)
						}
						break
					}
					if n > 100*calls {
						t.Fatalf("the sweep does not end: n=%d, %d calls in a clean run", n, calls)
					}
					st.runs++
					st.injected += len(injected)
					switch {
					case len(injected) == 0 && len(r.surfaced) > 0:
						t.Errorf("n=%d: no fault injected, yet: %v", n, r.surfaced)
					case len(injected) > 0 && len(r.surfaced) == 0:
						st.swallowed++
					case len(injected) > 0:
						st.surfaced++
						if !errors.Is(r.surfaced[0], faultfs.ErrInjected) {
							st.chainLost++
							t.Errorf("n=%d (%v): the first error returned does not wrap the injected one: %v", n, injected, r.surfaced[0])
						}
					}
					for _, p := range checkTieredFaultRun(t, r, &st) {
						t.Errorf("n=%d (%v; errors returned: %v): %s", n, injected, r.surfaced, p)
					}
				}
				t.Logf("%s %s faults: %d counted calls in a clean run, %d runs (every %d-th call), %d faults injected, %d surfaced (%d not wrapping the injected error), %d swallowed; %d versions restored and checked; store dir: %d reopened, %d refused naming a file (%d interrupted restores resumed); restore dir: %d reopened, %d refused naming a file (%d resumed)",
					kind, cl.name, calls, st.runs, step, st.injected, st.surfaced, st.chainLost, st.swallowed, st.versions,
					st.reopenOK, st.reopenNamed, st.resumed, st.dir2OK, st.dir2Named, st.dir2Resumed)
			})
		}
	}
	checkNoLeaks(t)
}

// TestTieredFreshOpenFault fails, one at a time, every write-class and
// fsync-class call that tiered.Open and Close make while they create a new
// store (the engine's first files, then STORE), under each engine. Nothing
// was written to the store, so reopening the directory on the real file
// system must give a working empty store: when Open failed before STORE
// was written, no STORE names the data directory it made, and nothing else
// may refer to it.
func TestTieredFreshOpenFault(t *testing.T) {
	ctx := context.Background()
	for _, kind := range kinds {
		refused := 0
		for n := 0; ; n++ {
			dir := filepath.Join(t.TempDir(), "store")
			fs := faultfs.New(nil, faultfs.Options{FailAt: n, NoSync: true})
			s, err := tiered.Open(ctx, tiered.Options{Dir: dir, FS: fs, Engine: kind, Params: tinyParams(kind)})
			if err == nil {
				err = s.Close()
				if len(fs.Injected()) == 0 {
					if err != nil {
						t.Fatalf("%s: clean run: %v", kind, err)
					}
					t.Logf("%s: swept the %d write and fsync calls of creating and closing a store; %d left a directory that does not reopen", kind, n, refused)
					break
				}
			}
			injected := fs.Injected()
			if err != nil && !errors.Is(err, faultfs.ErrInjected) {
				t.Errorf("%s n=%d (%v): the error does not wrap the injected one: %v", kind, n, injected, err)
			}
			r, err := tiered.Open(ctx, tiered.Options{Dir: dir, Engine: kind, Params: tinyParams(kind)})
			if err != nil {
				refused++
				t.Errorf("%s n=%d (%v): nothing was written to the store, yet its directory does not reopen: %v", kind, n, injected, err)
				continue
			}
			got, err := readState(r)
			if cerr := r.Close(); err == nil {
				err = cerr
			}
			if err != nil || len(got) != 0 {
				t.Errorf("%s n=%d (%v): reopened store: %v, %d keys; want an empty store", kind, n, injected, err, len(got))
			}
		}
	}
}

// TestTieredRestoreMarkerDirSync: Store.Restore writes RESTORING with
// engines.WriteFileAtomic, whose directory fsync fails after the rename took
// effect. Restore returns the error and the store goes on serving its old
// state ("a failure at any point leaves it intact"); a write and a Close
// that succeed follow. Reopening the directory (no remote: its local state)
// must then give that write, not refuse it as an unfinished restore that
// nothing is continuing: the only ways forward the refusal offers (Open with
// a remote, tierkv restore) discard the write that Close acknowledged.
func TestTieredRestoreMarkerDirSync(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs := faultfs.New(nil, faultfs.Options{Ops: faultfs.OpSyncDir, FailAt: -1, NoSync: true})
	s, err := tiered.Open(ctx, tiered.Options{Dir: dir, ObjectStore: objstore.NewMem(), FS: fs, Engine: "memonly"})
	if err != nil {
		t.Fatal(err)
	}
	set := func(seq uint64) {
		t.Helper()
		if err := s.Set([]byte(keyName(1)), makeValue(1, seq, 3)); err != nil {
			t.Fatal(err)
		}
	}
	set(1)
	v1, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	set(2)
	if _, err := s.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	fs.SetFailAt(fs.Count()) // the next directory fsync: RESTORING's
	_, err = s.Restore(ctx, v1.Version)
	injected := fs.Injected()
	if !errors.Is(err, faultfs.ErrInjected) || len(injected) != 1 || injected[0].Path != dir {
		t.Fatalf("Restore: %v after %v; want the injected failure of the directory fsync of %s", err, injected, dir)
	}
	set(3) // the old state still serves
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := tiered.Open(ctx, tiered.Options{Dir: dir})
	if err != nil {
		t.Fatalf("reopen after a failed Restore and a successful Close: %v", err)
	}
	defer r.Close()
	if e := entryOf(t, r, 1); e.Seq != 3 {
		t.Fatalf("%s = %v after reopen; want seq 3, written and closed after the failed Restore", keyName(1), e)
	}
}

// storeWriteFS fails the creation of STORE.tmp (so every write of STORE)
// while armed; everything else goes to the real file system.
type storeWriteFS struct {
	engines.FS
	mu    sync.Mutex
	armed bool
	pass  int // STORE writes still let through once armed
}

// arm fails every STORE write after the next pass ones (while on).
func (f *storeWriteFS) arm(on bool, pass int) {
	f.mu.Lock()
	f.armed, f.pass = on, pass
	f.mu.Unlock()
}

func (f *storeWriteFS) OpenFile(name string, flag int, perm os.FileMode) (engines.File, error) {
	fail := false
	if filepath.Base(name) == "STORE"+engines.TempSuffix && flag&os.O_CREATE != 0 {
		f.mu.Lock()
		if f.armed {
			fail = f.pass == 0
			f.pass = max(f.pass-1, 0)
		}
		f.mu.Unlock()
	}
	if fail {
		return nil, &os.PathError{Op: "open", Path: name, Err: faultfs.ErrInjected}
	}
	return f.FS.OpenFile(name, flag, perm)
}

// TestTieredSnapshotStoreLag: Snapshot records the commit of version 2 in
// STORE, commits it to the remote, then fails to record the outcome in
// STORE (the disk fails from then on, so Close fails to record it too; the
// process then stops). The engine's sealed state is
// version 2's, so the directory must reopen (ResumeLocal) as version 2 with
// the metadata committed with it, or refuse with an error naming STORE, or,
// only if Snapshot reported the error, as version 1 (plus writes the caller
// knows as not snapshotted). It used to report success and reopen as
// version 1: Metadata() returned version 1's metadata beside version 2's
// state, and the next Snapshot failed with ErrDiverged.
func TestTieredSnapshotStoreLag(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs := &storeWriteFS{FS: engines.OSFS{}}
	remote := objstore.NewMem()
	s, err := tiered.Open(ctx, tiered.Options{Dir: dir, ObjectStore: remote, FS: fs, Engine: "memonly"})
	if err != nil {
		t.Fatal(err)
	}
	reported := false // the second Snapshot returned an error
	for seq := uint64(1); seq <= 2; seq++ {
		if err := s.Set([]byte(keyName(1)), makeValue(1, seq, 3)); err != nil {
			t.Fatal(err)
		}
		fs.arm(seq == 2, 1) // the record of the commit in flight passes
		res, err := s.Snapshot(ctx, tiered.WithMetadata(map[string]string{"offset": fmt.Sprint(seq)}))
		switch {
		case seq == 2 && err != nil:
			reported = true // the version is committed all the same (checked below)
		case err != nil || res.Version != seq:
			t.Fatalf("Snapshot = version %d, %v; want version %d", res.Version, err, seq)
		}
	}
	if vs, err := manifest.ListVersions(ctx, remote); err != nil || len(vs) != 2 {
		t.Fatalf("remote versions %v, %v; want 1 and 2", vs, err)
	}
	if err := s.Close(); !errors.Is(err, faultfs.ErrInjected) {
		t.Fatalf("Close with STORE unwritable: %v, want the injected error", err)
	}
	r, err := tiered.Open(ctx, tiered.Options{Dir: dir, ObjectStore: remote, ResumeLocal: true})
	if err != nil {
		if !namesLocalFile(err, dir) {
			t.Fatalf("reopen: %v; want success or an error naming STORE", err)
		}
		return
	}
	defer r.Close()
	if e := entryOf(t, r, 1); e.Seq != 2 {
		t.Fatalf("%s = %v, want seq 2 (sealed by the snapshot of version 2)", keyName(1), e)
	}
	v, md := r.Version(), r.Metadata()
	switch {
	case v == 2 && md["offset"] == "2":
		if _, err := r.Snapshot(ctx); err != nil {
			t.Errorf("Snapshot after reopening as version 2: %v", err)
		}
	case reported && v == 1 && md["offset"] == "1":
		// Snapshot said version 2 failed: version 1 plus writes not
		// snapshotted, as far as the caller knows. The remote's version 2
		// is not known to be this directory's own, so the next Snapshot
		// may report the divergence.
		if _, err := r.Snapshot(ctx); err != nil && !errors.Is(err, tiered.ErrDiverged) {
			t.Errorf("Snapshot after reopening as version 1: %v", err)
		}
	default:
		t.Errorf("reopened directory holds version 2's state but says version %d with metadata %v (the Snapshot of version 2 reported an error: %v)", v, md, reported)
	}
}

// entryOf returns what key k holds in g (the zero entry: absent).
func entryOf(t *testing.T, g getter, k int) entry {
	t.Helper()
	got, err := readState(g)
	if err != nil {
		t.Fatal(err)
	}
	return got[k]
}
