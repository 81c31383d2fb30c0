package integration

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/tiered"
)

// buildVersions writes n versions through an lsm store with tiny
// parameters (many runs) and returns the committed state per version and
// the key universe. The store is closed on return.
func buildVersions(t *testing.T, b backend, n int, seed uint64) (map[uint64]map[string]string, []string) {
	t.Helper()
	ctx := ctxT(t)
	r := rngFor(seed, "versions/"+b.name)
	s := openStore(t, tiered.Options{Dir: filepath.Join(t.TempDir(), "writer"), Remote: b.url, Engine: "lsm", Params: tinyParams("lsm")})
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%03d", i)
	}
	model := map[string]string{}
	states := map[uint64]map[string]string{}
	for v := 1; v <= n; v++ {
		kv := map[string]string{}
		for range 120 {
			kv[keys[r.IntN(len(keys))]] = strings.Repeat(fmt.Sprintf("v%d.", v), 1+r.IntN(60))
		}
		setAll(t, s, model, kv)
		if v > 1 {
			k := keys[r.IntN(len(keys))]
			if err := s.Delete([]byte(k)); err != nil {
				t.Fatalf("Delete(%s): %v", k, err)
			}
			delete(model, k)
		}
		res, err := s.Snapshot(ctx, tiered.WithMetadata(map[string]string{"v": fmt.Sprint(v)}))
		if err != nil || res.Version != uint64(v) {
			t.Fatalf("snapshot %d: %+v, %v", v, res, err)
		}
		states[res.Version] = cloneMap(model)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}
	return states, keys
}

// problemKey identifies a Problem without its detail.
type problemKey struct {
	version uint64
	object  string
}

