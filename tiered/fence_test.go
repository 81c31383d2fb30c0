package tiered

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
)

// TestFencingTwoWriters: two stores on one prefix race for each version;
// exactly one wins, the loser gets ErrFenced and never commits again.
func TestFencingTwoWriters(t *testing.T) {
	ctx := ctxT(t)
	mem := objstore.NewMem()
	for round := range 4 {
		a := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Engine: "memonly"})
		cb := objstore.NewCounting(mem)
		b := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: cb, Engine: "memonly"})
		want := uint64(round + 1)
		if err := a.Set([]byte("who"), []byte("a")); err != nil {
			t.Fatal(err)
		}
		if err := b.Set([]byte("who"), []byte("b")); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		res := make([]SnapshotResult, 2)
		errs := make([]error, 2)
		for i, s := range []*Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i], errs[i] = s.Snapshot(ctx)
			}()
		}
		wg.Wait()
		winner, loser := -1, -1
		for i := range 2 {
			switch {
			case errs[i] == nil && res[i].Version == want:
				winner = i
			case errors.Is(errs[i], ErrFenced):
				loser = i
			default:
				t.Fatalf("round %d: writer %d: %+v, %v", round, i, res[i], errs[i])
			}
		}
		if winner < 0 || loser < 0 {
			t.Fatalf("round %d: want one winner and one fenced loser, got %v", round, errs)
		}
		m, err := manifest.Load(ctx, mem, want)
		if err != nil {
			t.Fatal(err)
		}
		stores := []*Store{a, b}
		if m.WriterID != stores[winner].writerID {
			t.Fatalf("round %d: version %d written by %s, winner is %s", round, want, m.WriterID, stores[winner].writerID)
		}
		// The loser refuses every later commit and writes no manifest.
		l := stores[loser]
		_ = l.Set([]byte("more"), []byte("x"))
		cb.Reset()
		cb.SetLogging(true)
		for range 2 {
			if _, err := l.Snapshot(ctx); !errors.Is(err, ErrFenced) {
				t.Fatalf("round %d: loser's later snapshot: %v, want ErrFenced", round, err)
			}
		}
		if loser == 1 {
			for _, line := range cb.Log() {
				if strings.HasPrefix(line, "PUT manifests/") {
					t.Fatalf("round %d: fenced writer still tried %q", round, line)
				}
			}
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	vs, _ := manifest.ListVersions(ctx, mem)
	if len(vs) != 4 {
		t.Fatalf("versions %v, want 1..4", vs)
	}
}

// TestPausedWriterNeverCommitsPastOthers: a writer that knew version 0 while
// another committed 1 and 2 must not commit 3: it tries 1 and is fenced.
func TestPausedWriterNeverCommitsPastOthers(t *testing.T) {
	ctx := ctxT(t)
	mem := objstore.NewMem()
	paused := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Engine: "memonly"})
	other := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Engine: "memonly"})
	for i := range 2 {
		_ = other.Set([]byte("k"), []byte{byte(i)})
		if _, err := other.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	_ = paused.Set([]byte("k"), []byte("stale"))
	if _, err := paused.Snapshot(ctx); !errors.Is(err, ErrFenced) {
		t.Fatalf("paused writer's snapshot: %v, want ErrFenced", err)
	}
	// Even restoring the newest version does not let it commit again.
	if _, err := paused.Restore(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := paused.Snapshot(ctx); !errors.Is(err, ErrFenced) {
		t.Fatalf("fenced writer after restore: %v, want ErrFenced", err)
	}
	if vs, _ := manifest.ListVersions(ctx, mem); len(vs) != 2 {
		t.Fatalf("versions %v, want exactly 1 and 2", vs)
	}
}
