// Package enginetest is the conformance suite every tierkv engine runs, and
// the benchmarks that compare them.
//
// # Basics
//
// An engine's test file calls Run with a Factory that opens the engine with
// tiny parameters, so that everything spills to runs and merges many times in
// a short test:
//
//	func TestConformance(t *testing.T) {
//		enginetest.Run(t, enginetest.Factory{
//			Kind: lsm.Kind,
//			Open: func(o engines.OpenOptions) (engines.Engine, error) {
//				return lsm.Open(o, lsm.Params{MemtableBytesLimit: 4096, ...})
//			},
//		})
//	}
//
// Run checks the contract of engines.Engine as DESIGN.md states it: values,
// the empty value, limits, a model-based randomized test against a map oracle
// (seals, reopens, rollback to older checkpoints), idempotent seals, run
// immutability and unique run names, pinning and retirement, crash recovery
// from a copy of a live directory, a torn log tail, checksum corruption,
// concurrent writers, readers and sealers, kind mismatch, use after Close and
// memory accounting, and failing closed on a missing or damaged state file.
//
// The randomized test prints its seed; replay it with
//
//	go test -run 'TestConformance/Model' -enginetest.seed=<seed>
//
// RunBenchmarks measures Set and Get under uniform and zipfian key choice with
// 16-byte keys and 100-byte values over -enginetest.keys distinct keys
// (default 1,000,000).
//
// # Concurrency
//
// The suite itself calls the engine from several goroutines in its
// concurrency test and expects Listener callbacks from any goroutine. Each
// subtest uses its own directories under t.TempDir().
package enginetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

var (
	seedFlag = flag.Int64("enginetest.seed", 0, "seed of the randomized model test (0: random, printed)")
	opsFlag  = flag.Int("enginetest.ops", 4000, "operations of the randomized model test")
	keysFlag = flag.Int("enginetest.keys", 1_000_000, "distinct keys in the engine benchmarks")
)

// Factory opens the engine under test.
type Factory struct {
	// Kind is the engine kind, as written into its checkpoints.
	Kind string
	// Open opens the engine on o (tiny parameters chosen by the caller so that
	// everything spills and merges often). The suite fills o.Dir, and
	// o.Checkpoint, o.Listener and o.Cache where a test needs them.
	Open func(o engines.OpenOptions) (engines.Engine, error)
	// StateFile is the name of the engine's private state file in its
	// directory (CURRENT), read when it opens without a checkpoint. Run needs
	// it; RunBenchmarks does not.
	StateFile string
}

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, f Factory) {
	if f.Open == nil || f.Kind == "" || f.StateFile == "" {
		t.Fatal("enginetest: Factory needs Kind, Open and StateFile")
	}
	t.Run("Basic", func(t *testing.T) { testBasic(t, f) })
	t.Run("EmptyValue", func(t *testing.T) { testEmptyValue(t, f) })
	t.Run("Limits", func(t *testing.T) { testLimits(t, f) })
	t.Run("Reopen", func(t *testing.T) { testReopen(t, f) })
	t.Run("Model", func(t *testing.T) { testModel(t, f) })
	t.Run("SealIdempotent", func(t *testing.T) { testSealIdempotent(t, f) })
	t.Run("RunImmutability", func(t *testing.T) { testRunImmutability(t, f) })
	t.Run("UniqueRunNames", func(t *testing.T) { testUniqueRunNames(t, f) })
	t.Run("ReleaseRetires", func(t *testing.T) { testReleaseRetires(t, f) })
	t.Run("MissingRun", func(t *testing.T) { testMissingRun(t, f) })
	t.Run("MissingStateFileFailsClosed", func(t *testing.T) { testMissingStateFile(t, f) })
	t.Run("TruncatedStateFile", func(t *testing.T) { testTruncatedStateFile(t, f) })
	t.Run("NewDirWithTemporaries", func(t *testing.T) { testNewDirWithTemporaries(t, f) })
	t.Run("Crash", func(t *testing.T) { testCrash(t, f) })
	t.Run("Corruption", func(t *testing.T) { testCorruption(t, f) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, f) })
	t.Run("KindMismatch", func(t *testing.T) { testKindMismatch(t, f) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, f) })
	t.Run("MemoryUsage", func(t *testing.T) { testMemoryUsage(t, f) })
}

