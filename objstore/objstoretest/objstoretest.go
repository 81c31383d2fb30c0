// Package objstoretest is the conformance suite every objstore backend runs,
// and helpers for tests that need a real MinIO server.
//
// # Conformance
//
// Run(t, newStore) checks the whole objstore.Store contract: round trips
// with metadata, not-found reporting, create-if-absent (also racing), sorted
// listing by prefix, ranged reads and clipping, deletes, key validation,
// short bodies, and a 64 MiB object streamed from a generator. newStore must
// return an empty store; Run closes it.
//
// # MinIO
//
// MinIOEnv and NewBucket read the server address and credentials from the
// environment:
//
//	TIERKV_TEST_MINIO_ENDPOINT    host:port of a MinIO (or S3-compatible) server, plain HTTP
//	TIERKV_TEST_MINIO_ACCESS_KEY  its access key
//	TIERKV_TEST_MINIO_SECRET_KEY  its secret key
//	TIERKV_TEST_REQUIRE_MINIO=1   fail, rather than skip, when the three are not set
//
// The stores opened from NewBucket's URLs find their credentials the way
// production code does, so the test command must also export them for the
// backends: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (read by the s3
// backend's default credential chain, and by the minio backend when the
// MINIO_* pair is unset), and optionally MINIO_ACCESS_KEY and
// MINIO_SECRET_KEY. NewBucket fails the test with a message naming the
// variable when they disagree with the TIERKV_TEST_MINIO_* pair; it never
// sets environment variables itself.
package objstoretest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"sync"
	"testing"

	"github.com/tierkv/tierkv/objstore"
)

// LargeObjectSize is the size of the large-object subtest: 64 MiB plus an odd
// tail so that the last multipart part is partial.
const LargeObjectSize = 64<<20 + 12345

// Run runs the conformance suite against stores made by newStore. Each
// subtest gets its own store.
func Run(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	open := func(t *testing.T) objstore.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		})
		return s
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s objstore.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyObject", testEmptyObject},
		{"NotExist", testNotExist},
		{"IfAbsent", testIfAbsent},
		{"ConcurrentIfAbsent", testConcurrentIfAbsent},
		{"List", testList},
		{"Range", testRange},
		{"Delete", testDelete},
		{"InvalidKeys", testInvalidKeys},
		{"InvalidMetadata", testInvalidMetadata},
		{"ShortBody", testShortBody},
		{"CanceledContext", testCanceledContext},
		{"LargeObject", testLargeObject},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func put(t *testing.T, s objstore.Store, key string, data []byte, opts objstore.PutOptions) error {
	t.Helper()
	return s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), opts)
}

