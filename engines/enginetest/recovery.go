package enginetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierkv/tierkv/cache"
	"github.com/tierkv/tierkv/engines"
)

func sha(b []byte) [32]byte { return sha256.Sum256(b) }

// testReleaseRetires: released runs that merges made dead are retired (their
// files deleted, RunRetired called), while a checkpoint that is still pinned
// stays complete and openable.
func testReleaseRetires(t *testing.T, f Factory) {
	dir := t.TempDir()
	rec := newRecorder(dir)
	e := open(t, f, dir, nil, rec.listener())
	oracle := map[string]string{}
	write := func(round int) {
		for i := 0; i < 100; i++ {
			k := fmt.Sprintf("r%03d", i)
			if (i+round)%9 == 0 {
				mustDelete(t, e, k)
				delete(oracle, k)
				continue
			}
			v := fmt.Sprintf("round-%d-%d", round, i)
			mustSet(t, e, k, v)
			oracle[k] = v
		}
	}
	write(0)
	cp0 := mustSeal(t, e)
	rec.pin(cp0)
	oracle0 := maps.Clone(oracle)

	for round := 1; round <= 200; round++ {
		if _, retired := rec.counts(); retired > 0 {
			break
		}
		write(round)
		cp := mustSeal(t, e)
		e.Release(cp)
	}
	// Merges run in the background: wait for one to retire a run. This is a
	// liveness bound, not a speed assertion.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, retired := rec.counts(); retired > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no run was retired after 200 seals with released checkpoints")
		}
	}
	checkState(t, e, oracle, sortedKeys(oracle0))

	// The pinned checkpoint is still complete: copy its runs elsewhere and
	// open it there.
	other := t.TempDir()
	if err := copyRuns(dir, other, cp0); err != nil {
		t.Fatalf("runs of the pinned checkpoint: %v", err)
	}
	e2 := open(t, f, other, &cp0, engines.Listener{})
	checkState(t, e2, oracle0, sortedKeys(oracle0))
	mustSet(t, e2, "after", "open")
	cp2 := mustSeal(t, e2)
	e2.Release(cp2)
	expect(t, e2, "after", "open", true)
	mustClose(t, e2)

	rec.unpin(cp0)
	e.Release(cp0)
	e.Release(cp0)
	mustClose(t, e)
	rec.check(t)
	_, retired := rec.counts()
	t.Logf("%d runs retired", retired)
}

// state is one possible state of a key: present with a value, or absent.
type state struct {
	present bool
	value   string
}

// testCrash: copying the directory of an open engine (a crash without Close)
// gives a store holding at least the last sealed state; cutting a few bytes
// off every active log (a torn tail) still opens.
func testCrash(t *testing.T, f Factory) {
	t.Run("BeforeFirstSeal", func(t *testing.T) {
		dir := t.TempDir()
		e := open(t, f, dir, nil, engines.Listener{})
		allowed := map[string][]state{}
		for i := 0; i < 300; i++ {
			k := fmt.Sprintf("c%03d", i%150)
			if len(allowed[k]) == 0 {
				allowed[k] = []state{{}}
			}
			v := fmt.Sprintf("v%d", i)
			mustSet(t, e, k, v)
			allowed[k] = append(allowed[k], state{true, v})
		}
		crashAndCheck(t, f, dir, allowed)
		mustClose(t, e)
	})
	t.Run("AfterSeal", func(t *testing.T) {
		dir := t.TempDir()
		e := open(t, f, dir, nil, engines.Listener{})
		allowed := map[string][]state{}
		for i := 0; i < 400; i++ {
			k := fmt.Sprintf("c%03d", i%200)
			v := fmt.Sprintf("sealed-%d", i)
			mustSet(t, e, k, v)
			allowed[k] = []state{{true, v}}
		}
		for i := 0; i < 200; i += 10 {
			k := fmt.Sprintf("c%03d", i)
			mustDelete(t, e, k)
			allowed[k] = []state{{}}
		}
		cp := mustSeal(t, e)
		// Later writes: overwrites, deletes and new keys, enough to spill.
		for i := 0; i < 600; i++ {
			k := fmt.Sprintf("c%03d", (i*7)%260)
			if _, ok := allowed[k]; !ok {
				allowed[k] = []state{{}}
			}
			if i%11 == 0 {
				mustDelete(t, e, k)
				allowed[k] = append(allowed[k], state{})
				continue
			}
			v := fmt.Sprintf("later-%d", i)
			mustSet(t, e, k, v)
			allowed[k] = append(allowed[k], state{true, v})
		}
		crashAndCheck(t, f, dir, allowed)
		e.Release(cp)
		mustClose(t, e)
	})
}