// open opens f on dir with an optional checkpoint and listener.
func open(t testing.TB, f Factory, dir string, cp *engines.Checkpoint, l engines.Listener) engines.Engine {
	t.Helper()
	e, err := f.Open(engines.OpenOptions{Dir: dir, Checkpoint: cloneCheckpoint(cp), Listener: l})
	if err != nil {
		t.Fatalf("open %s in %s: %v", f.Kind, dir, err)
	}
	return e
}

func cloneCheckpoint(cp *engines.Checkpoint) *engines.Checkpoint {
	if cp == nil {
		return nil
	}
	c := *cp
	c.Runs = slices.Clone(cp.Runs)
	c.State = bytes.Clone(cp.State)
	return &c
}

func mustClose(t testing.TB, e engines.Engine) {
	t.Helper()
	if err := e.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func mustSet(t testing.TB, e engines.Engine, k, v string) {
	t.Helper()
	if err := e.Set([]byte(k), []byte(v)); err != nil {
		t.Fatalf("set %q: %v", k, err)
	}
}

func mustDelete(t testing.TB, e engines.Engine, k string) {
	t.Helper()
	if err := e.Delete([]byte(k)); err != nil {
		t.Fatalf("delete %q: %v", k, err)
	}
}

func mustSeal(t testing.TB, e engines.Engine) engines.Checkpoint {
	t.Helper()
	cp, err := e.Seal()
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	return cp
}

// expect checks that key holds want (present) or is absent (!present).
func expect(t testing.TB, e engines.Engine, key string, want string, present bool) {
	t.Helper()
	v, found, err := e.Get([]byte(key))
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	if found != present {
		t.Fatalf("get %q: found=%v, want found=%v (value %q)", key, found, present, short(v))
	}
	if present && string(v) != want {
		t.Fatalf("get %q = %q, want %q", key, short(v), short([]byte(want)))
	}
}

// checkState checks every key of keys against the oracle (absent from the
// oracle means absent from the engine).
func checkState(t testing.TB, e engines.Engine, oracle map[string]string, keys []string) {
	t.Helper()
	for _, k := range keys {
		want, ok := oracle[k]
		expect(t, e, k, want, ok)
	}
}

func short(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%s...(%d bytes)", b[:40], len(b))
	}
	return string(b)
}

// recorder is a Listener that checks every run event: a sealed run's file
// matches its RunInfo, no name is sealed twice, a retired run's file is gone
// and no pinned checkpoint names it. It hashes every sealed file so that
// verify can prove the bytes never changed.
type recorder struct {
	mu      sync.Mutex
	dir     string
	hashes  map[string][32]byte
	order   []string
	retired []string
	pinned  map[string]int // run name -> checkpoints of the open engine pinning it
	errs    []string
}

func newRecorder(dir string) *recorder {
	return &recorder{dir: dir, hashes: map[string][32]byte{}, pinned: map[string]int{}}
}

func (r *recorder) listener() engines.Listener {
	return engines.Listener{RunSealed: r.sealed, RunRetired: r.retire}
}

func (r *recorder) failf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) sealed(info engines.RunInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, _, _, ok := engines.ParseRunName(info.Name); !ok {
		r.failf("RunSealed(%q): not a run name", info.Name)
	}
	if _, dup := r.hashes[info.Name]; dup {
		r.failf("RunSealed(%q): run name sealed twice", info.Name)
	}
	data, err := os.ReadFile(filepath.Join(r.dir, info.Name))
	if err != nil {
		r.failf("RunSealed(%q): read file: %v", info.Name, err)
		return
	}
	if int64(len(data)) != info.Size {
		r.failf("RunSealed(%q): RunInfo.Size %d, file has %d bytes", info.Name, info.Size, len(data))
	}
	if c := crc32c(data); c != info.CRC32C {
		r.failf("RunSealed(%q): RunInfo.CRC32C %08x, file's is %08x", info.Name, info.CRC32C, c)
	}
	r.hashes[info.Name] = sha256.Sum256(data)
	r.order = append(r.order, info.Name)
}

