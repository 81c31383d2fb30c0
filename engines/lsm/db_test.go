package lsm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tierkv/tierkv/engines"
)

func mustOpen(t testing.TB, o engines.OpenOptions, p Params) *DB {
	t.Helper()
	d, err := Open(o, p)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return d
}

func mustGet(t testing.TB, d *DB, key, want string, present bool) {
	t.Helper()
	v, found, err := d.Get([]byte(key))
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	if found != present || string(v) != want {
		t.Fatalf("get %q = %q, %v; want %q, %v", key, v, found, want, present)
	}
}

// waitMerged waits until no level holds more than max runs (a liveness
// bound, not a speed assertion) and returns the levels.
func waitMerged(t testing.TB, d *DB, max int) [][]engines.RunInfo {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		levels := d.levelInfos()
		over := false
		for _, l := range levels {
			if len(l) > max {
				over = true
			}
		}
		if !over {
			return levels
		}
		if time.Now().After(deadline) {
			t.Fatalf("levels still over-full: %v", levels)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestMergeShapes(t *testing.T) {
	for _, maxRuns := range []int{1, 2, 5} {
		t.Run(fmt.Sprint(maxRuns), func(t *testing.T) {
			d := mustOpen(t, engines.OpenOptions{Dir: t.TempDir()}, Params{MaxRunsPerLevel: maxRuns, DensityFactor: 4, MemtableBytesLimit: 1 << 10})
			defer d.Close()
			for round := 0; round < 8; round++ {
				for i := 0; i < 300; i++ {
					if err := d.Set([]byte(fmt.Sprintf("k%04d", i)), []byte(fmt.Sprintf("v%d-%d", round, i))); err != nil {
						t.Fatal(err)
					}
				}
				cp, err := d.Seal()
				if err != nil {
					t.Fatal(err)
				}
				d.Release(cp)
			}
			levels := waitMerged(t, d, maxRuns)
			if len(levels) < 2 {
				t.Errorf("expected merges to fill deeper levels, got %v", levels)
			}
			for i := 0; i < 300; i++ {
				mustGet(t, d, fmt.Sprintf("k%04d", i), fmt.Sprintf("v7-%d", i), true)
			}
		})
	}
}

// TestTombstonesDroppedAtBottom: a merge into the bottom level drops
// tombstones and what they shadow; here that leaves no run at all.
func TestTombstonesDroppedAtBottom(t *testing.T) {
	d := mustOpen(t, engines.OpenOptions{Dir: t.TempDir()}, Params{MaxRunsPerLevel: 1, MemtableBytesLimit: 1 << 20})
	defer d.Close()
	for i := 0; i < 100; i++ {
		if err := d.Set([]byte(fmt.Sprintf("k%03d", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := d.Seal()
	if err != nil {
		t.Fatal(err)
	}
	d.Release(cp)
	for i := 0; i < 100; i++ {
		if err := d.Delete([]byte(fmt.Sprintf("k%03d", i))); err != nil {
			t.Fatal(err)
		}
	}
	cp, err = d.Seal()
	if err != nil {
		t.Fatal(err)
	}
	d.Release(cp)
	deadline := time.Now().Add(30 * time.Second)
	for len(d.levelInfos()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("levels never emptied: %v", d.levelInfos())
		}
		time.Sleep(2 * time.Millisecond)
	}
	mustGet(t, d, "k042", "", false)
}

// TestTombstoneKeptAboveOlderData: a tombstone merged into a level with older
// data below keeps shadowing it.
func TestTombstoneKeptAboveOlderData(t *testing.T) {
	dir := t.TempDir()
	p := Params{MaxRunsPerLevel: 1, DensityFactor: 2, MemtableBytesLimit: 1 << 20}
	d := mustOpen(t, engines.OpenOptions{Dir: dir}, p)
	seal := func() {
		t.Helper()
		cp, err := d.Seal()
		if err != nil {
			t.Fatal(err)
		}
		d.Release(cp)
		waitMerged(t, d, 1)
	}
	for i := 0; i < 50; i++ {
		d.Set([]byte(fmt.Sprintf("k%03d", i)), []byte("old"))
	}
	seal()
	d.Set([]byte("filler"), []byte("x"))
	seal() // merges the two runs into level 1
	d.Delete([]byte("k007"))
	seal()
	d.Set([]byte("other"), []byte("y"))
	seal() // level 0 merges into level 1, which holds older data: not the bottom
	mustGet(t, d, "k007", "", false)
	mustGet(t, d, "k008", "old", true)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = mustOpen(t, engines.OpenOptions{Dir: dir}, p)
	defer d.Close()
	mustGet(t, d, "k007", "", false)
	mustGet(t, d, "k008", "old", true)
}

// readLog is an FS that records every ReadAt on run files.
type readLog struct {
	engines.OSFS
	mu    sync.Mutex
	reads map[string][][2]int64 // base name -> [off, end)
}

type loggedFile struct {
	engines.File
	l    *readLog
	name string
}

func (f loggedFile) ReadAt(p []byte, off int64) (int, error) {
	f.l.mu.Lock()
	f.l.reads[f.name] = append(f.l.reads[f.name], [2]int64{off, off + int64(len(p))})
	f.l.mu.Unlock()
	return f.File.ReadAt(p, off)
}

func (f loggedFile) Read(p []byte) (int, error) {
	panic("sequential read of " + f.name)
}

func (l *readLog) OpenFile(name string, flag int, perm os.FileMode) (engines.File, error) {
	f, err := l.OSFS.OpenFile(name, flag, perm)
	if err != nil || filepath.Ext(name) != "."+runExt {
		return f, err
	}
	return loggedFile{File: f, l: l, name: filepath.Base(name)}, nil
}

// TestReopenReadsOnlyMetadata: Open reads footers, fences and filters, never
// the data section of a run.
func TestReopenReadsOnlyMetadata(t *testing.T) {
	dir := t.TempDir()
	p := Params{MaxRunsPerLevel: 3, DensityFactor: 8, MemtableBytesLimit: 4 << 10}
	d := mustOpen(t, engines.OpenOptions{Dir: dir}, p)
	for i := 0; i < 2000; i++ {
		d.Set([]byte(fmt.Sprintf("key-%05d", i)), []byte("some value of moderate length"))
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	l := &readLog{reads: map[string][][2]int64{}}
	// No merge may start (it would read data): allow many runs per level.
	p.MaxRunsPerLevel = 1000
	d = mustOpen(t, engines.OpenOptions{Dir: dir, FS: l}, p)
	defer d.Close()
	d.v.Lock()
	dataLen := map[string]int64{}
	for _, lv := range d.v.levels {
		for _, r := range lv {
			dataLen[r.info.Name] = r.meta.dataLen
		}
	}
	d.v.Unlock()
	if len(dataLen) < 2 {
		t.Fatalf("only %d runs", len(dataLen))
	}
	l.mu.Lock()
	for name, rs := range l.reads {
		for _, r := range rs {
			if r[0] < dataLen[name] {
				t.Errorf("open read %s at [%d,%d): inside the data section (%d bytes)", name, r[0], r[1], dataLen[name])
			}
		}
	}
	l.mu.Unlock()
	mustGet(t, d, "key-01234", "some value of moderate length", true)
}

func sealedRun(t *testing.T, dir string, p Params, n int) (engines.Checkpoint, *runMeta) {
	t.Helper()
	d := mustOpen(t, engines.OpenOptions{Dir: dir}, p)
	for i := 0; i < n; i++ {
		if err := d.Set([]byte(fmt.Sprintf("key-%04d", i)), []byte(fmt.Sprintf("value-%04d", i))); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := d.Seal()
	if err != nil {
		t.Fatal(err)
	}
	if len(cp.Runs) != 1 {
		t.Fatalf("want one run, got %v", cp.Runs)
	}
	d.v.Lock()
	m := d.v.levels[0][0].meta
	d.v.Unlock()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return cp, m
}

// TestGetCorruptionNamesFileAndOffset: a flipped byte in a record makes the
// Get of a key of that block fail with corruption naming the run and the
// record's offset.
func TestGetCorruptionNamesFileAndOffset(t *testing.T) {
	dir := t.TempDir()
	p := Params{DensityFactor: 1}
	cp, m := sealedRun(t, dir, p, 50)
	name := cp.Runs[0].Name
	rec := m.fences.offs[20] // density 1: fence i is record i, "key-0020"
	path := filepath.Join(dir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[rec+engines.RecordHeaderSize+3] ^= 0xff // inside the key
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	d := mustOpen(t, engines.OpenOptions{Dir: dir}, p)
	defer d.Close()
	mustGet(t, d, "key-0019", "value-0019", true)
	_, _, err = d.Get([]byte("key-0020"))
	ce := wantCorrupt(t, err, name)
	if ce.Offset != rec {
		t.Fatalf("corruption at offset %d, want %d (%v)", ce.Offset, rec, err)
	}
}

// TestTruncatedRunDetected: a run shorter than CURRENT (or a checkpoint)
// records is corruption naming the run.
func TestTruncatedRunDetected(t *testing.T) {
	dir := t.TempDir()
	p := Params{}
	cp, _ := sealedRun(t, dir, p, 50)
	name := cp.Runs[0].Name
	if err := os.Truncate(filepath.Join(dir, name), cp.Runs[0].Size-7); err != nil {
		t.Fatal(err)
	}
	_, err := Open(engines.OpenOptions{Dir: dir}, p)
	wantCorrupt(t, err, name)
	_, err = Open(engines.OpenOptions{Dir: dir, Checkpoint: &cp}, p)
	wantCorrupt(t, err, name)
}

func TestCurrentCorruptionDetected(t *testing.T) {
	dir := t.TempDir()
	sealedRun(t, dir, Params{}, 10)
	path := filepath.Join(dir, currentName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(engines.OpenOptions{Dir: dir}, Params{})
	wantCorrupt(t, err, currentName)
}

// TestCheckpointStateMismatch: a checkpoint whose run list disagrees with its
// state is refused.
func TestCheckpointStateMismatch(t *testing.T) {
	dir := t.TempDir()
	cp, _ := sealedRun(t, dir, Params{}, 10)
	bad := cp
	bad.Runs = append([]engines.RunInfo(nil), cp.Runs...)
	bad.Runs[0].CRC32C ^= 1
	_, err := Open(engines.OpenOptions{Dir: dir, Checkpoint: &bad}, Params{})
	if !errors.Is(err, engines.ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	d := mustOpen(t, engines.OpenOptions{Dir: dir, Checkpoint: &cp}, Params{})
	defer d.Close()
	mustGet(t, d, "key-0003", "value-0003", true)
}

// TestLeftoversRemoved: temporary files and unreferenced run files are
// removed on open; other files are left alone.
func TestLeftoversRemoved(t *testing.T) {
	dir := t.TempDir()
	cp, _ := sealedRun(t, dir, Params{}, 10)
	stray := map[string]bool{
		"00000000000000ff-01020304.sst":     false,
		"00000000000000fe-01020304.sst.tmp": false,
		"CURRENT.tmp":                       false,
		"notes.txt":                         true,
		"00000000000000fd-01020304.log":     true, // not an lsm run
	}
	for name := range stray {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := mustOpen(t, engines.OpenOptions{Dir: dir}, Params{})
	defer d.Close()
	for name, keep := range stray {
		_, err := os.Stat(filepath.Join(dir, name))
		if exists := err == nil; exists != keep {
			t.Errorf("%s: exists=%v after open, want %v", name, exists, keep)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, cp.Runs[0].Name)); err != nil {
		t.Errorf("live run removed: %v", err)
	}
}

// failFS fails creating files while fail is set.
type failFS struct {
	engines.OSFS
	fail atomic.Bool
}

var errInjected = errors.New("injected create failure")

func (f *failFS) OpenFile(name string, flag int, perm os.FileMode) (engines.File, error) {
	if flag&os.O_CREATE != 0 && f.fail.Load() {
		return nil, errInjected
	}
	return f.OSFS.OpenFile(name, flag, perm)
}

// TestFlushFailure: while flushes fail, Seal reports the error and writers
// that would have to wait for a flush get it instead of hanging; once the
// file system heals everything is flushed and nothing is lost.
func TestFlushFailure(t *testing.T) {
	fs := &failFS{}
	dir := t.TempDir()
	p := Params{MemtableBytesLimit: 1 << 10}
	d := mustOpen(t, engines.OpenOptions{Dir: dir, FS: fs}, p)
	fs.fail.Store(true)
	if err := d.Set([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Seal(); !errors.Is(err, errInjected) {
		t.Fatalf("seal: %v, want the injected error", err)
	}
	var written []string
	var setErr error
	for i := 0; i < 100000 && setErr == nil; i++ {
		k := fmt.Sprintf("key-%06d", i)
		if setErr = d.Set([]byte(k), []byte("value")); setErr == nil {
			written = append(written, k)
		}
	}
	if !errors.Is(setErr, errInjected) {
		t.Fatalf("writes never reported the failing flush: %v", setErr)
	}
	mustGet(t, d, "a", "1", true)
	fs.fail.Store(false)
	cp, err := d.Seal()
	if err != nil {
		t.Fatalf("seal after healing: %v", err)
	}
	d.Release(cp)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = mustOpen(t, engines.OpenOptions{Dir: dir}, p)
	defer d.Close()
	mustGet(t, d, "a", "1", true)
	for _, k := range written {
		mustGet(t, d, k, "value", true)
	}
}

// TestNoGoroutineLeak: Close stops every goroutine Open started.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		d := mustOpen(t, engines.OpenOptions{Dir: t.TempDir()}, Params{MaxRunsPerLevel: 1, MemtableBytesLimit: 1 << 10})
		for j := 0; j < 500; j++ {
			d.Set([]byte(fmt.Sprintf("k%d", j)), []byte("v"))
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// TestParamsChangeBetweenOpens: runs record their own density, and a smaller
// max_runs_per_level merges at once.
func TestParamsChangeBetweenOpens(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, engines.OpenOptions{Dir: dir}, Params{MaxRunsPerLevel: 50, DensityFactor: 2, MemtableBytesLimit: 1 << 10})
	for i := 0; i < 1000; i++ {
		d.Set([]byte(fmt.Sprintf("k%04d", i)), []byte(fmt.Sprint(i)))
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = mustOpen(t, engines.OpenOptions{Dir: dir}, Params{MaxRunsPerLevel: 2, DensityFactor: 100})
	defer d.Close()
	waitMerged(t, d, 2)
	for i := 0; i < 1000; i += 37 {
		mustGet(t, d, fmt.Sprintf("k%04d", i), fmt.Sprint(i), true)
	}
}
