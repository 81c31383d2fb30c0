package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/objstore/faultstore"
	"github.com/tierkv/tierkv/tiered"
)

// fencingBackends are the stores the fencing tests run on.
var fencingBackends = []backend{memBackend, fileBackend, minioBackend, s3Backend}

// fencingEngine picks a cheap engine for network backends and one with
// several runs per version for local ones.
func fencingEngine(be backend) string {
	if be.name == "mem" || be.name == "file" {
		return "lsm"
	}
	return "memonly"
}

// racer is one of the two writers of a race.
type racer struct {
	name  string
	dir   string
	st    objstore.Store // its own client when the backend has a URL
	log   *objstore.Counting
	s     *tiered.Store
	model state
	wins  int
}

// TestFencingRaces races two writers (two stores, separate directories, on
// one prefix) for each version: 50 races on MinIO via minio-go and 25 on
// mem, file and MinIO via s3 (1,000 and 250 with TIERKV_STRESS=1). Exactly one wins each version, the loser gets ErrFenced
// and never writes a manifest afterwards, the versions are 1..races without
// a gap, and every version restores to exactly its winner's state.
func TestFencingRaces(t *testing.T) {
	for _, be := range fencingBackends {
		t.Run(be.name, func(t *testing.T) {
			newStore := be.setup(t)
			leakCheck(t)
			// 50 races on MinIO through minio-go (1,000 under stress); the
			// other backends take 25 (250) to keep the package quick.
			races := scale(25, 250)
			if be.name == "minio" {
				races = scale(50, 1000)
			}
			fencingRaces(t, newStore, fencingEngine(be), races)
		})
	}
}

