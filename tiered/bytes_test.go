package tiered

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
)

// putKeys returns the object keys of the successful PUTs in a Counting log.
func putKeys(log []string) (runs []string, manifests []string) {
	for _, line := range log {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "PUT" || strings.HasSuffix(line, ")") {
			continue
		}
		switch {
		case strings.HasPrefix(f[1], "runs/"):
			runs = append(runs, strings.TrimPrefix(f[1], "runs/"))
		case strings.HasPrefix(f[1], "manifests/"):
			manifests = append(manifests, f[1])
		}
	}
	return runs, manifests
}

// TestSnapshotUploadsOnlyNewRuns: a second snapshot after a few writes
// uploads only the runs the first one did not have, plus one manifest.
func TestSnapshotUploadsOnlyNewRuns(t *testing.T) {
	for _, kind := range testKinds() {
		t.Run(kind, func(t *testing.T) {
			ctx := ctxT(t)
			cnt := objstore.NewCounting(objstore.NewMem())
			s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: cnt, Engine: kind})
			model := map[string]string{}
			setAll(t, s, model, kvs("a", 2000, 100, 1))
			r1, err := s.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cnt.Reset()
			cnt.SetLogging(true)
			setAll(t, s, model, kvs("b", 20, 100, 2))
			r2, err := s.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			st := cnt.Stats()
			m1, _ := s.Manifest(ctx, r1.Version)
			m2, _ := s.Manifest(ctx, r2.Version)
			old := runNames(m1)
			var wantRuns []string
			var wantBytes int64
			for _, r := range m2.Runs {
				if _, ok := old[r.Name]; !ok {
					wantRuns = append(wantRuns, r.Name)
					wantBytes += r.Size
				}
			}
			runs, mans := putKeys(cnt.Log())
			if len(mans) != 1 || mans[0] != manifest.Key(r2.Version) {
				t.Fatalf("manifest PUTs %v, want exactly %s", mans, manifest.Key(r2.Version))
			}
			if strings.Join(sorted(runs), ",") != strings.Join(sorted(wantRuns), ",") {
				t.Fatalf("second snapshot uploaded runs %v, want the new runs %v", runs, wantRuns)
			}
			if r2.BytesUploaded != wantBytes || r2.NewRuns != len(wantRuns) || m2.Stats.NewBytes != wantBytes {
				t.Fatalf("result %+v / stats %+v, want %d new runs of %d bytes", r2, m2.Stats, len(wantRuns), wantBytes)
			}
			msize := manifestSize(t, cnt.Unwrap(), r2.Version)
			lsize := leaseSize(t, cnt.Unwrap())
			if st.BytesPut != wantBytes+msize+lsize {
				t.Fatalf("bytes put %d, want new runs %d + manifest %d + lease %d", st.BytesPut, wantBytes, msize, lsize)
			}
			t.Logf("%s: snapshot 1: %d runs, %d bytes; snapshot 2 after 20 writes: uploaded %d runs, %d run bytes + %d manifest bytes = %d bytes (state %d bytes)",
				kind, r1.Runs, r1.TotalBytes, len(runs), wantBytes, msize, st.BytesPut, r2.TotalBytes)

			// A fresh process on the same remote re-uploads nothing.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			cnt.Reset()
			s2 := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: cnt})
			checkState(t, s2, model, nil, "fresh process")
			r3, err := s2.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			runs, mans = putKeys(cnt.Log())
			if len(runs) != 0 || len(mans) != 1 {
				t.Fatalf("fresh process, snapshot without writes: uploaded runs %v and manifests %v; want only one manifest", runs, mans)
			}
			if r3.NewRuns != 0 || r3.Parent != r2.Version {
				t.Fatalf("fresh process snapshot %+v: want no new runs, parent %d", r3, r2.Version)
			}
		})
	}
}

// TestResumeLocalUploadsRunsSealedBeforeRestart: runs sealed while a process
// ran but never snapshotted are uploaded by the next process's snapshot, once.
func TestResumeLocalUploadsRunsSealedBeforeRestart(t *testing.T) {
	ctx := ctxT(t)
	cnt := objstore.NewCounting(objstore.NewMem())
	dir := t.TempDir()
	s := mustOpen(t, Options{Dir: dir, Engine: "lsm", Params: tinyParams("lsm")})
	model := map[string]string{}
	setAll(t, s, model, kvs("k", 300, 50, 3))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, Options{Dir: dir, ObjectStore: cnt, ResumeLocal: true})
	checkState(t, s, model, nil, "resumed")
	res, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 1 || res.NewRuns != res.Runs || res.Runs == 0 {
		t.Fatalf("first snapshot %+v: want version 1 with every run new", res)
	}
	before := cnt.Stats().Puts
	cnt.SetLogging(true)
	res, err = s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Background uploads of merge outputs the version does not name are
	// not the snapshot's.
	m2, err := s.Manifest(ctx, res.Version)
	if err != nil {
		t.Fatal(err)
	}
	named := runNames(m2)
	got := 0
	for _, line := range cnt.Log() {
		if f := strings.Fields(line); f[0] == "PUT" {
			if _, ok := named[strings.TrimPrefix(f[1], manifest.RunPrefix)]; ok || !strings.HasPrefix(f[1], manifest.RunPrefix) {
				got++
			}
		}
	}
	if got != 1 || res.NewRuns != 0 || cnt.Stats().Puts-before < 1 {
		t.Fatalf("snapshot without writes made %d PUTs (%+v); want 1 (the manifest): %q", got, res, cnt.Log())
	}
}

