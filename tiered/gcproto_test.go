package tiered

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
)

// checkRestores restores version v of st into a new directory and compares
// it with want, then deep-verifies every version.
func checkRestores(t *testing.T, st objstore.Store, v uint64, want map[string]string, what string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := RestoreTo(ctxT(t), dir, st, v, nil); err != nil {
		t.Fatalf("%s: restore version %d: %v", what, v, err)
	}
	r := mustOpen(t, Options{Dir: dir, ResumeLocal: true})
	checkState(t, r, want, nil, what)
	_ = r.Close()
	problems, err := Verify(ctxT(t), st, nil, true)
	if err != nil || len(problems) > 0 {
		t.Fatalf("%s: deep verify: %+v, %v", what, problems, err)
	}
}

// TestGCFromAnotherProcessNeverBreaksACommit: runs uploaded in the
// background and not yet named by any manifest or lease are deleted by a
// bare-remote GC (another process) with no grace; the next snapshot sees
// the sweep record, uploads them again and commits a restorable version.
func TestGCFromAnotherProcessNeverBreaksACommit(t *testing.T) {
	for _, kind := range testKinds() {
		t.Run(kind, func(t *testing.T) {
			ctx := ctxT(t)
			mem := objstore.NewMem()
			s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Engine: kind, Params: tinyParams(kind)})
			model := map[string]string{}
			setAll(t, s, model, kvs("a", 200, 50, 8))
			if _, err := s.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
			// Write until a GC finds runs uploaded in the background that no
			// version names yet (flushes and merges run in the background).
			deleted := 0
			for round := 0; round < 20 && (deleted == 0 || round < 2); round++ {
				setAll(t, s, model, kvs("b"+itoa(round), 300, 100, uint64(9+round)))
				waitUploads(t, s)
				res, err := GC(ctx, mem, 0, false)
				if err != nil {
					t.Fatal(err)
				}
				deleted += len(res.Deleted)
			}
			if kind != "memonly" && deleted == 0 {
				t.Fatalf("gc deleted nothing in 20 rounds: the scenario needs runs uploaded but not yet committed")
			}
			t.Logf("gc deleted %d runs the writer had uploaded", deleted)
			r2, err := s.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			checkRestores(t, mem, r2.Version, model, "after a gc from another process")

			// The same after Restore(1) + Forget(KeepLast 1) + GC(0): the
			// restored state's runs were only named by the forgotten version.
			if _, err := s.Restore(ctx, 1); err != nil {
				t.Fatal(err)
			}
			m1 := map[string]string{}
			for k, v := range model {
				if strings.HasPrefix(k, "a") {
					m1[k] = v
				}
			}
			if _, err := Forget(ctx, mem, Policy{KeepLast: 1}, false); err != nil {
				t.Fatal(err)
			}
			if _, err := GC(ctx, mem, 0, false); err != nil {
				t.Fatal(err)
			}
			setAll(t, s, m1, map[string]string{"c": "1"})
			r3, err := s.Snapshot(ctx)
			if err != nil || r3.Parent != 1 {
				t.Fatalf("snapshot after rollback, forget and gc: %+v, %v", r3, err)
			}
			checkRestores(t, mem, r3.Version, m1, "after restore, forget and gc")
		})
	}
}

// waitUploads waits until the uploader has nothing queued or in flight.
func waitUploads(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for s.up.Pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("uploads did not finish")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLapsedLeaseIsRenewedAndChecked: with a lease that expired (a paused
// writer), GC deletes what it named; the writer notices from the sweep
// record and uploads again before it commits.
func TestLapsedLeaseIsRenewedAndChecked(t *testing.T) {
	ctx := ctxT(t)
	mem := objstore.NewMem()
	s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Engine: "lsm", Params: tinyParams("lsm"), LeaseTTL: time.Second})
	model := map[string]string{}
	setAll(t, s, model, kvs("a", 300, 50, 10))
	if _, err := s.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Restore(ctx, 1); err != nil {
		t.Fatal(err)
	}
	setAll(t, s, model, kvs("b", 300, 50, 11))
	if _, err := s.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	// Version 1's runs that version 2 no longer names but the local state
	// might: forget 1 and wait for the lease to lapse.
	if _, err := Forget(ctx, mem, Policy{KeepLast: 1}, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)
	if _, err := GC(ctx, mem, 0, false); err != nil {
		t.Fatal(err)
	}
	setAll(t, s, model, map[string]string{"c": "1"})
	r, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkRestores(t, mem, r.Version, model, "after a lapsed lease")
}

