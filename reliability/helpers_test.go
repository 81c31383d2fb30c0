package reliability

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tierkv/tierkv/engines/enginetest"
)

// EnvStress switches every test of the package to its long version (used by
// make stress): 300+ kills, 10,000 corruption cases, longer fault sweeps.
const EnvStress = "TIERKV_STRESS"

var seedFlag = flag.Uint64("reliability.seed", 0, "seed of the randomized tests (0 = random; the seed used is logged)")

// stress reports whether the long versions were asked for.
func stress() bool { return os.Getenv(EnvStress) == "1" }

// pick returns normal, or long under TIERKV_STRESS=1.
func pick(normal, long int) int {
	if stress() {
		return long
	}
	return normal
}

// testSeed returns the seed to use and logs how to replay it.
func testSeed(t testing.TB) uint64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (replay with -reliability.seed=%d)", seed, seed)
	return seed
}

// kinds are the engines every scenario runs, in a fixed order.
var kinds = []string{"lsm", "hybridlog", "appendlog", "memonly"}

// tinyParams makes every engine spill and merge often.
var tinyParams = enginetest.TinyParams

// The key space of the randomized workloads: small, so that a whole state
// is read back after every fault.
const numKeys = 120

// keyName returns the key with index i.
func keyName(i int) string { return fmt.Sprintf("key%04d", i) }

// entry is what a key holds in a model state: the sequence number of the
// write that set it and the length of its padding. Absent keys are not in
// the map.
type entry struct {
	Seq uint64
	Pad int
}

// state is a model state: key index -> entry.
type state map[int]entry

func (s state) clone() state {
	c := make(state, len(s))
	for k, v := range s {
		c[k] = v
	}
	return c
}

func (s state) equal(o state) bool {
	if len(s) != len(o) {
		return false
	}
	for k, v := range s {
		if w, ok := o[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// digest is a short hash of a state, used to cross-check what the writer
// process committed against what the driver replays.
func (s state) digest() string {
	h := sha256.New()
	for _, k := range s.keys() {
		fmt.Fprintf(h, "%d=%d:%d;", k, s[k].Seq, s[k].Pad)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func (s state) keys() []int {
	ks := make([]int, 0, len(s))
	for k := range s {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}

// encode writes the state as "k:seq:pad,..." ("-" when empty).
func (s state) encode() string {
	if len(s) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, k := range s.keys() {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d:%d:%d", k, s[k].Seq, s[k].Pad)
	}
	return b.String()
}

func decodeState(txt string) (state, error) {
	s := state{}
	if txt == "-" {
		return s, nil
	}
	for _, part := range strings.Split(txt, ",") {
		f := strings.Split(part, ":")
		if len(f) != 3 {
			return nil, fmt.Errorf("bad state entry %q", part)
		}
		k, err1 := strconv.Atoi(f[0])
		seq, err2 := strconv.ParseUint(f[1], 10, 64)
		pad, err3 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("bad state entry %q", part)
		}
		s[k] = entry{Seq: seq, Pad: pad}
	}
	return s, nil
}

func (s state) String() string {
	if len(s) > 8 {
		return fmt.Sprintf("%d keys, digest %s", len(s), s.digest())
	}
	return s.encode()
}

// makeValue is the value the write with sequence number seq stores under
// key: a header naming both, then pad bytes derived from seq. A value read
// back is checked byte for byte against it, so a wrong value can never pass
// for a right one.
func makeValue(key int, seq uint64, pad int) []byte {
	hdr := fmt.Sprintf("%s@%d#", keyName(key), seq)
	v := make([]byte, len(hdr)+pad)
	copy(v, hdr)
	for i := 0; i < pad; i++ {
		v[len(hdr)+i] = byte('a' + (seq*7+uint64(i))%26)
	}
	return v
}

// parseValue returns the entry a value read under key encodes, or an error
// if it is not exactly a value makeValue produced for that key.
func parseValue(key int, v []byte) (entry, error) {
	prefix := keyName(key) + "@"
	if !bytes.HasPrefix(v, []byte(prefix)) {
		return entry{}, fmt.Errorf("value %.40q of %s does not start with %q", v, keyName(key), prefix)
	}
	rest := v[len(prefix):]
	i := bytes.IndexByte(rest, '#')
	if i < 0 {
		return entry{}, fmt.Errorf("value %.40q of %s has no sequence terminator", v, keyName(key))
	}
	seq, err := strconv.ParseUint(string(rest[:i]), 10, 64)
	if err != nil {
		return entry{}, fmt.Errorf("value %.40q of %s: bad sequence number", v, keyName(key))
	}
	e := entry{Seq: seq, Pad: len(rest) - i - 1}
	if !bytes.Equal(v, makeValue(key, e.Seq, e.Pad)) {
		return entry{}, fmt.Errorf("value %.40q of %s: padding does not match sequence %d", v, keyName(key), seq)
	}
	return e, nil
}

// getter is what readState needs: a tiered.Store or an engine.
type getter interface {
	Get(key []byte) ([]byte, bool, error)
}

// readState reads every key of the key space. A value that is not one the
// workload wrote for that key is an error (a wrong value).
func readState(g getter) (state, error) {
	s := state{}
	for k := 0; k < numKeys; k++ {
		v, ok, err := g.Get([]byte(keyName(k)))
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", keyName(k), err)
		}
		if !ok {
			continue
		}
		e, err := parseValue(k, v)
		if err != nil {
			return nil, fmt.Errorf("wrong value: %w", err)
		}
		s[k] = e
	}
	return s, nil
}

// diffStates describes how got differs from want, for failure messages.
func diffStates(got, want state) string {
	var b strings.Builder
	n := 0
	for k := 0; k < numKeys && n < 6; k++ {
		g, gok := got[k]
		w, wok := want[k]
		if gok != wok || g != w {
			fmt.Fprintf(&b, " %s: got %v/%v want %v/%v;", keyName(k), g, gok, w, wok)
			n++
		}
	}
	return b.String()
}

// tierkvGoroutines returns the stacks of the goroutines running tierkv code
// other than tests: background work that should have stopped on Close.
func tierkvGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/tierkv/tierkv/") && !strings.Contains(g, "testing.tRunner") &&
			!strings.Contains(g, "reliability.") {
			out = append(out, g)
		}
	}
	return out
}

// checkNoLeaks fails t if tierkv goroutines are still running after a grace
// period: every store, engine and uploader must stop its goroutines on
// Close.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		gs := tierkvGoroutines()
		if len(gs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d tierkv goroutines left behind after Close; first:\n%s", len(gs), gs[0])
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
