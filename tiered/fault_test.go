package tiered

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/objstore/faultstore"
)

// TestRestoreRetriesTransientFaults: resets mid-body and 503s on run
// downloads are retried; the restore succeeds and reports the plan's bytes.
func TestRestoreRetriesTransientFaults(t *testing.T) {
	mem, w, _, v2 := twoVersions(t, "lsm")
	w.Close()
	fs := faultstore.New(mem, 1,
		faultstore.Rule{Ops: []faultstore.Op{faultstore.OpGet}, KeyPrefix: "runs/", Times: 2, Kind: faultstore.Reset},
		faultstore.Rule{Ops: []faultstore.Op{faultstore.OpGet}, KeyPrefix: "runs/", Times: 1, Kind: faultstore.Unavailable},
	)
	s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: fs})
	checkState(t, s, v2, nil, "restored through faults")
	if n := len(fs.Injected()); n != 3 {
		t.Fatalf("%d faults injected, want 3: %v", n, fs.Injected())
	}
}

// TestRestorePermanentFaultKeepsOldState: downloads that keep failing make
// Restore fail (bounded by the context) and leave the old state in use.
func TestRestorePermanentFaultKeepsOldState(t *testing.T) {
	ctx := ctxT(t)
	mem, w, v1, _ := twoVersions(t, "lsm")
	w.Close()
	fs := faultstore.New(mem, 1)
	s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: fs, Version: 1})
	fs.SetRules(faultstore.Rule{Ops: []faultstore.Op{faultstore.OpGet}, KeyPrefix: "runs/", Kind: faultstore.Unavailable})
	rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := s.Restore(rctx, 2); err == nil {
		t.Fatal("restore through a dead remote succeeded")
	} else {
		t.Logf("permanent fault: %v", err)
	}
	checkState(t, s, v1, nil, "after failed restore")
	fs.SetRules()
	if _, err := s.Restore(ctx, 2); err != nil {
		t.Fatalf("restore once the remote is back: %v", err)
	}
}

// TestSnapshotFaultSweep injects one fault at the n-th remote call of a
// snapshot, for every n, and checks each snapshot commits exactly the next
// version (retries absorb transient faults; an ambiguous commit is
// recognised as ours).
func TestSnapshotFaultSweep(t *testing.T) {
	ctx := ctxT(t)
	for _, kind := range []faultstore.Kind{faultstore.Unavailable, faultstore.Ambiguous, faultstore.Timeout} {
		mem := objstore.NewMem()
		fs := faultstore.New(mem, 7)
		s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: fs, Engine: "lsm", Params: tinyParams("lsm")})
		model := map[string]string{}
		want := uint64(1)
		for n := 0; n < 40; n++ {
			setAll(t, s, model, kvs("n"+itoa(n)+"-", 30, 50, uint64(n)))
			fs.SetRules(faultstore.Rule{Skip: n % 8, Times: 1, Kind: kind})
			res, err := s.Snapshot(ctx)
			if errors.Is(err, ErrFenced) {
				t.Fatalf("%s at call %d: fenced by our own commit: %v", kind, n, err)
			}
			if err != nil {
				// An unretried failure: the next snapshot must settle it.
				t.Logf("%s at call %d: %v", kind, n, err)
				fs.SetRules()
				if res, err = s.Snapshot(ctx); err != nil {
					t.Fatalf("%s at call %d: snapshot after a failure: %v", kind, n, err)
				}
				if res.Version != want && res.Version != want+1 {
					t.Fatalf("%s at call %d: version %d, want %d or %d", kind, n, res.Version, want, want+1)
				}
			} else if res.Version != want {
				t.Fatalf("%s at call %d: version %d, want %d", kind, n, res.Version, want)
			}
			want = res.Version + 1
		}
		fs.SetRules()
		if p, err := Verify(ctx, mem, nil, true); err != nil || len(p) != 0 {
			t.Fatalf("%s: verify: %v, %v", kind, p, err)
		}
		vs, _ := manifest.ListVersions(ctx, mem)
		r := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem})
		checkState(t, r, model, nil, kind.String()+": restore after the sweep")
		t.Logf("%s: %d versions committed through %d injected faults", kind, len(vs), len(fs.Injected()))
	}
}

// TestAmbiguousCommitSettledByNextSnapshot: a commit whose every attempt
// lands but reports a timeout fails the snapshot; the next snapshot finds
// the manifest is ours, counts it as committed, and commits the next
// version instead of being fenced.
func TestAmbiguousCommitSettledByNextSnapshot(t *testing.T) {
	ctx := ctxT(t)
	mem := objstore.NewMem()
	fs := faultstore.New(mem, 3)
	s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: fs, Engine: "memonly"})
	model := map[string]string{}
	setAll(t, s, model, map[string]string{"a": "1"})
	fs.SetRules(faultstore.Rule{Ops: []faultstore.Op{faultstore.OpPut, faultstore.OpGet}, KeyPrefix: "manifests/", Kind: faultstore.Ambiguous})
	sctx, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
	_, err := s.Snapshot(sctx)
	cancel()
	if err == nil || errors.Is(err, ErrFenced) {
		t.Fatalf("snapshot through an always-ambiguous commit: %v; want a plain failure", err)
	}
	fs.SetRules()
	if _, err := manifest.Load(ctx, mem, 1); err != nil {
		t.Fatalf("the ambiguous commit did not land underneath: %v", err)
	}
	setAll(t, s, model, map[string]string{"b": "2"})
	res, err := s.Snapshot(ctx)
	if err != nil || res.Version != 2 || res.Parent != 1 {
		t.Fatalf("snapshot after the ambiguous commit: %+v, %v; want version 2, parent 1", res, err)
	}
	r := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem})
	checkState(t, r, model, nil, "after settled ambiguous commit")
}
