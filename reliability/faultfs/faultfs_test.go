package faultfs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

// TestCountsAndFailsNth: counted calls are numbered across files and
// classes; exactly the FailAt-th fails, with an error matching ErrInjected
// and EIO.
func TestCountsAndFailsNth(t *testing.T) {
	dir := t.TempDir()
	for failAt := 0; failAt < 4; failAt++ {
		fs := New(nil, Options{FailAt: failAt, Ops: OpCreate | OpWrite | OpSync})
		var errs []error
		f, err := fs.OpenFile(filepath.Join(dir, "a"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644) // call 0
		errs = append(errs, err)
		if err == nil {
			_, err = f.Write([]byte("hello")) // call 1
			errs = append(errs, err)
			_, err = f.Write([]byte("world")) // call 2
			errs = append(errs, err)
			errs = append(errs, f.Sync()) // call 3
			f.Close()
		}
		for i, err := range errs {
			if (i == failAt) != (err != nil) {
				t.Fatalf("failAt %d: call %d returned %v", failAt, i, err)
			}
			if err != nil && (!errors.Is(err, ErrInjected) || !errors.Is(err, syscall.EIO)) {
				t.Fatalf("failAt %d: error %v does not match ErrInjected and EIO", failAt, err)
			}
		}
		if got := fs.Injected(); len(got) != 1 || got[0].N != failAt {
			t.Fatalf("failAt %d: injected %v", failAt, got)
		}
	}
}

// TestUncountedClassesPass: reads, renames and removes outside Ops are
// neither counted nor failed.
func TestUncountedClassesPass(t *testing.T) {
	dir := t.TempDir()
	fs := New(nil, Options{FailAt: 0, Ops: OpSync})
	if err := engines.WriteFileAtomic(engines.OSFS{}, dir, "x", []byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := fs.Rename(filepath.Join(dir, "x"), filepath.Join(dir, "y")); err != nil {
		t.Fatal(err)
	}
	if b, err := engines.ReadFile(fs, filepath.Join(dir, "y")); err != nil || string(b) != "data" {
		t.Fatalf("read through fs: %q, %v", b, err)
	}
	if err := fs.Remove(filepath.Join(dir, "y")); err != nil {
		t.Fatal(err)
	}
	if fs.Count() != 0 {
		t.Fatalf("count %d, want 0", fs.Count())
	}
	if err := fs.SyncDir(dir); err != nil { // SyncDir is not in Ops either
		t.Fatal(err)
	}
}

// TestStickyFailsEverythingAfter: with Sticky, every counted call from
// FailAt on fails.
func TestStickyFailsEverythingAfter(t *testing.T) {
	dir := t.TempDir()
	fs := New(nil, Options{FailAt: 1, Sticky: true, Ops: OpWrite})
	f, err := fs.OpenFile(filepath.Join(dir, "a"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := 0; i < 5; i++ {
		_, err := f.Write([]byte("x"))
		if (i >= 1) != (err != nil) {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if n := len(fs.Injected()); n != 4 {
		t.Fatalf("%d injected, want 4", n)
	}
}

// TestFailedSyncDropsUnsyncedBytes: a failed Sync truncates the file to its
// last synced size; KeepUnsynced keeps the bytes.
func TestFailedSyncDropsUnsyncedBytes(t *testing.T) {
	for _, keep := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, "log")
		if err := os.WriteFile(path, []byte("old:"), 0o644); err != nil {
			t.Fatal(err)
		}
		// Calls: sync (0) succeeds, sync (1) fails.
		fs := New(nil, Options{FailAt: 1, Ops: OpSync, NoSync: true, KeepUnsynced: keep})
		f, err := fs.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("synced;")); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("lost")); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); !errors.Is(err, ErrInjected) {
			t.Fatalf("second sync: %v, want an injected error", err)
		}
		f.Close()
		got, _ := os.ReadFile(path)
		want := "old:synced;"
		if keep {
			want += "lost"
		}
		if string(got) != want {
			t.Fatalf("keep=%v: file holds %q, want %q", keep, got, want)
		}
	}
}

// TestNewFileSyncFailureEmptiesIt: a new file that never synced loses
// everything on a failed Sync.
func TestNewFileSyncFailureEmptiesIt(t *testing.T) {
	dir := t.TempDir()
	fs := New(nil, Options{FailAt: 0, Ops: OpSync})
	f, err := fs.OpenFile(filepath.Join(dir, "new"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err == nil {
		t.Fatal("sync did not fail")
	}
	f.Close()
	if st, err := os.Stat(filepath.Join(dir, "new")); err != nil || st.Size() != 0 {
		t.Fatalf("after a failed first sync: %v, %v; want an empty file", st, err)
	}
}

// TestNegativeFailAtOnlyCounts: FailAt < 0 injects nothing.
func TestNegativeFailAtOnlyCounts(t *testing.T) {
	dir := t.TempDir()
	fs := New(nil, Options{FailAt: -1})
	if err := engines.WriteFileAtomic(fs, dir, "f", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// create, write, sync, rename, syncdir
	if fs.Count() != 5 || len(fs.Injected()) != 0 {
		t.Fatalf("count %d, injected %v; want 5 and none", fs.Count(), fs.Injected())
	}
}

// TestOpString names classes.
func TestOpString(t *testing.T) {
	if got := (OpWrite | OpSync).String(); got != "write|sync" {
		t.Fatalf("got %q", got)
	}
	if got := Op(0).String(); got != "none" {
		t.Fatalf("got %q", got)
	}
}

// TestSetFailAt arms a failure relative to the calls made so far.
func TestSetFailAt(t *testing.T) {
	dir := t.TempDir()
	fs := New(nil, Options{FailAt: -1, Ops: OpSyncDir})
	for i := 0; i < 3; i++ {
		if err := fs.SyncDir(dir); err != nil {
			t.Fatal(err)
		}
	}
	fs.SetFailAt(fs.Count() + 1)
	if err := fs.SyncDir(dir); err != nil {
		t.Fatalf("call 3: %v", err)
	}
	if err := fs.SyncDir(dir); !errors.Is(err, ErrInjected) {
		t.Fatalf("call 4: %v, want injected", err)
	}
	if got := fs.Injected(); len(got) != 1 || got[0].N != 4 || got[0].Op != OpSyncDir {
		t.Fatalf("injected %v", got)
	}
}