func (r *recorder) retire(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := os.Stat(filepath.Join(r.dir, name)); !errors.Is(err, fs.ErrNotExist) {
		r.failf("RunRetired(%q): file still present (stat: %v)", name, err)
	}
	if r.pinned[name] > 0 {
		r.failf("RunRetired(%q): run of an unreleased checkpoint", name)
	}
	r.retired = append(r.retired, name)
}

// pin records that cp (from the open engine) pins its runs.
func (r *recorder) pin(cp engines.Checkpoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ri := range cp.Runs {
		r.pinned[ri.Name]++
	}
}

// unpin must be called before Release(cp).
func (r *recorder) unpin(cp engines.Checkpoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ri := range cp.Runs {
		if r.pinned[ri.Name]--; r.pinned[ri.Name] <= 0 {
			delete(r.pinned, ri.Name)
		}
	}
}

// unpinAll forgets every pin (the engine was closed).
func (r *recorder) unpinAll() {
	r.mu.Lock()
	r.pinned = map[string]int{}
	r.mu.Unlock()
}

func (r *recorder) counts() (sealed, retired int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order), len(r.retired)
}

// check reports the errors seen by the callbacks.
func (r *recorder) check(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		t.Error(e)
	}
	r.errs = nil
}

// verifyImmutable re-hashes every recorded run still present in the
// directory.
func (r *recorder) verifyImmutable(t testing.TB) (checked int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, name := range r.order {
		data, err := os.ReadFile(filepath.Join(r.dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Errorf("read run %s: %v", name, err)
			continue
		}
		checked++
		if sha256.Sum256(data) != r.hashes[name] {
			t.Errorf("run %s changed after it was sealed", name)
		}
	}
	return checked
}

// copyRuns copies the runs of cp from src to dst (created if missing),
// checking each against its RunInfo. It returns an error if a run is missing.
func copyRuns(src, dst string, cp engines.Checkpoint) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, ri := range cp.Runs {
		data, err := os.ReadFile(filepath.Join(src, ri.Name))
		if err != nil {
			return fmt.Errorf("copy run %s: %w", ri.Name, err)
		}
		if int64(len(data)) != ri.Size || crc32c(data) != ri.CRC32C {
			return fmt.Errorf("copy run %s: file does not match its RunInfo", ri.Name)
		}
		if err := os.WriteFile(filepath.Join(dst, ri.Name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// readDir reads every regular file of dir into memory; files that vanish
// while it reads are skipped.
func readDir(dir string) (map[string][]byte, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, de := range ents {
		if !de.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[de.Name()] = data
	}
	return out, nil
}

// copyLiveDir copies the directory of an open engine, as a crash would leave
// it. Background work may be changing the directory, so it reads until two
// consecutive reads agree (a copy consistent at one instant), then writes the
// copy to dst.
func copyLiveDir(t testing.TB, src, dst string) {
	t.Helper()
	prev, err := readDir(src)
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	for i := 0; ; i++ {
		cur, err := readDir(src)
		if err != nil {
			t.Fatalf("copy %s: %v", src, err)
		}
		if sameFiles(prev, cur) {
			break
		}
		if i == 1000 {
			t.Fatalf("copy %s: directory never stopped changing", src)
		}
		prev = cur
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range prev {
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sameFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func runNames(cp engines.Checkpoint) string {
	var s []string
	for _, r := range cp.Runs {
		s = append(s, r.Name)
	}
	return strings.Join(s, ",")
}

// TinyParams returns parameters of the named engine that make it flush, seal
// and merge after a few kilobytes, so that small workloads exercise every
// path (many runs, many merges). MemOnly has no parameters: nil.
func TinyParams(kind string) engines.Params {
	switch kind {
	case "lsm":
		return engines.Params{"memtable_bytes_limit": "2048", "max_runs_per_level": "3", "density_factor": "4"}
	case "hybridlog":
		return engines.Params{"mem_segment_len": "4096", "ro_lag_interval": "1024", "flush_interval": "1024", "max_runs_per_level": "3"}
	case "appendlog":
		return engines.Params{"threshold": "2048", "max_runs_per_level": "3", "compaction": "true"}
	}
	return nil
}
