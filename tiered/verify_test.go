package tiered

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
)

// cpR copies the directory src to dst with "cp -r", which copies contents
// but no extended attributes.
func cpR(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-r", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -r %s %s: %v\n%s", src, dst, err, out)
	}
}

// TestVerifyJudgesByManifest: a file:// remote copied without its xattrs
// (no crc32c metadata on any run) verifies clean, shallow and deep; deep
// verify still finds a flipped byte by the manifest's CRC-32C, and metadata
// that contradicts the manifest is reported.
func TestVerifyJudgesByManifest(t *testing.T) {
	ctx := ctxT(t)
	base := t.TempDir()
	orig, err := objstore.NewFile(filepath.Join(base, "orig"))
	if err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, Options{Dir: filepath.Join(base, "dir"), ObjectStore: orig, Engine: "lsm"})
	setAll(t, s, map[string]string{}, kvs("a", 300, 64, 1))
	if _, err := s.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cpR(t, filepath.Join(base, "orig"), filepath.Join(base, "copy"))
	cp, err := objstore.NewFile(filepath.Join(base, "copy"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Latest(ctx, cp)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Runs) == 0 {
		t.Fatal("the snapshot has no runs")
	}
	key := manifest.RunKey(m.Runs[0].Name)
	if info, err := cp.Head(ctx, key); err != nil || len(info.Metadata) != 0 {
		t.Fatalf("copied run: %+v, %v; want no metadata", info, err)
	}
	for _, deep := range []bool{false, true} {
		if p, err := Verify(ctx, cp, nil, deep); err != nil || len(p) != 0 {
			t.Fatalf("verify (deep=%v) of a copy without xattrs: %v, %v; want no problem", deep, p, err)
		}
	}

	// A flipped byte (same size, still no metadata) is found by deep verify.
	path := filepath.Join(base, "copy", filepath.FromSlash(key))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Verify(ctx, cp, nil, true)
	if err != nil || len(p) != 1 || p[0].Object != key || !strings.Contains(p[0].Detail, "content crc32c") {
		t.Fatalf("deep verify of a flipped byte: %v, %v; want one content crc32c problem in %s", p, err, key)
	}
	b[len(b)/2] ^= 0x01

	// Intact bytes with metadata naming another checksum: the object was
	// replaced or its metadata damaged; shallow verify reports it.
	wrong := map[string]string{"crc32c": "00000000"}
	if m.Runs[0].CRC32C == 0 {
		wrong["crc32c"] = "00000001"
	}
	if err := cp.Put(ctx, key, bytes.NewReader(b), int64(len(b)), objstore.PutOptions{Metadata: wrong}); err != nil {
		t.Fatal(err)
	}
	p, err = Verify(ctx, cp, nil, false)
	if err != nil || len(p) != 1 || !strings.Contains(p[0].Detail, "crc32c metadata") {
		t.Fatalf("shallow verify of contradicting metadata: %v, %v", p, err)
	}
}