// TestVerify runs tiered.Verify, shallow and deep, on intact versions, then
// damages objects behind tierkv's back with a raw minio-go client (content
// flipped with size and metadata kept, truncated, deleted, metadata
// stripped, a manifest corrupted) and checks that exactly the expected
// problems are reported and that a restore of a damaged version fails with
// a corruption error.
func TestVerify(t *testing.T) {
	t.Parallel()
	seed := testSeed(t)
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := ctxT(t)
		states, keys := buildVersions(t, b, 3, seed)
		st := b.open(t)
		ms := map[uint64]*manifest.Manifest{}
		for v := range states {
			m, err := manifest.Load(ctx, st, v)
			if err != nil {
				t.Fatalf("load manifest %d: %v", v, err)
			}
			ms[v] = m
		}
		for _, deep := range []bool{false, true} {
			if problems, err := tiered.Verify(ctx, st, nil, deep); err != nil || len(problems) != 0 {
				t.Fatalf("verify (deep=%v) of intact versions: %v, %v", deep, problems, err)
			}
		}

		// The victims: runs of versions 3 and 1 (the latest's first), and
		// version 2's manifest.
		var runs []engines.RunInfo
		for _, v := range []uint64{3, 1} {
			for _, r := range ms[v].Runs {
				if !slices.ContainsFunc(runs, func(x engines.RunInfo) bool { return x.Name == r.Name }) {
					runs = append(runs, r)
				}
			}
		}
		if len(runs) < 4 {
			t.Fatalf("versions 1 and 3 have %d distinct runs; the test needs 4 (engine parameters too large?)", len(runs))
		}
		rc := b.raw(t)
		crcMeta := func(r engines.RunInfo) map[string]string {
			return map[string]string{"crc32c": fmt.Sprintf("%08x", r.CRC32C)}
		}

		// 1. Same size, same crc32c metadata, one byte flipped: only a deep
		// verify sees it, and a restore refuses it as corruption.
		flipped := runs[0]
		data := rc.get(t, manifest.RunKey(flipped.Name))
		data[len(data)/3] ^= 0x01
		rc.put(t, manifest.RunKey(flipped.Name), data, crcMeta(flipped))
		if problems, err := tiered.Verify(ctx, st, nil, false); err != nil || len(problems) != 0 {
			t.Fatalf("shallow verify after a same-size flip: %v, %v; want no problem (it cannot see content)", problems, err)
		}
		problems, err := tiered.Verify(ctx, st, []uint64{3}, true)
		if err != nil || len(problems) != 1 || problems[0].Object != manifest.RunKey(flipped.Name) || !strings.Contains(problems[0].Detail, "content crc32c") {
			t.Fatalf("deep verify of version 3 after a flip in %s: %v, %v", flipped.Name, problems, err)
		}
		_, err = tiered.Open(ctx, tiered.Options{Dir: filepath.Join(t.TempDir(), "r"), Remote: b.url, Logger: testLogger()})
		if !errors.Is(err, engines.ErrCorrupt) {
			t.Fatalf("open of version 3 with a flipped run: %v, want an error matching engines.ErrCorrupt", err)
		}

		// 2-4. Truncated, deleted, metadata stripped (not a problem); 5.
		// manifest 2 corrupted.
		truncated, deleted, stripped := runs[1], runs[2], runs[3]
		data = rc.get(t, manifest.RunKey(truncated.Name))
		rc.put(t, manifest.RunKey(truncated.Name), data[:len(data)-1], crcMeta(truncated))
		rc.remove(t, manifest.RunKey(deleted.Name))
		data = rc.get(t, manifest.RunKey(stripped.Name))
		rc.put(t, manifest.RunKey(stripped.Name), data, nil)
		mdata := rc.get(t, manifest.Key(2))
		i := bytes.Index(mdata, []byte(`"version": 2`))
		if i < 0 {
			t.Fatalf("manifest 2 does not hold %q: %s", `"version": 2`, mdata)
		}
		mdata[i+len(`"version": `)] = '7'
		rc.put(t, manifest.Key(2), mdata, nil)

		// The stripped run is not damage: its bytes match the manifest,
		// which is what verify judges by (metadata is only a copy of it).
		detail := map[string]string{
			flipped.Name:   "content crc32c",
			truncated.Name: "size",
			deleted.Name:   "missing",
		}
		for _, deep := range []bool{false, true} {
			want := map[problemKey]string{{2, manifest.Key(2)}: ""}
			for _, v := range []uint64{1, 3} {
				for _, r := range ms[v].Runs {
					d, ok := detail[r.Name]
					if ok && (deep || r.Name != flipped.Name) {
						want[problemKey{v, manifest.RunKey(r.Name)}] = d
					}
				}
			}
			problems, err := tiered.Verify(ctx, st, nil, deep)
			if err != nil {
				t.Fatalf("verify (deep=%v) of damaged versions: %v", deep, err)
			}
			got := map[problemKey]string{}
			for _, p := range problems {
				got[problemKey{p.Version, p.Object}] = p.Detail
			}
			if !slices.Equal(slices.SortedFunc(maps.Keys(got), cmpProblem), slices.SortedFunc(maps.Keys(want), cmpProblem)) {
				t.Fatalf("verify (deep=%v) reported %v; want problems for %v", deep, problems, slices.SortedFunc(maps.Keys(want), cmpProblem))
			}
			for k, d := range want {
				if !strings.Contains(got[k], d) {
					t.Fatalf("verify (deep=%v): %v: detail %q, want it to mention %q", deep, k, got[k], d)
				}
			}
		}

		// A version that does not exist is a problem, not an error.
		problems, err = tiered.Verify(ctx, st, []uint64{99}, false)
		if err != nil || len(problems) != 1 || problems[0].Version != 99 {
			t.Fatalf("verify of version 99: %v, %v", problems, err)
		}
		// An undamaged version, if any, still restores exactly.
		for v := uint64(1); v <= 3; v++ {
			if v == 2 || slices.ContainsFunc(ms[v].Runs, func(r engines.RunInfo) bool { _, bad := detail[r.Name]; return bad }) {
				continue
			}
			s := openStore(t, tiered.Options{Dir: filepath.Join(t.TempDir(), "ok"), Remote: b.url, Version: v})
			checkState(t, s, states[v], keys, fmt.Sprintf("version %d after the damage to others", v))
		}
		t.Logf("verify on %s: 4 damaged runs and 1 damaged manifest detected", b.name)
	})
}

func cmpProblem(a, b problemKey) int {
	if a.version != b.version {
		if a.version < b.version {
			return -1
		}
		return 1
	}
	return strings.Compare(a.object, b.object)
}
