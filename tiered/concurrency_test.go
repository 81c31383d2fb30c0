package tiered

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tierkv/tierkv/objstore"
)

// TestConcurrentWritersSnapshotsRestores: writers and readers keep going
// while snapshots commit and restores switch the engine; reads never fail,
// every snapshot holds each writer's acknowledged prefix, and the final
// state matches.
func TestConcurrentWritersSnapshotsRestores(t *testing.T) {
	for _, kind := range testKinds() {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			mem := objstore.NewMem()
			s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Engine: kind, Params: tinyParams(kind)})
			const writers, perWriter = 3, 300
			var acked [writers]atomic.Int64 // keys w-0..w-(acked-1) are written
			var stop atomic.Bool
			var wg sync.WaitGroup
			errs := make(chan error, writers+1)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perWriter {
						if err := s.Set([]byte(fmt.Sprintf("w%d-%04d", w, i)), []byte(fmt.Sprint(i))); err != nil {
							errs <- err
							return
						}
						acked[w].Store(int64(i + 1))
					}
				}()
			}
			wg.Add(1)
			go func() { // a reader that must never see an error, even during a restore
				defer wg.Done()
				for !stop.Load() {
					if _, _, err := s.Get([]byte("w0-0000")); err != nil {
						errs <- err
						return
					}
				}
			}()
			type snap struct {
				version uint64
				floor   [writers]int64
			}
			var snaps []snap
			for range 6 {
				var sn snap
				for w := range writers {
					sn.floor[w] = acked[w].Load()
				}
				res, err := s.Snapshot(ctx)
				if err != nil {
					t.Fatal(err)
				}
				sn.version = res.Version
				snaps = append(snaps, sn)
			}
			// Restore an early snapshot while writers may still run.
			if _, err := s.Restore(ctx, snaps[1].version); err != nil {
				t.Fatal(err)
			}
			stop.Store(true)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			// Each snapshot holds at least every write acknowledged before it
			// started.
			for _, sn := range snaps {
				r := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Version: sn.version})
				for w := range writers {
					for i := int64(0); i < sn.floor[w]; i++ {
						k := fmt.Sprintf("w%d-%04d", w, i)
						if v, ok, err := r.Get([]byte(k)); err != nil || !ok || string(v) != fmt.Sprint(i) {
							t.Fatalf("version %d lacks %s acknowledged before it: %q %v %v", sn.version, k, v, ok, err)
						}
					}
				}
				r.Close()
			}
		})
	}
}

// TestCloseStopsGoroutines: after Close, no goroutine of the store, its
// engine, uploader or cache is left.
func TestCloseStopsGoroutines(t *testing.T) {
	ctx := ctxT(t)
	base := runtime.NumGoroutine()
	for _, kind := range testKinds() {
		s, err := Open(ctx, Options{Dir: t.TempDir(), ObjectStore: objstore.NewMem(), Engine: kind, Params: tinyParams(kind), ResumeLocal: true})
		if err != nil {
			t.Fatal(err)
		}
		setAll(t, s, map[string]string{}, kvs("g", 200, 50, 1))
		h := s.SnapshotAsync(ctx)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	// Exiting goroutines may take a moment to be descheduled; poll.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}
