package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Multipart settings of the s3 backend.
const (
	// s3MultipartThreshold: objects larger than this are uploaded in parts.
	s3MultipartThreshold = 16 << 20
	// s3PartSize is the size of each part but the last (grown when an object
	// would need more than s3MaxParts parts).
	s3PartSize = 8 << 20
	// s3PartConcurrency parts are in flight at once; a reader that is not an
	// io.ReaderAt costs one s3PartSize buffer per part in flight.
	s3PartConcurrency = 4
	// s3MaxParts is S3's limit on the parts of one upload.
	s3MaxParts = 10000
	// s3AbortTimeout bounds the AbortMultipartUpload sent after a failure.
	s3AbortTimeout = 30 * time.Second
)

// s3API is the part of *s3.Client the backend calls.
type s3API interface {
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(context.Context, *s3.UploadPartInput, ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(context.Context, *s3.CompleteMultipartUploadInput, ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

var _ s3API = (*s3.Client)(nil)

type s3Store struct {
	client s3API
	bucket string
	where  string // "s3://bucket at endpoint" for error messages; never a secret
	conns  *connTracker

	multipartThreshold int64
	partSize           int64
	concurrency        int
	// noHeadCheck skips the HeadObject before a multipart create-if-absent,
	// so tests reach the conditional CompleteMultipartUpload.
	noHeadCheck bool
}

var _ Store = (*s3Store)(nil)

// newS3 builds the aws-sdk-go-v2 backend for u. Credentials and, unless the
// URL names one, the region come from the SDK's default chain; the region
// falls back to us-east-1.
func newS3(ctx context.Context, u remoteURL) (*s3Store, error) {
	conns := newConnTracker()
	// A BuildableClient, because the SDK adds AWS_CA_BUNDLE through it.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(conns.configure)
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithRetryMaxAttempts(3),
		// Checksums only where an operation requires them, so that every
		// S3-compatible server works; tierkv checks its own checksums.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if u.region != "" {
		opts = append(opts, config.WithRegion(u.region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("objstore: load AWS configuration for s3://%s: %w", u.bucket, err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if u.endpoint != "" {
			o.BaseEndpoint = aws.String(u.endpoint)
		}
		o.UsePathStyle = u.pathStyle
	})
	where := "s3://" + u.bucket + " in " + cfg.Region
	if u.endpoint != "" {
		where = "s3://" + u.bucket + " at " + Redact(u.endpoint)
	}
	return &s3Store{
		client: client, bucket: u.bucket, where: where, conns: conns,
		multipartThreshold: s3MultipartThreshold, partSize: s3PartSize, concurrency: s3PartConcurrency,
	}, nil
}

// mapErr turns an SDK error into the package's error vocabulary.
func (s *s3Store) mapErr(op, key string, err error) error {
	var code string
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	status := 0
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch {
	case code == "NoSuchKey" || code == "NotFound" ||
		status == http.StatusNotFound && code != "NoSuchBucket" && code != "NoSuchUpload":
		return fmt.Errorf("objstore: s3 %s %s: %w", op, key, ErrNotExist)
	case code == "PreconditionFailed" || status == http.StatusPreconditionFailed:
		return fmt.Errorf("objstore: s3 %s %s: %w", op, key, ErrPrecondition)
	case status != 0:
		return &StatusError{Op: op, Key: key, Code: status, Err: fmt.Errorf("%s: %w", s.where, err)}
	}
	return fmt.Errorf("objstore: s3 %s %s (%s): %w", op, key, s.where, err)
}

func (s *s3Store) Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) error {
	if err := checkPut(key, size, opts); err != nil {
		return err
	}
	if size > s.multipartThreshold {
		return s.putMultipart(ctx, key, r, size, opts)
	}
	body, err := bodyOf(r, size, nil)
	if err != nil {
		return fmt.Errorf("objstore: s3 put %s: read body: %w", key, err)
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(key),
		Body:          body,
		ContentLength: aws.Int64(size),
		Metadata:      opts.Metadata,
	}
	if opts.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	if _, err := s.client.PutObject(ctx, in); err != nil {
		return s.mapErr("put", key, err)
	}
	return nil
}

// readerAtOf returns r as an io.ReaderAt positioned at r's current offset,
// when r supports both random access and seeking (files, bytes.Reader).
func readerAtOf(r io.Reader) (io.ReaderAt, int64, bool) {
	ra, ok := r.(io.ReaderAt)
	sk, ok2 := r.(io.Seeker)
	if !ok || !ok2 {
		return nil, 0, false
	}
	base, err := sk.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, 0, false
	}
	return ra, base, true
}

// bodyOf returns a seekable body of exactly size bytes from r: a section of
// r when it has random access, else the bytes read into buf (or a new
// buffer). The SDK needs a seekable body to sign and retry a request.
func bodyOf(r io.Reader, size int64, buf []byte) (io.ReadSeeker, error) {
	if ra, base, ok := readerAtOf(r); ok {
		return io.NewSectionReader(ra, base, size), nil
	}
	if int64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if n, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("body ended after %d of %d bytes: %w", n, size, err)
	}
	return bytes.NewReader(buf), nil
}

// putMultipart uploads a large object in parts. A create-if-absent is
// decided by CompleteMultipartUpload with If-None-Match: *; a HeadObject
// first spares uploading the parts when the key already exists.
func (s *s3Store) putMultipart(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (err error) {
	if opts.IfAbsent && !s.noHeadCheck {
		if _, err := s.Head(ctx, key); err == nil {
			return fmt.Errorf("objstore: s3 put %s: %w", key, ErrPrecondition)
		} else if !errors.Is(err, ErrNotExist) {
			return err
		}
	}
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), Metadata: opts.Metadata,
	})
	if err != nil {
		return s.mapErr("put", key, err)
	}
	uploadID := created.UploadId
	defer func() {
		if err == nil {
			return
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s3AbortTimeout)
		defer cancel()
		_, _ = s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: uploadID,
		})
	}()

	partSize := s.partSize
	if size/partSize >= s3MaxParts {
		partSize = size/(s3MaxParts-1) + 1
	}
	nparts := int((size + partSize - 1) / partSize)
	parts := make([]types.CompletedPart, nparts)

	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(e error) {
		errOnce.Do(func() { firstErr = e; cancel() })
	}
	// Each token is a part buffer (allocated on first use) and a permit.
	tokens := make(chan []byte, s.concurrency)
	for range s.concurrency {
		tokens <- nil
	}
	ra, base, random := readerAtOf(r)
	for i := 0; i < nparts && pctx.Err() == nil; i++ {
		var buf []byte
		select {
		case buf = <-tokens:
		case <-pctx.Done():
			continue
		}
		off := int64(i) * partSize
		n := min(partSize, size-off)
		var body io.ReadSeeker
		if random {
			body = io.NewSectionReader(ra, base+off, n)
		} else {
			if buf == nil {
				buf = make([]byte, partSize)
			}
			b, err := bodyOf(r, n, buf)
			if err != nil {
				tokens <- buf
				fail(fmt.Errorf("objstore: s3 put %s: read part %d: %w", key, i+1, err))
				break
			}
			body = b
		}
		wg.Add(1)
		go func(i int, body io.ReadSeeker, n int64, buf []byte) {
			defer wg.Done()
			defer func() { tokens <- buf }()
			out, err := s.client.UploadPart(pctx, &s3.UploadPartInput{
				Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: uploadID,
				PartNumber: aws.Int32(int32(i + 1)), Body: body, ContentLength: aws.Int64(n),
			})
			if err != nil {
				fail(s.mapErr("put", key, err))
				return
			}
			parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))}
		}(i, body, n, buf)
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: s3 put %s: %w", key, err)
	}
	in := &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	if opts.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	if _, err := s.client.CompleteMultipartUpload(ctx, in); err != nil {
		return s.mapErr("put", key, err)
	}
	return nil
}