// TestRestoreDownloadsOnlyMissingRuns: a restore downloads exactly the bytes
// of the runs missing locally (plus the manifest it reads).
func TestRestoreDownloadsOnlyMissingRuns(t *testing.T) {
	for _, kind := range testKinds() {
		t.Run(kind, func(t *testing.T) {
			ctx := ctxT(t)
			mem := objstore.NewMem()
			a := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Engine: kind})
			m1state := map[string]string{}
			setAll(t, a, m1state, kvs("a", 3000, 100, 1))
			if _, err := a.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
			m2state := cloneMap(m1state)
			setAll(t, a, m2state, kvs("b", 300, 100, 2))
			if _, err := a.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}

			cnt := objstore.NewCounting(mem)
			b := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: cnt, Version: 1})
			checkState(t, b, m1state, nil, "b at version 1")
			m2, _ := b.Manifest(ctx, 2)
			local := map[string]bool{}
			ents, _ := filepath.Glob(filepath.Join(b.dir, b.mu.gen.name, "*"))
			for _, e := range ents {
				local[filepath.Base(e)] = true
			}
			var want int64
			for _, r := range m2.Runs {
				if !local[r.Name] {
					want += r.Size
				}
			}
			cnt.Reset()
			res, err := b.Restore(ctx, 2)
			if err != nil {
				t.Fatal(err)
			}
			checkState(t, b, m2state, nil, "b at version 2")
			got := cnt.Stats().BytesGot - manifestSize(t, mem, 2)
			if res.BytesDownloaded != want || got != want {
				t.Fatalf("restore of version 2 downloaded %d bytes (result says %d); want the missing runs' %d bytes", got, res.BytesDownloaded, want)
			}
			t.Logf("%s: restore 1 -> 2: %d runs reused, %d downloaded, %d bytes downloaded of %d total",
				kind, res.RunsReused, res.RunsDownloaded, got, m2.Stats.TotalBytes)

			// Back to 1: every run of 1 that 2 shares is reused.
			cnt.Reset()
			res, err = b.Restore(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			checkState(t, b, m1state, nil, "b back at version 1")
			if got := cnt.Stats().BytesGot - manifestSize(t, mem, 1); got != res.BytesDownloaded {
				t.Fatalf("restore 2 -> 1 read %d run bytes, result says %d", got, res.BytesDownloaded)
			}
			t.Logf("%s: restore 2 -> 1: %d runs reused, %d downloaded, %d bytes downloaded", kind, res.RunsReused, res.RunsDownloaded, res.BytesDownloaded)
		})
	}
}

// TestLogEnginesUploadProportionalToWrites: for the log-structured hash
// engines, the bytes a snapshot uploads stay within 1.2x the bytes written
// since the previous snapshot, plus the manifest and index (hint) files.
func TestLogEnginesUploadProportionalToWrites(t *testing.T) {
	for _, kind := range []string{"appendlog", "hybridlog"} {
		if !contains(testKinds(), kind) {
			t.Logf("%s is not in engines/all yet; skipped", kind)
			continue
		}
		t.Run(kind, func(t *testing.T) {
			ctx := ctxT(t)
			cnt := objstore.NewCounting(objstore.NewMem())
			s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: cnt, Engine: kind})
			model := map[string]string{}
			setAll(t, s, model, kvs("base", 5000, 100, 9))
			if _, err := s.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
			for round := range 5 {
				cnt.Reset()
				cnt.SetLogging(true)
				batch := kvs("r"+itoa(round)+"-", 500, 100, uint64(round))
				var written int64
				for k, v := range batch {
					written += int64(engines.RecordSize(len(k), len(v)))
				}
				setAll(t, s, model, batch)
				res, err := s.Snapshot(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var index int64
				m, _ := s.Manifest(ctx, res.Version)
				for _, name := range mustRuns(cnt.Log()) {
					if strings.HasSuffix(name, ".hint") || strings.HasSuffix(name, ".idx") || strings.HasSuffix(name, ".index") {
						index += runNames(m)[name].Size
					}
				}
				msize := manifestSize(t, cnt.Unwrap(), res.Version)
				up := cnt.Stats().BytesPut
				limit := written*12/10 + msize + index
				t.Logf("%s round %d: wrote %d bytes, snapshot uploaded %d bytes (%.2fx; manifest %d, index %d)",
					kind, round, written, up, float64(up-msize-index)/float64(written), msize, index)
				if up > limit {
					t.Fatalf("snapshot uploaded %d bytes for %d bytes written (limit %d)", up, written, limit)
				}
			}
		})
	}
}

func mustRuns(log []string) []string {
	runs, _ := putKeys(log)
	return runs
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func sorted(xs []string) []string {
	out := append([]string(nil), xs...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// leaseSize is the size of the one lease in st (the writer's, rewritten by
// a snapshot whose runs changed).
func leaseSize(t *testing.T, st objstore.Store) int64 {
	t.Helper()
	objs, err := st.List(context.Background(), leasePrefix)
	if err != nil || len(objs) != 1 {
		t.Fatalf("leases in the remote: %v, %v; want exactly one", objs, err)
	}
	return objs[0].Size
}
