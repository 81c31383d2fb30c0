package tiered

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
)

// twoVersions makes versions 1 and 2 in a fresh remote and returns the
// remote, the writer and the states of both versions.
func twoVersions(t *testing.T, kind string) (objstore.Store, *Store, map[string]string, map[string]string) {
	t.Helper()
	ctx := ctxT(t)
	mem := objstore.NewMem()
	s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Engine: kind})
	v1 := map[string]string{}
	setAll(t, s, v1, kvs("a", 500, 64, 1))
	if _, err := s.Snapshot(ctx, WithMetadata(map[string]string{"offset": "1"})); err != nil {
		t.Fatal(err)
	}
	v2 := cloneMap(v1)
	setAll(t, s, v2, kvs("b", 500, 64, 2))
	if _, err := s.Snapshot(ctx, WithMetadata(map[string]string{"offset": "2"})); err != nil {
		t.Fatal(err)
	}
	return mem, s, v1, v2
}

// corruptRun overwrites the object of one run of version v that is not in
// version keep, flipping a byte.
func corruptRun(t *testing.T, st objstore.Store, v, keep uint64) string {
	t.Helper()
	ctx := context.Background()
	m, err := manifest.Load(ctx, st, v)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := manifest.Load(ctx, st, keep)
	shared := runNames(k)
	for _, r := range m.Runs {
		if _, ok := shared[r.Name]; ok {
			continue
		}
		key := manifest.RunKey(r.Name)
		rc, info, err := st.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(rc)
		rc.Close()
		b := buf.Bytes()
		b[len(b)/2] ^= 0x40
		if err := st.Put(ctx, key, bytes.NewReader(b), int64(len(b)), objstore.PutOptions{Metadata: info.Metadata}); err != nil {
			t.Fatal(err)
		}
		return r.Name
	}
	t.Fatalf("version %d has no run of its own", v)
	return ""
}

// TestFailedRestoreKeepsOldState: a corrupted or missing run makes Restore
// fail with a clear error and leaves the old state readable and writable.
func TestFailedRestoreKeepsOldState(t *testing.T) {
	for _, damage := range []string{"corrupt", "missing"} {
		t.Run(damage, func(t *testing.T) {
			ctx := ctxT(t)
			mem, w, v1, _ := twoVersions(t, "lsm")
			w.Close()
			name := corruptRun(t, mem, 2, 1)
			if damage == "missing" {
				if err := mem.Delete(ctx, manifest.RunKey(name)); err != nil {
					t.Fatal(err)
				}
			}
			s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Version: 1})
			model := cloneMap(v1)
			setAll(t, s, model, map[string]string{"local": "write"})
			_, err := s.Restore(ctx, 2)
			if err == nil {
				t.Fatal("Restore of a damaged version succeeded")
			}
			if !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error does not name the run %s on one line: %v", name, err)
			}
			if damage == "corrupt" && !errors.Is(err, engines.ErrCorrupt) {
				t.Fatalf("corrupt run: %v does not match engines.ErrCorrupt", err)
			}
			t.Logf("%s: %v", damage, err)
			if s.Version() != 1 {
				t.Fatalf("Version() = %d after a failed restore, want 1", s.Version())
			}
			checkState(t, s, model, nil, "after failed restore")
			setAll(t, s, model, map[string]string{"after": "failure"})
			res, err := s.Snapshot(ctx)
			if err != nil || res.Parent != 1 || res.Version != 3 {
				t.Fatalf("snapshot after failed restore: %+v, %v; want version 3, parent 1", res, err)
			}
			// No leftover generation or temporary file.
			local, err := inspectDir(engines.OSFS{}, s.dir)
			if err != nil || len(local.gens) != 1 || local.marker != nil {
				t.Fatalf("after failed restore: generations %v, marker %v, err %v; want one generation and no RESTORING", local.gens, local.marker, err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, Options{Dir: s.dir, ObjectStore: mem, ResumeLocal: true})
			checkState(t, s, model, nil, "reopened after failed restore")
		})
	}
}

// TestRestoreMetadataAndParent: Open hands back the committed metadata;
// after Restore(v) the next snapshot is latest+1 with parent v.
func TestRestoreMetadataAndParent(t *testing.T) {
	ctx := ctxT(t)
	mem, w, v1, v2 := twoVersions(t, "lsm")
	w.Close()
	s := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem})
	if md := s.Metadata(); md["offset"] != "2" || s.Version() != 2 {
		t.Fatalf("open: metadata %v, version %d; want offset 2 at version 2", md, s.Version())
	}
	checkState(t, s, v2, nil, "open latest")
	res, err := s.Restore(ctx, 1)
	if err != nil || res.Metadata["offset"] != "1" {
		t.Fatalf("Restore(1): %+v, %v", res, err)
	}
	checkState(t, s, v1, map[string]bool{"b0001": true}, "restored 1")
	snap, err := s.Snapshot(ctx)
	if err != nil || snap.Version != 3 || snap.Parent != 1 {
		t.Fatalf("snapshot after Restore(1): %+v, %v; want version 3 parent 1", snap, err)
	}
	if snap.NewRuns != 0 {
		t.Fatalf("snapshot right after a restore uploaded %d new runs", snap.NewRuns)
	}
	// RestoreTo and PlanRestore, for operators.
	dir := t.TempDir()
	plan, err := PlanRestore(ctx, dir, mem, 2)
	if err != nil || len(plan.Reuse) != 0 || len(plan.Download) == 0 {
		t.Fatalf("PlanRestore into an empty dir: %+v, %v", plan, err)
	}
	var last, total int64
	rr, err := RestoreTo(ctx, dir, mem, 2, func(d, tot int64) { last, total = d, tot })
	if err != nil || rr.BytesDownloaded != plan.DownloadBytes || last != total || total != plan.DownloadBytes {
		t.Fatalf("RestoreTo: %+v, %v; progress %d/%d; plan %d bytes", rr, err, last, total, plan.DownloadBytes)
	}
	plan, err = PlanRestore(ctx, dir, mem, 2)
	if err != nil || len(plan.Download) != 0 {
		t.Fatalf("PlanRestore after RestoreTo: %+v, %v", plan, err)
	}
	r := mustOpen(t, Options{Dir: dir, ResumeLocal: true})
	checkState(t, r, v2, nil, "RestoreTo then open")
	if md := r.Metadata(); md["offset"] != "2" || r.Version() != 2 {
		t.Fatalf("RestoreTo then open: metadata %v version %d", md, r.Version())
	}
}

