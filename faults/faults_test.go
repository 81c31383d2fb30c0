package faults

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/objstore/faultstore"
	"github.com/tierkv/tierkv/tiered"
)

// faultKinds are every kind the wrapper injects.
var faultKinds = []faultstore.Kind{
	faultstore.InternalError, faultstore.Unavailable, faultstore.TooManyRequests, faultstore.Conflict,
	faultstore.Timeout, faultstore.Reset, faultstore.Slow, faultstore.Ambiguous,
}

// faultRate is the share of requests that fail in the workloads.
const faultRate = 0.10

// baseRules make a share rate of all calls fail, spread evenly over every
// fault kind (the rules are tried in order, so each gets the probability
// that makes the total come out at rate).
func baseRules(rate float64) []faultstore.Rule {
	per := 1 - math.Pow(1-rate, 1/float64(len(faultKinds)))
	rules := make([]faultstore.Rule, len(faultKinds))
	for i, k := range faultKinds {
		rules[i] = faultstore.Rule{Prob: per, Kind: k}
	}
	return rules
}

// outage is a rule that fires on every matching call for the length of one
// snapshot, so that the snapshot fails.
type outage struct {
	name string
	rule faultstore.Rule
}

var outages = []outage{
	// Every manifest write lands but reports a timeout, and reading it back
	// fails too: the snapshot fails although its version exists.
	{"ambiguous-commit", faultstore.Rule{Ops: []faultstore.Op{faultstore.OpPut, faultstore.OpGet}, KeyPrefix: manifest.ManifestPrefix, Kind: faultstore.Ambiguous}},
	{"commit-503", faultstore.Rule{Ops: []faultstore.Op{faultstore.OpPut}, KeyPrefix: manifest.ManifestPrefix, Kind: faultstore.Unavailable}},
	{"commit-409", faultstore.Rule{Ops: []faultstore.Op{faultstore.OpPut}, KeyPrefix: manifest.ManifestPrefix, Kind: faultstore.Conflict}},
	{"list-timeout", faultstore.Rule{Ops: []faultstore.Op{faultstore.OpList}, Kind: faultstore.Timeout}},
	{"run-upload-429", faultstore.Rule{Ops: []faultstore.Op{faultstore.OpPut}, KeyPrefix: manifest.RunPrefix, Kind: faultstore.TooManyRequests}},
	{"run-upload-500", faultstore.Rule{Ops: []faultstore.Op{faultstore.OpPut}, KeyPrefix: manifest.RunPrefix, Kind: faultstore.InternalError}},
}

// outageTimeout bounds a snapshot taken during an outage: the retry loops
// give up when it expires, so the snapshot returns an error.
const outageTimeout = 300 * time.Millisecond

// faultCounts are the counters of one workload.
type faultCounts struct {
	mu                                       sync.Mutex
	snapshots, committed, failed, landed     int
	outages, restores, restoreFailed         int
	reopens, openFailed, forgets, gcs, gcErr int
	calls                                    int
	injected                                 map[string]int
}

func (c *faultCounts) add(o *faultCounts) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snapshots += o.snapshots
	c.committed += o.committed
	c.failed += o.failed
	c.landed += o.landed
	c.outages += o.outages
	c.restores += o.restores
	c.restoreFailed += o.restoreFailed
	c.reopens += o.reopens
	c.openFailed += o.openFailed
	c.forgets += o.forgets
	c.gcs += o.gcs
	c.gcErr += o.gcErr
	c.calls += o.calls
	if c.injected == nil {
		c.injected = map[string]int{}
	}
	for k, v := range o.injected {
		c.injected[k] += v
	}
}

