package appendlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/engines/enginetest"
)

func mustOpen(t *testing.T, o engines.OpenOptions, p Params) *DB {
	t.Helper()
	db, err := Open(o, p)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return db
}

func set(t *testing.T, db *DB, k, v string) {
	t.Helper()
	if err := db.Set([]byte(k), []byte(v)); err != nil {
		t.Fatalf("set %q: %v", k, err)
	}
}

func del(t *testing.T, db *DB, k string) {
	t.Helper()
	if err := db.Delete([]byte(k)); err != nil {
		t.Fatalf("delete %q: %v", k, err)
	}
}

func get(t *testing.T, db *DB, k string) (string, bool) {
	t.Helper()
	v, ok, err := db.Get([]byte(k))
	if err != nil {
		t.Fatalf("get %q: %v", k, err)
	}
	return string(v), ok
}

func expectKV(t *testing.T, db *DB, k, want string, present bool) {
	t.Helper()
	v, ok := get(t, db, k)
	if ok != present || (present && v != want) {
		t.Fatalf("get %q = %q (found=%v), want %q (found=%v)", k, v, ok, want, present)
	}
}

func seal(t *testing.T, db *DB) engines.Checkpoint {
	t.Helper()
	cp, err := db.Seal()
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	return cp
}

func TestParams(t *testing.T) {
	p, err := ParseParams(nil)
	if err != nil || p != DefaultParams() {
		t.Fatalf("ParseParams(nil) = %+v, %v; want the defaults", p, err)
	}
	p, err = ParseParams(engines.Params{"threshold": "64K", "max_runs_per_level": "4", "compaction": "on"})
	if err != nil || p != (Params{Threshold: 64 << 10, MaxRunsPerLevel: 4, Compaction: true}) {
		t.Fatalf("ParseParams = %+v, %v", p, err)
	}
	back, err := ParseParams(p.Map())
	if err != nil || back != p {
		t.Fatalf("Map does not round-trip: %+v -> %v -> %+v, %v", p, p.Map(), back, err)
	}
	for _, c := range []struct{ name, value string }{
		{"threshold", "1023"}, {"threshold", "5G"}, {"threshold", "lots"},
		{"max_runs_per_level", "1"}, {"max_runs_per_level", "1001"}, {"compaction", "maybe"},
	} {
		_, err := ParseParams(engines.Params{c.name: c.value})
		var pe *engines.ParamError
		if !errors.As(err, &pe) || pe.Name != c.name || pe.Engine != Kind {
			t.Errorf("%s=%s: err = %v, want a ParamError naming it", c.name, c.value, err)
		}
	}
	if _, err := ParseParams(engines.Params{"flush_interval": "1"}); err == nil || !strings.Contains(err.Error(), "flush_interval") {
		t.Errorf("unknown parameter: err = %v", err)
	}
	if _, err := Open(engines.OpenOptions{Dir: t.TempDir()}, Params{Threshold: 5}); err == nil {
		t.Error("Open with threshold 5 succeeded")
	}
}

