package tiered

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tierkv/tierkv/objstore"
)

// TestModel runs random writes, deletes, snapshots, restores to random
// earlier versions, reopens (same directory and a fresh one), and compares
// every read with an oracle map kept per version, for every engine and both
// the mem and file backends.
func TestModel(t *testing.T) {
	seed := testSeed(t)
	for _, kind := range testKinds() {
		for _, backend := range []string{"mem", "file"} {
			t.Run(kind+"/"+backend, func(t *testing.T) {
				t.Parallel()
				runModel(t, kind, backend, seed)
			})
		}
	}
}

func runModel(t *testing.T, kind, backend string, seed uint64) {
	ctx := ctxT(t)
	h := fnv.New64a()
	h.Write([]byte(kind + "/" + backend))
	r := rand.New(rand.NewPCG(seed, h.Sum64()))
	var remote objstore.Store
	switch backend {
	case "mem":
		remote = objstore.NewMem()
	case "file":
		st, err := objstore.Open(ctx, "file://"+t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		remote = st
	}
	opts := func(dir string, resume bool) Options {
		return Options{Dir: dir, ObjectStore: remote, Engine: kind, Params: tinyParams(kind), ResumeLocal: resume,
			CacheBytes: 1 << 20, UploadConcurrency: 2, Logger: testLogger(t)}
	}
	dir := t.TempDir()
	s := mustOpen(t, opts(filepath.Join(dir, "0"), false))
	dirs := 1

	model := map[string]string{}               // the state the store must hold
	versions := map[uint64]map[string]string{} // committed state per version
	keys := make([]string, 150)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%03d", i)
	}
	universe := map[string]bool{}
	for _, k := range keys {
		universe[k] = true
	}
	value := func() string {
		n := r.IntN(120)
		if r.IntN(20) == 0 {
			n = 0 // the empty value is a value
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	}
	latest := func() uint64 {
		var vs []uint64
		for v := range versions {
			vs = append(vs, v)
		}
		if len(vs) == 0 {
			return 0
		}
		return slices.Max(vs)
	}
	reopen := func(o Options, want map[string]string, what string) {
		if err := s.Close(); err != nil {
			t.Fatalf("%s: close: %v", what, err)
		}
		var err error
		s, err = Open(ctx, o)
		if err != nil {
			t.Fatalf("%s: open: %v", what, err)
		}
		t.Cleanup(func() { _ = s.Close() })
		model = cloneMap(want)
		checkState(t, s, model, universe, what)
	}

	const steps = 500
	var nsnap, nrestore, nreopen int
	for step := range steps {
		switch p := r.IntN(100); {
		case p < 55:
			k := keys[r.IntN(len(keys))]
			v := value()
			if err := s.Set([]byte(k), []byte(v)); err != nil {
				t.Fatalf("step %d: Set: %v", step, err)
			}
			model[k] = v
		case p < 70:
			k := keys[r.IntN(len(keys))]
			if err := s.Delete([]byte(k)); err != nil {
				t.Fatalf("step %d: Delete: %v", step, err)
			}
			delete(model, k)
		case p < 85:
			k := keys[r.IntN(len(keys))]
			got, ok, err := s.Get([]byte(k))
			want, wantOK := model[k]
			if err != nil || ok != wantOK || string(got) != want {
				t.Fatalf("step %d: Get(%q) = %q, %v, %v; want %q, %v", step, k, got, ok, err, want, wantOK)
			}
		case p < 92:
			md := map[string]string{"step": fmt.Sprint(step)}
			res, err := s.Snapshot(ctx, WithMetadata(md))
			if err != nil {
				t.Fatalf("step %d: Snapshot: %v", step, err)
			}
			if res.Version != latest()+1 {
				t.Fatalf("step %d: snapshot version %d, want %d", step, res.Version, latest()+1)
			}
			versions[res.Version] = cloneMap(model)
			nsnap++
		case p < 96:
			if len(versions) == 0 {
				continue
			}
			v := uint64(1 + r.IntN(int(latest())))
			res, err := s.Restore(ctx, v)
			if err != nil {
				t.Fatalf("step %d: Restore(%d): %v", step, v, err)
			}
			if res.Version != v || s.Version() != v {
				t.Fatalf("step %d: Restore(%d) restored %d, Version() %d", step, v, res.Version, s.Version())
			}
			model = cloneMap(versions[v])
			checkState(t, s, model, universe, fmt.Sprintf("step %d: after Restore(%d)", step, v))
			nrestore++
		case p < 98:
			reopen(opts(s.dir, true), model, fmt.Sprintf("step %d: reopen local", step))
			nreopen++
		default:
			// A new process elsewhere: restores the latest version.
			d := filepath.Join(dir, fmt.Sprint(dirs))
			dirs++
			reopen(opts(d, false), versions[latest()], fmt.Sprintf("step %d: reopen in a fresh directory", step))
			if md := s.Metadata(); latest() != 0 && md["step"] == "" {
				t.Fatalf("step %d: fresh reopen lost the metadata: %v", step, md)
			}
			nreopen++
		}
	}
	checkState(t, s, model, universe, "end")
	// Every version still restores to exactly its state.
	for v, want := range versions {
		if _, err := s.Restore(ctx, v); err != nil {
			t.Fatalf("final Restore(%d): %v", v, err)
		}
		checkState(t, s, want, universe, fmt.Sprintf("final Restore(%d)", v))
	}
	problems, err := Verify(ctx, remote, nil, true)
	if err != nil || len(problems) != 0 {
		t.Fatalf("Verify: %v, %v", problems, err)
	}
	t.Logf("%s/%s: %d snapshots, %d restores, %d reopens", kind, backend, nsnap, nrestore, nreopen)
}