func (c *faultCounts) String() string {
	total := 0
	kinds := slices.Sorted(maps.Keys(c.injected))
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s=%d", k, c.injected[k])
		total += c.injected[k]
	}
	return fmt.Sprintf("snapshots %d: committed %d, failed %d (of which landed %d), outages %d; restores %d (failed %d); reopens %d (failed opens %d); forgets %d, gcs %d (failed %d); faults injected %d in %d calls [%s]",
		c.snapshots, c.committed, c.failed, c.landed, c.outages, c.restores, c.restoreFailed,
		c.reopens, c.openFailed, c.forgets, c.gcs, c.gcErr, total, c.calls, strings.Join(parts, " "))
}

// TestSnapshotsUnderFaults runs the fault workload on an in-process store
// with every engine: N snapshots in all (200; 1,000 with TIERKV_STRESS=1).
func TestSnapshotsUnderFaults(t *testing.T) {
	runFaultSuite(t, memBackend, scale(200, 1000), []string{"lsm", "hybridlog", "appendlog", "memonly"})
}

// TestSnapshotsUnderFaultsMinIO runs the fault workload with the faults
// injected in front of a real MinIO server (minio-go client), so that the
// requests that do go through cross a real network stack.
func TestSnapshotsUnderFaultsMinIO(t *testing.T) {
	runFaultSuite(t, minioBackend, scale(40, 200), []string{"lsm", "memonly"})
}

func runFaultSuite(t *testing.T, be backend, n int, kinds []string) {
	newStore := be.setup(t)
	leakCheck(t)
	seed := testSeed(t)
	var total faultCounts
	for i, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			inner, _ := newStore(t)
			c := faultWorkload(t, inner, kind, n/len(kinds), seed+uint64(i))
			t.Logf("%s/%s: %s", be.name, kind, c)
			total.add(c)
		})
	}
	t.Logf("%s total: %s", be.name, &total)
}