// crashAndCheck copies the live directory dir twice: once as is, once with
// every active log (a non-run file ending in ".log") cut by a few bytes. Each
// copy must open without a checkpoint, and every key must be in one of its
// allowed states (allowed[k][0] is the sealed one).
func crashAndCheck(t *testing.T, f Factory, dir string, allowed map[string][]state) {
	t.Helper()
	crash := t.TempDir()
	copyLiveDir(t, dir, crash)
	torn := t.TempDir()
	copyLiveDir(t, crash, torn)
	ents, err := os.ReadDir(torn)
	if err != nil {
		t.Fatal(err)
	}
	cut := 0
	for _, de := range ents {
		name := de.Name()
		if _, _, _, isRun := engines.ParseRunName(name); isRun || !strings.HasSuffix(name, ".log") {
			continue
		}
		st, err := os.Stat(filepath.Join(torn, name))
		if err != nil {
			t.Fatal(err)
		}
		n := min(st.Size(), 3)
		if n == 0 {
			continue
		}
		if err := os.Truncate(filepath.Join(torn, name), st.Size()-n); err != nil {
			t.Fatal(err)
		}
		cut++
	}
	t.Logf("cut %d active log(s) in the torn copy", cut)
	for _, c := range []struct{ name, dir string }{{"crash copy", crash}, {"torn copy", torn}} {
		e, err := f.Open(engines.OpenOptions{Dir: c.dir})
		if err != nil {
			t.Fatalf("open the %s: %v", c.name, err)
		}
		for _, k := range sortedKeys(allowed) {
			v, found, err := e.Get([]byte(k))
			if err != nil {
				t.Fatalf("%s: get %q: %v", c.name, k, err)
			}
			got := state{found, string(v)}
			if !containsState(allowed[k], got) {
				t.Fatalf("%s: get %q = %+v; want the sealed state %+v or a later one of %+v", c.name, k, got, allowed[k][0], allowed[k][1:])
			}
		}
		// The recovered store takes writes and seals.
		mustSet(t, e, "after-crash", "yes")
		cp := mustSeal(t, e)
		e.Release(cp)
		mustClose(t, e)
		e = open(t, f, c.dir, nil, engines.Listener{})
		expect(t, e, "after-crash", "yes", true)
		mustClose(t, e)
	}
}

func containsState(ss []state, s state) bool {
	for _, x := range ss {
		if x.present == s.present && (!s.present || x.value == s.value) {
			return true
		}
	}
	return false
}

// testCorruption: a flipped byte in a sealed run (middle, first, last byte)
// never yields a wrong answer: opening fails with ErrCorrupt, or each read
// returns the right answer or ErrCorrupt.
func testCorruption(t *testing.T, f Factory) {
	dir := t.TempDir()
	e := open(t, f, dir, nil, engines.Listener{})
	oracle := map[string]string{}
	for i := 0; i < 300; i++ {
		k := fmt.Sprintf("key-%04d", i)
		v := fmt.Sprintf("value-%04d-%s", i, strings.Repeat(string(rune('a'+i%26)), 40))
		mustSet(t, e, k, v)
		oracle[k] = v
	}
	for i := 0; i < 300; i += 13 {
		k := fmt.Sprintf("key-%04d", i)
		mustDelete(t, e, k)
		delete(oracle, k)
	}
	cp := mustSeal(t, e)
	pristine := t.TempDir()
	if err := copyRuns(dir, pristine, cp); err != nil {
		t.Fatal(err)
	}
	e.Release(cp)
	mustClose(t, e)
	if len(cp.Runs) == 0 {
		t.Fatal("seal after writes returned a checkpoint without runs")
	}
	keys := make([]string, 0, 320)
	for i := 0; i < 300; i++ {
		keys = append(keys, fmt.Sprintf("key-%04d", i))
	}
	for i := 0; i < 20; i++ {
		keys = append(keys, fmt.Sprintf("absent-%02d", i))
	}

	c, err := cache.New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var detected, cases int
	runs := cp.Runs
	if len(runs) > 8 {
		runs = runs[len(runs)-8:]
	}
	for _, ri := range runs {
		data, err := os.ReadFile(filepath.Join(pristine, ri.Name))
		if err != nil {
			t.Fatal(err)
		}
		for _, pos := range flipPositions(data) {
			cases++
			d := t.TempDir()
			if err := copyRuns(pristine, d, cp); err != nil {
				t.Fatal(err)
			}
			FlipByte(t, filepath.Join(d, ri.Name), pos)
			where := fmt.Sprintf("run %s with byte %d of %d flipped", ri.Name, pos, ri.Size)
			e, err := f.Open(engines.OpenOptions{Dir: d, Checkpoint: cloneCheckpoint(&cp), Cache: c})
			if err != nil {
				if !errors.Is(err, engines.ErrCorrupt) {
					t.Errorf("%s: open: %v, want nil or ErrCorrupt", where, err)
				}
				detected++
				continue
			}
			seen := false
			for _, k := range keys {
				want, ok := oracle[k]
				v, found, err := e.Get([]byte(k))
				if err != nil {
					if !errors.Is(err, engines.ErrCorrupt) {
						t.Errorf("%s: get %q: %v, want nil or ErrCorrupt", where, k, err)
					}
					seen = true
					continue
				}
				if found != ok || (ok && string(v) != want) {
					t.Fatalf("%s: get %q = %q (found=%v), want %q (found=%v): a wrong answer", where, k, short(v), found, short([]byte(want)), ok)
				}
			}
			if seen {
				detected++
			}
			_ = e.Close()
		}
	}
	t.Logf("%d of %d flipped bytes detected (the rest were never read)", detected, cases)
}

