package enginetest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

// closedDirWithRuns writes three sealed batches (so several runs) to a new
// directory, closes the engine and returns the directory and its files.
func closedDirWithRuns(t *testing.T, f Factory) (string, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	e := open(t, f, dir, nil, engines.Listener{})
	var cp engines.Checkpoint
	for round := 0; round < 3; round++ {
		for i := 0; i < 50; i++ {
			mustSet(t, e, fmt.Sprintf("k%d-%02d", round, i), strings.Repeat("v", 40))
		}
		cp = mustSeal(t, e)
	}
	mustClose(t, e)
	if len(cp.Runs) == 0 {
		t.Fatal("seal after writes returned a checkpoint without runs")
	}
	files, err := readDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files[f.StateFile]; !ok {
		t.Fatalf("closed engine left no state file %s in %s (files: %v)", f.StateFile, dir, sortedKeys(files))
	}
	return dir, files
}

// expectFailClosed opens dir without a checkpoint, expects a corruption error
// naming the state file, and checks that dir still holds exactly want.
func expectFailClosed(t *testing.T, f Factory, dir string, want map[string][]byte) {
	t.Helper()
	e, err := f.Open(engines.OpenOptions{Dir: dir})
	if err == nil {
		e.Close()
		t.Fatalf("open succeeded on a directory with runs and a missing or damaged %s", f.StateFile)
	}
	if !errors.Is(err, engines.ErrCorrupt) {
		t.Fatalf("open: err = %v, want ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), f.StateFile) {
		t.Fatalf("open: err = %v, does not name %s", err, f.StateFile)
	}
	got, err := readDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !sameFiles(got, want) {
		t.Fatalf("failed open changed the directory: files %v, want %v (byte for byte)", sortedKeys(got), sortedKeys(want))
	}
}

// testMissingStateFile: with its state file removed, a directory holding runs
// does not open as a new engine, and nothing in it is removed.
func testMissingStateFile(t *testing.T, f Factory) {
	dir, files := closedDirWithRuns(t, f)
	if err := os.Remove(filepath.Join(dir, f.StateFile)); err != nil {
		t.Fatal(err)
	}
	delete(files, f.StateFile)
	expectFailClosed(t, f, dir, files)
	// A second attempt fails the same way: the first left nothing behind.
	expectFailClosed(t, f, dir, files)
}

// testTruncatedStateFile: a state file cut short (empty, one byte, half, all
// but its last byte) is corruption; nothing in the directory changes.
func testTruncatedStateFile(t *testing.T, f Factory) {
	dir, files := closedDirWithRuns(t, f)
	state := files[f.StateFile]
	for _, n := range []int{0, 1, len(state) / 2, len(state) - 1} {
		t.Run(fmt.Sprintf("%dof%d", n, len(state)), func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, f.StateFile), state[:n], 0o644); err != nil {
				t.Fatal(err)
			}
			files[f.StateFile] = state[:n]
			expectFailClosed(t, f, dir, files)
		})
	}
}

// testNewDirWithTemporaries: a directory holding nothing but temporaries is
// a new, empty engine, and the temporaries are removed.
func testNewDirWithTemporaries(t *testing.T, f Factory) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "0000000000000001-0badcafe.sst"+engines.TempSuffix)
	if err := os.WriteFile(tmp, []byte("half-written"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := open(t, f, dir, nil, engines.Listener{})
	defer mustClose(t, e)
	expect(t, e, "k", "", false)
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary %s still there after open (stat: %v)", tmp, err)
	}
	if _, err := os.Stat(filepath.Join(dir, f.StateFile)); err != nil {
		t.Fatalf("a new engine did not write its state file %s before any other: %v", f.StateFile, err)
	}
	mustSet(t, e, "k", "v")
	expect(t, e, "k", "v", true)
}
