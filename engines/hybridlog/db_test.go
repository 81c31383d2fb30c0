package hybridlog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

func mustOpen(t *testing.T, dir string, p Params, l engines.Listener) *DB {
	t.Helper()
	d, err := Open(engines.OpenOptions{Dir: dir, Listener: l}, p)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return d
}

func mustGet(t *testing.T, d *DB, k, want string) {
	t.Helper()
	v, ok, err := d.Get([]byte(k))
	if err != nil || !ok || string(v) != want {
		t.Fatalf("get %s = %q, %v, %v; want %q", k, v, ok, err, want)
	}
}

func tailOf(d *DB) uint64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.mu.tail
}

// TestInPlaceUpdate checks the hybrid log's three cases: same-length updates
// in the mutable region overwrite in place (the tail does not move and
// nothing is allocated); a longer value or a read-only record appends.
func TestInPlaceUpdate(t *testing.T) {
	d := mustOpen(t, t.TempDir(), Params{MemSegmentLen: 1 << 20, ROLagInterval: 4096, FlushInterval: 4096, MaxRunsPerLevel: 4}, engines.Listener{})
	defer d.Close()
	key, v1, v2 := []byte("0123456789abcdef"), bytes.Repeat([]byte("a"), 100), bytes.Repeat([]byte("b"), 100)
	if err := d.Set(key, v1); err != nil {
		t.Fatal(err)
	}
	t0 := tailOf(d)
	if err := d.Set(key, v2); err != nil {
		t.Fatal(err)
	}
	if tailOf(d) != t0 {
		t.Fatalf("same-length update in the mutable region appended (tail %d -> %d)", t0, tailOf(d))
	}
	mustGet(t, d, string(key), string(v2))
	if n := testing.AllocsPerRun(1000, func() { _ = d.Set(key, v1) }); n != 0 {
		t.Errorf("in-place update allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _, _ = d.Get(key) }); n != 1 {
		t.Errorf("in-memory Get allocates %v times, want 1 (the value copy)", n)
	}
	if err := d.Set(key, []byte("longer value than before, so it must be appended at the tail of the log: RCU ......................")); err != nil {
		t.Fatal(err)
	}
	if tailOf(d) == t0 {
		t.Fatal("a value of another length was updated in place")
	}
	t1 := tailOf(d)
	cp, err := d.Seal()
	if err != nil {
		t.Fatal(err)
	}
	d.Release(cp)
	if err := d.Set(key, []byte("longer value than before, so it must be appended at the tail of the log: RCU !!!!!!!!!!!!!!!!!!!!!!")); err != nil {
		t.Fatal(err)
	}
	if tailOf(d) == t1 {
		t.Fatal("a sealed (read-only) record was updated in place")
	}
	mustGet(t, d, string(key), "longer value than before, so it must be appended at the tail of the log: RCU !!!!!!!!!!!!!!!!!!!!!!")
}

// TestSealIsIncremental checks that a seal writes about the records updated
// since the previous seal, not the whole state.
func TestSealIsIncremental(t *testing.T) {
	var mu sync.Mutex
	sealed := map[string]int64{}
	l := engines.Listener{RunSealed: func(r engines.RunInfo) { mu.Lock(); sealed[r.Name] = r.Size; mu.Unlock() }}
	d := mustOpen(t, t.TempDir(), Params{MemSegmentLen: 4 << 20, ROLagInterval: 256 << 10, FlushInterval: 256 << 10, MaxRunsPerLevel: 10}, l)
	defer d.Close()
	val := bytes.Repeat([]byte("v"), 100)
	key := func(i int) []byte { return []byte(fmt.Sprintf("key-%012d", i)) }
	for i := 0; i < 10000; i++ {
		if err := d.Set(key(i), val); err != nil {
			t.Fatal(err)
		}
	}
	seal := func() (engines.Checkpoint, int64) {
		mu.Lock()
		before := map[string]bool{}
		for n := range sealed {
			before[n] = true
		}
		mu.Unlock()
		cp, err := d.Seal()
		if err != nil {
			t.Fatal(err)
		}
		d.Release(cp)
		var added int64
		for _, r := range cp.Runs {
			if !before[r.Name] {
				added += r.Size
			}
		}
		return cp, added
	}
	seal()
	// 100 distinct keys, each updated 10 times (same length).
	var written int64
	for round := 0; round < 10; round++ {
		for i := 0; i < 100; i++ {
			if err := d.Set(key(i*37), val); err != nil {
				t.Fatal(err)
			}
			written += int64(engines.RecordSize(16, 100))
		}
	}
	cp1, added := seal()
	distinct := int64(100 * engines.RecordSize(16, 100))
	t.Logf("written %d bytes (%d distinct), the seal added %d bytes", written, distinct, added)
	if added > distinct*3/2 || added == 0 {
		t.Fatalf("seal added %d bytes for %d distinct updated bytes", added, distinct)
	}
	cp2, added2 := seal()
	if added2 != 0 || !bytes.Equal(cp1.State, cp2.State) || len(cp1.Runs) != len(cp2.Runs) {
		t.Fatalf("second seal without writes added %d bytes or changed the checkpoint", added2)
	}
}

// countingFS counts the bytes read from .hlog files.
type countingFS struct {
	engines.OSFS
	n *atomic.Int64
}

type countingFile struct {
	engines.File
	n *atomic.Int64
}

func (f countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.n.Add(int64(n))
	return n, err
}

func (f countingFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.n.Add(int64(n))
	return n, err
}

func (c countingFS) OpenFile(name string, flag int, perm os.FileMode) (engines.File, error) {
	f, err := c.OSFS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, "."+extRun) {
		return f, err
	}
	return countingFile{f, c.n}, nil
}

