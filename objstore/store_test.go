package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/objstore/objstoretest"
)

var memSeq atomic.Int64

func TestConformanceMem(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		s, err := objstore.Open(context.Background(), fmt.Sprintf("mem://conformance-%d/some/prefix", memSeq.Add(1)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConformanceFile(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		s, err := objstore.Open(context.Background(), "file://"+filepath.ToSlash(filepath.Join(t.TempDir(), "remote")))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConformanceS3(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		s3URL, _ := objstoretest.NewBucket(t)
		s, err := objstore.Open(context.Background(), s3URL)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConformanceMinIO(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		_, minioURL := objstoretest.NewBucket(t)
		s, err := objstore.Open(context.Background(), minioURL)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestCrossBackend writes with one client library and reads with the other,
// through a prefix, so both agree on keys and metadata.
func TestCrossBackend(t *testing.T) {
	ctx := context.Background()
	s3URL, minioURL := objstoretest.NewBucket(t)
	a, err := objstore.Open(ctx, strings.Replace(s3URL, "?", "/part-7?", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := objstore.Open(ctx, strings.Replace(minioURL, "?", "/part-7?", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	md := map[string]string{"crc": "1234"}
	if err := a.Put(ctx, "runs/r1", strings.NewReader("from s3"), 7, objstore.PutOptions{IfAbsent: true, Metadata: md}); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "runs/r1", strings.NewReader("from minio"), 10, objstore.PutOptions{IfAbsent: true}); !errors.Is(err, objstore.ErrPrecondition) {
		t.Fatalf("minio if-absent over an s3-written key: %v", err)
	}
	rc, info, err := b.Get(ctx, "runs/r1")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	if string(data) != "from s3" || info.Metadata["crc"] != "1234" {
		t.Fatalf("minio read %q %v", data, info.Metadata)
	}
	infos, err := b.List(ctx, "")
	if err != nil || len(infos) != 1 || infos[0].Key != "runs/r1" {
		t.Fatalf("minio list = %v, %v", infos, err)
	}
}

func TestMemSharedByName(t *testing.T) {
	ctx := context.Background()
	name := fmt.Sprintf("mem://shared-%d", memSeq.Add(1))
	a, err := objstore.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := objstore.Open(ctx, name+"/")
	if err != nil {
		t.Fatal(err)
	}
	c, err := objstore.Open(ctx, name+"/p")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, "p/k", strings.NewReader("v"), 1, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if info, err := b.Head(ctx, "p/k"); err != nil || info.Size != 1 {
		t.Fatalf("second open does not see the object: %v %v", info, err)
	}
	if info, err := c.Head(ctx, "k"); err != nil || info.Key != "k" {
		t.Fatalf("prefixed open: %+v %v", info, err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Head(ctx, "p/k"); err != nil {
		t.Fatalf("close of one handle dropped the objects: %v", err)
	}
	other, _ := objstore.Open(ctx, name+"-other")
	if _, err := other.Head(ctx, "p/k"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("a different name shares objects: %v", err)
	}
}

func TestFileLayout(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "r")
	s, err := objstore.NewFile(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(ctx, "runs/a.run", strings.NewReader("abc"), 3, objstore.PutOptions{IfAbsent: true, Metadata: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	// Objects are plain files at their key's path.
	data, err := os.ReadFile(filepath.Join(root, "runs", "a.run"))
	if err != nil || string(data) != "abc" {
		t.Fatalf("object file = %q, %v", data, err)
	}
	// No temporary files are left behind, and stray ones are not listed.
	entries, _ := os.ReadDir(filepath.Join(root, "runs"))
	if len(entries) != 1 {
		t.Fatalf("runs/ holds %d entries, want 1", len(entries))
	}
	if err := os.WriteFile(filepath.Join(root, "runs", ".tierkv-tmp-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	infos, err := s.List(ctx, "")
	if err != nil || len(infos) != 1 || infos[0].Key != "runs/a.run" {
		t.Fatalf("list = %v, %v", infos, err)
	}
	// The reserved prefix cannot be used as a key.
	if err := s.Put(ctx, "runs/.tierkv-tmp-9", strings.NewReader("x"), 1, objstore.PutOptions{}); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Fatalf("put of a reserved name: %v", err)
	}
	// A key below an object is refused, not half-written.
	if err := s.Put(ctx, "runs/a.run/x", strings.NewReader("x"), 1, objstore.PutOptions{}); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Fatalf("put below an object: %v", err)
	}
	// Nothing was ever written outside the root.
	parentEntries, _ := os.ReadDir(filepath.Dir(root))
	if len(parentEntries) != 1 {
		t.Fatalf("the root's parent holds %d entries, want 1", len(parentEntries))
	}
}

func TestFileRelativeRootRefused(t *testing.T) {
	if _, err := objstore.NewFile("relative/dir"); !errors.Is(err, objstore.ErrInvalidURL) {
		t.Fatalf("relative root: %v", err)
	}
}

func TestWithPrefix(t *testing.T) {
	ctx := context.Background()
	base := objstore.NewMem()
	p, err := objstore.WithPrefix(base, "part-3/")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Put(ctx, "runs/x", bytes.NewReader([]byte("1")), 1, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := base.Head(ctx, "part-3/runs/x"); err != nil {
		t.Fatalf("prefix not applied: %v", err)
	}
	infos, err := p.List(ctx, "runs/")
	if err != nil || len(infos) != 1 || infos[0].Key != "runs/x" {
		t.Fatalf("list through prefix = %v, %v", infos, err)
	}
	if _, err := objstore.WithPrefix(base, "../up"); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Fatalf("bad prefix accepted: %v", err)
	}
}