// faultWorkload drives one writer through n snapshots over inner wrapped in
// a fault injector, with random writes, deletes, restores, reopens, forgets
// and gcs, keeping an oracle per version; then checks the remote.
func faultWorkload(t *testing.T, inner objstore.Store, kind string, n int, seed uint64) *faultCounts {
	ctx := ctxT(t)
	r := rand.New(rand.NewPCG(seed, 0xfa17))
	// What reaches the real store is logged, to check nothing is written twice.
	logged := objstore.NewCounting(inner)
	logged.SetLogging(true)
	fs := faultstore.NewWithOptions(logged, seed, faultstore.Options{SlowDelay: 2 * time.Millisecond}, baseRules(faultRate)...)
	dir := t.TempDir()
	opts := tiered.Options{Dir: dir, ObjectStore: fs, Engine: kind, Params: tinyParams(kind), UploadConcurrency: 2, Logger: discardLogger()}
	c := &faultCounts{}

	keys := newUniverse(300)
	states := map[uint64]state{} // committed versions the writer knows of
	landed := map[uint64]state{} // versions whose snapshot returned an error but landed
	current := state{}           // the writer's live state
	var lastKnown, descent uint64

	open := func() *tiered.Store {
		for attempt := 1; ; attempt++ {
			s, err := tiered.Open(ctx, opts)
			if err == nil {
				return s
			}
			c.openFailed++
			if errors.Is(err, tiered.ErrFenced) || attempt == 20 {
				t.Fatalf("open through faults, attempt %d: %v", attempt, err)
			}
		}
	}
	s := open()
	defer func() { _ = s.Close() }()

	for step := 0; step < n; step++ {
		mutate(t, r, s, current, keys, 1+r.IntN(40))

		switch {
		case r.IntN(25) == 0: // reopen: the state of the latest version
			if err := s.Close(); err != nil {
				t.Fatalf("step %d: close: %v", step, err)
			}
			s = open()
			c.reopens++
			if s.Version() != lastKnown {
				t.Fatalf("step %d: reopened at version %d, latest committed is %d", step, s.Version(), lastKnown)
			}
			if vs, err := manifest.ListVersions(ctx, inner); err != nil || len(vs) > 0 || lastKnown != 0 {
				current, descent = states[lastKnown].clone(), lastKnown
				if current == nil {
					current = state{}
				}
			}
			// else: a remote with no version yet keeps the local state (it is
			// never discarded implicitly), writes since the open included.
			checkState(t, s, current, keys, fmt.Sprintf("step %d: reopened at version %d", step, lastKnown))
		case len(states) > 0 && r.IntN(20) == 0: // restore a random version
			vs := slices.Sorted(maps.Keys(states))
			v := vs[r.IntN(len(vs))]
			c.restores++
			if _, err := s.Restore(ctx, v); err != nil {
				if errors.Is(err, tiered.ErrFenced) {
					t.Fatalf("step %d: restore %d: %v", step, v, err)
				}
				// A failed restore leaves the old state in use.
				c.restoreFailed++
				checkState(t, s, current, keys, fmt.Sprintf("step %d: after failed restore of %d (%v)", step, v, err))
				break
			}
			current, descent = states[v].clone(), v
			checkState(t, s, current, keys, fmt.Sprintf("step %d: restored version %d", step, v))
		case len(states) > 6 && r.IntN(30) == 0: // retention through faults
			c.forgets++
			_, ferr := s.Forget(ctx, tiered.Policy{KeepLast: 4}, false)
			c.gcs++
			if _, err := s.GC(ctx, 0, false); err != nil || ferr != nil {
				c.gcErr++
			}
			vs, err := manifest.ListVersions(ctx, inner)
			if err != nil {
				t.Fatal(err)
			}
			present := map[uint64]bool{}
			for _, v := range vs {
				present[v] = true
			}
			if !present[lastKnown] || !present[descent] {
				t.Fatalf("step %d: forget deleted the latest (%d) or the live version (%d): %v", step, lastKnown, descent, vs)
			}
			for v := range states {
				if !present[v] {
					delete(states, v)
				}
			}
			for v := range landed {
				if !present[v] {
					delete(landed, v)
				}
			}
		}

		// The snapshot; one in ten runs through an outage and should fail.
		md := map[string]string{"step": strconv.Itoa(step)}
		var res tiered.SnapshotResult
		var err error
		if r.IntN(10) == 0 {
			o := outages[r.IntN(len(outages))]
			c.outages++
			fs.SetRules(append([]faultstore.Rule{o.rule}, baseRules(faultRate)...)...)
			octx, cancel := context.WithTimeout(ctx, outageTimeout)
			res, err = s.Snapshot(octx, tiered.WithMetadata(md))
			cancel()
			fs.SetRules(baseRules(faultRate)...)
		} else {
			res, err = s.Snapshot(ctx, tiered.WithMetadata(md))
		}
		c.snapshots++
		failures := 0
		for err != nil {
			if errors.Is(err, tiered.ErrFenced) {
				t.Fatalf("step %d: a single writer was fenced: %v", step, err)
			}
			c.failed++
			failures++
			if failures > 5 {
				t.Fatalf("step %d: %d snapshots in a row failed after the outage; last: %v", step, failures, err)
			}
			// The store stays usable and the next snapshot works.
			checkState(t, s, current, keys, fmt.Sprintf("step %d: after failed snapshot (%v)", step, err))
			c.snapshots++
			res, err = s.Snapshot(ctx, tiered.WithMetadata(md))
		}
		c.committed++
		v := res.Version
		if v <= lastKnown || v > lastKnown+1+uint64(failures) {
			t.Fatalf("step %d: committed version %d; latest known %d and %d failed attempts allow %d..%d",
				step, v, lastKnown, failures, lastKnown+1, lastKnown+1+uint64(failures))
		}
		wantParent := descent
		for w := lastKnown + 1; w < v; w++ {
			// A failed attempt landed: it holds the same state (no write was
			// made between the attempts).
			landed[w] = current.clone()
			c.landed++
			wantParent = w
		}
		m, err := manifest.Load(ctx, inner, v)
		if err != nil {
			t.Fatalf("step %d: load committed version %d: %v", step, v, err)
		}
		if m.Parent != wantParent || res.Parent != wantParent {
			t.Fatalf("step %d: version %d has parent %d (result says %d), want %d", step, v, m.Parent, res.Parent, wantParent)
		}
		if !maps.Equal(m.Metadata, md) || !maps.Equal(s.Metadata(), md) {
			t.Fatalf("step %d: version %d metadata %v, store says %v, want %v", step, v, m.Metadata, s.Metadata(), md)
		}
		states[v] = current.clone()
		lastKnown, descent = v, v
	}

	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	c.calls = fs.Calls()
	for _, e := range fs.Injected() {
		if c.injected == nil {
			c.injected = map[string]int{}
		}
		c.injected[e.Kind.String()]++
	}
	fs.SetRules()
	checkRemote(t, inner, logged, states, landed, keys, lastKnown)
	return c
}