func fencingRaces(t *testing.T, newStore func(*testing.T) (objstore.Store, string), engine string, races int) {
	ctx := ctxT(t)
	seed := testSeed(t)
	r := rand.New(rand.NewPCG(seed, 5))
	shared, url := newStore(t)
	keys := newUniverse(200)
	states := map[uint64]state{}
	var latest uint64
	manifestPuts := 0 // successful manifest creations, over every writer
	opened := 0

	openRacer := func() *racer {
		opened++
		w := &racer{name: fmt.Sprintf("w%d", opened), dir: t.TempDir(), st: shared}
		if url != "" {
			st, err := objstore.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			w.st = st
		}
		w.log = objstore.NewCounting(w.st)
		w.log.SetLogging(true)
		s, err := tiered.Open(ctx, tiered.Options{Dir: w.dir, ObjectStore: w.log, Engine: engine, Params: tinyParams(engine), Logger: discardLogger()})
		if err != nil {
			t.Fatalf("open %s: %v", w.name, err)
		}
		w.s = s
		w.model = states[latest].clone()
		if w.model == nil {
			w.model = state{}
		}
		if s.Version() != latest {
			t.Fatalf("%s opened at version %d, latest is %d", w.name, s.Version(), latest)
		}
		checkState(t, s, w.model, keys, fmt.Sprintf("%s opened at version %d", w.name, latest))
		return w
	}
	closeRacer := func(w *racer) {
		if err := w.s.Close(); err != nil {
			t.Fatalf("close %s: %v", w.name, err)
		}
		// Count its successful manifest creations: exactly its wins.
		puts := 0
		for _, line := range w.log.Log() {
			if strings.HasPrefix(line, "PUT "+manifest.ManifestPrefix) && !strings.Contains(line, "(") {
				puts++
			}
		}
		if puts != w.wins {
			t.Fatalf("%s created %d manifests but won %d versions", w.name, puts, w.wins)
		}
		manifestPuts += puts
		if w.st != shared {
			_ = w.st.Close()
		}
		_ = os.RemoveAll(w.dir)
	}

	ws := [2]*racer{openRacer(), openRacer()}
	firstWins := 0
	for race := 1; race <= races; race++ {
		for _, w := range ws {
			mutate(t, r, w.s, w.model, keys, 1+r.IntN(20))
			who := fmt.Sprintf("%s/race%d", w.name, race)
			if err := w.s.Set([]byte(keys[0]), []byte(who)); err != nil {
				t.Fatal(err)
			}
			w.model[keys[0]] = who
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		var res [2]tiered.SnapshotResult
		var errs [2]error
		for i, w := range ws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res[i], errs[i] = w.s.Snapshot(ctx)
			}()
		}
		close(start)
		wg.Wait()

		win := -1
		for i := range ws {
			switch {
			case errs[i] == nil:
				if win >= 0 {
					t.Fatalf("race %d: both writers committed (%d and %d)", race, res[win].Version, res[i].Version)
				}
				win = i
			case errors.Is(errs[i], tiered.ErrFenced) && errors.Is(errs[i], manifest.ErrFenced):
			default:
				t.Fatalf("race %d: %s failed with %v, want success or ErrFenced", race, ws[i].name, errs[i])
			}
		}
		if win < 0 {
			t.Fatalf("race %d: nobody won: %v, %v", race, errs[0], errs[1])
		}
		if win == 0 {
			firstWins++
		}
		winner, loser := ws[win], ws[1-win]
		if res[win].Version != uint64(race) {
			t.Fatalf("race %d: winner committed version %d", race, res[win].Version)
		}
		winner.wins++
		latest = res[win].Version
		states[latest] = winner.model.clone()

		// The loser stays fenced: more writes, a snapshot, even a restore of
		// the latest version change nothing.
		mutate(t, r, loser.s, loser.model, keys, 5)
		if _, err := loser.s.Snapshot(ctx); !errors.Is(err, tiered.ErrFenced) {
			t.Fatalf("race %d: fenced %s snapshot again: %v, want ErrFenced", race, loser.name, err)
		}
		if race%10 == 0 {
			if _, err := loser.s.Restore(ctx, 0); err != nil {
				t.Fatalf("race %d: fenced %s restores the latest: %v", race, loser.name, err)
			}
			checkState(t, loser.s, states[latest], keys, fmt.Sprintf("race %d: fenced writer restored %d", race, latest))
			if _, err := loser.s.Snapshot(ctx); !errors.Is(err, tiered.ErrFenced) {
				t.Fatalf("race %d: fenced %s after restore: %v, want ErrFenced", race, loser.name, err)
			}
		}
		closeRacer(loser)
		ws[1-win] = openRacer()
		if r.IntN(4) == 0 { // sometimes both writers are fresh
			closeRacer(winner)
			ws[win] = openRacer()
		}
	}
	for _, w := range ws {
		closeRacer(w)
	}
	vs, err := manifest.ListVersions(ctx, shared)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != races || vs[0] != 1 || vs[len(vs)-1] != uint64(races) {
		t.Fatalf("versions %v, want 1..%d", vs, races)
	}
	if manifestPuts != races {
		t.Fatalf("%d manifests created by the writers for %d versions", manifestPuts, races)
	}
	if p, err := tiered.Verify(ctx, shared, nil, true); err != nil || len(p) > 0 {
		t.Fatalf("verify deep: %v %v", p, err)
	}
	verifier := openStore(t, tiered.Options{Dir: t.TempDir(), ObjectStore: shared})
	for v := uint64(1); v <= uint64(races); v++ {
		if _, err := verifier.Restore(ctx, v); err != nil {
			t.Fatalf("restore %d: %v", v, err)
		}
		checkState(t, verifier, states[v], keys, fmt.Sprintf("version %d", v))
	}
	if err := verifier.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d races, %d writers opened; the older writer of the pair won %d, the other %d; every loser fenced, versions 1..%d all restored exactly",
		races, opened, firstWins, races-firstWins, races)
}

// gate wraps a store and holds the first call of op on a key with prefix,
// once armed, until released: a writer paused at a chosen point.
type gate struct {
	objstore.Store
	op      faultstore.Op
	prefix  string
	mu      sync.Mutex
	armed   bool
	reached chan struct{}
	release chan struct{}
}

