package memonly

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/engines/enginetest"
)

func factory() enginetest.Factory {
	return enginetest.Factory{
		Kind:      Kind,
		StateFile: CurrentFile,
		Open:      func(o engines.OpenOptions) (engines.Engine, error) { return Open(o, DefaultParams()) },
	}
}

func TestConformance(t *testing.T) { enginetest.Run(t, factory()) }

func BenchmarkEngine(b *testing.B) { enginetest.RunBenchmarks(b, factory()) }

func TestParams(t *testing.T) {
	p, err := ParseParams(nil)
	if err != nil || p != DefaultParams() {
		t.Fatalf("ParseParams(nil) = %v, %v", p, err)
	}
	if m := p.Map(); m == nil || len(m) != 0 {
		t.Fatalf("Map() = %#v, want an empty non-nil map", m)
	}
	if _, err := ParseParams(p.Map()); err != nil {
		t.Fatalf("Map does not round-trip: %v", err)
	}
	_, err = ParseParams(engines.Params{"threshold": "10", "density_factor": "4"})
	var pe *engines.ParamError
	if !errors.As(err, &pe) || pe.Name != "density_factor" || pe.Engine != Kind {
		t.Fatalf("ParseParams(unknown) = %v, want a ParamError naming density_factor", err)
	}
}