// checkRemote checks the remote after a workload: versions contiguous (but
// for forgotten ones), each known, every manifest verifies deep, no object
// written twice, and every version restores to exactly its oracle state.
func checkRemote(t *testing.T, inner objstore.Store, logged *objstore.Counting, states, landed map[uint64]state, keys universe, latest uint64) {
	t.Helper()
	ctx := ctxT(t)
	vs, err := manifest.ListVersions(ctx, inner)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 || vs[len(vs)-1] != latest {
		t.Fatalf("versions %v, want latest %d", vs, latest)
	}
	for _, v := range vs {
		_, ok1 := states[v]
		_, ok2 := landed[v]
		if !ok1 && !ok2 {
			t.Fatalf("version %d exists but was never committed nor attempted", v)
		}
	}
	for v := range states {
		if !slices.Contains(vs, v) {
			t.Fatalf("committed version %d is missing from %v", v, vs)
		}
	}
	problems, err := tiered.Verify(ctx, inner, nil, true)
	if err != nil || len(problems) > 0 {
		t.Fatalf("verify deep: %v %v", problems, err)
	}
	checkNoRewrite(t, logged.Log())

	verifier := openStore(t, tiered.Options{Dir: t.TempDir(), ObjectStore: inner, UploadConcurrency: 2})
	for _, v := range vs {
		want, ok := states[v]
		if !ok {
			want = landed[v]
		}
		if _, err := verifier.Restore(ctx, v); err != nil {
			t.Fatalf("restore version %d without faults: %v", v, err)
		}
		checkState(t, verifier, want, keys, fmt.Sprintf("restored version %d", v))
	}
	if err := verifier.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkNoRewrite fails t if the log of calls that reached the real store
// shows a run or manifest written other than by create-if-absent, or one
// key created twice.
func checkNoRewrite(t *testing.T, log []string) {
	t.Helper()
	created := map[string]int{}
	for _, line := range log {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "PUT" {
			continue
		}
		key := f[1]
		if strings.HasPrefix(key, "leases/") || strings.HasPrefix(key, "gc/") {
			continue // the GC protocol's own objects are rewritten by design
		}
		if !strings.Contains(line, "if-absent") {
			t.Fatalf("%q: written without create-if-absent", line)
		}
		if !strings.Contains(line, "(") { // succeeded
			created[key]++
		}
	}
	var dups []string
	for k, n := range created {
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s x%d", k, n))
		}
	}
	sort.Strings(dups)
	if len(dups) > 0 {
		t.Fatalf("objects created more than once: %v", dups)
	}
}

