package integration

import (
	"context"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/tierkv/tierkv/engines/enginetest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/objstore/objstoretest"
	"github.com/tierkv/tierkv/tiered"
)

var seedFlag = flag.Uint64("integration.seed", 0, "seed of the randomized tests (0 = random; the seed used is logged)")

// Backend names: the URL scheme of each remote backend under test.
const (
	backendS3    = "s3"    // aws-sdk-go-v2
	backendMinIO = "minio" // minio-go
)

// backendNames lists the backends every test runs against.
var backendNames = []string{backendS3, backendMinIO}

// usage records what the tests reached, for the summary TestMain prints.
var usage struct {
	sync.Mutex
	endpoint string
	backends map[string]int // backend -> subtests that opened a bucket
}

// TestMain runs the tests, removes the CLI binary, and prints which server
// and backends were used (visible with -v; go test shows a passing
// package's output only then).
func TestMain(m *testing.M) {
	code := m.Run()
	cliCleanup()
	usage.Lock()
	if usage.endpoint != "" {
		var parts []string
		for _, b := range backendNames {
			parts = append(parts, fmt.Sprintf("%s:// %d subtests", b, usage.backends[b]))
		}
		fmt.Printf("integration: ran against the MinIO server at %s through %s\n", usage.endpoint, strings.Join(parts, ", "))
	} else {
		fmt.Println("integration: no test reached a MinIO server")
	}
	usage.Unlock()
	os.Exit(code)
}

// backend is one remote under test: a fresh bucket on the MinIO server,
// reached through one of the two backends, under a key prefix.
type backend struct {
	name     string // backendS3 or backendMinIO
	url      string // remote URL including the prefix
	endpoint string // host:port of the server
	bucket   string
	prefix   string // key prefix, no slashes at the ends
}

// forEachBackend runs fn as a parallel subtest per backend, each with its
// own fresh bucket. Without a server the subtests skip, or fail under
// TIERKV_TEST_REQUIRE_MINIO=1 (objstoretest.MinIOEnv).
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	for _, name := range backendNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, newBackend(t, name, "tierkv-it/part-7"))
		})
	}
}

// newBackend creates a bucket for t and returns the remote of backend name
// on it under prefix.
func newBackend(t *testing.T, name, prefix string) backend {
	t.Helper()
	endpoint, _, _ := objstoretest.MinIOEnv(t)
	s3URL, minioURL := objstoretest.NewBucket(t)
	raw := s3URL
	if name == backendMinIO {
		raw = minioURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse bucket URL %q: %v", raw, err)
	}
	b := backend{name: name, endpoint: endpoint, prefix: prefix}
	switch name {
	case backendS3:
		b.bucket = u.Host
		u.Path = "/" + prefix
	case backendMinIO:
		b.bucket = strings.Trim(u.Path, "/")
		u.Path = "/" + b.bucket + "/" + prefix
	default:
		t.Fatalf("unknown backend %q", name)
	}
	b.url = u.String()
	usage.Lock()
	usage.endpoint = endpoint
	if usage.backends == nil {
		usage.backends = map[string]int{}
	}
	usage.backends[name]++
	usage.Unlock()
	t.Logf("MinIO server %s, backend %s (%s), remote %s", endpoint, name, libraryOf(name), objstore.Redact(b.url))
	return b
}

// libraryOf names the client library behind a backend.
func libraryOf(name string) string {
	if name == backendS3 {
		return "aws-sdk-go-v2"
	}
	return "minio-go"
}

// withPrefix returns the remote URL of b with another key prefix (same
// bucket, same backend).
func (b backend) withPrefix(t *testing.T, prefix string) string {
	t.Helper()
	u, err := url.Parse(b.url)
	if err != nil {
		t.Fatalf("parse %q: %v", b.url, err)
	}
	if b.name == backendS3 {
		u.Path = "/" + prefix
	} else {
		u.Path = "/" + b.bucket + "/" + prefix
	}
	return u.String()
}

// open opens the object store of b's remote URL; it is closed at cleanup.
func (b backend) open(t *testing.T) objstore.Store {
	t.Helper()
	return openURL(t, b.url)
}

