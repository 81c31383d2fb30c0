package reliability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/engines/all"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/tiered"
)

// corruption is one damage done to a file or object.
type corruption struct {
	truncate bool
	off      int64 // flipped byte, or new length
	mask     byte  // XOR mask of a flip (never 0)
}

func (c corruption) String() string {
	if c.truncate {
		return fmt.Sprintf("truncate to %d", c.off)
	}
	return fmt.Sprintf("flip byte %d ^ %#02x", c.off, c.mask)
}

// randomCorruption picks a flip (80%) or a truncation of data.
func randomCorruption(rng *rand.Rand, size int) corruption {
	if size == 0 || rng.IntN(5) == 0 {
		return corruption{truncate: true, off: int64(rng.IntN(max(size, 1)))}
	}
	return corruption{off: int64(rng.IntN(size)), mask: byte(1 + rng.IntN(255))}
}

func (c corruption) apply(data []byte) []byte {
	if c.truncate {
		return append([]byte(nil), data[:c.off]...)
	}
	out := append([]byte(nil), data...)
	out[c.off] ^= c.mask
	return out
}

// outcome tallies the cases of one target.
type outcome struct {
	cases, detected, harmless int
	dead, latent              int            // harmless: file removed by Open; bytes not read but caught by the run's CRC
	sameDecode                int            // harmless: a JSON file that decodes to the same content
	named                     int            // detected errors naming the file or object
	withOffset                int            // detected errors carrying an offset
	other                     map[string]int // detected, but not as corruption: error class -> count
	examples                  []string       // a few errors, for the log
}

func (o *outcome) String() string {
	s := fmt.Sprintf("%d cases: %d detected (%d naming the file, %d with an offset), %d harmless",
		o.cases, o.detected, o.named, o.withOffset, o.harmless)
	if o.dead+o.latent > 0 {
		s += fmt.Sprintf(" (%d in dead files Open removed, %d in bytes no read touched, caught by the run's recorded CRC-32C)", o.dead, o.latent)
	}
	if o.sameDecode > 0 {
		s += fmt.Sprintf(" (%d in JSON that decodes to the same content)", o.sameDecode)
	}
	if len(o.other) > 0 {
		s += fmt.Sprintf(", refused as not-corruption: %v", o.other)
	}
	return s
}

// detected records an error found for a case on file name.
func (o *outcome) detect(t *testing.T, what string, err error, name string, c corruption) {
	t.Helper()
	o.detected++
	var ce *engines.CorruptionError
	if errors.As(err, &ce) && ce.Offset >= 0 {
		o.withOffset++
	}
	if strings.Contains(err.Error(), name) {
		o.named++
	}
	if !errors.Is(err, engines.ErrCorrupt) {
		if o.other == nil {
			o.other = map[string]int{}
		}
		class := errClass(err)
		o.other[class]++
		if o.other[class] <= 2 {
			t.Logf("%s: %s of %s refused with a non-corruption error: %v", what, c, name, err)
		}
	}
	if len(o.examples) < 2 {
		o.examples = append(o.examples, err.Error())
	}
}

// errClass names the sentinel an error matches, for the tallies.
func errClass(err error) string {
	for _, s := range []error{manifest.ErrFormat, engines.ErrMissingRun, engines.ErrTruncated, io.ErrUnexpectedEOF, io.EOF, os.ErrNotExist, tiered.ErrKindMismatch} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "other"
}

// corruptionBudget is the number of cases of each kind of target: local
// files of each engine, local files of a tiered store, remote runs of each
// engine, manifests. About 520 in all (10,400 under TIERKV_STRESS=1).
func corruptionBudget() (local, tieredLocal, remoteRuns, manifests int) {
	return pick(70, 1400), pick(40, 800), pick(25, 500), pick(100, 2000)
}