// TestEveryFaultKindOnEveryCall injects each fault kind once at each call
// index of a snapshot (a pebble-style sweep): every snapshot commits exactly
// the next version or fails and is settled by the next one, and the final
// state restores exactly.
func TestEveryFaultKindOnEveryCall(t *testing.T) {
	leakCheck(t)
	ctx := ctxT(t)
	keys := newUniverse(100)
	injected := 0
	for _, kind := range faultKinds {
		t.Run(kind.String(), func(t *testing.T) {
			inner := objstore.NewMem()
			fs := faultstore.NewWithOptions(inner, 1, faultstore.Options{SlowDelay: time.Millisecond})
			s := openStore(t, tiered.Options{Dir: t.TempDir(), ObjectStore: fs, Engine: "lsm", Params: tinyParams("lsm"), UploadConcurrency: 1})
			r := rand.New(rand.NewPCG(uint64(kind), 2))
			model := state{}
			states := map[uint64]state{}
			var latest uint64
			for n := 0; ; n++ {
				mutate(t, r, s, model, keys, 20)
				fs.SetRules(faultstore.FailNth(n, kind))
				before := len(fs.Injected())
				res, err := s.Snapshot(ctx)
				hit := len(fs.Injected()) > before
				fs.SetRules()
				if err != nil {
					if errors.Is(err, tiered.ErrFenced) {
						t.Fatalf("%s at call %d: fenced by our own commit: %v", kind, n, err)
					}
					checkState(t, s, model, keys, "after failed snapshot")
					if res, err = s.Snapshot(ctx); err != nil {
						t.Fatalf("%s at call %d: next snapshot: %v", kind, n, err)
					}
					if res.Version != latest+1 && res.Version != latest+2 {
						t.Fatalf("%s at call %d: version %d after %d", kind, n, res.Version, latest)
					}
					if res.Version == latest+2 {
						states[latest+1] = model.clone()
					}
				} else if res.Version != latest+1 {
					t.Fatalf("%s at call %d: version %d, want %d", kind, n, res.Version, latest+1)
				}
				latest = res.Version
				states[latest] = model.clone()
				if !hit {
					break // the fault fell beyond the snapshot's last call
				}
			}
			injected += len(fs.Injected())
			if p, err := tiered.Verify(ctx, inner, nil, true); err != nil || len(p) > 0 {
				t.Fatalf("verify: %v %v", p, err)
			}
			v := openStore(t, tiered.Options{Dir: t.TempDir(), ObjectStore: inner})
			for ver, want := range states {
				if _, err := v.Restore(ctx, ver); err != nil {
					t.Fatal(err)
				}
				checkState(t, v, want, keys, fmt.Sprintf("%s: version %d", kind, ver))
			}
		})
	}
	t.Logf("%d single faults injected across %d kinds", injected, len(faultKinds))
}

