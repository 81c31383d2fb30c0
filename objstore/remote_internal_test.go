package objstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// TestUnreachableEndpoint checks that a dead endpoint fails promptly with an
// error that names it and never the secret.
func TestUnreachableEndpoint(t *testing.T) {
	const secret = "do-not-print-this-secret"
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIATEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("MINIO_ACCESS_KEY", "")
	t.Setenv("MINIO_SECRET_KEY", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx := context.Background()
	for _, u := range []string{
		"s3://bucket/p?endpoint=http://127.0.0.1:1&path_style=true&region=us-east-1",
		"minio://127.0.0.1:1/bucket/p?secure=false",
	} {
		s, err := Open(ctx, u)
		if err != nil {
			t.Fatalf("open %s: %v", u, err)
		}
		_, err = s.Head(ctx, "k")
		if err == nil {
			t.Fatalf("%s: head succeeded", u)
		}
		if !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error %q must name the endpoint and not the secret", u, err)
		}
		if !Retryable(err) {
			t.Errorf("%s: connection refused should be retryable: %v", u, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMinioNeedsCredentials(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"} {
		t.Setenv(k, "")
	}
	_, err := Open(context.Background(), "minio://127.0.0.1:1/bucket?secure=false")
	if err == nil || !strings.Contains(err.Error(), "MINIO_ACCESS_KEY") {
		t.Fatalf("open without credentials: %v", err)
	}
}

// testBucket makes a bucket on the server of TIERKV_TEST_MINIO_* (this
// internal test cannot import objstoretest) and returns its name.
func testBucket(t *testing.T) (endpoint, bucket string) {
	endpoint = os.Getenv("TIERKV_TEST_MINIO_ENDPOINT")
	access, secret := os.Getenv("TIERKV_TEST_MINIO_ACCESS_KEY"), os.Getenv("TIERKV_TEST_MINIO_SECRET_KEY")
	if endpoint == "" || access == "" || secret == "" {
		if os.Getenv("TIERKV_TEST_REQUIRE_MINIO") == "1" {
			t.Fatal("TIERKV_TEST_MINIO_ENDPOINT, _ACCESS_KEY and _SECRET_KEY are required")
		}
		t.Skip("no MinIO server: set TIERKV_TEST_MINIO_ENDPOINT, TIERKV_TEST_MINIO_ACCESS_KEY, TIERKV_TEST_MINIO_SECRET_KEY")
	}
	t.Setenv("AWS_ACCESS_KEY_ID", access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	client, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	bucket = "tierkv-internal-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	if len(bucket) > 50 {
		bucket = bucket[:50]
	}
	bucket = strings.TrimRight(bucket, "-") + "-b"
	if err := client.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		var er minio.ErrorResponse
		if !errors.As(err, &er) || er.Code != "BucketAlreadyOwnedByYou" {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for res := range client.RemoveObjects(ctx, bucket, client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}), minio.RemoveObjectsOptions{}) {
			_ = res
		}
		_ = client.RemoveBucket(ctx, bucket)
	})
	return endpoint, bucket
}

// TestS3MultipartIfAbsent reaches the conditional CompleteMultipartUpload
// (If-None-Match: *) without the HeadObject shortcut, with small parts.
func TestS3MultipartIfAbsent(t *testing.T) {
	endpoint, bucket := testBucket(t)
	ctx := context.Background()
	st, err := newS3(ctx, remoteURL{scheme: "s3", bucket: bucket, endpoint: "http://" + endpoint, pathStyle: true, region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.multipartThreshold, st.partSize, st.noHeadCheck = 5<<20, 5<<20, true
	first := bytes.Repeat([]byte("a"), 11<<20)
	if err := st.Put(ctx, "k", bytes.NewReader(first), int64(len(first)), PutOptions{IfAbsent: true, Metadata: map[string]string{"n": "1"}}); err != nil {
		t.Fatalf("first multipart create: %v", err)
	}
	second := bytes.Repeat([]byte("b"), 11<<20)
	// A plain stream, so parts are buffered.
	err = st.Put(ctx, "k", struct{ io.Reader }{bytes.NewReader(second)}, int64(len(second)), PutOptions{IfAbsent: true})
	if !errors.Is(err, ErrPrecondition) {
		t.Fatalf("second multipart create: err = %v, want ErrPrecondition", err)
	}
	rc, info, err := st.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, first) || info.Metadata["n"] != "1" {
		t.Fatalf("object changed by the lost multipart create (%d bytes, metadata %v)", len(got), info.Metadata)
	}
}