// openURL opens the object store of a remote URL; it is closed at cleanup.
func openURL(t *testing.T, rawURL string) objstore.Store {
	t.Helper()
	st, err := objstore.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatalf("open remote %s: %v", objstore.Redact(rawURL), err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// rawClient is a minio-go client on the test server that bypasses tierkv
// entirely, for tests that damage objects behind its back.
type rawClient struct {
	c      *minio.Client
	bucket string
	prefix string
}

// raw returns a raw client on b's bucket; keys are relative to b's prefix.
func (b backend) raw(t *testing.T) rawClient {
	t.Helper()
	endpoint, access, secret := objstoretest.MinIOEnv(t)
	c, err := minio.New(endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(access, secret, ""), Region: "us-east-1",
	})
	if err != nil {
		t.Fatalf("raw minio client for %s: %v", endpoint, err)
	}
	return rawClient{c: c, bucket: b.bucket, prefix: b.prefix}
}

// put overwrites key (relative to the prefix) with data and metadata.
func (r rawClient) put(t *testing.T, key string, data []byte, md map[string]string) {
	t.Helper()
	_, err := r.c.PutObject(context.Background(), r.bucket, r.prefix+"/"+key, strings.NewReader(string(data)), int64(len(data)),
		minio.PutObjectOptions{UserMetadata: md})
	if err != nil {
		t.Fatalf("raw put %s/%s/%s: %v", r.bucket, r.prefix, key, err)
	}
}

// get reads key (relative to the prefix) whole.
func (r rawClient) get(t *testing.T, key string) []byte {
	t.Helper()
	obj, err := r.c.GetObject(context.Background(), r.bucket, r.prefix+"/"+key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("raw get %s: %v", key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("raw read %s: %v", key, err)
	}
	return b
}

// remove deletes key (relative to the prefix).
func (r rawClient) remove(t *testing.T, key string) {
	t.Helper()
	if err := r.c.RemoveObject(context.Background(), r.bucket, r.prefix+"/"+key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("raw remove %s: %v", key, err)
	}
}

// testSeed returns the seed for t, derived from -integration.seed (or a
// random one) and t's name, and logs how to replay it.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (replay with -integration.seed=%d)", seed, seed)
	return seed
}

// rngFor returns a generator for seed and name (a subtest's own stream).
func rngFor(seed uint64, name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// tinyParams makes every engine spill and merge often.
var tinyParams = enginetest.TinyParams

// testLogger discards the stores' logs unless INTEGRATION_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("INTEGRATION_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// ctxT returns a context bounded well below the package's time budget.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// openStore opens a tiered store and closes it at cleanup (a store closed
// earlier by the test is fine).
func openStore(t *testing.T, o tiered.Options) *tiered.Store {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger()
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = 1 << 20
	}
	s, err := tiered.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("open store in %s (remote %s): %v", o.Dir, objstore.Redact(o.Remote), err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// checkState compares every key of want, and every key of universe not in
// want (which must be absent), with s.
func checkState(t *testing.T, s *tiered.Store, want map[string]string, universe []string, what string) {
	t.Helper()
	for k, v := range want {
		got, ok, err := s.Get([]byte(k))
		if err != nil || !ok || string(got) != v {
			t.Fatalf("%s: Get(%q) = %q, %v, %v; want %q", what, k, got, ok, err, v)
		}
	}
	for _, k := range universe {
		if _, ok := want[k]; ok {
			continue
		}
		got, ok, err := s.Get([]byte(k))
		if err != nil || ok {
			t.Fatalf("%s: Get(%q) = %q, %v, %v; want absent", what, k, got, ok, err)
		}
	}
}

// setAll writes kv into s and model.
func setAll(t *testing.T, s *tiered.Store, model, kv map[string]string) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		if err := s.Set([]byte(k), []byte(kv[k])); err != nil {
			t.Fatalf("Set(%q): %v", k, err)
		}
		model[k] = kv[k]
	}
}

// cloneMap copies m; never nil.
func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}
