package tiered

import (
	"errors"
	"strings"
	"testing"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
)

// wantDiverged fails unless err matches ErrDiverged and names every string
// of names.
func wantDiverged(t *testing.T, err error, what string, names ...string) {
	t.Helper()
	if !errors.Is(err, ErrDiverged) {
		t.Fatalf("%s: %v; want ErrDiverged", what, err)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Fatalf("%s: %q does not mention %q", what, err, n)
		}
	}
}

func latestVersion(t *testing.T, st objstore.Store) uint64 {
	t.Helper()
	vs, err := manifest.ListVersions(ctxT(t), st)
	if err != nil || len(vs) == 0 {
		t.Fatalf("versions: %v, %v", vs, err)
	}
	return vs[len(vs)-1]
}

// TestDivergedWritersAreRefused: two directories restored from version 1;
// the first commits version 2, the second is refused and version 2 keeps
// the first one's writes.
func TestDivergedWritersAreRefused(t *testing.T) {
	ctx := ctxT(t)
	mem := objstore.NewMem()
	s0 := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem})
	base := map[string]string{}
	setAll(t, s0, base, kvs("k", 50, 20, 1))
	if _, err := s0.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	_ = s0.Close()

	a := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem})
	b := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem})
	modelA := cloneMap(base)
	setAll(t, a, modelA, map[string]string{"a": "1"})
	res, err := a.Snapshot(ctx)
	if err != nil || res.Version != 2 || res.Parent != 1 {
		t.Fatalf("A: %+v, %v; want version 2, parent 1", res, err)
	}
	setAll(t, b, cloneMap(base), map[string]string{"b": "1"})
	_, err = b.Snapshot(ctx)
	if !errors.Is(err, ErrFenced) && !errors.Is(err, ErrDiverged) {
		t.Fatalf("B after A committed: %v; want ErrFenced or ErrDiverged", err)
	}
	if got := latestVersion(t, mem); got != 2 {
		t.Fatalf("latest %d, want 2", got)
	}
	r := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem})
	checkState(t, r, modelA, map[string]bool{"b": true}, "latest after the refused writer")

	// B reopened from its local state (as the CLI does) is refused as
	// diverged, naming both versions.
	_ = b.Close()
	b2 := mustOpen(t, Options{Dir: b.dir, ObjectStore: mem, ResumeLocal: true})
	_, err = b2.Snapshot(ctx)
	wantDiverged(t, err, "stale writer reopened from local state", "version 1", "latest is 2")
}

// TestFreshDirectoryIsRefused: a new empty directory with writes does not
// commit over an existing history.
func TestFreshDirectoryIsRefused(t *testing.T) {
	ctx := ctxT(t)
	mem := objstore.NewMem()
	s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem})
	setAll(t, s, map[string]string{}, kvs("k", 10, 10, 2))
	if _, err := s.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	f := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, ResumeLocal: true})
	setAll(t, f, map[string]string{}, map[string]string{"x": "1"})
	_, err := f.Snapshot(ctx)
	wantDiverged(t, err, "fresh directory", "no version", "up to 1")
	if got := latestVersion(t, mem); got != 1 {
		t.Fatalf("latest %d, want 1", got)
	}
}

// TestRollbackSurvivesProcessBoundary: RestoreTo an older version while the
// latest is L, reopen with ResumeLocal, write and snapshot: version L+1 with
// the rolled-back parent. If another writer commits first, refused.
func TestRollbackSurvivesProcessBoundary(t *testing.T) {
	ctx := ctxT(t)
	mem := objstore.NewMem()
	s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem})
	v1 := map[string]string{}
	setAll(t, s, v1, kvs("k", 20, 10, 3))
	if _, err := s.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	setAll(t, s, cloneMap(v1), map[string]string{"late": "x"})
	if _, err := s.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	if _, err := RestoreTo(ctx, dir, mem, 1, nil); err != nil {
		t.Fatal(err)
	}
	r := mustOpen(t, Options{Dir: dir, ObjectStore: mem, ResumeLocal: true})
	model := cloneMap(v1)
	setAll(t, r, model, map[string]string{"after-rollback": "y"})
	res, err := r.Snapshot(ctx)
	if err != nil || res.Version != 3 || res.Parent != 1 {
		t.Fatalf("snapshot after rollback across processes: %+v, %v; want version 3, parent 1", res, err)
	}
	_ = r.Close()
	r = mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem})
	checkState(t, r, model, map[string]bool{"late": true}, "version 3")

	// Rolled back to 1 while latest was 3; another writer commits 4: the
	// rolled-back state is refused.
	dir2 := t.TempDir()
	if _, err := RestoreTo(ctx, dir2, mem, 1, nil); err != nil {
		t.Fatal(err)
	}
	setAll(t, s, map[string]string{}, map[string]string{"other": "z"})
	_ = s.Close()
	other := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem})
	setAll(t, other, map[string]string{}, map[string]string{"other": "z"})
	if res, err := other.Snapshot(ctx); err != nil || res.Version != 4 {
		t.Fatalf("other writer: %+v, %v", res, err)
	}
	r2 := mustOpen(t, Options{Dir: dir2, ObjectStore: mem, ResumeLocal: true})
	setAll(t, r2, map[string]string{}, map[string]string{"w": "1"})
	_, err = r2.Snapshot(ctx)
	wantDiverged(t, err, "rollback overtaken", "rolled back to version 1", "latest was 3", "now 4")
}

// TestLocalStateIsNeverDiscarded: a local-only store keeps its state when a
// remote is added (it becomes version 1 of an empty remote); a never
// committed state is refused, not replaced, by a remote that has versions;
// a store of one remote is not committed to another.
func TestLocalStateIsNeverDiscarded(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	s := mustOpen(t, Options{Dir: dir})
	model := map[string]string{}
	setAll(t, s, model, kvs("local", 30, 10, 4))
	_ = s.Close()

	// A remote with versions of another store: refused at Open, kept.
	other := objstore.NewMem()
	o := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: other})
	setAll(t, o, map[string]string{}, map[string]string{"o": "1"})
	if _, err := o.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, Options{Dir: dir, ObjectStore: other})
	wantDiverged(t, err, "never-committed state against a remote with versions", "never committed")

	// An empty remote: the local state is reopened and becomes version 1.
	empty := objstore.NewMem()
	s = mustOpen(t, Options{Dir: dir, ObjectStore: empty})
	checkState(t, s, model, nil, "local state after adding an empty remote")
	res, err := s.Snapshot(ctx)
	if err != nil || res.Version != 1 {
		t.Fatalf("first snapshot to the empty remote: %+v, %v", res, err)
	}
	_ = s.Close()
	r := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: empty})
	checkState(t, r, model, nil, "version 1 restored elsewhere")

	// The same directory, now at version 1 of that remote, against a third
	// empty remote (a mistyped prefix): reopened, never wiped, and its
	// snapshot is refused naming the reason.
	third := objstore.NewMem()
	s = mustOpen(t, Options{Dir: dir, ObjectStore: third})
	checkState(t, s, model, nil, "local state against a mistyped remote")
	_, err = s.Snapshot(ctx)
	wantDiverged(t, err, "store of another remote", "none of this store's versions")
}
