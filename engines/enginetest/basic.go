package enginetest

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, engines.CastagnoliTable) }

// testBasic: get/set/delete/overwrite, also across a seal and a reopen.
func testBasic(t *testing.T, f Factory) {
	dir := t.TempDir()
	e := open(t, f, dir, nil, engines.Listener{})
	expect(t, e, "a", "", false)
	mustSet(t, e, "a", "1")
	mustSet(t, e, "b", "2")
	expect(t, e, "a", "1", true)
	expect(t, e, "b", "2", true)
	mustSet(t, e, "a", "one")
	expect(t, e, "a", "one", true)
	mustDelete(t, e, "b")
	expect(t, e, "b", "", false)
	mustDelete(t, e, "never-written") // deleting an absent key is fine
	expect(t, e, "never-written", "", false)
	mustSet(t, e, "b", "two")
	expect(t, e, "b", "two", true)

	// The returned value is owned by the caller: changing it changes nothing.
	v, _, err := e.Get([]byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	copy(v, "XXX")
	expect(t, e, "a", "one", true)
	// The engine copies key and value on Set.
	k, val := []byte("c"), []byte("three")
	if err := e.Set(k, val); err != nil {
		t.Fatal(err)
	}
	k[0], val[0] = 'z', 'z'
	expect(t, e, "c", "three", true)

	cp := mustSeal(t, e)
	if cp.Kind != f.Kind {
		t.Fatalf("checkpoint kind %q, want %q", cp.Kind, f.Kind)
	}
	e.Release(cp)
	mustSet(t, e, "a", "uno")
	mustDelete(t, e, "c")
	expect(t, e, "a", "uno", true)
	expect(t, e, "c", "", false)
	mustSeal(t, e)
	mustDelete(t, e, "b")
	mustClose(t, e)

	e = open(t, f, dir, nil, engines.Listener{})
	defer mustClose(t, e)
	expect(t, e, "a", "uno", true)
	expect(t, e, "b", "", false)
	expect(t, e, "c", "", false)
}

// testEmptyValue: an empty value is a value, distinct from absent, also after
// a seal and a reopen.
func testEmptyValue(t *testing.T, f Factory) {
	dir := t.TempDir()
	e := open(t, f, dir, nil, engines.Listener{})
	mustSet(t, e, "empty", "")
	if err := e.Set([]byte("nil"), nil); err != nil {
		t.Fatal(err)
	}
	check := func(e engines.Engine) {
		t.Helper()
		for _, k := range []string{"empty", "nil"} {
			v, found, err := e.Get([]byte(k))
			if err != nil || !found || len(v) != 0 {
				t.Fatalf("get %q = %q, found=%v, err=%v; want empty value, found", k, v, found, err)
			}
		}
		expect(t, e, "absent", "", false)
	}
	check(e)
	mustSeal(t, e)
	check(e)
	mustClose(t, e)
	e = open(t, f, dir, nil, engines.Listener{})
	check(e)
	// Deleting an empty value makes it absent.
	mustDelete(t, e, "empty")
	expect(t, e, "empty", "", false)
	mustClose(t, e)
	e = open(t, f, dir, nil, engines.Listener{})
	defer mustClose(t, e)
	expect(t, e, "empty", "", false)
	expect(t, e, "nil", "", true)
}

// testLimits: oversized keys and values are refused with ErrLimit and nothing
// is written; the largest legal ones round-trip through seal and reopen.
func testLimits(t *testing.T, f Factory) {
	dir := t.TempDir()
	rec := newRecorder(dir)
	e := open(t, f, dir, nil, rec.listener())
	mustSet(t, e, "base", "v")
	cp0 := mustSeal(t, e)
	sealed0, _ := rec.counts()

	bigKey := bytes.Repeat([]byte{'k'}, engines.MaxKeySize+1)
	bigVal := make([]byte, engines.MaxValueSize+1)
	refused := []struct {
		what string
		err  error
	}{
		{"Set(empty key)", e.Set(nil, []byte("v"))},
		{"Set(empty non-nil key)", e.Set([]byte{}, []byte("v"))},
		{"Set(65536-byte key)", e.Set(bigKey, []byte("v"))},
		{"Set(16 MiB + 1 value)", e.Set([]byte("big"), bigVal)},
		{"Delete(empty key)", e.Delete(nil)},
		{"Delete(65536-byte key)", e.Delete(bigKey)},
	}
	for _, r := range refused {
		if !errors.Is(r.err, engines.ErrLimit) {
			t.Errorf("%s: err = %v, want ErrLimit", r.what, r.err)
		}
		var le *engines.LimitError
		if !errors.As(r.err, &le) {
			t.Errorf("%s: err = %v, want a *engines.LimitError", r.what, r.err)
		}
	}
	// Get of an illegal key is not found or refused, never a value.
	for _, k := range [][]byte{nil, bigKey} {
		v, found, err := e.Get(k)
		if found || (err != nil && !errors.Is(err, engines.ErrLimit)) {
			t.Errorf("Get(%d-byte key) = %q, %v, %v; want not found or ErrLimit", len(k), short(v), found, err)
		}
	}
	expect(t, e, "big", "", false)
	cp1 := mustSeal(t, e)
	if sealed, _ := rec.counts(); sealed != sealed0 {
		t.Errorf("refused writes changed the state: seal after them sealed %d new runs", sealed-sealed0)
	}
	if !equalCheckpoints(cp0, cp1) {
		t.Errorf("refused writes changed the checkpoint: %s -> %s", runNames(cp0), runNames(cp1))
	}
	e.Release(cp0)
	e.Release(cp1)

	// The largest legal key and value are accepted and survive a reopen.
	maxKey := bytes.Repeat([]byte{'m'}, engines.MaxKeySize)
	pattern := make([]byte, 251) // a prime length, so pages differ
	for i := range pattern {
		pattern[i] = byte(i * 7)
	}
	maxVal := bytes.Repeat(pattern, engines.MaxValueSize/len(pattern)+1)[:engines.MaxValueSize]
	if err := e.Set(maxKey, []byte("mk")); err != nil {
		t.Fatalf("Set(65535-byte key): %v", err)
	}
	if err := e.Set([]byte("maxval"), maxVal); err != nil {
		t.Fatalf("Set(16 MiB value): %v", err)
	}
	checkMax := func(e engines.Engine) {
		t.Helper()
		v, found, err := e.Get(maxKey)
		if err != nil || !found || string(v) != "mk" {
			t.Fatalf("Get(65535-byte key) = %q, %v, %v", short(v), found, err)
		}
		v, found, err = e.Get([]byte("maxval"))
		if err != nil || !found || !bytes.Equal(v, maxVal) {
			t.Fatalf("Get(maxval) = %d bytes, found=%v, err=%v; want the 16 MiB value", len(v), found, err)
		}
		expect(t, e, "base", "v", true)
	}
	checkMax(e)
	mustSeal(t, e)
	checkMax(e)
	mustClose(t, e)
	e = open(t, f, dir, nil, rec.listener())
	checkMax(e)
	mustClose(t, e)
	rec.check(t)
}

func equalCheckpoints(a, b engines.Checkpoint) bool {
	return a.Kind == b.Kind && slices.Equal(a.Runs, b.Runs) && bytes.Equal(a.State, b.State)
}

// testReopen: Close then reopen gives the identical state, several times, with
// enough data to spill and merge.
func testReopen(t *testing.T, f Factory) {
	dir := t.TempDir()
	oracle := map[string]string{}
	var keys []string
	for i := 0; i < 600; i++ {
		keys = append(keys, fmt.Sprintf("key-%05d", i))
	}
	for round := 0; round < 4; round++ {
		e := open(t, f, dir, nil, engines.Listener{})
		checkState(t, e, oracle, keys)
		for i, k := range keys {
			switch {
			case (i+round)%7 == 0:
				mustDelete(t, e, k)
				delete(oracle, k)
			case (i+round)%3 == 0 || round == 0:
				v := fmt.Sprintf("v%d-%s", round, k)
				mustSet(t, e, k, v)
				oracle[k] = v
			}
		}
		checkState(t, e, oracle, keys)
		mustClose(t, e)
	}
	e := open(t, f, dir, nil, engines.Listener{})
	defer mustClose(t, e)
	checkState(t, e, oracle, keys)
}

// testSealIdempotent: sealing twice with no write in between creates no new
// run and returns an equal checkpoint; so does sealing an empty engine.
func testSealIdempotent(t *testing.T, f Factory) {
	dir := t.TempDir()
	rec := newRecorder(dir)
	e := open(t, f, dir, nil, rec.listener())
	defer mustClose(t, e)

	e0 := mustSeal(t, e)
	e1 := mustSeal(t, e)
	if !equalCheckpoints(e0, e1) {
		t.Errorf("seals of an empty engine differ: %+v vs %+v", e0, e1)
	}
	// Few small writes: one run at most, so that no background merge can
	// legitimately change the live set between the seals.
	for i := 0; i < 6; i++ {
		mustSet(t, e, fmt.Sprintf("k%02d", i), fmt.Sprintf("v%d", i))
	}
	mustDelete(t, e, "k03")
	cp1 := mustSeal(t, e)
	if len(cp1.Runs) == 0 {
		t.Fatal("seal after writes returned a checkpoint without runs")
	}
	n1, _ := rec.counts()
	if n1 == 0 {
		t.Fatal("seal after writes reported no RunSealed event")
	}
	for i := 0; i < 3; i++ {
		cp2 := mustSeal(t, e)
		if n2, _ := rec.counts(); n2 != n1 {
			t.Fatalf("seal #%d without writes sealed %d new runs", i+2, n2-n1)
		}
		if !equalCheckpoints(cp1, cp2) {
			t.Fatalf("seal #%d without writes returned another checkpoint: runs %s vs %s, state %x vs %x",
				i+2, runNames(cp1), runNames(cp2), cp1.State, cp2.State)
		}
		e.Release(cp2)
	}
	// Every run a checkpoint names was reported through RunSealed.
	rec.mu.Lock()
	for _, ri := range cp1.Runs {
		if _, ok := rec.hashes[ri.Name]; !ok {
			t.Errorf("checkpoint names run %s that RunSealed never reported", ri.Name)
		}
	}
	rec.mu.Unlock()
	e.Release(cp1)
	e.Release(cp1) // a second release is a no-op
	expect(t, e, "k05", "v5", true)
	expect(t, e, "k03", "", false)
	rec.check(t)
}

// testMissingRun: opening a checkpoint whose runs are not in the directory
// fails with ErrMissingRun.
func testMissingRun(t *testing.T, f Factory) {
	dir := t.TempDir()
	e := open(t, f, dir, nil, engines.Listener{})
	for i := 0; i < 50; i++ {
		mustSet(t, e, fmt.Sprintf("k%02d", i), "v")
	}
	cp := mustSeal(t, e)
	mustClose(t, e)
	if len(cp.Runs) == 0 {
		t.Fatal("seal after writes returned a checkpoint without runs")
	}
	e2, err := f.Open(engines.OpenOptions{Dir: t.TempDir(), Checkpoint: cloneCheckpoint(&cp)})
	if err == nil {
		e2.Close()
		t.Fatal("opening a checkpoint without its runs succeeded")
	}
	if !errors.Is(err, engines.ErrMissingRun) {
		t.Fatalf("opening a checkpoint without its runs: err = %v, want ErrMissingRun", err)
	}
}

// testKindMismatch: a checkpoint of another kind is refused.
func testKindMismatch(t *testing.T, f Factory) {
	dir := t.TempDir()
	e := open(t, f, dir, nil, engines.Listener{})
	mustSet(t, e, "k", "v")
	cp := mustSeal(t, e)
	other := t.TempDir()
	if err := copyRuns(dir, other, cp); err != nil {
		t.Fatal(err)
	}
	mustClose(t, e)
	for _, kind := range []string{"not-" + f.Kind, ""} {
		bad := *cloneCheckpoint(&cp)
		bad.Kind = kind
		e2, err := f.Open(engines.OpenOptions{Dir: other, Checkpoint: &bad})
		if err == nil {
			e2.Close()
			t.Fatalf("opening a checkpoint of kind %q succeeded", kind)
		}
		if !errors.Is(err, engines.ErrKindMismatch) {
			t.Fatalf("opening a checkpoint of kind %q: err = %v, want ErrKindMismatch", kind, err)
		}
	}
	// The right kind still opens there.
	e2 := open(t, f, other, &cp, engines.Listener{})
	defer mustClose(t, e2)
	expect(t, e2, "k", "v", true)
}

// testClosed: after Close every method returns ErrClosed (Release and
// MemoryUsage, which return no error, must not panic).
func testClosed(t *testing.T, f Factory) {
	e := open(t, f, t.TempDir(), nil, engines.Listener{})
	mustSet(t, e, "k", "v")
	cp := mustSeal(t, e)
	mustClose(t, e)
	if _, _, err := e.Get([]byte("k")); !errors.Is(err, engines.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if err := e.Set([]byte("k"), []byte("v")); !errors.Is(err, engines.ErrClosed) {
		t.Errorf("Set after Close: %v, want ErrClosed", err)
	}
	if err := e.Delete([]byte("k")); !errors.Is(err, engines.ErrClosed) {
		t.Errorf("Delete after Close: %v, want ErrClosed", err)
	}
	if _, err := e.Seal(); !errors.Is(err, engines.ErrClosed) {
		t.Errorf("Seal after Close: %v, want ErrClosed", err)
	}
	if err := e.Close(); !errors.Is(err, engines.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	e.Release(cp)
	_ = e.MemoryUsage()
}

// testMemoryUsage: MemoryUsage is positive-going with data, in memory and
// after a seal.
func testMemoryUsage(t *testing.T, f Factory) {
	e := open(t, f, t.TempDir(), nil, engines.Listener{})
	defer mustClose(t, e)
	m0 := e.MemoryUsage()
	if m0 < 0 {
		t.Fatalf("MemoryUsage of an empty engine = %d", m0)
	}
	for i := 0; i < 3000; i++ {
		mustSet(t, e, fmt.Sprintf("memory-key-%06d", i), "twenty-byte-value-xx")
	}
	m1 := e.MemoryUsage()
	cp := mustSeal(t, e)
	m2 := e.MemoryUsage()
	e.Release(cp)
	t.Logf("MemoryUsage: empty %d, 3000 keys %d, after seal %d", m0, m1, m2)
	if m1 <= m0 {
		t.Errorf("MemoryUsage did not grow with 3000 keys: %d -> %d", m0, m1)
	}
	if m2 <= m0 {
		t.Errorf("MemoryUsage after sealing 3000 keys (%d) is not above the empty engine's (%d)", m2, m0)
	}
}