func mustPut(t *testing.T, s objstore.Store, key string, data []byte, opts objstore.PutOptions) {
	t.Helper()
	if err := put(t, s, key, data, opts); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func mustGet(t *testing.T, s objstore.Store, key string) ([]byte, objstore.ObjectInfo) {
	t.Helper()
	rc, info, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return data, info
}

func readRange(t *testing.T, s objstore.Store, key string, off, n int64) []byte {
	t.Helper()
	rc, err := s.GetRange(context.Background(), key, off, n)
	if err != nil {
		t.Fatalf("getrange %s %d+%d: %v", key, off, n, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read range %s %d+%d: %v", key, off, n, err)
	}
	return data
}

func sameMetadata(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func testRoundTrip(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	md := map[string]string{"run-crc32c": "0a1b2c3d", "writer": "node-1 epoch 7"}
	data := []byte("hello, tiered world")
	mustPut(t, s, "runs/000001-abc.run", data, objstore.PutOptions{Metadata: md})

	got, info := mustGet(t, s, "runs/000001-abc.run")
	if !bytes.Equal(got, data) {
		t.Fatalf("get = %q, want %q", got, data)
	}
	if info.Key != "runs/000001-abc.run" || info.Size != int64(len(data)) || info.LastModified.IsZero() {
		t.Fatalf("get info = %+v", info)
	}
	if !sameMetadata(info.Metadata, md) {
		t.Fatalf("get metadata = %v, want %v", info.Metadata, md)
	}
	head, err := s.Head(ctx, "runs/000001-abc.run")
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	if head.Key != "runs/000001-abc.run" || head.Size != int64(len(data)) || head.LastModified.IsZero() || !sameMetadata(head.Metadata, md) {
		t.Fatalf("head = %+v, want size %d metadata %v", head, len(data), md)
	}

	// A plain Put replaces content and metadata.
	data2 := []byte("second version, longer than the first")
	mustPut(t, s, "runs/000001-abc.run", data2, objstore.PutOptions{})
	got, info = mustGet(t, s, "runs/000001-abc.run")
	if !bytes.Equal(got, data2) || info.Size != int64(len(data2)) {
		t.Fatalf("after overwrite get = %q (size %d), want %q", got, info.Size, data2)
	}
	if len(info.Metadata) != 0 {
		t.Fatalf("after overwrite without metadata, metadata = %v", info.Metadata)
	}

	// A deep key.
	mustPut(t, s, "a/b/c/d/e", []byte("deep"), objstore.PutOptions{})
	if got, _ := mustGet(t, s, "a/b/c/d/e"); string(got) != "deep" {
		t.Fatalf("deep key = %q", got)
	}
}

func testEmptyObject(t *testing.T, s objstore.Store) {
	mustPut(t, s, "empty", nil, objstore.PutOptions{IfAbsent: true})
	got, info := mustGet(t, s, "empty")
	if len(got) != 0 || info.Size != 0 {
		t.Fatalf("empty object: got %d bytes, size %d", len(got), info.Size)
	}
	if got := readRange(t, s, "empty", 0, -1); len(got) != 0 {
		t.Fatalf("range of empty object = %q", got)
	}
	if got := readRange(t, s, "empty", 0, 10); len(got) != 0 {
		t.Fatalf("range of empty object = %q", got)
	}
}

func testNotExist(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	if _, _, err := s.Get(ctx, "missing/key"); !errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("get missing: err = %v, want ErrNotExist", err)
	}
	if _, err := s.Head(ctx, "missing/key"); !errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("head missing: err = %v, want ErrNotExist", err)
	}
	for _, r := range [][2]int64{{0, -1}, {0, 10}, {5, 0}, {100, 10}} {
		if _, err := s.GetRange(ctx, "missing/key", r[0], r[1]); !errors.Is(err, objstore.ErrNotExist) {
			t.Errorf("getrange missing %v: err = %v, want ErrNotExist", r, err)
		}
	}
	// A key that is only a prefix of existing keys does not exist either.
	mustPut(t, s, "dir/obj", []byte("x"), objstore.PutOptions{})
	if _, _, err := s.Get(ctx, "dir"); !errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("get of a key prefix: err = %v, want ErrNotExist", err)
	}
	if _, err := s.Head(ctx, "dir"); !errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("head of a key prefix: err = %v, want ErrNotExist", err)
	}
	if err := s.Delete(ctx, "dir"); err != nil {
		t.Errorf("delete of a key prefix: %v", err)
	}
	if got, _ := mustGet(t, s, "dir/obj"); string(got) != "x" {
		t.Errorf("delete of a key prefix touched the key below it")
	}
}

func testIfAbsent(t *testing.T, s objstore.Store) {
	key := "manifests/00000000000000000001"
	first := []byte(`{"version":1,"writer":"a"}`)
	mustPut(t, s, key, first, objstore.PutOptions{IfAbsent: true, Metadata: map[string]string{"writer": "a"}})
	err := put(t, s, key, []byte(`{"version":1,"writer":"b", "longer": true}`), objstore.PutOptions{IfAbsent: true, Metadata: map[string]string{"writer": "b"}})
	if !errors.Is(err, objstore.ErrPrecondition) {
		t.Fatalf("second if-absent put: err = %v, want ErrPrecondition", err)
	}
	if objstore.Retryable(err) {
		t.Errorf("a lost create-if-absent must not be retryable: %v", err)
	}
	got, info := mustGet(t, s, key)
	if !bytes.Equal(got, first) || info.Metadata["writer"] != "a" {
		t.Fatalf("after lost create: content %q metadata %v, want the first", got, info.Metadata)
	}
	// An unconditional Put still overwrites.
	mustPut(t, s, key, []byte("overwritten"), objstore.PutOptions{})
	if got, _ := mustGet(t, s, key); string(got) != "overwritten" {
		t.Fatalf("plain put after if-absent: %q", got)
	}
	// After a delete the key can be created again.
	if err := s.Delete(context.Background(), key); err != nil {
		t.Fatalf("delete: %v", err)
	}
	mustPut(t, s, key, []byte("again"), objstore.PutOptions{IfAbsent: true})
}

