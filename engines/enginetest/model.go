package enginetest

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tierkv/tierkv/cache"
	"github.com/tierkv/tierkv/engines"
)

// pinnedCP is a checkpoint kept unreleased, with the oracle at its seal.
type pinnedCP struct {
	cp     engines.Checkpoint
	oracle map[string]string
	gen    int // the engine generation (open) that sealed it
}

// model drives an engine with random operations and checks it against a map.
type model struct {
	t      testing.TB
	f      Factory
	dir    string
	stash  string // copies of the runs of pinned checkpoints
	rec    *recorder
	cache  *cache.Cache
	rng    *rand.Rand
	e      engines.Engine
	gen    int
	oracle map[string]string
	keys   map[string]bool // every key ever touched
	pins   []pinnedCP
	stats  struct{ sets, dels, gets, seals, reopens, rollbacks int }
}

func newModel(t testing.TB, f Factory, seed int64) *model {
	dir := t.TempDir()
	c, err := cache.New(256 << 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	m := &model{
		t: t, f: f, dir: dir, stash: t.TempDir(), rec: newRecorder(dir), cache: c,
		rng:    rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x5bd1e995)),
		oracle: map[string]string{}, keys: map[string]bool{},
	}
	m.openEngine(nil)
	return m
}

func (m *model) openEngine(cp *engines.Checkpoint) {
	m.t.Helper()
	m.gen++
	e, err := m.f.Open(engines.OpenOptions{Dir: m.dir, Checkpoint: cloneCheckpoint(cp), Listener: m.rec.listener(), Cache: m.cache})
	if err != nil {
		m.t.Fatalf("open %s (generation %d, checkpoint %v): %v", m.f.Kind, m.gen, cp != nil, err)
	}
	m.e = e
}

func (m *model) closeEngine() {
	m.t.Helper()
	if err := m.e.Close(); err != nil {
		m.t.Fatalf("close: %v", err)
	}
	m.rec.unpinAll()
}

// checkAll compares every key ever touched with the oracle: values are
// current and deleted keys stay deleted.
func (m *model) checkAll(when string) {
	m.t.Helper()
	for _, k := range sortedKeys(m.keys) {
		want, ok := m.oracle[k]
		v, found, err := m.e.Get([]byte(k))
		if err != nil {
			m.t.Fatalf("%s: get %q: %v", when, k, err)
		}
		if found != ok || (ok && string(v) != want) {
			m.t.Fatalf("%s: get %q = %q (found=%v), want %q (found=%v)", when, k, short(v), found, short([]byte(want)), ok)
		}
	}
}

func (m *model) key() string {
	if m.rng.IntN(50) == 0 {
		// An occasional long key.
		return fmt.Sprintf("long-%d-%s", m.rng.IntN(20), bytes.Repeat([]byte{'x'}, 200+m.rng.IntN(300)))
	}
	return fmt.Sprintf("m%d", m.rng.IntN(400))
}

func (m *model) value(op int) string {
	if m.rng.IntN(10) == 0 {
		return ""
	}
	v := fmt.Sprintf("%d.", op)
	n := m.rng.IntN(30)
	for i := 0; i < n; i++ {
		v += string(rune('a' + m.rng.IntN(26)))
	}
	return v
}

// step runs one random operation; op numbers values so stale ones show.
func (m *model) step(op int) {
	m.t.Helper()
	r := m.rng.IntN(1000)
	switch {
	case r < 600:
		k, v := m.key(), m.value(op)
		if err := m.e.Set([]byte(k), []byte(v)); err != nil {
			m.t.Fatalf("op %d: set %q: %v", op, short([]byte(k)), err)
		}
		m.oracle[k], m.keys[k] = v, true
		m.stats.sets++
	case r < 750:
		k := m.key()
		if err := m.e.Delete([]byte(k)); err != nil {
			m.t.Fatalf("op %d: delete %q: %v", op, short([]byte(k)), err)
		}
		delete(m.oracle, k)
		m.keys[k] = true
		m.stats.dels++
	case r < 960:
		k := m.key()
		want, ok := m.oracle[k]
		v, found, err := m.e.Get([]byte(k))
		if err != nil {
			m.t.Fatalf("op %d: get %q: %v", op, short([]byte(k)), err)
		}
		if found != ok || (ok && string(v) != want) {
			m.t.Fatalf("op %d: get %q = %q (found=%v), want %q (found=%v)", op, short([]byte(k)), short(v), found, short([]byte(want)), ok)
		}
		m.stats.gets++
	case r < 985:
		m.seal(op, false)
	case r < 993:
		m.closeEngine()
		m.openEngine(nil)
		m.checkAll(fmt.Sprintf("op %d: after reopen", op))
		m.stats.reopens++
	default:
		if len(m.pins) == 0 {
			m.seal(op, false)
			return
		}
		m.rollback(op, m.pins[m.rng.IntN(len(m.pins))])
	}
}

