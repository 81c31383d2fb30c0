package objstore_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tierkv/tierkv/objstore"
)

func TestFileRootCreatedByFirstPut(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "missing", "remote")
	s, err := objstore.NewFile(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Reads and deletes of a missing root find nothing and create nothing.
	if infos, err := s.List(ctx, ""); err != nil || len(infos) != 0 {
		t.Fatalf("list of a missing root = %v, %v; want empty", infos, err)
	}
	if infos, err := s.List(ctx, "runs/"); err != nil || len(infos) != 0 {
		t.Fatalf("list runs/ of a missing root = %v, %v; want empty", infos, err)
	}
	if _, err := s.Head(ctx, "manifests/1"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("head in a missing root: %v, want ErrNotExist", err)
	}
	if _, _, err := s.Get(ctx, "manifests/1"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("get in a missing root: %v, want ErrNotExist", err)
	}
	if _, err := s.GetRange(ctx, "manifests/1", 0, -1); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("getrange in a missing root: %v, want ErrNotExist", err)
	}
	if err := s.Delete(ctx, "manifests/1"); err != nil {
		t.Fatalf("delete in a missing root: %v", err)
	}
	if temps, err := s.(objstore.TempRemover).RemoveTemps(ctx, time.Now().Add(time.Hour), false); err != nil || len(temps) != 0 {
		t.Fatalf("remove temps of a missing root = %v, %v", temps, err)
	}
	if _, err := os.Stat(filepath.Dir(root)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reads created %s: %v", filepath.Dir(root), err)
	}
	// The first Put creates it.
	if err := s.Put(ctx, "runs/a", strings.NewReader("abc"), 3, objstore.PutOptions{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(root, "runs", "a")); err != nil || string(data) != "abc" {
		t.Fatalf("object file = %q, %v", data, err)
	}
}

func TestFileRootNotADirectory(t *testing.T) {
	root := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(root, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := objstore.NewFile(root); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("NewFile on a file: %v, want a not-a-directory error", err)
	}
}

func TestFileMetadataMissing(t *testing.T) {
	// A tree copied without xattrs (cp -r) has objects without metadata:
	// they read as objects with none, not as errors.
	ctx := context.Background()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "runs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "runs", "a"), []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := objstore.NewFile(root)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Head(ctx, "runs/a")
	if err != nil || info.Size != 3 || len(info.Metadata) != 0 {
		t.Fatalf("head = %+v, %v; want size 3 and no metadata", info, err)
	}
	rc, info, err := s.Get(ctx, "runs/a")
	if err != nil || len(info.Metadata) != 0 {
		t.Fatalf("get = %+v, %v; want no metadata", info, err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(data) != "abc" {
		t.Fatalf("get read %q, %v", data, err)
	}
}

func TestFileRemoveTemps(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := objstore.NewFile(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "runs/a", strings.NewReader("abc"), 3, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	old, recent := now.Add(-2*time.Hour), now.Add(-time.Minute)
	temps := map[string]time.Time{
		"runs/.tierkv-tmp-1":      old,
		".tierkv-tmp-2":           old,
		"runs/.tierkv-tmp-3":      recent,
		"manifests/.tierkv-tmp-4": old,
	}
	for key, mt := range temps {
		p := filepath.Join(root, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("part"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	// The object is as old as the temporaries: only the prefix selects.
	if err := os.Chtimes(filepath.Join(root, "runs", "a"), old, old); err != nil {
		t.Fatal(err)
	}
	want := []string{".tierkv-tmp-2", "manifests/.tierkv-tmp-4", "runs/.tierkv-tmp-1"}
	keysOf := func(infos []objstore.ObjectInfo) []string {
		var ks []string
		for _, i := range infos {
			if i.Size != 4 {
				t.Errorf("%s: size %d, want 4", i.Key, i.Size)
			}
			ks = append(ks, i.Key)
		}
		return ks
	}
	tr := s.(objstore.TempRemover)
	cutoff := now.Add(-time.Hour)
	got, err := tr.RemoveTemps(ctx, cutoff, true)
	if err != nil || strings.Join(keysOf(got), " ") != strings.Join(want, " ") {
		t.Fatalf("dry run = %v, %v; want %v", keysOf(got), err, want)
	}
	for key := range temps {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(key))); err != nil {
			t.Fatalf("dry run removed %s: %v", key, err)
		}
	}
	got, err = tr.RemoveTemps(ctx, cutoff, false)
	if err != nil || strings.Join(keysOf(got), " ") != strings.Join(want, " ") {
		t.Fatalf("remove = %v, %v; want %v", keysOf(got), err, want)
	}
	for key := range temps {
		_, err := os.Stat(filepath.Join(root, filepath.FromSlash(key)))
		if gone := errors.Is(err, fs.ErrNotExist); gone != temps[key].Equal(old) {
			t.Fatalf("%s: removed=%v, want removed=%v (%v)", key, gone, temps[key].Equal(old), err)
		}
	}
	if infos, err := s.List(ctx, ""); err != nil || len(infos) != 1 || infos[0].Key != "runs/a" {
		t.Fatalf("list after remove = %v, %v; want runs/a only", infos, err)
	}
	if got, err := tr.RemoveTemps(ctx, cutoff, false); err != nil || len(got) != 0 {
		t.Fatalf("second remove = %v, %v; want nothing", got, err)
	}
}
