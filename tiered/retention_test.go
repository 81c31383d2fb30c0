package tiered

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
)

// fiveVersions commits versions 1..5 with writes in between; it returns the
// remote, the open store and the state of each version.
func fiveVersions(t *testing.T) (objstore.Store, *Store, map[uint64]map[string]string) {
	t.Helper()
	ctx := ctxT(t)
	mem := objstore.NewMem()
	s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Engine: "lsm", Params: tinyParams("lsm")})
	model := map[string]string{}
	states := map[uint64]map[string]string{}
	for i := range 5 {
		setAll(t, s, model, kvs("v"+itoa(i)+"-", 200, 40, uint64(i)))
		if i > 0 {
			_ = s.Delete([]byte("v" + itoa(i-1) + "-0000"))
			delete(model, "v"+itoa(i-1)+"-0000")
		}
		res, err := s.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		states[res.Version] = cloneMap(model)
	}
	return mem, s, states
}

func referencedKeys(t *testing.T, st objstore.Store) map[string]bool {
	t.Helper()
	ctx := context.Background()
	vs, _ := manifest.ListVersions(ctx, st)
	out := map[string]bool{}
	for _, v := range vs {
		m, err := manifest.Load(ctx, st, v)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range m.Runs {
			out[manifest.RunKey(r.Name)] = true
		}
	}
	return out
}

func TestForgetAndGC(t *testing.T) {
	ctx := ctxT(t)
	mem, s, states := fiveVersions(t)

	if _, err := Forget(ctx, mem, Policy{}, true); !errors.Is(err, ErrEmptyPolicy) {
		t.Fatalf("empty policy: %v", err)
	}
	if _, err := Forget(ctx, mem, Policy{Pins: []uint64{9}}, true); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("pin of a missing version: %v", err)
	}
	dry, err := Forget(ctx, mem, Policy{KeepLast: 2, Pins: []uint64{1}}, true)
	if err != nil || !slices.Equal(dry, []uint64{2, 3}) {
		t.Fatalf("dry forget: %v, %v; want [2 3]", dry, err)
	}
	if vs, _ := manifest.ListVersions(ctx, mem); len(vs) != 5 {
		t.Fatalf("dry run deleted manifests: %v", vs)
	}
	if got, _ := Forget(ctx, mem, Policy{KeepWithin: time.Hour}, true); len(got) != 0 {
		t.Fatalf("KeepWithin 1h would forget %v", got)
	}
	got, err := Forget(ctx, mem, Policy{KeepLast: 2, Pins: []uint64{1}}, false)
	if err != nil || !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("forget: %v, %v", got, err)
	}
	if vs, _ := manifest.ListVersions(ctx, mem); !slices.Equal(vs, []uint64{1, 4, 5}) {
		t.Fatalf("versions after forget: %v", vs)
	}
	// The latest is never forgotten, even by KeepLast 1 with Store.Forget
	// (which also keeps the version its state descends from).
	got, err = s.Forget(ctx, Policy{KeepLast: 1}, true)
	if err != nil || !slices.Equal(got, []uint64{1, 4}) {
		t.Fatalf("store dry forget KeepLast 1: %v, %v", got, err)
	}

	// GC: a generous grace deletes nothing; a dry run with grace 0 lists the
	// unreferenced runs and deletes none.
	if res, err := GC(ctx, mem, time.Hour, false); err != nil || len(res.Deleted) != 0 {
		t.Fatalf("gc with 1h grace: %+v, %v", res, err)
	}
	all, _ := mem.List(ctx, "runs/")
	refs := referencedKeys(t, mem)
	dryRes, err := GC(ctx, mem, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range dryRes.Deleted {
		if refs[k] {
			t.Fatalf("gc would delete referenced run %s", k)
		}
	}
	if len(dryRes.Deleted) != len(all)-len(refs) {
		t.Fatalf("gc dry run lists %d runs; %d of %d are unreferenced", len(dryRes.Deleted), len(all)-len(refs), len(all))
	}
	if after, _ := mem.List(ctx, "runs/"); len(after) != len(all) {
		t.Fatal("gc dry run deleted runs")
	}
	// Store.GC deletes what the dry run listed (the local state's runs are
	// all in version 5 here); the free GC then finds nothing more.
	sres, err := s.GC(ctx, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := GC(ctx, mem, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gc: %d runs (%d bytes) unreferenced of %d; store gc deleted %d, free gc %d more", len(dryRes.Deleted), dryRes.Bytes, len(all), len(sres.Deleted), len(res.Deleted))
	after, _ := mem.List(ctx, "runs/")
	if len(after) != len(refs) {
		t.Fatalf("after gc %d runs remain, %d are referenced", len(after), len(refs))
	}
	problems, err := Verify(ctx, mem, nil, true)
	if err != nil || len(problems) != 0 {
		t.Fatalf("verify after gc: %v, %v", problems, err)
	}
	for _, v := range []uint64{1, 4, 5} {
		r := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Version: v})
		checkState(t, r, states[v], nil, "restore after gc")
		r.Close()
	}
}