func (s *s3Store) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return nil, ObjectInfo{}, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, ObjectInfo{}, s.mapErr("get", key, err)
	}
	info := ObjectInfo{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		LastModified: aws.ToTime(out.LastModified),
		Metadata:     lowerMetadata(out.Metadata),
	}
	return out.Body, info, nil
}

func (s *s3Store) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := checkRange(key, offset); err != nil {
		return nil, err
	}
	if length == 0 {
		if _, err := s.Head(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	rng := fmt.Sprintf("bytes=%d-", offset)
	if length > 0 {
		rng = fmt.Sprintf("bytes=%d-%d", offset, offset+length-1)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), Range: aws.String(rng),
	})
	if err != nil {
		var re interface{ HTTPStatusCode() int }
		if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable {
			// The object exists but the range starts at or past its end.
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, s.mapErr("getrange", key, err)
	}
	return out.Body, nil
}

func (s *s3Store) Head(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return ObjectInfo{}, s.mapErr("head", key, err)
	}
	return ObjectInfo{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		LastModified: aws.ToTime(out.LastModified),
		Metadata:     lowerMetadata(out.Metadata),
	}, nil
}

func (s *s3Store) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(prefix),
	})
	var out []ObjectInfo
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.mapErr("list", prefix, err)
		}
		for _, o := range page.Contents {
			out = append(out, ObjectInfo{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), LastModified: aws.ToTime(o.LastModified)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *s3Store) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		if err := s.mapErr("delete", key, err); errors.Is(err, ErrNotExist) {
			return nil
		} else {
			return err
		}
	}
	return nil
}

// Close closes the backend's connections.
func (s *s3Store) Close() error {
	s.conns.closeAll()
	return nil
}

// lowerMetadata returns md with lowercase keys, or nil when empty.
func lowerMetadata(md map[string]string) map[string]string {
	if len(md) == 0 {
		return nil
	}
	out := make(map[string]string, len(md))
	for k, v := range md {
		out[strings.ToLower(k)] = v
	}
	return out
}