func testConcurrentIfAbsent(t *testing.T, s objstore.Store) {
	const writers = 8
	key := "manifests/00000000000000000042"
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			data := bytes.Repeat([]byte{byte('a' + i)}, 1000+i)
			errs[i] = s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{IfAbsent: true})
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("writers %d and %d both won the create of %s", winner, i, key)
			}
			winner = i
		case errors.Is(err, objstore.ErrPrecondition):
		default:
			var se *objstore.StatusError
			if errors.As(err, &se) && se.Code == 409 {
				continue // S3's ConditionalRequestConflict: a loser, told to retry
			}
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer won the create of %s", key)
	}
	got, _ := mustGet(t, s, key)
	if want := bytes.Repeat([]byte{byte('a' + winner)}, 1000+winner); !bytes.Equal(got, want) {
		t.Fatalf("content is not the winner's (writer %d): %d bytes starting %q", winner, len(got), got[:min(len(got), 8)])
	}
}

func keysOf(infos []objstore.ObjectInfo) []string {
	out := make([]string, 0, len(infos))
	for _, in := range infos {
		out = append(out, in.Key)
	}
	return out
}

func testList(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	keys := []string{"runs/b", "runs/a", "runs/c/nested", "runs-other", "manifests/00000000000000000002", "manifests/00000000000000000010", "zz"}
	for i, k := range keys {
		mustPut(t, s, k, bytes.Repeat([]byte("x"), i+1), objstore.PutOptions{Metadata: map[string]string{"i": fmt.Sprint(i)}})
	}
	cases := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"manifests/00000000000000000002", "manifests/00000000000000000010", "runs-other", "runs/a", "runs/b", "runs/c/nested", "zz"}},
		{"runs/", []string{"runs/a", "runs/b", "runs/c/nested"}},
		{"runs", []string{"runs-other", "runs/a", "runs/b", "runs/c/nested"}},
		{"runs/c", []string{"runs/c/nested"}},
		{"manifests/0000000000000000001", []string{"manifests/00000000000000000010"}},
		{"nothing/", nil},
		{"z", []string{"zz"}},
	}
	for _, tc := range cases {
		infos, err := s.List(ctx, tc.prefix)
		if err != nil {
			t.Fatalf("list %q: %v", tc.prefix, err)
		}
		got := keysOf(infos)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("list %q = %v, want %v", tc.prefix, got, tc.want)
		}
	}
	infos, err := s.List(ctx, "runs/b")
	if err != nil || len(infos) != 1 {
		t.Fatalf("list runs/b = %v, %v", infos, err)
	}
	if infos[0].Size != 1 || infos[0].LastModified.IsZero() {
		t.Errorf("list info = %+v, want size 1 and a modification time", infos[0])
	}
}

func testRange(t *testing.T, s objstore.Store) {
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	mustPut(t, s, "obj", data, objstore.PutOptions{})
	cases := []struct {
		off, n int64
		want   []byte
	}{
		{100, 200, data[100:300]}, // middle
		{0, 1, data[:1]},
		{900, -1, data[900:]}, // to the end
		{0, -1, data},
		{900, 500, data[900:]}, // clipped
		{999, 1, data[999:]},
		{1000, 10, nil},   // at the end
		{5000, -1, nil},   // beyond the end
		{5000, 10, nil},   // beyond the end
		{10, 0, nil},      // empty range
		{0, 1000, data},   // exact
		{0, 100000, data}, // clipped
	}
	for _, tc := range cases {
		got := readRange(t, s, "obj", tc.off, tc.n)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("range %d+%d: got %d bytes, want %d", tc.off, tc.n, len(got), len(tc.want))
		}
	}
	if _, err := s.GetRange(context.Background(), "obj", -1, 10); err == nil {
		t.Errorf("negative offset accepted")
	}
}