// TestReopenReadsHintsNotRuns checks that Open builds the index from the
// hint files: of the run files it reads only the footers.
func TestReopenReadsHintsNotRuns(t *testing.T) {
	dir := t.TempDir()
	p := Params{MemSegmentLen: 64 << 10, ROLagInterval: 8 << 10, FlushInterval: 8 << 10, MaxRunsPerLevel: 4}
	d := mustOpen(t, dir, p, engines.Listener{})
	for i := 0; i < 5000; i++ {
		if err := d.Set([]byte(fmt.Sprintf("k%05d", i)), []byte(fmt.Sprintf("value-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5000; i += 3 {
		if err := d.Delete([]byte(fmt.Sprintf("k%05d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopen with room for every run in its level: Open then requests no
	// merge, so no background reader can add to the count, whenever it runs
	// (Close may have left a level full when it stopped a pending merge).
	quiet := p
	quiet.MaxRunsPerLevel = maxRunsPerLevel
	var n atomic.Int64
	d2, err := Open(engines.OpenOptions{Dir: dir, FS: countingFS{n: &n}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	var runs int
	d2.runs.Lock()
	for _, l := range d2.runs.levels {
		runs += len(l)
	}
	d2.runs.Unlock()
	if runs == 0 || n.Load() != int64(runs*footerSize) {
		t.Fatalf("open read %d bytes of %d run files, want only their footers (%d bytes)", n.Load(), runs, runs*footerSize)
	}
	for i := 0; i < 5000; i++ {
		v, ok, err := d2.Get([]byte(fmt.Sprintf("k%05d", i)))
		if err != nil || ok == (i%3 == 0) || (ok && string(v) != fmt.Sprintf("value-%d", i)) {
			t.Fatalf("k%05d = %q, %v, %v", i, v, ok, err)
		}
	}
}

// TestMergesBoundRunsAndDropTombstones writes, overwrites and deletes many
// times with tiny parameters: the number of runs stays bounded by the levels,
// deleted keys leave the index once merges reach the oldest run, and every
// value survives reopening.
func TestMergesBoundRunsAndDropTombstones(t *testing.T) {
	dir := t.TempDir()
	p := Params{MemSegmentLen: 4096, ROLagInterval: 1024, FlushInterval: 1024, MaxRunsPerLevel: 3}
	d := mustOpen(t, dir, p, engines.Listener{})
	model := map[string]string{}
	for round := 0; round < 8; round++ {
		for i := 0; i < 300; i++ {
			k := fmt.Sprintf("key-%03d", i)
			if (i+round)%4 == 0 {
				if err := d.Delete([]byte(k)); err != nil {
					t.Fatal(err)
				}
				delete(model, k)
				continue
			}
			v := fmt.Sprintf("v%d-%d", round, i)
			if err := d.Set([]byte(k), []byte(v)); err != nil {
				t.Fatal(err)
			}
			model[k] = v
		}
		cp, err := d.Seal()
		if err != nil {
			t.Fatal(err)
		}
		d.Release(cp)
	}
	d.runs.Lock()
	for li, l := range d.runs.levels {
		if len(l) >= p.MaxRunsPerLevel {
			t.Errorf("level %d holds %d runs after seal (merges pending)", li, len(l))
		}
	}
	d.runs.Unlock()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = mustOpen(t, dir, p, engines.Listener{})
	defer d.Close()
	for i := 0; i < 300; i++ {
		k := fmt.Sprintf("key-%03d", i)
		v, ok, err := d.Get([]byte(k))
		want, inModel := model[k]
		if err != nil || ok != inModel || string(v) != want {
			t.Fatalf("%s = %q, %v, %v; want %q, %v", k, v, ok, err, want, inModel)
		}
	}
	// Delete everything and churn other keys until merges reach the oldest
	// run: the deleted keys must leave the index.
	for i := 0; i < 300; i++ {
		if err := d.Delete([]byte(fmt.Sprintf("key-%03d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Each seal adds a run; a merge of the deepest level (which holds the
	// oldest data) comes at the latest after MaxRunsPerLevel^levels seals.
	live := 0
	for round := 0; round < 300; round++ {
		for i := 0; i < 50; i++ {
			if err := d.Set([]byte(fmt.Sprintf("other-%02d", i)), []byte(fmt.Sprintf("%d", round))); err != nil {
				t.Fatal(err)
			}
		}
		cp, err := d.Seal()
		if err != nil {
			t.Fatal(err)
		}
		d.Release(cp)
		d.mu.RLock()
		live = d.mu.idx.live
		d.mu.RUnlock()
		if live == 50 {
			break
		}
	}
	if live != 50 {
		t.Fatalf("index still holds %d keys; tombstones were never dropped", live)
	}
}

// TestBigRecords stores values larger than the whole window.
func TestBigRecords(t *testing.T) {
	dir := t.TempDir()
	p := Params{MemSegmentLen: 2048, ROLagInterval: 512, FlushInterval: 512, MaxRunsPerLevel: 3}
	d := mustOpen(t, dir, p, engines.Listener{})
	big := bytes.Repeat([]byte("0123456789"), 10_000)
	for i := 0; i < 5; i++ {
		if err := d.Set([]byte(fmt.Sprintf("big%d", i)), big[:len(big)-i]); err != nil {
			t.Fatal(err)
		}
		if err := d.Set([]byte(fmt.Sprintf("small%d", i)), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	check := func(d *DB) {
		for i := 0; i < 5; i++ {
			mustGet(t, d, fmt.Sprintf("big%d", i), string(big[:len(big)-i]))
			mustGet(t, d, fmt.Sprintf("small%d", i), "x")
		}
	}
	check(d)
	if m := d.MemoryUsage(); m < int64(len(big)) {
		t.Errorf("MemoryUsage %d does not count the grown ring buffer", m)
	}
	for i := 0; i < 200; i++ {
		if err := d.Set([]byte(fmt.Sprintf("filler%d", i)), []byte("yyyyyyyyyyyyyyyy")); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(d.mu.buf); n > int(p.MemSegmentLen) {
		t.Errorf("ring buffer stays at %d bytes after the big records left the window", n)
	}
	check(d)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = mustOpen(t, dir, p, engines.Listener{})
	defer d.Close()
	check(d)
}

// TestCorruptRunAndHint damages a run record and a hint file of a closed
// store: the Get and the Open must report corruption naming the file.
func TestCorruptRunAndHint(t *testing.T) {
	dir := t.TempDir()
	p := Params{MemSegmentLen: 4096, ROLagInterval: 1024, FlushInterval: 1024, MaxRunsPerLevel: 100}
	d := mustOpen(t, dir, p, engines.Listener{})
	if err := d.Set([]byte("victim"), []byte("precious")); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	runs, _ := filepath.Glob(filepath.Join(dir, "*."+extRun))
	if len(runs) != 1 {
		t.Fatalf("want one run, have %v", runs)
	}
	b, _ := os.ReadFile(runs[0])
	b[engines.RecordHeaderSize+len("victim")] ^= 0xff // first byte of the value
	if err := os.WriteFile(runs[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	d = mustOpen(t, dir, p, engines.Listener{})
	_, _, err := d.Get([]byte("victim"))
	var ce *engines.CorruptionError
	if !errors.As(err, &ce) || ce.File != filepath.Base(runs[0]) || ce.Offset != 0 {
		t.Fatalf("get of a damaged record: %v", err)
	}
	d.Close()

	hint := hintName(runs[0])
	hb, _ := os.ReadFile(hint)
	if err := os.WriteFile(hint, hb[:len(hb)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(engines.OpenOptions{Dir: dir}, p)
	if !errors.As(err, &ce) || ce.File != filepath.Base(hint) {
		t.Fatalf("open with a truncated hint: %v", err)
	}
	hb[hintHdrSize] ^= 0x01
	if err := os.WriteFile(hint, hb, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(engines.OpenOptions{Dir: dir}, p)
	if !errors.As(err, &ce) || ce.File != filepath.Base(hint) || ce.Offset != int64(len(hb)-4) {
		t.Fatalf("open with a damaged hint: %v", err)
	}
}

// TestCrashBeforeSealKeepsSeal copies the directory of a live engine (no
// Close) after a seal and more writes: the copy opens with at least the
// sealed state, and the flushed later writes never mix in a wrong value.
func TestCrashBeforeSealKeepsSeal(t *testing.T) {
	dir := t.TempDir()
	p := Params{MemSegmentLen: 4096, ROLagInterval: 1024, FlushInterval: 1024, MaxRunsPerLevel: 3}
	d := mustOpen(t, dir, p, engines.Listener{})
	defer d.Close()
	for i := 0; i < 200; i++ {
		if err := d.Set([]byte(fmt.Sprintf("k%03d", i)), []byte("sealed")); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := d.Seal()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if err := d.Set([]byte(fmt.Sprintf("k%03d", i)), []byte("later!")); err != nil {
			t.Fatal(err)
		}
	}
	crash := t.TempDir()
	copyDir := func() error {
		d.runs.Lock() // a consistent copy: no flush or merge commits meanwhile
		defer d.runs.Unlock()
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), engines.TempSuffix) {
				continue // being written: a crash would leave it torn
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(crash, e.Name()), b, 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	if err := copyDir(); err != nil {
		t.Fatal(err)
	}
	d.Release(cp)
	c := mustOpen(t, crash, p, engines.Listener{})
	defer c.Close()
	for i := 0; i < 200; i++ {
		v, ok, err := c.Get([]byte(fmt.Sprintf("k%03d", i)))
		if err != nil || !ok || (string(v) != "sealed" && string(v) != "later!") {
			t.Fatalf("k%03d after crash = %q, %v, %v", i, v, ok, err)
		}
	}
}