// seal seals, and either keeps (always when pin is set) the checkpoint pinned (its runs copied to the
// stash, as an uploader would) or releases it.
func (m *model) seal(op int, pin bool) {
	m.t.Helper()
	cp, err := m.e.Seal()
	if err != nil {
		m.t.Fatalf("op %d: seal: %v", op, err)
	}
	m.stats.seals++
	if cp.Kind != m.f.Kind {
		m.t.Fatalf("op %d: checkpoint kind %q, want %q", op, cp.Kind, m.f.Kind)
	}
	if m.rng.IntN(3) != 0 && !pin {
		m.e.Release(cp)
		return
	}
	m.rec.pin(cp)
	if err := copyRuns(m.dir, m.stash, cp); err != nil {
		m.t.Fatalf("op %d: runs of a pinned checkpoint: %v", op, err)
	}
	m.pins = append(m.pins, pinnedCP{cp: cp, oracle: maps.Clone(m.oracle), gen: m.gen})
	if len(m.pins) > 4 {
		old := m.pins[0]
		m.pins = m.pins[1:]
		if old.gen == m.gen {
			m.rec.unpin(old.cp)
			m.e.Release(old.cp)
		}
	}
}

// rollback closes the engine and opens it on the same directory from an
// older checkpoint, putting back its runs from the stash where the engine
// already deleted them (as a restore downloads missing runs).
func (m *model) rollback(op int, p pinnedCP) {
	m.t.Helper()
	m.closeEngine()
	for _, ri := range p.cp.Runs {
		stashed, err := os.ReadFile(filepath.Join(m.stash, ri.Name))
		if err != nil {
			m.t.Fatal(err)
		}
		cur, err := os.ReadFile(filepath.Join(m.dir, ri.Name))
		if err == nil {
			if !bytes.Equal(cur, stashed) {
				m.t.Fatalf("op %d: run %s changed since it was sealed", op, ri.Name)
			}
			continue
		}
		if err := os.WriteFile(filepath.Join(m.dir, ri.Name), stashed, 0o644); err != nil {
			m.t.Fatal(err)
		}
	}
	m.openEngine(&p.cp)
	m.oracle = maps.Clone(p.oracle)
	m.checkAll(fmt.Sprintf("op %d: after opening the checkpoint of generation %d", op, p.gen))
	m.stats.rollbacks++
}

// run runs n operations, checks everything at the end and closes the engine.
func (m *model) run(n int) {
	m.t.Helper()
	for op := 1; op <= n; op++ {
		m.step(op)
		if op%500 == 0 {
			m.checkAll(fmt.Sprintf("op %d", op))
		}
	}
	m.checkAll("end")
	m.closeEngine()
	m.openEngine(nil)
	m.checkAll("end, after reopen")
	m.closeEngine()
	m.rec.check(m.t)
	m.t.Logf("%d sets, %d deletes, %d gets, %d seals, %d reopens, %d rollbacks; %d runs sealed",
		m.stats.sets, m.stats.dels, m.stats.gets, m.stats.seals, m.stats.reopens, m.stats.rollbacks, len(m.rec.order))
}

func seed() int64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	return time.Now().UnixNano()
}

// testModel: random operations against a map oracle.
func testModel(t *testing.T, f Factory) {
	s := seed()
	t.Logf("seed %d (replay with -enginetest.seed=%d)", s, s)
	m := newModel(t, f, s)
	m.run(*opsFlag)
	if m.stats.rollbacks == 0 && *opsFlag >= 2000 {
		t.Logf("no rollback happened with this seed")
	}
}

// testRunImmutability: the bytes of a sealed run never change while the file
// exists (RunInfo matches the file at RunSealed; everything still present at
// the end hashes the same).
func testRunImmutability(t *testing.T, f Factory) {
	s := seed() + 1
	t.Logf("seed %d (replay with -enginetest.seed=%d)", s, s-1)
	m := newModel(t, f, s)
	m.run(1500)
	if n := m.rec.verifyImmutable(t); n == 0 {
		t.Fatal("no sealed run left to check")
	}
	// The stash holds copies taken while runs were pinned.
	stashed, err := readDir(m.stash)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range stashed {
		if m.rec.hashes[name] != sha(data) {
			t.Errorf("run %s differed from its RunSealed bytes while pinned", name)
		}
	}
}

// testUniqueRunNames: RunSealed never reports a name twice, across merges,
// reopens and opening older checkpoints (the recorder checks each event).
func testUniqueRunNames(t *testing.T, f Factory) {
	s := seed() + 2
	t.Logf("seed %d (replay with -enginetest.seed=%d)", s, s-2)
	m := newModel(t, f, s)
	for m.stats.rollbacks < 2 {
		if len(m.pins) == 0 {
			m.seal(0, true)
		}
		for i := 0; i < 200; i++ {
			m.step(i)
		}
		m.rollback(0, m.pins[0])
	}
	m.run(500)
	seen := map[string]bool{}
	for _, name := range m.rec.order {
		if seen[name] {
			t.Errorf("run name %s sealed twice", name)
		}
		seen[name] = true
	}
	if len(seen) < 2 {
		t.Fatalf("only %d runs sealed", len(seen))
	}
	t.Logf("%d distinct run names", len(seen))
}