// TestCorruptionLocalEngines flips single bytes in and truncates the files
// an engine leaves in its directory after Close, reopens it and reads every
// key: each case must be detected (Open or Get fails with corruption) or
// harmless (every key reads back its exact value). A wrong value fails the
// test at once. memonly loads and checks its whole state at Open, so every
// case must be detected there.
func TestCorruptionLocalEngines(t *testing.T) {
	seed := testSeed(t)
	n, _, _, _ := corruptionBudget()
	for ki, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, uint64(ki)))
			pristine := t.TempDir()
			want := buildEngineState(t, kind, pristine, rng)
			files := dirFiles(t, pristine)
			var o outcome
			for i := 0; i < n; i++ {
				f := files[rng.IntN(len(files))]
				data, err := os.ReadFile(filepath.Join(pristine, f))
				if err != nil {
					t.Fatal(err)
				}
				c := randomCorruption(rng, len(data))
				dir := t.TempDir()
				copyDir(t, pristine, dir)
				if err := os.WriteFile(filepath.Join(dir, f), c.apply(data), 0o644); err != nil {
					t.Fatal(err)
				}
				o.cases++
				res, err := checkEngineCase(kind, dir, f, want, pristineCRC(t, pristine, f))
				switch {
				case err != nil && res == caseWrong:
					t.Fatalf("%s: %s of %s: %v", kind, c, f, err)
				case err != nil:
					o.detect(t, kind, err, f, c)
				case res == caseDead:
					o.harmless++
					o.dead++
				case res == caseLatent:
					o.harmless++
					o.latent++
				}
			}
			t.Logf("local %s (%d files): %s", kind, len(files), &o)
			if len(o.examples) > 0 {
				t.Logf("example: %s", o.examples[0])
			}
			if kind == "memonly" && o.latent > 0 {
				t.Errorf("memonly: %d corruptions of live files went unnoticed; its dump and CURRENT are checked whole at Open", o.latent)
			}
			if len(o.other) > 0 {
				t.Errorf("%s: %d corruptions were refused with errors that do not match engines.ErrCorrupt: %v", kind, sum(o.other), o.other)
			}
			if o.named != o.detected {
				t.Errorf("%s: %d of %d errors do not name the damaged file", kind, o.detected-o.named, o.detected)
			}
			if o.detected == 0 {
				t.Errorf("%s: no corruption detected in %d cases", kind, o.cases)
			}
		})
	}
	checkNoLeaks(t)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Results of checkEngineCase besides a detected error.
const (
	caseDetected = iota // an error matching corruption (or another refusal)
	caseWrong           // a wrong value or state: the test fails
	caseDead            // harmless: the damaged file was not live; Open removed it
	caseLatent          // harmless so far: no read touched the damaged bytes, and
	//                     the checkpoint still records the run's original CRC-32C,
	//                     so an upload, a restore or a verify would reject it
)