// TestRestoreUnderFaults restores every version of a store through 10%
// faults (resets mid-body included) into fresh directories with RestoreTo
// and into a live store, and checks each: a restore either fails and leaves
// the directory as it was, or gives exactly the version's state.
func TestRestoreUnderFaults(t *testing.T) {
	leakCheck(t)
	ctx := ctxT(t)
	seed := testSeed(t)
	r := rand.New(rand.NewPCG(seed, 3))
	inner := objstore.NewMem()
	keys := newUniverse(200)
	w := openStore(t, tiered.Options{Dir: t.TempDir(), ObjectStore: inner, Engine: "hybridlog", Params: tinyParams("hybridlog")})
	model := state{}
	states := map[uint64]state{}
	for range scale(12, 60) {
		mutate(t, r, w, model, keys, 80)
		res, err := w.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		states[res.Version] = model.clone()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fs := faultstore.New(inner, seed, baseRules(faultRate)...)
	// Open lists and reads the remote without retrying: retry it here.
	var live *tiered.Store
	openFailed := 0
	for live == nil {
		s, err := tiered.Open(ctx, tiered.Options{Dir: t.TempDir(), ObjectStore: fs, Version: 1, Logger: discardLogger()})
		if err != nil {
			if openFailed++; openFailed > 20 {
				t.Fatalf("open through faults: %v", err)
			}
			continue
		}
		live = s
		t.Cleanup(func() { _ = s.Close() })
	}
	checkState(t, live, states[1], keys, "opened at version 1")
	failed, ok := 0, 0
	for v, want := range states {
		for attempt := 0; ; attempt++ {
			_, err := live.Restore(ctx, v)
			if err == nil {
				ok++
				break
			}
			failed++
			if attempt > 10 {
				t.Fatalf("restore %d failed %d times: %v", v, attempt, err)
			}
		}
		checkState(t, live, want, keys, fmt.Sprintf("live restore of %d", v))
	}
	t.Logf("live restores: %d ok, %d failed attempts; %d failed opens; %d faults injected in %d calls", ok, failed, openFailed, len(fs.Injected()), fs.Calls())
}

// TestAmbiguousCommitThenRestore: a snapshot whose manifest lands although
// the client saw an error, then a Restore to an older version, then a
// snapshot. The new version must record the restored version as its parent
// and the store must report the restored version's metadata: the pending
// commit, settled later, must not overwrite what the local state descends
// from.
func TestAmbiguousCommitThenRestore(t *testing.T) {
	leakCheck(t)
	ctx := ctxT(t)
	inner := objstore.NewMem()
	fs := faultstore.New(inner, 1)
	s := openStore(t, tiered.Options{Dir: t.TempDir(), ObjectStore: fs, Engine: "memonly"})
	keys := newUniverse(10)
	model := state{}
	set := func(k, v string) {
		if err := s.Set([]byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
		model[k] = v
	}
	set(keys[0], "v1")
	if _, err := s.Snapshot(ctx, tiered.WithMetadata(map[string]string{"n": "1"})); err != nil {
		t.Fatal(err)
	}
	v1 := model.clone()
	set(keys[1], "v2")
	fs.SetRules(outages[0].rule) // manifest PUT lands, the client sees errors
	sctx, cancel := context.WithTimeout(ctx, outageTimeout)
	_, err := s.Snapshot(sctx, tiered.WithMetadata(map[string]string{"n": "2"}))
	cancel()
	fs.SetRules()
	if err == nil {
		t.Fatal("snapshot through an ambiguous outage succeeded")
	}
	if _, err := manifest.Load(ctx, inner, 2); err != nil {
		t.Fatalf("version 2 did not land underneath: %v", err)
	}
	if _, err := s.Restore(ctx, 1); err != nil {
		t.Fatal(err)
	}
	model = v1.clone()
	checkState(t, s, model, keys, "restored version 1")
	if s.Version() != 1 || s.Metadata()["n"] != "1" {
		t.Fatalf("after Restore(1): Version %d, Metadata %v", s.Version(), s.Metadata())
	}
	set(keys[2], "v3")
	// A snapshot that settles the pending version 2 but whose own commit
	// fails: the local state still descends from version 1 and must say so
	// (a worker reads its source offsets from Metadata after a restart).
	fs.SetRules(outages[1].rule)
	sctx, cancel = context.WithTimeout(ctx, outageTimeout)
	_, err = s.Snapshot(sctx)
	cancel()
	fs.SetRules()
	if err == nil {
		t.Fatal("snapshot through a failing commit succeeded")
	}
	if s.Version() != 1 || s.Metadata()["n"] != "1" {
		t.Errorf("state restored from version 1, after a failed snapshot that settled pending version 2: Version() = %d, Metadata() = %v; want 1 and n=1", s.Version(), s.Metadata())
	}
	res, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Load(ctx, inner, res.Version)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 3 || m.Parent != 1 {
		t.Errorf("snapshot after Restore(1): version %d with parent %d; want version 3 with parent 1 (the state descends from 1, not from the pending version 2)", res.Version, m.Parent)
	}
	r := openStore(t, tiered.Options{Dir: t.TempDir(), ObjectStore: inner, Version: res.Version})
	checkState(t, r, model, keys, "version 3")
}