// TestTornTailRecovery copies the directory of a live engine (a crash),
// cuts the active log in the middle of its last record and reopens: the
// records before the cut are there, the file is truncated at the last valid
// record, and the store takes writes again.
func TestTornTailRecovery(t *testing.T) {
	dir := t.TempDir()
	// 1 KiB threshold: a 128-byte write buffer, so most records reach the file.
	db := mustOpen(t, engines.OpenOptions{Dir: dir}, Params{Threshold: 1 << 10})
	defer db.Close()
	const recSize = engines.RecordHeaderSize + 3 + 20
	for i := 0; i < 25; i++ { // 25*34 = 850 bytes: below the threshold
		set(t, db, fmt.Sprintf("k%02d", i), fmt.Sprintf("value-%02d-...........", i))
	}
	crash := t.TempDir()
	data, err := os.ReadFile(filepath.Join(dir, activeLogName))
	if err != nil {
		t.Fatal(err)
	}
	onDisk := len(data) / recSize
	if onDisk < 20 || len(data)%recSize != 0 {
		t.Fatalf("active log holds %d bytes; want at least 20 whole %d-byte records", len(data), recSize)
	}
	cut := len(data) - 5 // inside the last record on disk
	if err := os.WriteFile(filepath.Join(crash, activeLogName), data[:cut], 0o644); err != nil {
		t.Fatal(err)
	}
	// CURRENT was written at the first open, before active.log.
	cur, err := os.ReadFile(filepath.Join(dir, currentName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(crash, currentName), cur, 0o644); err != nil {
		t.Fatal(err)
	}

	db2 := mustOpen(t, engines.OpenOptions{Dir: crash}, Params{Threshold: 1 << 10})
	for i := 0; i < 25; i++ {
		k := fmt.Sprintf("k%02d", i)
		expectKV(t, db2, k, fmt.Sprintf("value-%02d-...........", i), i < onDisk-1)
	}
	st, err := os.Stat(filepath.Join(crash, activeLogName))
	if err != nil {
		t.Fatal(err)
	}
	if want := int64((onDisk - 1) * recSize); st.Size() != want {
		t.Fatalf("active log is %d bytes after recovery, want %d (cut at the last valid record)", st.Size(), want)
	}
	set(t, db2, "after", "crash")
	if err := db2.Close(); err != nil {
		t.Fatal(err)
	}
	db3 := mustOpen(t, engines.OpenOptions{Dir: crash}, Params{Threshold: 1 << 10})
	defer db3.Close()
	expectKV(t, db3, "after", "crash", true)
	expectKV(t, db3, "k00", "value-00-...........", true)
	expectKV(t, db3, fmt.Sprintf("k%02d", onDisk-1), "", false)
}

// TestCorruptRecordNamesFileAndOffset flips a byte inside a record of a
// sealed run: Open still succeeds (it reads footers and hints only), and the
// Get of that key fails with a corruption naming the run and the record's
// offset; other keys still read.
func TestCorruptRecordNamesFileAndOffset(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, engines.OpenOptions{Dir: dir, FS: noSyncFS{}}, Params{})
	for i := 0; i < 10; i++ {
		set(t, db, fmt.Sprintf("key-%d", i), strings.Repeat("v", 30))
	}
	cp := seal(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if len(cp.Runs) != 2 {
		t.Fatalf("checkpoint runs %v, want one run and its hint", cp.Runs)
	}
	runName, hintName := cp.Runs[0].Name, cp.Runs[1].Name
	const recSize = engines.RecordHeaderSize + 5 + 30
	off := int64(4 * recSize) // key-4
	enginetest.FlipByte(t, filepath.Join(dir, runName), off+engines.RecordHeaderSize+7)

	db = mustOpen(t, engines.OpenOptions{Dir: dir}, Params{})
	_, _, err := db.Get([]byte("key-4"))
	wantCorrupt(t, err, runName, off)
	expectKV(t, db, "key-5", strings.Repeat("v", 30), true)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// A flipped hint byte fails Open, naming the hint file.
	enginetest.FlipByte(t, filepath.Join(dir, hintName), 3)
	_, err = Open(engines.OpenOptions{Dir: dir}, Params{})
	wantCorrupt(t, err, hintName, -1)

	// A flipped footer byte of the run fails Open, naming the run.
	enginetest.FlipByte(t, filepath.Join(dir, hintName), 3) // restore the hint
	enginetest.FlipByte(t, filepath.Join(dir, runName), cp.Runs[0].Size-1)
	_, err = Open(engines.OpenOptions{Dir: dir}, Params{})
	wantCorrupt(t, err, runName, cp.Runs[0].Size-footerSize+36)
}

// TestCorruptionFoundByMerge: a merge reads every record of its inputs; a
// flipped byte in the middle of a sealed run stops merges and surfaces,
// naming file and offset, from Close. The inputs stay intact.
func TestCorruptionFoundByMerge(t *testing.T) {
	dir := t.TempDir()
	p := Params{Threshold: 1 << 20, MaxRunsPerLevel: 3}
	db := mustOpen(t, engines.OpenOptions{Dir: dir, FS: noSyncFS{}}, p)
	for r := 0; r < 2; r++ {
		for i := 0; i < 10; i++ {
			set(t, db, fmt.Sprintf("r%d-%d", r, i), "0123456789")
		}
		db.Release(seal(t, db))
	}
	cp := seal(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	first := cp.Runs[0].Name
	const recSize = engines.RecordHeaderSize + 4 + 10
	enginetest.FlipByte(t, filepath.Join(dir, first), 3*recSize+2)

	db = mustOpen(t, engines.OpenOptions{Dir: dir, FS: noSyncFS{}}, p)
	set(t, db, "third", "run")
	db.Release(seal(t, db)) // level 0 is full: a merge starts and hits the flip
	waitMerges(t, db)
	err := db.Close()
	wantCorrupt(t, err, first, 3*recSize)
	if _, err := os.Stat(filepath.Join(dir, first)); err != nil {
		t.Fatalf("an input of the failed merge is gone: %v", err)
	}
}

// waitMerges waits until no merge runs and none is due.
func waitMerges(t *testing.T, db *DB) {
	t.Helper()
	for i := 0; ; i++ {
		db.mu.RLock()
		busy := db.merging || db.mergeErr == nil && db.failed == nil && db.mergeDueLocked()
		db.mu.RUnlock()
		if !busy {
			return
		}
		if i > 200000 {
			t.Fatal("merges never settled")
		}
		kick(db.kickMerge)
		yield()
	}
}

// TestCompactionRules drives merges by hand (max_runs_per_level is high, so
// none starts on its own) and checks exactly which records survive.
func TestCompactionRules(t *testing.T) {
	for _, compaction := range []bool{false, true} {
		t.Run(fmt.Sprint("compaction=", compaction), func(t *testing.T) {
			db := mustOpen(t, engines.OpenOptions{Dir: t.TempDir(), FS: noSyncFS{}}, Params{MaxRunsPerLevel: MaxRunsPerLevel, Compaction: compaction})
			defer db.Close()
			set(t, db, "a", "1")
			set(t, db, "b", "1")
			set(t, db, "c", "1")
			db.Release(seal(t, db)) // run1: a b c
			set(t, db, "a", "2")
			del(t, db, "b")
			db.Release(seal(t, db)) // run2: a=2, -b
			del(t, db, "a")
			set(t, db, "d", "1")
			db.Release(seal(t, db)) // run3: -a, d

			check := func() {
				t.Helper()
				expectKV(t, db, "a", "", false)
				expectKV(t, db, "b", "", false)
				expectKV(t, db, "c", "1", true)
				expectKV(t, db, "d", "1", true)
			}
			mergeBy := func(lvl, n int) *run {
				t.Helper()
				db.mu.RLock()
				inputs := append([]*run(nil), db.levels[lvl][:n]...)
				oldest := true
				for _, h := range db.levels[lvl+1:] {
					oldest = oldest && len(h) == 0
				}
				db.mu.RUnlock()
				if err := db.merge(lvl, inputs, oldest); err != nil {
					t.Fatal(err)
				}
				db.mu.RLock()
				defer db.mu.RUnlock()
				out := db.levels[lvl+1]
				return out[len(out)-1]
			}
			// run1+run2 include the oldest data: with compaction only c=1 is
			// live; the tombstone of b has nothing left to shadow.
			m1 := mergeBy(0, 2)
			check()
			// run3 is merged while level 1 holds older data: its tombstone of
			// a must survive, d is live.
			m2 := mergeBy(0, 1)
			check()
			// Level 1 (m1, m2) is now the oldest data: the tombstone goes.
			m3 := mergeBy(1, 2)
			check()
			want := [3]uint64{5, 2, 7}
			if compaction {
				want = [3]uint64{1, 2, 2}
			}
			if got := [3]uint64{m1.count, m2.count, m3.count}; got != want {
				t.Fatalf("records in the merge outputs = %v, want %v", got, want)
			}
			// The tombstones of a and b were purged from the index too.
			db.mu.RLock()
			n := len(db.idx)
			db.mu.RUnlock()
			if n != 2 {
				t.Fatalf("index holds %d keys after merging the oldest data, want 2 (c, d)", n)
			}
			// The state survives a reopen from the hint files.
			cp := seal(t, db)
			db.Release(cp)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = mustOpen(t, engines.OpenOptions{Dir: db.o.Dir}, Params{})
			check()
		})
	}
}

// TestAdoptUnrecordedLog: a crash between the rename of the active log and
// CURRENT (here: the hint write fails, making the engine refuse writes)
// leaves a sealed log that CURRENT does not name; Open adopts it, also with
// its footer and last record torn off. Without a valid record it is removed.
func TestAdoptUnrecordedLog(t *testing.T) {
	for _, mode := range []string{"whole", "torn", "empty"} {
		t.Run(mode, func(t *testing.T) {
			torn := mode == "torn"
			dir := t.TempDir()
			var failHints bool
			ffs := &faultFS{FS: engines.OSFS{}, fail: func(op, name string) bool {
				return failHints && op == "open" && strings.HasSuffix(name, ".hint"+engines.TempSuffix)
			}}
			db := mustOpen(t, engines.OpenOptions{Dir: dir, FS: ffs}, Params{})
			set(t, db, "sealed", "yes")
			db.Release(seal(t, db))
			for i := 0; i < 5; i++ {
				set(t, db, fmt.Sprintf("later-%d", i), "v")
			}
			ffs.mu.Lock()
			failHints = true
			ffs.mu.Unlock()
			if _, err := db.Seal(); !errors.Is(err, errInjected) {
				t.Fatalf("seal with failing hint writes: err = %v, want the injected fault", err)
			}
			if err := db.Set([]byte("x"), []byte("y")); !errors.Is(err, errInjected) {
				t.Fatalf("set after a failed seal: err = %v, want the sticky failure", err)
			}
			expectKV(t, db, "later-4", "v", true) // reads still work
			if err := db.Close(); !errors.Is(err, errInjected) {
				t.Fatalf("close after a failed seal: err = %v, want the sticky failure", err)
			}
			var orphan string
			ents, _ := os.ReadDir(dir)
			for _, de := range ents {
				if _, _, ext, ok := engines.ParseRunName(de.Name()); ok && ext == extSealed {
					orphan = de.Name() // the newest .log sorts last
				}
			}
			if torn {
				path := filepath.Join(dir, orphan)
				st, _ := os.Stat(path)
				if err := os.Truncate(path, st.Size()-footerSize-2); err != nil {
					t.Fatal(err)
				}
			}
			if mode == "empty" {
				if err := os.Truncate(filepath.Join(dir, orphan), 0); err != nil {
					t.Fatal(err)
				}
			}
			var sealed []string
			db = mustOpen(t, engines.OpenOptions{Dir: dir, Listener: engines.Listener{RunSealed: func(ri engines.RunInfo) { sealed = append(sealed, ri.Name) }}}, Params{})
			defer db.Close()
			expectKV(t, db, "sealed", "yes", true)
			if mode == "empty" {
				expectKV(t, db, "later-0", "", false)
				if len(sealed) != 0 {
					t.Fatalf("RunSealed events for a log without records: %v", sealed)
				}
				if _, err := os.Stat(filepath.Join(dir, orphan)); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("unrecorded log %s without records still there (stat: %v)", orphan, err)
				}
				return
			}
			for i := 0; i < 5; i++ {
				expectKV(t, db, fmt.Sprintf("later-%d", i), "v", !torn || i < 4)
			}
			if len(sealed) != 2 || sealed[0] != orphan {
				t.Fatalf("RunSealed events on adoption = %v, want %s and its hint", sealed, orphan)
			}
			cp := seal(t, db)
			defer db.Release(cp)
			if len(cp.Runs) != 4 || cp.Runs[2].Name != orphan {
				t.Fatalf("checkpoint after adoption names %v, want two runs, the adopted %s second", cp.Runs, orphan)
			}
		})
	}
}

// TestFailedActiveCreate: when the new active log cannot be created after
// the rename, the engine refuses writes; reopening finds every write.
func TestFailedActiveCreate(t *testing.T) {
	dir := t.TempDir()
	var fail bool
	ffs := &faultFS{FS: noSyncFS{}, fail: func(op, name string) bool {
		return fail && op == "open" && filepath.Base(name) == activeLogName
	}}
	db := mustOpen(t, engines.OpenOptions{Dir: dir, FS: ffs}, Params{})
	set(t, db, "k", "v")
	ffs.mu.Lock()
	fail = true
	ffs.mu.Unlock()
	if _, err := db.Seal(); !errors.Is(err, errInjected) {
		t.Fatalf("seal: err = %v, want the injected fault", err)
	}
	if err := db.Delete([]byte("k")); !errors.Is(err, errInjected) {
		t.Fatalf("delete after the failure: err = %v", err)
	}
	_ = db.Close()
	db = mustOpen(t, engines.OpenOptions{Dir: dir}, Params{})
	defer db.Close()
	expectKV(t, db, "k", "v", true)
}

// TestWriteBufferAndBigRecords: reads come from the write buffer, from the
// active file and from sealed runs; records larger than the buffer bypass it.
func TestWriteBufferAndBigRecords(t *testing.T) {
	db := mustOpen(t, engines.OpenOptions{Dir: t.TempDir(), FS: noSyncFS{}}, Params{Threshold: 64 << 10})
	defer db.Close()
	big := strings.Repeat("B", 20<<10) // larger than the 8 KiB buffer
	set(t, db, "small", "s")
	set(t, db, "big", big)
	set(t, db, "small2", "")
	expectKV(t, db, "small", "s", true)
	expectKV(t, db, "big", big, true)
	expectKV(t, db, "small2", "", true)
	for i := 0; i < 2000; i++ { // several seals by threshold
		set(t, db, fmt.Sprintf("f%04d", i), strings.Repeat("x", i%97))
	}
	expectKV(t, db, "big", big, true)
	for i := 0; i < 2000; i += 111 {
		expectKV(t, db, fmt.Sprintf("f%04d", i), strings.Repeat("x", i%97), true)
	}
	waitMerges(t, db)
	expectKV(t, db, "small", "s", true)
	if m := db.MemoryUsage(); m < int64(2000*16) {
		t.Fatalf("MemoryUsage %d for 2003 keys", m)
	}
}

// TestConcurrentSealsAndMerges hammers one key set from several goroutines
// while sealing, with merges running; then checks and reopens.
func TestConcurrentSealsAndMerges(t *testing.T) {
	dir := t.TempDir()
	p := Params{Threshold: 2 << 10, MaxRunsPerLevel: 2, Compaction: true}
	db := mustOpen(t, engines.OpenOptions{Dir: dir, FS: noSyncFS{}}, p)
	var wg sync.WaitGroup
	final := make([]map[string]string, 3)
	for w := range final {
		final[w] = map[string]string{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 600; i++ {
				k := fmt.Sprintf("w%d-%02d", w, i%40)
				if i%7 == 0 {
					if err := db.Delete([]byte(k)); err != nil {
						t.Error(err)
						return
					}
					delete(final[w], k)
					continue
				}
				v := fmt.Sprintf("%s-%d", k, i)
				if err := db.Set([]byte(k), []byte(v)); err != nil {
					t.Error(err)
					return
				}
				final[w][k] = v
				if i%50 == 0 {
					cp, err := db.Seal()
					if err != nil {
						t.Error(err)
						return
					}
					db.Release(cp)
				}
			}
		}()
	}
	wg.Wait()
	verify := func(db *DB) {
		t.Helper()
		for w := range final {
			for i := 0; i < 40; i++ {
				k := fmt.Sprintf("w%d-%02d", w, i)
				v, ok := final[w][k]
				expectKV(t, db, k, v, ok)
			}
		}
	}
	verify(db)
	waitMerges(t, db)
	verify(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, engines.OpenOptions{Dir: dir}, p)
	defer db.Close()
	verify(db)
}

// yield lets background goroutines run while a test polls.
func yield() { time.Sleep(100 * time.Microsecond) }

// TestCompactionKeepsWhatOnlyUnsealedWritesShadow: a merge must not drop (or
// leave out of its hint) a sealed record whose successor is still in the
// active log: a crash that loses the active log must give back the sealed
// value, never an older one or none.
func TestCompactionKeepsWhatOnlyUnsealedWritesShadow(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, engines.OpenOptions{Dir: dir, FS: noSyncFS{}}, Params{MaxRunsPerLevel: MaxRunsPerLevel, Compaction: true})
	defer db.Close()
	set(t, db, "k", "old")
	set(t, db, "gone", "old")
	db.Release(seal(t, db))
	set(t, db, "k", "sealed")
	set(t, db, "other", "1")
	db.Release(seal(t, db))
	set(t, db, "k", "unsealed") // only in the active log's write buffer
	del(t, db, "gone")
	db.mu.RLock()
	inputs := append([]*run(nil), db.levels[0]...)
	db.mu.RUnlock()
	if err := db.merge(0, inputs, true); err != nil {
		t.Fatal(err)
	}
	expectKV(t, db, "k", "unsealed", true)
	expectKV(t, db, "gone", "", false)

	// Crash, losing the active log.
	crash := t.TempDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range ents {
		if de.Name() == activeLogName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crash, de.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db2 := mustOpen(t, engines.OpenOptions{Dir: crash}, Params{})
	defer db2.Close()
	expectKV(t, db2, "k", "sealed", true)
	expectKV(t, db2, "gone", "old", true)
	expectKV(t, db2, "other", "1", true)
}
