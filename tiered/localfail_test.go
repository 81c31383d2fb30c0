package tiered

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/objstore"
)

// treeDigest lists every file below dir (but LOCK) with its size and
// SHA-256, to show that nothing changed.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() || rel == lockFileName {
			lines = append(lines, rel+"/")
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		lines = append(lines, rel+" "+hex.EncodeToString(sum[:8]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// committedDir returns a store directory holding a committed version and
// some writes after it, and its remote.
func committedDir(t *testing.T, kind string) (string, objstore.Store) {
	t.Helper()
	mem := objstore.NewMem()
	dir := t.TempDir()
	s := mustOpen(t, Options{Dir: dir, ObjectStore: mem, Engine: kind, Params: tinyParams(kind)})
	setAll(t, s, map[string]string{}, kvs("k", 200, 40, 5))
	if _, err := s.Snapshot(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	setAll(t, s, map[string]string{}, kvs("after", 20, 40, 6))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, mem
}

// TestMissingLocalMetadataFailsClosed: without STORE, or with STORE naming
// a missing data directory, every open fails naming the file and nothing
// is deleted or changed.
func TestMissingLocalMetadataFailsClosed(t *testing.T) {
	for _, kind := range testKinds() {
		t.Run(kind, func(t *testing.T) {
			for _, damage := range []string{"remove STORE", "truncate STORE", "remove data dir"} {
				dir, mem := committedDir(t, kind)
				var named string
				switch damage {
				case "remove STORE":
					named = storeFileName
					if err := os.Remove(filepath.Join(dir, storeFileName)); err != nil {
						t.Fatal(err)
					}
				case "truncate STORE":
					named = storeFileName
					b, _ := os.ReadFile(filepath.Join(dir, storeFileName))
					if err := os.WriteFile(filepath.Join(dir, storeFileName), b[:len(b)/2], 0o644); err != nil {
						t.Fatal(err)
					}
				case "remove data dir":
					named = genName(1)
					if err := os.Rename(filepath.Join(dir, genName(1)), filepath.Join(t.TempDir(), "moved")); err != nil {
						t.Fatal(err)
					}
				}
				before := treeDigest(t, dir)
				for _, o := range []Options{
					{Dir: dir},
					{Dir: dir, ObjectStore: mem, ResumeLocal: true},
					{Dir: dir, ObjectStore: mem},
				} {
					s, err := Open(ctxT(t), o)
					if err == nil {
						_ = s.Close()
						t.Fatalf("%s: Open(ResumeLocal %v, remote %v) succeeded", damage, o.ResumeLocal, o.ObjectStore != nil)
					}
					if !strings.Contains(err.Error(), named) || !errors.Is(err, engines.ErrCorrupt) {
						t.Fatalf("%s: %v; want a corruption error naming %s", damage, err, named)
					}
					if after := treeDigest(t, dir); after != before {
						t.Fatalf("%s: the directory changed:\nbefore\n%s\nafter\n%s", damage, before, after)
					}
				}
			}
		})
	}
}

// TestForeignDirectoryIsRefused: a directory holding other files is not
// made a store; nothing is created in it. A failed open of a new directory
// leaves nothing behind.
func TestForeignDirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{{Dir: dir}, {Dir: dir, ObjectStore: objstore.NewMem()}} {
		_, err := Open(ctxT(t), o)
		if !errors.Is(err, ErrNotAStore) || !strings.Contains(err.Error(), "notes.txt") {
			t.Fatalf("Open of a foreign directory: %v; want ErrNotAStore naming notes.txt", err)
		}
		if _, err := RestoreTo(ctxT(t), dir, objstore.NewMem(), 0, nil); !errors.Is(err, ErrNotAStore) {
			t.Fatalf("RestoreTo a foreign directory: %v; want ErrNotAStore", err)
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 2 { // notes.txt and LOCK
			t.Fatalf("foreign directory now holds %v", ents)
		}
	}
	newDir := filepath.Join(t.TempDir(), "new")
	if _, err := Open(ctxT(t), Options{Dir: newDir, Engine: "nosuch"}); err == nil {
		t.Fatal("Open with an unknown engine succeeded")
	}
	if _, err := os.Stat(newDir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed open left %s behind: %v", newDir, err)
	}
}

// TestInterruptedRestoreIsResumedOnly: a copy of a directory taken half-way
// through a restore (as a kill leaves it) is refused by a local open, left
// untouched, and finished by the next restore, which downloads only the
// runs not downloaded before.
func TestInterruptedRestoreIsResumedOnly(t *testing.T) {
	ctx := ctxT(t)
	mem := objstore.NewMem()
	src := mustOpen(t, Options{Dir: t.TempDir(), ObjectStore: mem, Engine: "appendlog", Params: tinyParams("appendlog")})
	model := map[string]string{}
	setAll(t, src, model, kvs("k", 400, 100, 7))
	res, err := src.Snapshot(ctx)
	if err != nil || res.Runs < 6 {
		t.Fatalf("snapshot: %+v, %v; want at least 6 runs", res, err)
	}
	dir := filepath.Join(t.TempDir(), "target")
	killed := filepath.Join(t.TempDir(), "killed")
	copied := false
	progress := func(done, total int64) {
		if !copied && done > total/2 {
			copied = true
			copyTree(t, dir, killed)
		}
	}
	p, err := PrepareRestore(ctx, dir, mem, 0, RestoreOptions{Progress: progress, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if !copied {
		t.Fatal("progress never passed half-way")
	}
	before := treeDigest(t, killed)
	for _, o := range []Options{{Dir: killed}, {Dir: killed, ObjectStore: mem, ResumeLocal: true}} {
		_, err := Open(ctx, o)
		if !errors.Is(err, ErrRestoreUnfinished) || !strings.Contains(err.Error(), restoringFileName) {
			t.Fatalf("local open of an interrupted restore: %v; want ErrRestoreUnfinished naming %s", err, restoringFileName)
		}
		if after := treeDigest(t, killed); after != before {
			t.Fatalf("the interrupted restore changed:\n%s\n%s", before, after)
		}
	}
	cnt := objstore.NewCounting(mem)
	again, err := RestoreTo(ctx, killed, cnt, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	runBytes := cnt.Stats().BytesGot - manifestSize(t, mem, res.Version)
	if again.RunsReused == 0 || again.RunsDownloaded+again.RunsReused != res.Runs || runBytes != again.BytesDownloaded {
		t.Fatalf("resumed restore: %+v, %d run bytes read; want the runs verified before reused and only the rest read", again, runBytes)
	}
	if _, err := os.Stat(filepath.Join(killed, restoringFileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("RESTORING left after the resumed restore: %v", err)
	}
	r := mustOpen(t, Options{Dir: killed, ResumeLocal: true})
	checkState(t, r, model, nil, "resumed restore")
}

// copyTree copies the files below src to dst (a crash image).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // renamed meanwhile
		}
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestInterruptedCreationIsNewAgain: a process killed while creating a new
// store, after the engine wrote its first files and before STORE, leaves
// RESTORING of version 0 naming the generation; the next open starts a new
// store there (nothing was ever written to it). Killed after STORE, the
// next open just removes the marker.
func TestInterruptedCreationIsNewAgain(t *testing.T) {
	for _, withStore := range []bool{false, true} {
		dir := t.TempDir()
		s := mustOpen(t, Options{Dir: dir, Engine: "appendlog"})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if !withStore {
			if err := os.Remove(filepath.Join(dir, storeFileName)); err != nil {
				t.Fatal(err)
			}
		}
		if err := writeRestoreMarker(engines.OSFS{}, dir, restoreMarker{Staging: []string{genName(1)}}); err != nil {
			t.Fatal(err)
		}
		r := mustOpen(t, Options{Dir: dir, Engine: "appendlog"})
		setAll(t, r, map[string]string{}, map[string]string{"k": "v"})
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, restoringFileName)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("store %v: RESTORING left after the open: %v", withStore, err)
		}
		r = mustOpen(t, Options{Dir: dir})
		checkState(t, r, map[string]string{"k": "v"}, nil, "reopened after an interrupted creation")
	}
	// A RESTORING of a real version without STORE is an unfinished restore,
	// never abandoned.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, genName(1)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeRestoreMarker(engines.OSFS{}, dir, restoreMarker{Version: 3, Staging: []string{genName(1)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctxT(t), Options{Dir: dir}); !errors.Is(err, ErrRestoreUnfinished) {
		t.Fatalf("open of an unfinished restore of version 3: %v", err)
	}
}