// checkEngineCase reopens the damaged engine directory, reads every key and
// classifies the case. A nil error with caseDead or caseLatent is a harmless
// case; those are proved harmless, not assumed: a latent case must be a run
// of the reopened state's checkpoint whose recorded CRC-32C is still the
// undamaged file's (origCRC), never one recomputed from the damaged bytes.
func checkEngineCase(kind, dir, f string, want state, origCRC uint32) (int, error) {
	e, err := all.Open(kind, tinyParams(kind), engines.OpenOptions{Dir: dir})
	if err != nil {
		return caseDetected, err
	}
	defer e.Close()
	got, err := readState(e)
	switch {
	case err != nil && strings.Contains(err.Error(), "wrong value"):
		return caseWrong, err
	case err != nil:
		return caseDetected, err
	case !got.equal(want):
		return caseWrong, fmt.Errorf("reads return a wrong state without an error:%s", diffStates(got, want))
	}
	cp, err := e.Seal()
	if err != nil {
		return caseDetected, err
	}
	defer e.Release(cp)
	for _, r := range cp.Runs {
		if r.Name != f {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() != r.Size {
			return caseWrong, fmt.Errorf("undetected: live run %s no longer has its recorded size %d (stat: %v)", f, r.Size, err)
		}
		if r.CRC32C != origCRC {
			return caseWrong, fmt.Errorf("undetected, and the checkpoint records CRC-32C %08x for the damaged run (the original was %08x): the damage would be uploaded as valid", r.CRC32C, origCRC)
		}
		return caseLatent, nil
	}
	if _, err := os.Stat(filepath.Join(dir, f)); os.IsNotExist(err) {
		return caseDead, nil
	}
	return caseWrong, fmt.Errorf("undetected damage in %s, which is neither a run of the checkpoint nor removed by Open", f)
}

// pristineCRC returns the CRC-32C of the undamaged file.
func pristineCRC(t *testing.T, dir, f string) uint32 {
	t.Helper()
	_, crc, err := engines.FileCRC32C(engines.OSFS{}, filepath.Join(dir, f))
	if err != nil {
		t.Fatal(err)
	}
	return crc
}

// buildEngineState runs a small random workload with several seals on a
// fresh engine in dir, closes it and returns the state.
func buildEngineState(t *testing.T, kind, dir string, rng *rand.Rand) state {
	t.Helper()
	e, err := all.Open(kind, tinyParams(kind), engines.OpenOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s := state{}
	for i := 1; i <= 400; i++ {
		k := rng.IntN(numKeys)
		switch r := rng.IntN(100); {
		case r < 15:
			if err := e.Delete([]byte(keyName(k))); err != nil {
				t.Fatal(err)
			}
			delete(s, k)
		default:
			en := entry{Seq: uint64(i), Pad: rng.IntN(60)}
			if err := e.Set([]byte(keyName(k)), makeValue(k, en.Seq, en.Pad)); err != nil {
				t.Fatal(err)
			}
			s[k] = en
		}
		if i%90 == 0 {
			cp, err := e.Seal()
			if err != nil {
				t.Fatal(err)
			}
			e.Release(cp)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return s
}

// dirFiles lists the regular files under dir (relative paths), sorted.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatalf("no files in %s", dir)
	}
	return files
}

// copyDir copies the tree src into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCorruptionLocalStore does the same to a closed tiered store's
// directory (STORE and the engine generation), reopened with ResumeLocal
// and no remote.
func TestCorruptionLocalStore(t *testing.T) {
	seed := testSeed(t)
	_, n, _, _ := corruptionBudget()
	rng := rand.New(rand.NewPCG(seed, 77))
	ctx := context.Background()
	pristine := t.TempDir()
	s, err := tiered.Open(ctx, tiered.Options{Dir: pristine, Engine: "lsm", Params: tinyParams("lsm")})
	if err != nil {
		t.Fatal(err)
	}
	want := state{}
	for i := 1; i <= 300; i++ {
		k := rng.IntN(numKeys)
		en := entry{Seq: uint64(i), Pad: rng.IntN(60)}
		if err := s.Set([]byte(keyName(k)), makeValue(k, en.Seq, en.Pad)); err != nil {
			t.Fatal(err)
		}
		want[k] = en
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range dirFiles(t, pristine) {
		if f != "LOCK" { // empty: nothing to corrupt
			files = append(files, f)
		}
	}
	var o outcome
	for i := 0; i < n; i++ {
		f := files[rng.IntN(len(files))]
		data, err := os.ReadFile(filepath.Join(pristine, f))
		if err != nil {
			t.Fatal(err)
		}
		c := randomCorruption(rng, len(data))
		dir := t.TempDir()
		copyDir(t, pristine, dir)
		if err := os.WriteFile(filepath.Join(dir, f), c.apply(data), 0o644); err != nil {
			t.Fatal(err)
		}
		o.cases++
		s, err := tiered.Open(ctx, tiered.Options{Dir: dir, ResumeLocal: true})
		if err != nil {
			o.detect(t, "store", err, filepath.Base(f), c)
			continue
		}
		got, rerr := readState(s)
		_ = s.Close()
		switch {
		case rerr != nil && strings.Contains(rerr.Error(), "wrong value"):
			t.Fatalf("%s of %s: a read returned a wrong value: %v", c, f, rerr)
		case rerr != nil:
			o.detect(t, "store", rerr, filepath.Base(f), c)
		case !got.equal(want):
			t.Fatalf("%s of %s: reads return a wrong state without an error:%s", c, f, diffStates(got, want))
		case filepath.Dir(f) == ".":
			// STORE: it decoded to the same descriptor (a whitespace or
			// member-name case change), since the state is the same.
			o.harmless++
			o.sameDecode++
		default:
			// A file of the engine generation: prove it harmless as for
			// the engines.
			res, err := checkEngineCase("lsm", filepath.Join(dir, filepath.Dir(f)), filepath.Base(f), want, pristineCRC(t, pristine, f))
			switch {
			case err != nil && res == caseWrong:
				t.Fatalf("%s of %s: %v", c, f, err)
			case err != nil:
				t.Fatalf("%s of %s: undetected through the store, detected by the engine: %v", c, f, err)
			case res == caseDead:
				o.dead++
			case res == caseLatent:
				o.latent++
			}
			o.harmless++
		}
	}
	t.Logf("local tiered store (%d files): %s", len(files), &o)
	checkNoLeaks(t)
	if o.named != o.detected {
		t.Errorf("%d of %d errors do not name the damaged file", o.detected-o.named, o.detected)
	}
	if len(o.other) > 0 {
		t.Errorf("%d corruptions were refused with errors that do not match engines.ErrCorrupt: %v", sum(o.other), o.other)
	}
}

// remoteFixture is a mem remote holding two versions of one engine's store.
type remoteFixture struct {
	kind   string
	st     objstore.Store
	states map[uint64]state
}

func newRemoteFixture(t *testing.T, kind string, rng *rand.Rand) *remoteFixture {
	t.Helper()
	ctx := context.Background()
	fx := &remoteFixture{kind: kind, st: objstore.NewMem(), states: map[uint64]state{}}
	s, err := tiered.Open(ctx, tiered.Options{Dir: t.TempDir(), ObjectStore: fx.st, Engine: kind, Params: tinyParams(kind)})
	if err != nil {
		t.Fatal(err)
	}
	cur := state{}
	seq := uint64(0)
	for v := 1; v <= 2; v++ {
		for i := 0; i < 150; i++ {
			seq++
			k := rng.IntN(numKeys)
			if rng.IntN(8) == 0 {
				if err := s.Delete([]byte(keyName(k))); err != nil {
					t.Fatal(err)
				}
				delete(cur, k)
				continue
			}
			en := entry{Seq: seq, Pad: rng.IntN(60)}
			if err := s.Set([]byte(keyName(k)), makeValue(k, en.Seq, en.Pad)); err != nil {
				t.Fatal(err)
			}
			cur[k] = en
		}
		res, err := s.Snapshot(ctx, tiered.WithMetadata(map[string]string{"digest": cur.digest()}))
		if err != nil {
			t.Fatal(err)
		}
		fx.states[res.Version] = cur.clone()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return fx
}

// replaceObject overwrites key with data, keeping its metadata.
func replaceObject(t *testing.T, st objstore.Store, key string, data []byte) {
	t.Helper()
	ctx := context.Background()
	info, err := st.Head(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, key, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{Metadata: info.Metadata}); err != nil {
		t.Fatal(err)
	}
}

func readObject(t *testing.T, st objstore.Store, key string) []byte {
	t.Helper()
	rc, _, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCorruptionRemoteRuns damages one run object of the latest version
// (every engine) and restores that version into a fresh directory: every
// case must fail with corruption naming the object, since the manifest
// records each run's size and CRC-32C, and a deep Verify must report the
// run. A shallow Verify (size and crc32c metadata) must report every
// truncation.
func TestCorruptionRemoteRuns(t *testing.T) {
	seed := testSeed(t)
	_, _, n, _ := corruptionBudget()
	ctx := context.Background()
	for ki, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 100+uint64(ki)))
			fx := newRemoteFixture(t, kind, rng)
			m, err := manifest.Load(ctx, fx.st, 2)
			if err != nil {
				t.Fatal(err)
			}
			var o outcome
			for i := 0; i < n; i++ {
				r := m.Runs[rng.IntN(len(m.Runs))]
				key := manifest.RunKey(r.Name)
				orig := readObject(t, fx.st, key)
				c := randomCorruption(rng, len(orig))
				replaceObject(t, fx.st, key, c.apply(orig))
				o.cases++
				_, err := tiered.RestoreTo(ctx, t.TempDir(), fx.st, 2, nil)
				if err == nil {
					t.Fatalf("%s: %s of %s: restore succeeded", kind, c, key)
				}
				o.detect(t, kind, err, key, c)
				problems, verr := tiered.Verify(ctx, fx.st, []uint64{2}, true)
				if verr != nil || len(problems) != 1 || problems[0].Object != key {
					t.Fatalf("%s: %s of %s: deep verify gives %v, %v; want one problem naming it", kind, c, key, problems, verr)
				}
				if c.truncate {
					problems, verr := tiered.Verify(ctx, fx.st, []uint64{2}, false)
					if verr != nil || len(problems) != 1 {
						t.Fatalf("%s: %s of %s: shallow verify gives %v, %v; want one problem", kind, c, key, problems, verr)
					}
				}
				replaceObject(t, fx.st, key, orig)
			}
			t.Logf("remote runs %s (%d runs): %s", kind, len(m.Runs), &o)
			if o.named != o.detected {
				t.Errorf("%s: %d of %d restore errors do not name the object", kind, o.detected-o.named, o.detected)
			}
			if len(o.other) > 0 {
				t.Errorf("%s: %d corruptions were refused with errors that do not match engines.ErrCorrupt: %v", kind, sum(o.other), o.other)
			}
			// Intact again: the restore gives exactly the version.
			checkRestore(t, ctx, fx.st, 2, 2, fx.states[2])
		})
	}
	checkNoLeaks(t)
}