// TestBadInput: clear one-line errors for a missing version, another
// engine kind (local and remote), an unreachable endpoint, a locked
// directory, and remote operations without a remote.
func TestBadInput(t *testing.T) {
	ctx := ctxT(t)
	mem, w, _, _ := twoVersions(t, "lsm")
	w.Close()
	oneLine := func(t *testing.T, err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("no error; want one naming %q", want)
		}
		for _, s := range want {
			if !strings.Contains(err.Error(), s) {
				t.Fatalf("error %q does not contain %q", err, s)
			}
		}
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("error spans lines: %q", err)
		}
	}

	_, err := Open(ctx, Options{Dir: t.TempDir(), ObjectStore: mem, Version: 7})
	oneLine(t, err, "version 7", "2")
	if !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("missing version: %v does not match ErrVersionNotFound", err)
	}

	_, err = Open(ctx, Options{Dir: t.TempDir(), ObjectStore: mem, Engine: "memonly"})
	oneLine(t, err, `"lsm"`, `"memonly"`)
	if !errors.Is(err, ErrKindMismatch) {
		t.Fatalf("kind mismatch at open: %v", err)
	}

	m := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Engine: "memonly", ResumeLocal: true})
	_, err = m.Restore(ctx, 1)
	oneLine(t, err, "version 1", `"lsm"`, `"memonly"`)
	if !errors.Is(err, ErrKindMismatch) {
		t.Fatalf("kind mismatch at restore: %v", err)
	}
	m.Close()

	dir := t.TempDir()
	l := mustOpen(t, Options{Dir: dir, Engine: "memonly"})
	_, err = Open(ctx, Options{Dir: dir})
	oneLine(t, err, dir)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open of a directory: %v", err)
	}
	l.Close()
	_, err = Open(ctx, Options{Dir: dir, Engine: "lsm"})
	oneLine(t, err, `"memonly"`, `"lsm"`, "Engine")
	if !errors.Is(err, ErrKindMismatch) {
		t.Fatalf("local kind mismatch: %v", err)
	}

	local := mustOpen(t, Options{Dir: t.TempDir()})
	if _, err := local.Snapshot(ctx); !errors.Is(err, ErrNoRemote) {
		t.Fatalf("snapshot without remote: %v", err)
	}
	if _, err := local.Restore(ctx, 1); !errors.Is(err, ErrNoRemote) {
		t.Fatalf("restore without remote: %v", err)
	}
	if local.state.kind != DefaultEngine {
		t.Fatalf("default engine %q, want %q", local.state.kind, DefaultEngine)
	}

	_, err = Open(ctx, Options{Dir: t.TempDir(), Engine: "nosuch"})
	oneLine(t, err, "nosuch")

	// A corrupted STORE is corruption naming the file.
	d2 := t.TempDir()
	c := mustOpen(t, Options{Dir: d2})
	c.Close()
	b, _ := os.ReadFile(filepath.Join(d2, storeFileName))
	os.WriteFile(filepath.Join(d2, storeFileName), bytes.Replace(b, []byte(`"lsm"`), []byte(`"lsn"`), 1), 0o644)
	_, err = Open(ctx, Options{Dir: d2})
	oneLine(t, err, "STORE")
	if !errors.Is(err, engines.ErrCorrupt) {
		t.Fatalf("corrupt STORE: %v", err)
	}
}

// TestUnreachableEndpoint: Open against a closed port fails in bounded time
// with an error naming the endpoint and no secret.
func TestUnreachableEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("contacts 127.0.0.1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout+10e9)
	defer cancel()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CA_BUNDLE", "") // the SDK cannot apply it to the backend's own HTTP client
	url := "s3://bucket/prefix?endpoint=http://127.0.0.1:1&region=us-east-1&path_style=true"
	_, err := Open(ctx, Options{Dir: t.TempDir(), Remote: url})
	if err == nil {
		t.Fatal("Open against a closed port succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "127.0.0.1") {
		t.Fatalf("error does not name the endpoint: %v", err)
	}
	for _, secret := range []string{"AKIDEXAMPLE", "s3cr3t-value"} {
		if strings.Contains(msg, secret) {
			t.Fatalf("error leaks a secret: %v", err)
		}
	}
	t.Logf("unreachable: %v", err)
}