func testDelete(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	mustPut(t, s, "runs/x", []byte("x"), objstore.PutOptions{})
	mustPut(t, s, "runs/y", []byte("y"), objstore.PutOptions{})
	if err := s.Delete(ctx, "runs/x"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := s.Head(ctx, "runs/x"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("head after delete: err = %v, want ErrNotExist", err)
	}
	if _, _, err := s.Get(ctx, "runs/x"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("get after delete: err = %v, want ErrNotExist", err)
	}
	infos, err := s.List(ctx, "runs/")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if got := fmt.Sprint(keysOf(infos)); got != "[runs/y]" {
		t.Fatalf("list after delete = %v", got)
	}
	if err := s.Delete(ctx, "runs/x"); err != nil {
		t.Fatalf("delete of a deleted key: %v", err)
	}
	if err := s.Delete(ctx, "never/was"); err != nil {
		t.Fatalf("delete of a missing key: %v", err)
	}
}

func testInvalidKeys(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	for _, key := range []string{"", "/abs", "trailing/", "a//b", "..", "../escape", "a/../../escape", "a/./b", `back\slash`, "nul\x00", "new\nline"} {
		err := put(t, s, key, []byte("x"), objstore.PutOptions{})
		if !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("put %q: err = %v, want ErrInvalidKey", key, err)
		}
		if _, _, err := s.Get(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("get %q: err = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Head(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("head %q: err = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("delete %q: err = %v, want ErrInvalidKey", key, err)
		}
	}
	if _, err := s.List(ctx, "../"); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Errorf("list ../: err = %v, want ErrInvalidKey", err)
	}
	infos, err := s.List(ctx, "")
	if err != nil || len(infos) != 0 {
		t.Errorf("after refused puts, list = %v, %v; want empty", keysOf(infos), err)
	}
}

func testInvalidMetadata(t *testing.T, s objstore.Store) {
	for _, md := range []map[string]string{
		{"Upper": "x"}, {"under_score": "x"}, {"": "x"}, {"k": "new\nline"}, {"k": " padded"}, {"k": string(bytes.Repeat([]byte("v"), objstore.MaxMetadataBytes))},
	} {
		if err := put(t, s, "k", []byte("x"), objstore.PutOptions{Metadata: md}); !errors.Is(err, objstore.ErrInvalidMetadata) {
			t.Errorf("put with metadata %q: err = %v, want ErrInvalidMetadata", md, err)
		}
	}
	if _, err := s.Head(context.Background(), "k"); !errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("a refused put left an object: %v", err)
	}
}

func testShortBody(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	for _, ifAbsent := range []bool{false, true} {
		key := fmt.Sprintf("short-%v", ifAbsent)
		// The reader hides io.ReaderAt so every backend sees a plain stream.
		r := struct{ io.Reader }{bytes.NewReader(make([]byte, 50))}
		if err := s.Put(ctx, key, r, 100, objstore.PutOptions{IfAbsent: ifAbsent}); err == nil {
			t.Errorf("put of 50 bytes declared as 100 (if-absent %v) succeeded", ifAbsent)
		}
		if _, err := s.Head(ctx, key); !errors.Is(err, objstore.ErrNotExist) {
			t.Errorf("a short put (if-absent %v) left an object: %v", ifAbsent, err)
		}
	}
}

func testCanceledContext(t *testing.T, s objstore.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(ctx, "canceled", bytes.NewReader([]byte("x")), 1, objstore.PutOptions{}); err == nil {
		t.Fatalf("put with a canceled context succeeded")
	}
	if _, err := s.Head(context.Background(), "canceled"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("a canceled put left an object: %v", err)
	}
	if _, _, err := s.Get(ctx, "canceled"); err == nil {
		t.Fatalf("get with a canceled context succeeded")
	}
}