// TestSnapshotsBesideAGCLoop: a writer snapshots while another goroutine
// runs bare-remote Forget(KeepLast 1) and GC(0) in a loop (as a shell
// would); every committed version that still exists restores exactly.
func TestSnapshotsBesideAGCLoop(t *testing.T) {
	ctx := ctxT(t)
	mem := objstore.NewMem()
	s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Engine: "lsm", Params: tinyParams("lsm")})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var gcs int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := Forget(context.Background(), mem, Policy{KeepLast: 1}, false); err != nil {
				t.Errorf("forget: %v", err)
				return
			}
			if _, err := GC(context.Background(), mem, 0, false); err != nil && !strings.Contains(err.Error(), "cannot be read") {
				t.Errorf("gc: %v", err)
				return
			}
			gcs++
		}
	}()
	model := map[string]string{}
	states := map[uint64]map[string]string{}
	const snapshots = 40
	for i := range snapshots {
		setAll(t, s, model, kvs("k"+itoa(i%7), 30, 40, uint64(i)))
		res, err := s.Snapshot(ctx)
		if err != nil {
			t.Fatalf("snapshot %d: %v", i, err)
		}
		states[res.Version] = cloneMap(model)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d snapshots beside %d forget+gc passes", snapshots, gcs)
	vs, err := manifest.ListVersions(ctx, mem)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		checkRestores(t, mem, v, states[v], "version beside a gc loop")
	}
}

// TestGCRemovesKilledUploadTemporaries: a file:// remote's temporary file
// left by an upload killed half-way is collected by GC once older than the
// grace period, and kept (and only listed) before that or in a dry run.
func TestGCRemovesKilledUploadTemporaries(t *testing.T) {
	ctx := ctxT(t)
	root := t.TempDir()
	st, err := objstore.Open(ctx, "file://"+root)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: st})
	setAll(t, s, map[string]string{}, kvs("k", 20, 20, 12))
	if _, err := s.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(root, "runs", ".tierkv-tmp-killed")
	if err := os.WriteFile(tmp, []byte("half an upload"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}
	if res, err := GC(ctx, st, 3*time.Hour, false); err != nil || len(res.Deleted) != 0 {
		t.Fatalf("gc with a longer grace: %+v, %v; want nothing deleted", res, err)
	}
	// An upload in flight writes a young temporary: never removed, not
	// even with grace 0.
	young := filepath.Join(root, "runs", ".tierkv-tmp-inflight")
	if err := os.WriteFile(young, []byte("uploading"), 0o644); err != nil {
		t.Fatal(err)
	}
	if res, err := GC(ctx, st, 0, true); err != nil || len(res.Deleted) != 1 || strings.Contains(res.Deleted[0], "inflight") {
		t.Fatalf("gc --grace 0 dry run: %+v, %v; want only the old temporary", res, err)
	}
	res, err := GC(ctx, st, time.Hour, true)
	if err != nil || len(res.Deleted) != 1 || !strings.Contains(res.Deleted[0], ".tierkv-tmp-killed") {
		t.Fatalf("gc dry run: %+v, %v; want the temporary listed", res, err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("a dry run removed the temporary: %v", err)
	}
	if res, err = GC(ctx, st, time.Hour, false); err != nil || len(res.Deleted) != 1 {
		t.Fatalf("gc: %+v, %v; want the temporary deleted", res, err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the temporary is still there: %v", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Fatalf("gc removed the temporary of an upload in flight: %v", err)
	}
}
