package integration

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/tiered"
)

// fenceRounds is the number of races per backend.
const fenceRounds = 30

// TestFencingRace: in each round two stores, opened on the same prefix
// from the latest version, race to commit the next one. Exactly one wins
// (its manifest carries its metadata and its state), the loser gets
// ErrFenced and stays fenced, and the versions are contiguous at the end.
func TestFencingRace(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := ctxT(t)
		st := b.open(t)
		base := t.TempDir()
		wins := map[string]int{}
		lastWho := ""
		for round := range fenceRounds {
			want := uint64(round + 1)
			names := []string{"a", "b"}
			stores := make([]*tiered.Store, 2)
			for i, name := range names {
				stores[i] = openStore(t, tiered.Options{
					Dir: filepath.Join(base, fmt.Sprintf("%d-%s", round, name)), Remote: b.url, Engine: "memonly", UploadConcurrency: 1,
				})
				if got := stores[i].Version(); got != want-1 {
					t.Fatalf("round %d: store %s opened at version %d, want %d", round, name, got, want-1)
				}
				// Each store starts from the previous winner's state.
				got, ok, err := stores[i].Get([]byte("who"))
				if err != nil || ok != (round > 0) || string(got) != lastWho {
					t.Fatalf("round %d: store %s reads who=%q (%v, %v), want %q", round, name, got, ok, err, lastWho)
				}
				if err := stores[i].Set([]byte("who"), []byte(fmt.Sprintf("%s-%d", name, round))); err != nil {
					t.Fatalf("round %d: Set: %v", round, err)
				}
			}

			start := make(chan struct{})
			var wg sync.WaitGroup
			res := make([]tiered.SnapshotResult, 2)
			errs := make([]error, 2)
			for i, s := range stores {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					res[i], errs[i] = s.Snapshot(ctx, tiered.WithMetadata(map[string]string{"writer": names[i]}))
				}()
			}
			close(start)
			wg.Wait()

			winner, loser := -1, -1
			for i := range 2 {
				switch {
				case errs[i] == nil && res[i].Version == want:
					winner = i
				case errs[i] != nil && errors.Is(errs[i], tiered.ErrFenced):
					loser = i
				default:
					t.Fatalf("round %d: store %s: snapshot %+v, err %v; want version %d or ErrFenced", round, names[i], res[i], errs[i], want)
				}
			}
			if winner < 0 || loser < 0 {
				t.Fatalf("round %d: want one winner and one fenced loser, got errors %v", round, errs)
			}
			m, err := manifest.Load(ctx, st, want)
			if err != nil {
				t.Fatalf("round %d: load manifest %d: %v", round, want, err)
			}
			if m.Metadata["writer"] != names[winner] || m.Parent != want-1 {
				t.Fatalf("round %d: manifest %d has writer %q, parent %d; winner is %s", round, want, m.Metadata["writer"], m.Parent, names[winner])
			}
			// The loser stays fenced, even with new writes.
			l := stores[loser]
			if err := l.Set([]byte("late"), []byte("x")); err != nil {
				t.Fatalf("round %d: Set on the loser: %v", round, err)
			}
			if _, err := l.Snapshot(ctx); !errors.Is(err, tiered.ErrFenced) {
				t.Fatalf("round %d: loser's next snapshot: %v, want ErrFenced", round, err)
			}
			for _, s := range stores {
				if err := s.Close(); err != nil {
					t.Fatalf("round %d: close: %v", round, err)
				}
			}
			wins[names[winner]]++
			lastWho = fmt.Sprintf("%s-%d", names[winner], round)
		}

		vs, err := manifest.ListVersions(ctx, st)
		if err != nil {
			t.Fatalf("list versions: %v", err)
		}
		wantVs := make([]uint64, fenceRounds)
		for i := range wantVs {
			wantVs[i] = uint64(i + 1)
		}
		if !slices.Equal(vs, wantVs) {
			t.Fatalf("versions after %d races: %v, want 1..%d contiguous", fenceRounds, vs, fenceRounds)
		}
		if problems, err := tiered.Verify(ctx, st, nil, false); err != nil || len(problems) != 0 {
			t.Fatalf("verify after the races: %v, %v", problems, err)
		}
		s := openStore(t, tiered.Options{Dir: filepath.Join(base, "final"), Remote: b.url})
		if got, _, err := s.Get([]byte("who")); err != nil || string(got) != lastWho {
			t.Fatalf("final state: who=%q (%v), want %q", got, err, lastWho)
		}
		if _, ok, _ := s.Get([]byte("late")); ok {
			t.Fatalf("a fenced loser's write reached the committed state")
		}
		t.Logf("%d races on %s: wins %v; versions 1..%d contiguous", fenceRounds, b.name, wins, fenceRounds)
	})
}