func testLargeObject(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	const key = "runs/large.run"
	gen := NewGenerator(1, LargeObjectSize)
	// Hide io.ReaderAt: the backend must stream a plain reader.
	if err := s.Put(ctx, key, struct{ io.Reader }{gen}, LargeObjectSize, objstore.PutOptions{IfAbsent: true, Metadata: map[string]string{"kind": "large"}}); err != nil {
		t.Fatalf("put large: %v", err)
	}
	want := gen.Sum()

	rc, info, err := s.Get(ctx, key)
	if err != nil {
		t.Fatalf("get large: %v", err)
	}
	h := crc32.New(castagnoli)
	n, err := io.Copy(h, rc)
	rc.Close()
	if err != nil {
		t.Fatalf("read large: %v", err)
	}
	if n != LargeObjectSize || info.Size != LargeObjectSize || info.Metadata["kind"] != "large" {
		t.Fatalf("large object: read %d bytes, info %+v; want %d bytes", n, info, LargeObjectSize)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		t.Fatalf("large object checksum %x, want %x", got, want)
	}

	// A range across the 8 MiB and 16 MiB boundaries.
	off, length := int64(8<<20-100), int64(8<<20+200)
	got := readRange(t, s, key, off, length)
	if !bytes.Equal(got, NewGenerator(1, LargeObjectSize).Bytes(off, length)) {
		t.Fatalf("range %d+%d of the large object differs", off, length)
	}

	// A large create-if-absent that loses (multipart path), from a source
	// with random access.
	err = s.Put(ctx, key, NewGenerator(2, 17<<20), 17<<20, objstore.PutOptions{IfAbsent: true})
	if !errors.Is(err, objstore.ErrPrecondition) {
		t.Fatalf("second large if-absent put: err = %v, want ErrPrecondition", err)
	}
	if head, err := s.Head(ctx, key); err != nil || head.Size != LargeObjectSize {
		t.Fatalf("after the lost large create: head = %+v, %v", head, err)
	}
	// And one that wins, from the same kind of source.
	g3 := NewGenerator(3, 17<<20)
	if err := s.Put(ctx, "runs/large2.run", g3, 17<<20, objstore.PutOptions{IfAbsent: true}); err != nil {
		t.Fatalf("put 17 MiB from a ReaderAt: %v", err)
	}
	if got := readRange(t, s, "runs/large2.run", 17<<20-10, -1); !bytes.Equal(got, NewGenerator(3, 17<<20).Bytes(17<<20-10, 10)) {
		t.Fatalf("tail of the 17 MiB object differs")
	}
	for _, k := range []string{key, "runs/large2.run"} {
		if err := s.Delete(ctx, k); err != nil {
			t.Fatalf("delete %s: %v", k, err)
		}
	}
}

// Generator is a deterministic pseudo-random byte source of a fixed size: a
// test can stream a large object from it without holding it in memory, and
// regenerate any range to compare. It implements io.Reader, io.ReaderAt and
// io.Seeker, and checksums (CRC-32C) what Read returns.
type Generator struct {
	seed, size, off int64
	h               hash.Hash
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// NewGenerator returns a Generator of size bytes for seed.
func NewGenerator(seed, size int64) *Generator {
	return &Generator{seed: seed, size: size, h: crc32.New(castagnoli)}
}

// word returns the 8 bytes at word index i.
func (g *Generator) word(i int64) uint64 {
	z := uint64(g.seed)*0x9e3779b97f4a7c15 + uint64(i)*0xbf58476d1ce4e5b9
	z ^= z >> 31
	z *= 0x94d049bb133111eb
	z ^= z >> 29
	return z
}

// fill writes the bytes at [off, off+len(p)) into p. It is excluded from
// race instrumentation, which would make the large-object test many times
// slower; it only writes to p.
//
//go:norace
func (g *Generator) fill(p []byte, off int64) {
	var w [8]byte
	// Unaligned head, byte by byte through w.
	for len(p) > 0 && off%8 != 0 {
		binary.LittleEndian.PutUint64(w[:], g.word(off/8))
		n := copy(p, w[off%8:])
		p, off = p[n:], off+int64(n)
	}
	// Whole words straight into p.
	i := off / 8
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, g.word(i))
		p, i = p[8:], i+1
	}
	if len(p) > 0 {
		binary.LittleEndian.PutUint64(w[:], g.word(i))
		copy(p, w[:])
	}
}

// Read implements io.Reader; the bytes read are hashed for Sum.
func (g *Generator) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.size-g.off)]
	g.fill(p, g.off)
	g.h.Write(p)
	g.off += int64(len(p))
	return len(p), nil
}

// ReadAt implements io.ReaderAt (not hashed).
func (g *Generator) ReadAt(p []byte, off int64) (int, error) {
	if off >= g.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), g.size-off)
	g.fill(p[:n], off)
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// Seek implements io.Seeker.
func (g *Generator) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += g.off
	case io.SeekEnd:
		offset += g.size
	}
	if offset < 0 {
		return 0, errors.New("objstoretest: seek before start")
	}
	g.off = offset
	return offset, nil
}

// Bytes returns the length bytes at off (clipped to the size).
func (g *Generator) Bytes(off, length int64) []byte {
	length = max(0, min(length, g.size-off))
	p := make([]byte, length)
	g.fill(p, off)
	return p
}

// Sum returns the CRC-32C of the bytes Read has returned so far.
func (g *Generator) Sum() []byte { return g.h.Sum(nil) }
