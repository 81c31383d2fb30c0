package integration

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/objstore/objstoretest"
)

// multipartSize is just above both backends' 16 MiB multipart threshold.
const multipartSize = 17 << 20

// otherURL returns the URL of b's bucket and prefix through the other
// backend library.
func (b backend) otherURL() string {
	if b.name == backendS3 {
		return fmt.Sprintf("minio://%s/%s/%s?secure=false", b.endpoint, b.bucket, b.prefix)
	}
	return fmt.Sprintf("s3://%s/%s?endpoint=http://%s&path_style=true&region=us-east-1", b.bucket, b.prefix, b.endpoint)
}

// putRetry is a Put retried under objstore.Retry (S3 answers a conditional
// write racing another with 409 ConditionalRequestConflict, to be retried).
func putRetry(ctx context.Context, st objstore.Store, key string, r func() io.Reader, size int64, opts objstore.PutOptions) error {
	return objstore.Retry(ctx, objstore.Backoff{MaxAttempts: 6, Base: 20 * time.Millisecond, Max: time.Second}, func(ctx context.Context) error {
		return st.Put(ctx, key, r(), size, opts)
	})
}

// readAll reads key whole through st.
func readAll(t *testing.T, st objstore.Store, key string) ([]byte, objstore.ObjectInfo) {
	t.Helper()
	rc, info, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b, info
}

// TestConditionalCreate checks create-if-absent (If-None-Match: *) on the
// real server through each backend: a second create fails with
// ErrPrecondition and leaves the object alone, for single-part and
// multipart objects, whichever library sends it; racing single-part creates
// (through both libraries at once) and racing multipart creates (two
// clients of the backend under test) have exactly one winner, whose content
// stays.
func TestConditionalCreate(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := ctxT(t)
		st := b.open(t)
		other := openURL(t, b.otherURL())
		ifAbsent := objstore.PutOptions{IfAbsent: true, Metadata: map[string]string{"crc32c": "0000abcd"}}

		// Sequential: the second create loses, whichever library sends it.
		if err := st.Put(ctx, "cond/one", strings.NewReader("first"), 5, ifAbsent); err != nil {
			t.Fatalf("first if-absent put: %v", err)
		}
		for name, s := range map[string]objstore.Store{b.name: st, "other library": other} {
			err := s.Put(ctx, "cond/one", strings.NewReader("second!"), 7, objstore.PutOptions{IfAbsent: true})
			if !errors.Is(err, objstore.ErrPrecondition) {
				t.Fatalf("second if-absent put through %s: %v, want ErrPrecondition", name, err)
			}
		}
		if got, info := readAll(t, st, "cond/one"); string(got) != "first" || info.Metadata["crc32c"] != "0000abcd" {
			t.Fatalf("after the lost creates: %q, metadata %v; want the first object intact", got, info.Metadata)
		}
		// A multipart create on an existing key loses too.
		err := st.Put(ctx, "cond/one", objstoretest.NewGenerator(1, multipartSize), multipartSize, objstore.PutOptions{IfAbsent: true})
		if !errors.Is(err, objstore.ErrPrecondition) {
			t.Fatalf("multipart if-absent put on an existing key: %v, want ErrPrecondition", err)
		}
		if info, err := st.Head(ctx, "cond/one"); err != nil || info.Size != 5 {
			t.Fatalf("after the lost multipart create: %+v, %v", info, err)
		}
		// An unconditional put still overwrites.
		if err := st.Put(ctx, "cond/one", strings.NewReader("third"), 5, objstore.PutOptions{}); err != nil {
			t.Fatalf("plain put: %v", err)
		}
		if got, _ := readAll(t, st, "cond/one"); string(got) != "third" {
			t.Fatalf("plain put did not overwrite: %q", got)
		}

		// Racing single-part creates: 8 keys, 6 writers each (both libraries).
		stores := []objstore.Store{st, other}
		const keys, writers = 8, 6
		var wg sync.WaitGroup
		errs := make([][]error, keys)
		for k := range keys {
			errs[k] = make([]error, writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					body := fmt.Sprintf("writer %d of key %d", w, k)
					errs[k][w] = putRetry(ctx, stores[w%2], fmt.Sprintf("cond/race-%d", k),
						func() io.Reader { return strings.NewReader(body) }, int64(len(body)), objstore.PutOptions{IfAbsent: true})
				}()
			}
		}
		wg.Wait()
		for k := range keys {
			winner := -1
			for w, err := range errs[k] {
				switch {
				case err == nil && winner < 0:
					winner = w
				case err == nil:
					t.Fatalf("key %d: writers %d and %d both created it", k, winner, w)
				case !errors.Is(err, objstore.ErrPrecondition):
					t.Fatalf("key %d: writer %d: %v, want ErrPrecondition", k, w, err)
				}
			}
			if winner < 0 {
				t.Fatalf("key %d: no writer won", k)
			}
			if got, _ := readAll(t, st, fmt.Sprintf("cond/race-%d", k)); string(got) != fmt.Sprintf("writer %d of key %d", winner, k) {
				t.Fatalf("key %d: content %q, winner was writer %d", k, got, winner)
			}
		}

		// Racing multipart creates through this backend (two clients): the
		// create-if-absent must be decided when the upload completes, not
		// only when it starts.
		st2 := b.open(t)
		errs2 := make([]error, 2)
		for w, s := range []objstore.Store{st, st2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs2[w] = putRetry(ctx, s, "cond/big",
					func() io.Reader { return struct{ io.Reader }{objstoretest.NewGenerator(int64(10+w), multipartSize)} },
					multipartSize, objstore.PutOptions{IfAbsent: true})
			}()
		}
		wg.Wait()
		winner := -1
		for w, err := range errs2 {
			switch {
			case err == nil && winner < 0:
				winner = w
			case err == nil:
				t.Fatalf("two racing %d-byte (multipart) if-absent puts of cond/big through %s both succeeded: "+
					"create-if-absent is not atomic for multipart uploads on this backend", multipartSize, b.name)
			case !errors.Is(err, objstore.ErrPrecondition):
				t.Fatalf("multipart create %d of cond/big: %v, want ErrPrecondition", w, err)
			}
		}
		if winner < 0 {
			t.Fatalf("no multipart create of cond/big succeeded: %v", errs2)
		}
		want := objstoretest.NewGenerator(int64(10+winner), multipartSize)
		if _, err := io.Copy(io.Discard, want); err != nil {
			t.Fatal(err)
		}
		rc, _, err := st.Get(ctx, "cond/big")
		if err != nil {
			t.Fatalf("get cond/big: %v", err)
		}
		h := crc32.New(engines.CastagnoliTable)
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil || n != multipartSize || string(h.Sum(nil)) != string(want.Sum()) {
			t.Fatalf("cond/big: read %d bytes (%v), crc %x; want the winner's %d bytes, crc %x", n, err, h.Sum(nil), multipartSize, want.Sum())
		}
		t.Logf("conditional create on %s: sequential (single-part and multipart), %d single-part races against %s, 1 multipart race",
			b.name, keys, objstore.Redact(b.otherURL()))
	})
}