func openT(t *testing.T, o engines.OpenOptions) *DB {
	t.Helper()
	db, err := Open(o, DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestSealDumpsOnlyOnChange: one run per seal after a change, the previous
// dump retires when unpinned, CURRENT names the last dump.
func TestSealDumpsOnlyOnChange(t *testing.T) {
	dir := t.TempDir()
	var sealed, retired []string
	l := engines.Listener{
		RunSealed:  func(r engines.RunInfo) { sealed = append(sealed, r.Name) },
		RunRetired: func(n string) { retired = append(retired, n) },
	}
	db := openT(t, engines.OpenOptions{Dir: dir, Listener: l})
	if err := db.Set([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	cp1, err := db.Seal()
	if err != nil {
		t.Fatal(err)
	}
	if len(cp1.Runs) != 1 || len(sealed) != 1 || cp1.Runs[0].Name != sealed[0] {
		t.Fatalf("first seal: runs %v, sealed %v", cp1.Runs, sealed)
	}
	if err := db.Delete([]byte("a")); err != nil {
		t.Fatal(err)
	}
	cp2, err := db.Seal()
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != 2 || cp2.Runs[0].Name == cp1.Runs[0].Name {
		t.Fatalf("second seal after a delete: runs %v, sealed %v", cp2.Runs, sealed)
	}
	// cp1 still pins the first dump.
	if len(retired) != 0 {
		t.Fatalf("retired %v while pinned", retired)
	}
	if _, err := os.Stat(filepath.Join(dir, cp1.Runs[0].Name)); err != nil {
		t.Fatalf("pinned dump: %v", err)
	}
	db.Release(cp1)
	if len(retired) != 1 || retired[0] != cp1.Runs[0].Name {
		t.Fatalf("after release: retired %v, want %s", retired, cp1.Runs[0].Name)
	}
	if _, err := os.Stat(filepath.Join(dir, cp1.Runs[0].Name)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("retired dump still present: %v", err)
	}
	// The live dump is not retired by releasing its checkpoint.
	db.Release(cp2)
	if len(retired) != 1 {
		t.Fatalf("releasing the live dump retired it: %v", retired)
	}
	data, err := os.ReadFile(filepath.Join(dir, CurrentFile))
	if err != nil {
		t.Fatal(err)
	}
	cur, err := decodeCurrent(data)
	if err != nil || cur.run == nil || cur.run.Name != cp2.Runs[0].Name {
		t.Fatalf("CURRENT = %+v, %v; want %s", cur, err, cp2.Runs[0].Name)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if len(sealed) != 2 {
		t.Fatalf("Close with nothing changed dumped again: %v", sealed)
	}
}

// TestWritesDuringDump exercises the delta map directly: writes made while a
// dump is running are visible at once and folded in afterwards.
func TestWritesDuringDump(t *testing.T) {
	dir := t.TempDir()
	var db *DB
	step := 0
	l := engines.Listener{RunSealed: func(engines.RunInfo) {
		// Called inside Seal, after the dump, before the fold: the delta is
		// installed. The listener must not call the engine in production;
		// this test does so on purpose, knowing the locks are free here.
		if step > 0 {
			return
		}
		step++
		for _, op := range []struct{ k, v string }{{"b", "2"}, {"new", ""}} {
			if err := db.Set([]byte(op.k), []byte(op.v)); err != nil {
				t.Error(err)
			}
		}
		if err := db.Delete([]byte("a")); err != nil {
			t.Error(err)
		}
		if _, found, _ := db.Get([]byte("a")); found {
			t.Error("a deleted during the dump is still found")
		}
		if v, found, _ := db.Get([]byte("c")); !found || string(v) != "3" {
			t.Errorf("frozen key c = %q, %v", v, found)
		}
	}}
	db = openT(t, engines.OpenOptions{Dir: dir, Listener: l})
	for _, kv := range [][2]string{{"a", "1"}, {"b", "1"}, {"c", "3"}} {
		if err := db.Set([]byte(kv[0]), []byte(kv[1])); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := db.Seal()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"b": "2", "c": "3", "new": ""}
	check := func(db *DB) {
		t.Helper()
		for _, k := range []string{"a", "b", "c", "new"} {
			v, found, err := db.Get([]byte(k))
			w, ok := want[k]
			if err != nil || found != ok || string(v) != w {
				t.Fatalf("get %q = %q, %v, %v; want %q, %v", k, v, found, err, w, ok)
			}
		}
	}
	check(db)
	if got, wantBytes := db.MemoryUsage(), cost(1, 1)+cost(1, 1)+cost(3, 0); got != wantBytes {
		t.Fatalf("MemoryUsage = %d, want %d", got, wantBytes)
	}
	// The writes during the dump are not in it: the next seal dumps again.
	cp2, err := db.Seal()
	if err != nil {
		t.Fatal(err)
	}
	if cp2.Runs[0].Name == cp.Runs[0].Name {
		t.Fatal("writes made during a dump did not make the next seal dump")
	}
	db.Release(cp)
	db.Release(cp2)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openT(t, engines.OpenOptions{Dir: dir})
	defer db.Close()
	check(db)
}

// TestOpenRemovesLeftovers: temporary files and unreferenced dumps go away;
// run files of other engines and unrelated files stay.
func TestOpenRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, engines.OpenOptions{Dir: dir})
	if err := db.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	stray := []string{"0000000000000063-deadbeef.dump", "x.dump.tmp", CurrentFile + ".tmp"}
	for _, n := range stray {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kept := []string{"notes.txt", "0000000000000064-deadbeef.sst"}
	for _, n := range kept {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db = openT(t, engines.OpenOptions{Dir: dir})
	defer db.Close()
	for _, n := range stray {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("leftover %s not removed: %v", n, err)
		}
	}
	for _, n := range kept {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("file %s, not a memonly file, removed: %v", n, err)
		}
	}
	if v, found, err := db.Get([]byte("k")); err != nil || !found || string(v) != "v" {
		t.Fatalf("get k = %q, %v, %v", v, found, err)
	}
	// New names continue after the recorded sequence.
	if err := db.Set([]byte("k"), []byte("w")); err != nil {
		t.Fatal(err)
	}
	cp, err := db.Seal()
	if err != nil {
		t.Fatal(err)
	}
	if seq, _, _, _ := engines.ParseRunName(cp.Runs[0].Name); seq < 1 {
		t.Fatalf("run %s reuses sequence 0", cp.Runs[0].Name)
	}
}

// TestOpenCorruptCurrent: a damaged CURRENT or dump is an error naming the
// file, never an empty store.
func TestOpenCorrupt(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, engines.OpenOptions{Dir: dir})
	for i := 0; i < 10; i++ {
		if err := db.Set([]byte{'k', byte('0' + i)}, []byte("value")); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := db.Seal()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	files := []struct {
		name string
		pos  int64
	}{{CurrentFile, 3}, {CurrentFile, 20}, {cp.Runs[0].Name, 5}, {cp.Runs[0].Name, cp.Runs[0].Size - 1}}
	for _, f := range files {
		d := t.TempDir()
		for _, n := range []string{CurrentFile, cp.Runs[0].Name} {
			data, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				t.Fatal(err)
			}
			if n == f.name {
				data[f.pos] ^= 0x01
			}
			if err := os.WriteFile(filepath.Join(d, n), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, err := Open(engines.OpenOptions{Dir: d}, DefaultParams())
		var ce *engines.CorruptionError
		if !errors.As(err, &ce) || ce.File != f.name {
			t.Errorf("open with byte %d of %s flipped: %v, want a CorruptionError naming %s", f.pos, f.name, err, f.name)
		}
	}
	// A bad state blob in a checkpoint.
	bad := cp
	bad.State = append([]byte(nil), cp.State...)
	bad.State[5] ^= 1
	if _, err := Open(engines.OpenOptions{Dir: dir, Checkpoint: &bad}, DefaultParams()); !errors.Is(err, engines.ErrCorrupt) {
		t.Errorf("open with a damaged state blob: %v, want ErrCorrupt", err)
	}
	// CURRENT missing with a dump present: an empty store (the dump is an
	// unreferenced leftover).
	d := t.TempDir()
	db = openT(t, engines.OpenOptions{Dir: d})
	if _, found, _ := db.Get([]byte("k0")); found {
		t.Fatal("found a key in a new store")
	}
	db.Close()
}
