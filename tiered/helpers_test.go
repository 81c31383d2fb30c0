package tiered

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/engines/all"
	"github.com/tierkv/tierkv/engines/enginetest"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
)

var seedFlag = flag.Uint64("tiered.seed", 0, "seed of the randomized tests (0 = random; the seed used is logged)")

// testSeed returns the seed to use and logs it.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (replay with -tiered.seed=%d)", seed, seed)
	return seed
}

// tinyParams makes every engine spill and merge often.
var tinyParams = enginetest.TinyParams

// testKinds returns the engine kinds engines/all knows.
func testKinds() []string { return all.Kinds() }

// testLogger logs to the test output when -v is given.
func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() && os.Getenv("TIERED_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// mustOpen opens a store and closes it at cleanup (ignoring ErrClosed).
func mustOpen(t *testing.T, o Options) *Store {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open(%s): %v", o.Dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// ctxT returns a context bounded well below the test timeout.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// checkState compares every key of want (and of absent) with the store.
func checkState(t *testing.T, s *Store, want map[string]string, absent map[string]bool, what string) {
	t.Helper()
	for k, v := range want {
		got, ok, err := s.Get([]byte(k))
		if err != nil || !ok || string(got) != v {
			t.Fatalf("%s: Get(%q) = %q, %v, %v; want %q", what, k, got, ok, err, v)
		}
	}
	for k := range absent {
		if _, ok := want[k]; ok {
			continue
		}
		got, ok, err := s.Get([]byte(k))
		if err != nil || ok {
			t.Fatalf("%s: Get(%q) = %q, %v, %v; want absent", what, k, got, ok, err)
		}
	}
}

// setAll writes kv into s and into model.
func setAll(t *testing.T, s *Store, model map[string]string, kv map[string]string) {
	t.Helper()
	for k, v := range kv {
		if err := s.Set([]byte(k), []byte(v)); err != nil {
			t.Fatalf("Set(%q): %v", k, err)
		}
		model[k] = v
	}
}

// kvs returns n key/value pairs with keys prefix+i and values of size bytes.
func kvs(prefix string, n, size int, seed uint64) map[string]string {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make(map[string]string, n)
	for i := range n {
		b := make([]byte, size)
		for j := range b {
			b[j] = byte('a' + r.IntN(26))
		}
		out[prefix+itoa(i)] = string(b)
	}
	return out
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0000"
	}
	var b [8]byte
	n := len(b)
	for i > 0 || n > len(b)-4 {
		n--
		b[n] = digits[i%10]
		i /= 10
	}
	return string(b[n:])
}

// manifestSize returns the encoded size of manifest v in st.
func manifestSize(t *testing.T, st objstore.Store, v uint64) int64 {
	t.Helper()
	info, err := st.Head(context.Background(), manifest.Key(v))
	if err != nil {
		t.Fatalf("head manifest %d: %v", v, err)
	}
	return info.Size
}

// runNames returns the run names of m as a set.
func runNames(m *manifest.Manifest) map[string]engines.RunInfo {
	out := make(map[string]engines.RunInfo, len(m.Runs))
	for _, r := range m.Runs {
		out[r.Name] = r
	}
	return out
}

// cloneMap copies m; never nil.
func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}