// flipPositions picks the bytes of a run to flip: the first, the middle and
// the last, and, when the run stores keys and values in the clear, a byte
// inside a value (a wrong value must not be returned) and a digit of a key
// (which turns it into another existing key: its value must not be returned
// for that other key).
func flipPositions(data []byte) []int64 {
	n := int64(len(data))
	if n == 0 {
		return nil
	}
	pos := []int64{n / 2, 0, n - 1}
	if i := bytes.Index(data[n/2:], []byte("value-")); i >= 0 {
		pos = append(pos, n/2+int64(i)+12) // inside the letters after "value-NNNN-"
	} else if i := bytes.Index(data, []byte("value-")); i >= 0 {
		pos = append(pos, int64(i)+12)
	}
	if i := bytes.Index(data[n/2:], []byte("key-0")); i >= 0 {
		pos = append(pos, n/2+int64(i)+7) // the tens digit of "key-NNNN"
	} else if i := bytes.Index(data, []byte("key-0")); i >= 0 {
		pos = append(pos, int64(i)+7)
	}
	return pos
}

// FlipByte inverts the byte at pos of the file at path, for corruption tests.
func FlipByte(t testing.TB, path string, pos int64) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	b := make([]byte, 1)
	if _, err := fh.ReadAt(b, pos); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := fh.WriteAt(b, pos); err != nil {
		t.Fatal(err)
	}
}

// testConcurrency: 4 writers on disjoint keys, 2 readers and a sealer at the
// same time (run it with -race); then every key holds its writer's last
// value, also after a reopen.
func testConcurrency(t *testing.T, f Factory) {
	dir := t.TempDir()
	c, err := cache.New(256 << 10)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec := newRecorder(dir)
	e, err := f.Open(engines.OpenOptions{Dir: dir, Listener: rec.listener(), Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	const writers, perWriter, keysPerWriter = 4, 1500, 150
	finals := make([]map[string]string, writers)
	var wg, bg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < writers; w++ {
		finals[w] = map[string]string{}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < perWriter; i++ {
				k := fmt.Sprintf("w%d-%03d", w, rng.IntN(keysPerWriter))
				if rng.IntN(8) == 0 {
					if err := e.Delete([]byte(k)); err != nil {
						t.Errorf("writer %d: delete %q: %v", w, k, err)
						return
					}
					finals[w][k] = "\x00deleted"
					continue
				}
				v := fmt.Sprintf("%s#%d", k, i)
				if err := e.Set([]byte(k), []byte(v)); err != nil {
					t.Errorf("writer %d: set %q: %v", w, k, err)
					return
				}
				finals[w][k] = v
			}
		}(w)
	}
	for r := 0; r < 2; r++ {
		bg.Add(1)
		go func(r int) {
			defer bg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 11))
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("w%d-%03d", rng.IntN(writers), rng.IntN(keysPerWriter))
				v, found, err := e.Get([]byte(k))
				if err != nil {
					t.Errorf("reader %d: get %q: %v", r, k, err)
					return
				}
				if found && !strings.HasPrefix(string(v), k+"#") {
					t.Errorf("reader %d: get %q = %q: a value of another key", r, k, short(v))
					return
				}
				if e.MemoryUsage() < 0 {
					t.Errorf("reader %d: negative MemoryUsage", r)
					return
				}
			}
		}(r)
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			cp, err := e.Seal()
			if err != nil {
				t.Errorf("sealer: %v", err)
				return
			}
			e.Release(cp)
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	close(stop)
	bg.Wait()
	if t.Failed() {
		e.Close()
		return
	}
	verify := func(e engines.Engine, when string) {
		t.Helper()
		for w := range finals {
			for _, k := range sortedKeys(finals[w]) {
				want := finals[w][k]
				v, found, err := e.Get([]byte(k))
				if err != nil {
					t.Fatalf("%s: get %q: %v", when, k, err)
				}
				if want == "\x00deleted" {
					if found {
						t.Fatalf("%s: get %q = %q, want deleted", when, k, short(v))
					}
				} else if !found || string(v) != want {
					t.Fatalf("%s: get %q = %q (found=%v), want %q", when, k, short(v), found, want)
				}
			}
		}
	}
	verify(e, "after the concurrent phase")
	mustClose(t, e)
	e = open(t, f, dir, nil, rec.listener())
	verify(e, "after reopen")
	mustClose(t, e)
	rec.check(t)
}