// TestCorruptionManifests damages manifests of every engine's store: Load
// must fail with corruption naming the object (or with ErrFormat when the
// damaged byte is the format version), or decode to the identical manifest
// (not expected any more: the checksum covers the bytes as written, and
// CRC-32C catches every single-byte change). A restore of the
// damaged version then fails, or gives exactly its state; a damaged latest
// manifest is never silently replaced by an older one.
func TestCorruptionManifests(t *testing.T) {
	seed := testSeed(t)
	_, _, _, total := corruptionBudget()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 200))
	var fixtures []*remoteFixture
	for _, kind := range kinds {
		fixtures = append(fixtures, newRemoteFixture(t, kind, rng))
	}
	var o outcome
	formatErrs := 0
	for i := 0; i < total; i++ {
		fx := fixtures[i%len(fixtures)]
		v := uint64(1 + rng.IntN(2))
		key := manifest.Key(v)
		orig := readObject(t, fx.st, key)
		want, err := manifest.Decode(orig)
		if err != nil {
			t.Fatal(err)
		}
		c := randomCorruption(rng, len(orig))
		replaceObject(t, fx.st, key, c.apply(orig))
		o.cases++
		got, err := manifest.Load(ctx, fx.st, v)
		if err != nil {
			if errors.Is(err, manifest.ErrFormat) {
				formatErrs++
				o.detected++
				if strings.Contains(err.Error(), key) {
					o.named++
				}
			} else {
				o.detect(t, "manifest", err, key, c)
			}
			if _, rerr := tiered.RestoreTo(ctx, t.TempDir(), fx.st, v, nil); rerr == nil {
				t.Fatalf("%s: %s of %s: Load fails (%v) but a restore succeeds", fx.kind, c, key, err)
			}
			if v == 2 {
				if lm, lerr := manifest.Latest(ctx, fx.st); lerr == nil {
					t.Fatalf("%s: %s of the latest manifest: Latest returns version %d instead of an error", fx.kind, c, lm.Version)
				}
			}
		} else {
			a, _ := manifest.Encode(want)
			b, _ := manifest.Encode(got)
			if !bytes.Equal(a, b) {
				t.Fatalf("%s: %s of %s decodes without error to a different manifest:\n%s\nwant\n%s", fx.kind, c, key, b, a)
			}
			o.harmless++
			o.sameDecode++
			if rng.IntN(4) == 0 {
				checkRestore(t, ctx, fx.st, v, v, fx.states[v])
			}
		}
		replaceObject(t, fx.st, key, orig)
	}
	t.Logf("manifests: %s (%d of the detected as ErrFormat: the flipped byte was the format version)", &o, formatErrs)
	if o.named != o.detected {
		t.Errorf("%d of %d manifest errors do not name the object", o.detected-o.named, o.detected)
	}
	checkNoLeaks(t)
	if len(o.other) > 0 {
		t.Errorf("%d manifest corruptions were refused with errors that do not match engines.ErrCorrupt: %v", sum(o.other), o.other)
	}
}