// TestStoreGCProtectsLocalAndInFlightRuns: runs uploaded in the background
// but in no manifest yet (live local state) survive Store.GC with grace 0.
func TestStoreGCProtectsLocalAndInFlightRuns(t *testing.T) {
	ctx := ctxT(t)
	mem := objstore.NewMem()
	s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Engine: "lsm", Params: tinyParams("lsm")})
	model := map[string]string{}
	setAll(t, s, model, kvs("k", 400, 60, 1)) // many flushes, uploaded in the background
	if _, err := s.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	setAll(t, s, model, kvs("n", 400, 60, 2))
	// Concurrent GC and snapshots: the snapshot's runs are never deleted.
	done := make(chan error, 1)
	go func() {
		for range 5 {
			if _, err := s.GC(ctx, 0, false); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 3 {
		setAll(t, s, model, kvs("m", 50, 60, 3))
		if _, err := s.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	problems, err := Verify(ctx, mem, nil, false)
	if err != nil || len(problems) != 0 {
		t.Fatalf("verify: %v, %v", problems, err)
	}
	r := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem})
	checkState(t, r, model, nil, "restore after concurrent gc")
}

func TestVerifyFindsDamage(t *testing.T) {
	ctx := ctxT(t)
	mem, w, _, _ := twoVersions(t, "lsm")
	w.Close()
	if p, err := Verify(ctx, mem, nil, true); err != nil || len(p) != 0 {
		t.Fatalf("clean remote: %v, %v", p, err)
	}
	name := corruptRun(t, mem, 2, 1)
	shallow, err := Verify(ctx, mem, nil, false)
	if err != nil || len(shallow) != 0 {
		t.Fatalf("shallow verify of a same-size flip should pass (Head only): %v, %v", shallow, err)
	}
	deep, err := Verify(ctx, mem, []uint64{1, 2}, true)
	if err != nil || len(deep) != 1 || deep[0].Version != 2 || !strings.Contains(deep[0].Object, name) {
		t.Fatalf("deep verify: %v, %v; want one problem in %s", deep, err, name)
	}
	mem.Delete(ctx, manifest.RunKey(name))
	shallow, _ = Verify(ctx, mem, nil, false)
	if len(shallow) != 1 || !strings.Contains(shallow[0].Detail, "missing") {
		t.Fatalf("missing run: %v", shallow)
	}
	p, _ := Verify(ctx, mem, []uint64{9}, false)
	if len(p) != 1 || !strings.Contains(p[0].Detail, "9") {
		t.Fatalf("missing version: %v", p)
	}
	t.Logf("problems: %v", append(deep, shallow...))
}

func TestSnapshotAsyncAndMetrics(t *testing.T) {
	ctx := ctxT(t)
	reg := prometheus.NewRegistry()
	mem := objstore.NewMem()
	s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Engine: "lsm", Registerer: reg})
	model := map[string]string{}
	var hs []*SnapshotHandle
	for i := range 3 {
		setAll(t, s, model, kvs("a"+itoa(i), 100, 50, uint64(i)))
		hs = append(hs, s.SnapshotAsync(ctx, WithMetadata(map[string]string{"i": itoa(i)})))
	}
	seen := map[uint64]bool{}
	for _, h := range hs {
		res, err := h.Wait()
		if err != nil || seen[res.Version] {
			t.Fatalf("async snapshot: %+v, %v", res, err)
		}
		seen[res.Version] = true
	}
	// One started just before Close still commits.
	setAll(t, s, model, map[string]string{"last": "one"})
	h := s.SnapshotAsync(ctx)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if res, err := h.Wait(); err != nil || res.Version != 4 {
		t.Fatalf("snapshot started before Close: %+v, %v", res, err)
	}
	if _, err := s.SnapshotAsync(ctx).Wait(); !errors.Is(err, ErrClosed) {
		t.Fatalf("SnapshotAsync after Close: %v", err)
	}
	if _, _, err := s.Get([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}

	// Metrics were registered while open and are unregistered by Close.
	s2 := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Registerer: reg})
	checkState(t, s2, model, nil, "after async snapshots")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				names[mf.GetName()] += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				names[mf.GetName()] += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				names[mf.GetName()] += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	for _, n := range []string{"tierkv_restores_total", "tierkv_restore_duration_seconds", "tierkv_download_bytes_total",
		"tierkv_downloads_total", "tierkv_engine_memory_bytes", "tierkv_store_version"} {
		if names[n] <= 0 {
			t.Errorf("metric %s = %v, want > 0 (have %v)", n, names[n], names)
		}
	}
	if _, ok := names["tierkv_cache_hits_total"]; !ok {
		t.Errorf("no tierkv_cache_hits_total")
	}
	if s2.MemoryUsage() <= 0 {
		t.Errorf("MemoryUsage %d", s2.MemoryUsage())
	}
}