func newGate(st objstore.Store, op faultstore.Op, prefix string) *gate {
	return &gate{Store: st, op: op, prefix: prefix, reached: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) arm() {
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
}

func (g *gate) hold(op faultstore.Op, key string) {
	g.mu.Lock()
	hit := g.armed && op == g.op && strings.HasPrefix(key, g.prefix)
	if hit {
		g.armed = false
	}
	g.mu.Unlock()
	if hit {
		close(g.reached)
		<-g.release
	}
}

func (g *gate) Put(ctx context.Context, key string, r io.Reader, size int64, o objstore.PutOptions) error {
	g.hold(faultstore.OpPut, key)
	return g.Store.Put(ctx, key, r, size, o)
}

func (g *gate) List(ctx context.Context, prefix string) ([]objstore.ObjectInfo, error) {
	g.hold(faultstore.OpList, prefix)
	return g.Store.List(ctx, prefix)
}

// TestPausedWriterNeverCommits: writer A is held at a point of its snapshot
// (uploading its run, listing the versions before the commit, creating the
// manifest); meanwhile writer B commits several versions; then A resumes.
// A must get ErrFenced and commit nothing, then or later, and B's versions
// must all restore exactly. The "forget-gap" cases also let B forget the
// versions below its latest while A is held, leaving a gap where A's
// version number used to be.
func TestPausedWriterNeverCommits(t *testing.T) {
	points := []struct {
		name   string
		op     faultstore.Op
		prefix string
		forget bool
	}{
		{"run-upload", faultstore.OpPut, manifest.RunPrefix, false},
		{"before-list", faultstore.OpList, manifest.ManifestPrefix, false},
		{"before-create", faultstore.OpPut, manifest.ManifestPrefix, false},
		{"before-list-forget-gap", faultstore.OpList, manifest.ManifestPrefix, true},
		{"before-create-forget-gap", faultstore.OpPut, manifest.ManifestPrefix, true},
	}
	for _, be := range fencingBackends {
		t.Run(be.name, func(t *testing.T) {
			newStore := be.setup(t)
			leakCheck(t)
			for _, p := range points {
				t.Run(p.name, func(t *testing.T) {
					ctx := ctxT(t)
					shared, _ := newStore(t)
					keys := newUniverse(20)
					states := map[uint64]state{}

					// Version 1 by B, so that A starts from a shared history.
					b := openStore(t, tiered.Options{Dir: t.TempDir(), ObjectStore: shared, Engine: "memonly"})
					bModel := state{keys[0]: "b1"}
					if err := b.Set([]byte(keys[0]), []byte("b1")); err != nil {
						t.Fatal(err)
					}
					if _, err := b.Snapshot(ctx); err != nil {
						t.Fatal(err)
					}
					states[1] = bModel.clone()

					g := newGate(shared, p.op, p.prefix)
					a := openStore(t, tiered.Options{Dir: t.TempDir(), ObjectStore: g})
					if err := a.Set([]byte(keys[1]), []byte("from A")); err != nil {
						t.Fatal(err)
					}
					g.arm()
					done := make(chan error, 1)
					go func() {
						_, err := a.Snapshot(ctx)
						done <- err
					}()
					<-g.reached

					// A is held; B commits versions 2..4.
					for v := uint64(2); v <= 4; v++ {
						val := fmt.Sprintf("b%d", v)
						if err := b.Set([]byte(keys[0]), []byte(val)); err != nil {
							t.Fatal(err)
						}
						bModel[keys[0]] = val
						res, err := b.Snapshot(ctx)
						if err != nil || res.Version != v {
							t.Fatalf("B's snapshot while A is held: %+v, %v; want version %d", res, err, v)
						}
						states[v] = bModel.clone()
					}
					if p.forget {
						gone, err := b.Forget(ctx, tiered.Policy{KeepLast: 1}, false)
						if err != nil {
							t.Fatal(err)
						}
						for _, v := range gone {
							delete(states, v)
						}
						t.Logf("B forgot versions %v while A was held", gone)
					}
					close(g.release)
					err := <-done
					if !errors.Is(err, tiered.ErrFenced) {
						t.Errorf("A resumed after B committed 2..4: %v, want ErrFenced", err)
					}
					if _, err := a.Snapshot(ctx); !errors.Is(err, tiered.ErrFenced) {
						t.Errorf("A's next snapshot: %v, want ErrFenced", err)
					}
					vs, err := manifest.ListVersions(ctx, shared)
					if err != nil {
						t.Fatal(err)
					}
					verifier := openStore(t, tiered.Options{Dir: t.TempDir(), ObjectStore: shared})
					for _, v := range vs {
						m, err := manifest.Load(ctx, shared, v)
						if err != nil {
							t.Fatal(err)
						}
						want, ok := states[v]
						if !ok {
							t.Errorf("version %d exists but B did not commit it (writer %s; B's versions %v): the paused writer slipped a version in", v, m.WriterID, keysOf(states))
							continue
						}
						if _, err := verifier.Restore(ctx, v); err != nil {
							t.Fatal(err)
						}
						checkState(t, verifier, want, keys, fmt.Sprintf("B's version %d", v))
					}
				})
			}
		})
	}
}

func keysOf(m map[uint64]state) []uint64 {
	out := make([]uint64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
