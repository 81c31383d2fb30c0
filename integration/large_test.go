package integration

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
	"testing"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/objstore/objstoretest"
	"github.com/tierkv/tierkv/tiered"
)

// streamCRC reads r to the end and returns its length and CRC-32C.
func streamCRC(r io.Reader) (int64, uint32, error) {
	h := crc32.New(engines.CastagnoliTable)
	n, err := io.Copy(h, r)
	return n, h.Sum32(), err
}

// TestLargeObject streams an object of 64 MiB and a bit from a plain
// reader (no random access, so the backend must cut the parts itself)
// through each backend, then reads it back streaming through both
// libraries and checks size, metadata, CRC-32C and a range across part
// boundaries.
func TestLargeObject(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := ctxT(t)
		st := b.open(t)
		const size = objstoretest.LargeObjectSize
		gen := objstoretest.NewGenerator(42, size)
		md := map[string]string{"kind": "large"}
		if err := st.Put(ctx, "big/object", struct{ io.Reader }{gen}, size, objstore.PutOptions{IfAbsent: true, Metadata: md}); err != nil {
			t.Fatalf("put %d bytes: %v", int64(size), err)
		}
		want := gen.Sum()
		for name, s := range map[string]objstore.Store{b.name: st, "other library": openURL(t, b.otherURL())} {
			rc, info, err := s.Get(ctx, "big/object")
			if err != nil {
				t.Fatalf("get through %s: %v", name, err)
			}
			h := crc32.New(engines.CastagnoliTable)
			n, err := io.Copy(h, rc)
			rc.Close()
			if err != nil || n != size || info.Size != size || info.Metadata["kind"] != "large" || !bytes.Equal(h.Sum(nil), want) {
				t.Fatalf("read through %s: %d bytes (%v), info %+v, crc %x; want %d bytes, crc %x", name, n, err, info, h.Sum(nil), int64(size), want)
			}
		}
		off, length := int64(16<<20-7), int64(8<<20+14) // across two part boundaries
		rc, err := st.GetRange(ctx, "big/object", off, length)
		if err != nil {
			t.Fatalf("get range: %v", err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, objstoretest.NewGenerator(42, size).Bytes(off, length)) {
			t.Fatalf("range %d+%d: %d bytes (%v), differs from what was written", off, length, len(got), err)
		}
		t.Logf("%d-byte object through %s: streamed up, read back through both libraries, crc32c %x", int64(size), b.name, want)
	})
}

// TestLargeRun commits a run of more than 64 MiB (the memonly engine dumps
// its whole state into one run), uploaded by the store's uploader from the
// run file (multipart), then opens the version in another directory, which
// downloads and verifies it, and compares every value's CRC-32C; a deep
// Verify downloads it once more.
func TestLargeRun(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := ctxT(t)
		const values, valueSize = 5, 13<<20 + 512<<10 // 5 x 13.5 MiB = 67.5 MiB
		s := openStore(t, tiered.Options{Dir: filepath.Join(t.TempDir(), "w"), Remote: b.url, Engine: "memonly"})
		want := make(map[string]uint32)
		for i := range values {
			v := objstoretest.NewGenerator(int64(100+i), valueSize).Bytes(0, valueSize)
			k := fmt.Sprintf("big-%d", i)
			if err := s.Set([]byte(k), v); err != nil {
				t.Fatalf("Set(%s): %v", k, err)
			}
			want[k] = crc32.Checksum(v, engines.CastagnoliTable)
		}
		if err := s.Set([]byte("small"), []byte("value")); err != nil {
			t.Fatal(err)
		}
		res, err := s.Snapshot(ctx, tiered.WithMetadata(map[string]string{"size": "large"}))
		if err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		st := b.open(t)
		m, err := manifest.Load(ctx, st, res.Version)
		if err != nil {
			t.Fatalf("load manifest: %v", err)
		}
		if len(m.Runs) != 1 || m.Runs[0].Size < 64<<20 || res.BytesUploaded < 64<<20 {
			t.Fatalf("snapshot %+v, runs %+v: want one run of at least 64 MiB, uploaded", res, m.Runs)
		}
		run := m.Runs[0]
		info, err := st.Head(ctx, manifest.RunKey(run.Name))
		if err != nil || info.Size != run.Size || info.Metadata["crc32c"] != fmt.Sprintf("%08x", run.CRC32C) {
			t.Fatalf("head of run %s: %+v, %v; want size %d, crc32c %08x", run.Name, info, err, run.Size, run.CRC32C)
		}
		rc, _, err := st.Get(ctx, manifest.RunKey(run.Name))
		if err != nil {
			t.Fatalf("get run: %v", err)
		}
		n, sum, err := streamCRC(rc)
		rc.Close()
		if err != nil || n != run.Size || sum != run.CRC32C {
			t.Fatalf("run %s streamed: %d bytes, crc32c %08x (%v); manifest records %d, %08x", run.Name, n, sum, err, run.Size, run.CRC32C)
		}

		// Another machine: an empty directory downloads and verifies the run.
		r := openStore(t, tiered.Options{Dir: filepath.Join(t.TempDir(), "r"), Remote: b.url})
		if r.Version() != res.Version || r.Metadata()["size"] != "large" {
			t.Fatalf("reopened at version %d, metadata %v", r.Version(), r.Metadata())
		}
		for k, c := range want {
			v, ok, err := r.Get([]byte(k))
			if err != nil || !ok || len(v) != valueSize || crc32.Checksum(v, engines.CastagnoliTable) != c {
				t.Fatalf("Get(%s) after restore: %d bytes, ok %v, err %v; want %d bytes with crc32c %08x", k, len(v), ok, err, valueSize, c)
			}
		}
		if err := r.Close(); err != nil {
			t.Fatalf("close restored store: %v", err)
		}
		problems, err := tiered.Verify(context.Background(), st, nil, true)
		if err != nil || len(problems) != 0 {
			t.Fatalf("deep verify: %v, %v", problems, err)
		}
		t.Logf("run %s of %d bytes through %s: uploaded, restored, verified", run.Name, run.Size, b.name)
	})
}
