package integration

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tierkv/tierkv/engines/all"
	"github.com/tierkv/tierkv/tiered"
)

// modelSteps is the number of random operations per engine and backend.
const modelSteps = 220

// TestModel drives a store on the real server with random writes, deletes,
// reads, snapshots, restores to random earlier versions and reopens (same
// directory; fresh directory at the latest version; fresh directory at a
// random earlier version), and compares every read with an oracle: the
// live model, and a map per committed version. At the end every version is
// restored once more, the latest is opened through the other client
// library, and the remote is verified deeply.
func TestModel(t *testing.T) {
	t.Parallel()
	seed := testSeed(t)
	for _, kind := range all.Kinds() {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, b backend) {
				runModel(t, b, kind, seed)
			})
		})
	}
}

func runModel(t *testing.T, b backend, kind string, seed uint64) {
	ctx := ctxT(t)
	r := rngFor(seed, kind+"/"+b.name)
	opts := func(dir string, resume bool, version uint64) tiered.Options {
		return tiered.Options{Dir: dir, Remote: b.url, Engine: kind, Params: tinyParams(kind),
			ResumeLocal: resume, Version: version, UploadConcurrency: 2}
	}
	base := t.TempDir()
	dirs := 0
	freshDir := func() string {
		dirs++
		return filepath.Join(base, fmt.Sprint(dirs))
	}
	dir := freshDir()
	s := openStore(t, opts(dir, false, 0))
	if s.Version() != 0 {
		t.Fatalf("new store on an empty remote descends from version %d", s.Version())
	}

	keys := make([]string, 60)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%03d", i)
	}
	value := func() string {
		n := r.IntN(200)
		if r.IntN(15) == 0 {
			n = 0 // the empty value is a value, not a delete
		}
		v := make([]byte, n)
		for i := range v {
			v[i] = byte(r.IntN(256))
		}
		return string(v)
	}
	model := map[string]string{}               // what the store must hold now
	versions := map[uint64]map[string]string{} // committed state per version
	var latest uint64
	reopen := func(o tiered.Options, want map[string]string, wantVersion uint64, what string) {
		t.Helper()
		if err := s.Close(); err != nil {
			t.Fatalf("%s: close: %v", what, err)
		}
		s = openStore(t, o)
		if s.Version() != wantVersion {
			t.Fatalf("%s: store descends from version %d, want %d", what, s.Version(), wantVersion)
		}
		model = cloneMap(want)
		checkState(t, s, model, keys, what)
	}

	var nset, ndel, nsnap, nrestore, nreopen int
	for step := range modelSteps {
		switch p := r.IntN(100); {
		case p < 50:
			k, v := keys[r.IntN(len(keys))], value()
			if err := s.Set([]byte(k), []byte(v)); err != nil {
				t.Fatalf("step %d: Set(%q): %v", step, k, err)
			}
			model[k] = v
			nset++
		case p < 64:
			k := keys[r.IntN(len(keys))]
			if err := s.Delete([]byte(k)); err != nil {
				t.Fatalf("step %d: Delete(%q): %v", step, k, err)
			}
			delete(model, k)
			ndel++
		case p < 80:
			k := keys[r.IntN(len(keys))]
			got, ok, err := s.Get([]byte(k))
			want, wantOK := model[k]
			if err != nil || ok != wantOK || string(got) != want {
				t.Fatalf("step %d: Get(%q) = %q, %v, %v; want %q, %v", step, k, got, ok, err, want, wantOK)
			}
		case p < 89:
			parent := s.Version()
			md := map[string]string{"step": fmt.Sprint(step), "backend": b.name}
			res, err := s.Snapshot(ctx, tiered.WithMetadata(md))
			if err != nil {
				t.Fatalf("step %d: Snapshot: %v", step, err)
			}
			if res.Version != latest+1 || res.Parent != parent || s.Version() != res.Version {
				t.Fatalf("step %d: snapshot %+v (store now at %d); want version %d with parent %d", step, res, s.Version(), latest+1, parent)
			}
			latest = res.Version
			versions[latest] = cloneMap(model)
			nsnap++
		case p < 94:
			if latest == 0 {
				continue
			}
			v := 1 + r.Uint64N(latest)
			res, err := s.Restore(ctx, v)
			if err != nil {
				t.Fatalf("step %d: Restore(%d): %v", step, v, err)
			}
			if res.Version != v || s.Version() != v || res.Metadata["step"] == "" {
				t.Fatalf("step %d: Restore(%d) = %+v, store at %d", step, v, res, s.Version())
			}
			model = cloneMap(versions[v])
			checkState(t, s, model, keys, fmt.Sprintf("step %d: after Restore(%d)", step, v))
			nrestore++
		case p < 96:
			// The same process again: local state, uncommitted writes included.
			reopen(opts(dir, true, 0), model, s.Version(), fmt.Sprintf("step %d: reopen %s", step, dir))
			nreopen++
		case p < 98:
			// Another machine: an empty directory restores the latest version.
			dir = freshDir()
			reopen(opts(dir, false, 0), versions[latest], latest, fmt.Sprintf("step %d: reopen latest (%d) in %s", step, latest, dir))
			if latest != 0 && s.Metadata()["step"] == "" {
				t.Fatalf("step %d: fresh reopen lost the metadata: %v", step, s.Metadata())
			}
			nreopen++
		default:
			// Another machine asked for an earlier version.
			if latest == 0 {
				continue
			}
			v := 1 + r.Uint64N(latest)
			dir = freshDir()
			reopen(opts(dir, false, v), versions[v], v, fmt.Sprintf("step %d: reopen version %d in %s", step, v, dir))
			nreopen++
		}
	}
	checkState(t, s, model, keys, "end")

	// History is intact: every version still restores to exactly its state,
	// and parents form a tree rooted at version 1.
	ms, err := s.Versions(ctx)
	if err != nil {
		t.Fatalf("Versions: %v", err)
	}
	if len(ms) != len(versions) {
		t.Fatalf("remote lists %d versions, %d were committed", len(ms), len(versions))
	}
	for i, m := range ms {
		if m.Version != uint64(i+1) || m.Engine != kind || (m.Version > 1 && m.Parent >= m.Version) {
			t.Fatalf("version list entry %d: version %d, parent %d, engine %s", i, m.Version, m.Parent, m.Engine)
		}
	}
	for _, v := range slices.Sorted(maps.Keys(versions)) {
		if _, err := s.Restore(ctx, v); err != nil {
			t.Fatalf("final Restore(%d): %v", v, err)
		}
		checkState(t, s, versions[v], keys, fmt.Sprintf("final Restore(%d)", v))
	}
	// The other client library reads the same remote identically.
	if latest > 0 {
		o := openStore(t, tiered.Options{Dir: freshDir(), Remote: b.otherURL(), UploadConcurrency: 2})
		if o.Version() != latest || o.Metadata()["backend"] != b.name {
			t.Fatalf("opened through the other library at version %d, metadata %v; want version %d", o.Version(), o.Metadata(), latest)
		}
		checkState(t, o, versions[latest], keys, "latest version read through the other library")
	}
	problems, err := tiered.Verify(ctx, b.open(t), nil, true)
	if err != nil || len(problems) != 0 {
		t.Fatalf("deep Verify: %v, %v", problems, err)
	}
	t.Logf("%s on %s: %d sets, %d deletes, %d snapshots, %d restores, %d reopens", kind, b.name, nset, ndel, nsnap, nrestore, nreopen)
}
