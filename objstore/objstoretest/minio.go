package objstoretest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Environment variables read by MinIOEnv.
const (
	EnvEndpoint     = "TIERKV_TEST_MINIO_ENDPOINT"
	EnvAccessKey    = "TIERKV_TEST_MINIO_ACCESS_KEY"
	EnvSecretKey    = "TIERKV_TEST_MINIO_SECRET_KEY"
	EnvRequireMinIO = "TIERKV_TEST_REQUIRE_MINIO"
)

// MinIOEnv returns the test server's host:port and credentials from
// TIERKV_TEST_MINIO_ENDPOINT, TIERKV_TEST_MINIO_ACCESS_KEY and
// TIERKV_TEST_MINIO_SECRET_KEY. When any is unset it skips the test, or
// fails it if TIERKV_TEST_REQUIRE_MINIO=1.
func MinIOEnv(t testing.TB) (endpoint, access, secret string) {
	t.Helper()
	endpoint, access, secret = os.Getenv(EnvEndpoint), os.Getenv(EnvAccessKey), os.Getenv(EnvSecretKey)
	if endpoint != "" && access != "" && secret != "" {
		return endpoint, access, secret
	}
	msg := fmt.Sprintf("no MinIO server: set %s (host:port), %s and %s", EnvEndpoint, EnvAccessKey, EnvSecretKey)
	if os.Getenv(EnvRequireMinIO) == "1" {
		t.Fatalf("%s (%s=1 makes this a failure)", msg, EnvRequireMinIO)
	}
	t.Skip(msg)
	return "", "", ""
}

// NewBucket creates a fresh bucket on the MinIO server of MinIOEnv (skipping
// or failing as MinIOEnv does) and returns URLs for it for both remote
// backends, without a prefix:
//
//	s3://BUCKET?endpoint=http://HOST:PORT&path_style=true&region=us-east-1
//	minio://HOST:PORT/BUCKET?secure=false
//
// The bucket and its objects are removed when the test ends. The stores
// opened from these URLs read their credentials from the environment (see
// the package documentation); NewBucket fails the test if those variables
// do not hold the TIERKV_TEST_MINIO_* credentials.
func NewBucket(t testing.TB) (s3URL, minioURL string) {
	t.Helper()
	endpoint, access, secret := MinIOEnv(t)
	checkBackendEnv(t, access, secret)

	client, err := minio.New(endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(access, secret, ""), Region: "us-east-1", MaxRetries: 2,
	})
	if err != nil {
		t.Fatalf("minio client for %s: %v", endpoint, err)
	}
	bucket := bucketName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatalf("create bucket %s on %s: %v", bucket, endpoint, err)
	}
	t.Cleanup(func() { removeBucket(t, client, bucket) })
	s3URL = fmt.Sprintf("s3://%s?endpoint=http://%s&path_style=true&region=us-east-1", bucket, endpoint)
	minioURL = fmt.Sprintf("minio://%s/%s?secure=false", endpoint, bucket)
	return s3URL, minioURL
}

// checkBackendEnv fails t when the credentials the backends will read from
// the environment are not the test server's.
func checkBackendEnv(t testing.TB, access, secret string) {
	t.Helper()
	if os.Getenv("AWS_ACCESS_KEY_ID") != access || os.Getenv("AWS_SECRET_ACCESS_KEY") != secret {
		t.Fatalf("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to the values of %s and %s: the s3 backend reads its credentials from the environment", EnvAccessKey, EnvSecretKey)
	}
	ma, ms := os.Getenv("MINIO_ACCESS_KEY"), os.Getenv("MINIO_SECRET_KEY")
	if ma != "" && ms != "" && (ma != access || ms != secret) {
		t.Fatalf("MINIO_ACCESS_KEY and MINIO_SECRET_KEY are set but differ from %s and %s: unset them or make them equal", EnvAccessKey, EnvSecretKey)
	}
}

// bucketName derives a valid, unique bucket name from a test name.
func bucketName(testName string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(testName) {
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			b.WriteRune(c)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 40 {
		name = strings.Trim(name[:40], "-")
	}
	var rnd [5]byte
	_, _ = rand.Read(rnd[:])
	return "tierkv-" + name + "-" + hex.EncodeToString(rnd[:])
}

// removeBucket deletes every object (and unfinished upload) of bucket, then
// the bucket; failures are logged, not fatal.
func removeBucket(t testing.TB, client *minio.Client, bucket string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	objects := client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true})
	for res := range client.RemoveObjects(ctx, bucket, objects, minio.RemoveObjectsOptions{}) {
		if res.Err != nil {
			t.Logf("remove %s/%s: %v", bucket, res.ObjectName, res.Err)
		}
	}
	for up := range client.ListIncompleteUploads(ctx, bucket, "", true) {
		if up.Err == nil {
			_ = client.RemoveIncompleteUpload(ctx, bucket, up.Key)
		}
	}
	if err := client.RemoveBucket(ctx, bucket); err != nil {
		t.Logf("remove bucket %s: %v", bucket, err)
	}
}
