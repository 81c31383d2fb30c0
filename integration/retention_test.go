package integration

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/tiered"
)

// remoteRuns returns the sorted keys and total size of the runs/ objects.
func remoteRuns(t *testing.T, st objstore.Store) ([]string, int64) {
	t.Helper()
	objs, err := st.List(t.Context(), manifest.RunKey(""))
	if err != nil {
		t.Fatalf("list runs: %v", err)
	}
	var keys []string
	var total int64
	for _, o := range objs {
		keys = append(keys, o.Key)
		total += o.Size
	}
	return keys, total
}

// referencedRuns returns the sorted run keys the given versions reference.
func referencedRuns(t *testing.T, st objstore.Store, versions []uint64) []string {
	t.Helper()
	set := map[string]bool{}
	for _, v := range versions {
		m, err := manifest.Load(t.Context(), st, v)
		if err != nil {
			t.Fatalf("load manifest %d: %v", v, err)
		}
		for _, r := range m.Runs {
			set[manifest.RunKey(r.Name)] = true
		}
	}
	var out []string
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// listVersions returns the versions in st.
func listVersions(t *testing.T, st objstore.Store) []uint64 {
	t.Helper()
	vs, err := manifest.ListVersions(t.Context(), st)
	if err != nil {
		t.Fatalf("list versions: %v", err)
	}
	return vs
}

// TestForgetGC applies retention on the real server: Forget and GC on a
// bare remote (dry runs change nothing and announce exactly what the real
// runs then delete; the kept versions still restore exactly and verify
// deeply), then Forget and GC through a live store, which must not delete
// the runs of its local state that no manifest references yet.
func TestForgetGC(t *testing.T) {
	t.Parallel()
	seed := testSeed(t)
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := ctxT(t)
		states, keys := buildVersions(t, b, 6, seed)
		st := b.open(t)

		// Forget on the bare remote.
		if _, err := tiered.Forget(ctx, st, tiered.Policy{}, false); !errors.Is(err, tiered.ErrEmptyPolicy) {
			t.Fatalf("forget with an empty policy: %v, want ErrEmptyPolicy", err)
		}
		if _, err := tiered.Forget(ctx, st, tiered.Policy{KeepLast: 1, Pins: []uint64{99}}, true); !errors.Is(err, tiered.ErrVersionNotFound) {
			t.Fatalf("forget pinning version 99: %v, want ErrVersionNotFound", err)
		}
		policy := tiered.Policy{KeepLast: 2, Pins: []uint64{2}}
		dry, err := tiered.Forget(ctx, st, policy, true)
		if err != nil || !slices.Equal(dry, []uint64{1, 3, 4}) {
			t.Fatalf("forget dry run: %v, %v; want [1 3 4]", dry, err)
		}
		if vs := listVersions(t, st); len(vs) != 6 {
			t.Fatalf("forget dry run deleted manifests: %v left", vs)
		}
		if got, err := tiered.Forget(ctx, st, tiered.Policy{KeepWithin: time.Hour}, true); err != nil || len(got) != 0 {
			t.Fatalf("forget dry run keeping the last hour: %v, %v; want nothing", got, err)
		}
		forgotten, err := tiered.Forget(ctx, st, policy, false)
		if err != nil || !slices.Equal(forgotten, dry) {
			t.Fatalf("forget: %v, %v; want the dry run's %v", forgotten, err, dry)
		}
		kept := []uint64{2, 5, 6}
		if vs := listVersions(t, st); !slices.Equal(vs, kept) {
			t.Fatalf("versions after forget: %v, want %v", vs, kept)
		}

		// GC on the bare remote.
		all, _ := remoteRuns(t, st)
		referenced := referencedRuns(t, st, kept)
		var garbage []string
		for _, k := range all {
			if _, found := slices.BinarySearch(referenced, k); !found {
				garbage = append(garbage, k)
			}
		}
		if len(garbage) == 0 {
			t.Fatalf("no unreferenced run after forgetting versions %v (of %d runs): the test needs merged-away runs", forgotten, len(all))
		}
		if res, err := tiered.GC(ctx, st, time.Hour, false); err != nil || len(res.Deleted) != 0 {
			t.Fatalf("gc with a grace period of an hour: %+v, %v; want nothing deleted", res, err)
		}
		dryGC, err := tiered.GC(ctx, st, 0, true)
		if err != nil || !slices.Equal(dryGC.Deleted, garbage) {
			t.Fatalf("gc dry run: %+v, %v; want %v", dryGC, err, garbage)
		}
		if after, _ := remoteRuns(t, st); !slices.Equal(after, all) {
			t.Fatalf("gc dry run deleted runs: %d of %d left", len(after), len(all))
		}
		res, err := tiered.GC(ctx, st, 0, false)
		if err != nil || !slices.Equal(res.Deleted, garbage) || res.Bytes != dryGC.Bytes || res.Bytes <= 0 {
			t.Fatalf("gc: %+v, %v; want the dry run's %+v", res, err, dryGC)
		}
		if after, _ := remoteRuns(t, st); !slices.Equal(after, referenced) {
			t.Fatalf("runs after gc: %v, want exactly the referenced %v", after, referenced)
		}
		if res, err := tiered.GC(ctx, st, 0, false); err != nil || len(res.Deleted) != 0 {
			t.Fatalf("second gc: %+v, %v; want nothing", res, err)
		}
		if problems, err := tiered.Verify(ctx, st, nil, true); err != nil || len(problems) != 0 {
			t.Fatalf("deep verify after forget and gc: %v, %v", problems, err)
		}
		for _, v := range kept {
			s := openStore(t, tiered.Options{Dir: filepath.Join(t.TempDir(), fmt.Sprint(v)), Remote: b.url, Version: v})
			checkState(t, s, states[v], keys, fmt.Sprintf("version %d after forget and gc", v))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tiered.Open(ctx, tiered.Options{Dir: filepath.Join(t.TempDir(), "gone"), Remote: b.url, Version: 3, Logger: testLogger()}); !errors.Is(err, tiered.ErrVersionNotFound) {
			t.Fatalf("open of forgotten version 3: %v, want ErrVersionNotFound", err)
		}

		// Through a live store: its unsnapshotted runs are protected.
		s := openStore(t, tiered.Options{Dir: filepath.Join(t.TempDir(), "live"), Remote: b.url, Params: tinyParams("lsm")})
		if s.Version() != 6 {
			t.Fatalf("live store opened at version %d, want 6", s.Version())
		}
		model := cloneMap(states[6])
		for i := range 200 {
			kv := map[string]string{keys[i%len(keys)]: strings.Repeat("live.", 1+i%20)}
			setAll(t, s, model, kv)
		}
		// Runs written and merged away since version 6 are garbage; the runs
		// of the local state are not, though no manifest names them yet.
		liveGC, err := s.GC(ctx, 0, false)
		if err != nil {
			t.Fatalf("store gc: %v", err)
		}
		snap, err := s.Snapshot(ctx, tiered.WithMetadata(map[string]string{"v": "7"}))
		if err != nil || snap.Version != 7 || snap.Parent != 6 {
			t.Fatalf("snapshot after store gc: %+v, %v", snap, err)
		}
		for _, k := range referencedRuns(t, st, []uint64{7}) {
			if slices.Contains(liveGC.Deleted, k) {
				t.Fatalf("store gc deleted %s, a run of the live state that version 7 then committed", k)
			}
		}
		if problems, err := tiered.Verify(ctx, st, []uint64{7}, false); err != nil || len(problems) != 0 {
			t.Fatalf("verify of version 7 after the live store's gc: %v, %v", problems, err)
		}
		dryS, err := s.Forget(ctx, tiered.Policy{KeepLast: 1}, true)
		if err != nil || !slices.Equal(dryS, []uint64{2, 5, 6}) {
			t.Fatalf("store forget dry run: %v, %v; want [2 5 6]", dryS, err)
		}
		if got, err := s.Forget(ctx, tiered.Policy{KeepLast: 1}, false); err != nil || !slices.Equal(got, dryS) {
			t.Fatalf("store forget: %v, %v; want %v", got, err, dryS)
		}
		dryStoreGC, err := s.GC(ctx, 0, true)
		if err != nil {
			t.Fatalf("store gc dry run: %v", err)
		}
		if res, err := s.GC(ctx, 0, false); err != nil || !slices.Equal(res.Deleted, dryStoreGC.Deleted) {
			t.Fatalf("store gc: %+v, %v; want the dry run's %v", res, err, dryStoreGC.Deleted)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close live store: %v", err)
		}
		if vs := listVersions(t, st); !slices.Equal(vs, []uint64{7}) {
			t.Fatalf("versions after store forget: %v, want [7]", vs)
		}
		if problems, err := tiered.Verify(ctx, st, nil, true); err != nil || len(problems) != 0 {
			t.Fatalf("deep verify after store forget and gc: %v, %v", problems, err)
		}
		r := openStore(t, tiered.Options{Dir: filepath.Join(t.TempDir(), "after"), Remote: b.url})
		checkState(t, r, model, keys, "version 7 after store forget and gc")
		t.Logf("forget/gc on %s: forgot %v, collected %d runs (%d bytes); through the live store %d, then %d more",
			b.name, forgotten, len(res.Deleted), res.Bytes, len(liveGC.Deleted), len(dryStoreGC.Deleted))
	})
}
