package faults

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierkv/tierkv/engines/enginetest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/objstore/objstoretest"
	"github.com/tierkv/tierkv/tiered"
)

var seedFlag = flag.Uint64("faults.seed", 0, "seed of the randomized tests (0 = random; the seed used is logged)")

// stress reports whether TIERKV_STRESS=1 asks for the long versions.
func stress() bool { return os.Getenv("TIERKV_STRESS") == "1" }

// scale returns normal, or long under TIERKV_STRESS=1.
func scale(normal, long int) int {
	if stress() {
		return long
	}
	return normal
}

// testSeed returns the seed to use and logs how to replay it.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (replay with -faults.seed=%d)", seed, seed)
	return seed
}

// ctxT returns a context bounded below the test timeout (10 minutes for
// go test, 60 for make stress, whose 1,000 fencing races against MinIO take
// several minutes on a loaded 2-core machine).
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(scale(8, 45))*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// tinyParams makes every engine spill and merge often.
var tinyParams = enginetest.TinyParams

// discardLogger drops every line.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// openStore opens a store and closes it at cleanup (a second Close only
// returns ErrClosed).
func openStore(t *testing.T, o tiered.Options) *tiered.Store {
	t.Helper()
	if o.Logger == nil {
		o.Logger = discardLogger()
	}
	s, err := tiered.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("open store in %s: %v", o.Dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// state is the oracle: the exact key/value content of a store.
type state map[string]string

func (s state) clone() state { return maps.Clone(s) }

// universe is the fixed key space of a randomized test: every key ever
// written is in it, so checking all of them checks a state exactly.
type universe []string

func newUniverse(n int) universe {
	u := make(universe, n)
	for i := range u {
		u[i] = fmt.Sprintf("key-%05d", i)
	}
	return u
}

// mutate applies n random sets and deletes to s and the model.
func mutate(t *testing.T, r *rand.Rand, s *tiered.Store, model state, keys universe, n int) {
	t.Helper()
	for range n {
		k := keys[r.IntN(len(keys))]
		if r.IntN(5) == 0 {
			if err := s.Delete([]byte(k)); err != nil {
				t.Fatalf("Delete(%q): %v", k, err)
			}
			delete(model, k)
			continue
		}
		v := randValue(r)
		if err := s.Set([]byte(k), []byte(v)); err != nil {
			t.Fatalf("Set(%q): %v", k, err)
		}
		model[k] = v
	}
}

// randValue returns a value of 0..120 bytes (empty values are legal and
// distinct from absent ones).
func randValue(r *rand.Rand) string {
	b := make([]byte, r.IntN(121))
	for i := range b {
		b[i] = byte('a' + r.IntN(26))
	}
	return string(b)
}

// diffState returns "" when s holds exactly want over keys, else the first
// difference.
func diffState(s *tiered.Store, want state, keys universe) string {
	for _, k := range keys {
		got, ok, err := s.Get([]byte(k))
		if err != nil {
			return fmt.Sprintf("Get(%q): %v", k, err)
		}
		w, wok := want[k]
		switch {
		case ok != wok:
			return fmt.Sprintf("Get(%q) found=%v, want found=%v", k, ok, wok)
		case ok && string(got) != w:
			return fmt.Sprintf("Get(%q) = %q, want %q", k, got, w)
		}
	}
	return ""
}

// checkState fails t unless s holds exactly want over keys.
func checkState(t *testing.T, s *tiered.Store, want state, keys universe, what string) {
	t.Helper()
	if d := diffState(s, want, keys); d != "" {
		t.Fatalf("%s: %s", what, d)
	}
}

// leakCheck records the goroutine count now and, at cleanup, fails t if
// more goroutines are left once everything the test opened is closed. It
// must be called before anything is opened (cleanups run last-in first-out,
// so this one runs after every store's Close).
func leakCheck(t *testing.T) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		// Goroutines of closed connections and timers finish shortly after
		// Close returns; give them a moment.
		deadline := time.Now().Add(10 * time.Second)
		n := runtime.NumGoroutine()
		for n > base && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			n = runtime.NumGoroutine()
		}
		if n > base {
			var b bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Errorf("goroutine leak: %d goroutines at the start, %d at the end:\n%s", base, n, b.String())
		}
	})
}

// backend is one kind of object store the tests run against.
type backend struct {
	name string
	// setup prepares the backend for test t (a MinIO bucket is created here,
	// before any goroutine baseline is taken) and returns a function that
	// opens a fresh, empty store under a new prefix, with the URL that opens
	// the same store ("" when there is none). Stores are closed at cleanup.
	setup func(t *testing.T) func(t *testing.T) (objstore.Store, string)
}

// memBackend is an in-process store.
var memBackend = backend{name: "mem", setup: func(*testing.T) func(*testing.T) (objstore.Store, string) {
	return func(*testing.T) (objstore.Store, string) { return objstore.NewMem(), "" }
}}

// fileBackend is a file:// store in a temporary directory.
var fileBackend = backend{name: "file", setup: func(*testing.T) func(*testing.T) (objstore.Store, string) {
	return func(t *testing.T) (objstore.Store, string) {
		u := "file://" + t.TempDir()
		return openURL(t, u), u
	}
}}

// minioBackend is a bucket on the test MinIO server, used via minio-go.
var minioBackend = backend{name: "minio", setup: func(t *testing.T) func(*testing.T) (objstore.Store, string) {
	_, u := objstoretest.NewBucket(t)
	return prefixes(u)
}}

// s3Backend is a bucket on the test MinIO server, used via aws-sdk-go-v2.
var s3Backend = backend{name: "s3", setup: func(t *testing.T) func(*testing.T) (objstore.Store, string) {
	u, _ := objstoretest.NewBucket(t)
	return prefixes(u)
}}

// prefixes returns a store factory giving a new prefix of the bucket URL u
// each time.
func prefixes(u string) func(*testing.T) (objstore.Store, string) {
	var mu sync.Mutex
	n := 0
	return func(t *testing.T) (objstore.Store, string) {
		mu.Lock()
		n++
		pu := withPrefix(u, fmt.Sprintf("p%d", n))
		mu.Unlock()
		return openURL(t, pu), pu
	}
}

// withPrefix inserts /prefix after the bucket of an s3:// or minio:// URL.
func withPrefix(u, prefix string) string {
	base, query, _ := strings.Cut(u, "?")
	return base + "/" + prefix + "?" + query
}

// openURL opens a remote URL and closes it at cleanup.
func openURL(t *testing.T, u string) objstore.Store {
	t.Helper()
	st, err := objstore.Open(context.Background(), u)
	if err != nil {
		t.Fatalf("open %s: %v", objstore.Redact(u), err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// putObject writes b under key in st.
func putObject(t *testing.T, st objstore.Store, key string, b []byte, md map[string]string) {
	t.Helper()
	if err := st.Put(context.Background(), key, bytes.NewReader(b), int64(len(b)), objstore.PutOptions{Metadata: md}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}
