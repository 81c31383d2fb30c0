package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Multipart settings of the minio backend (minio-go switches to multipart
// above 16 MiB by itself).
const (
	minioPartSize   = 8 << 20
	minioNumThreads = 4
)

type minioStore struct {
	client *minio.Client
	bucket string
	where  string // "minio://host/bucket" for error messages; never a secret
	conns  *connTracker
}

var _ Store = (*minioStore)(nil)

// minioCredentials returns the access and secret key of the minio backend:
// MINIO_ACCESS_KEY/MINIO_SECRET_KEY, else AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN if set).
func minioCredentials() (access, secret, token string, ok bool) {
	if a, s := os.Getenv("MINIO_ACCESS_KEY"), os.Getenv("MINIO_SECRET_KEY"); a != "" && s != "" {
		return a, s, "", true
	}
	if a, s := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"); a != "" && s != "" {
		return a, s, os.Getenv("AWS_SESSION_TOKEN"), true
	}
	return "", "", "", false
}

// newMinio builds the minio-go backend for u.
func newMinio(u remoteURL) (*minioStore, error) {
	where := "minio://" + u.host + "/" + u.bucket
	access, secret, token, ok := minioCredentials()
	if !ok {
		return nil, fmt.Errorf("objstore: open %s: no credentials: set MINIO_ACCESS_KEY and MINIO_SECRET_KEY, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", where)
	}
	region := u.region
	if region == "" {
		// Naming the region spares a GetBucketLocation round trip.
		region = "us-east-1"
	}
	conns := newConnTracker()
	client, err := minio.New(u.host, &minio.Options{
		Creds:      credentials.NewStaticV4(access, secret, token),
		Secure:     u.secure,
		Transport:  conns.newTransport(),
		Region:     region,
		MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("objstore: open %s: %w", where, err)
	}
	return &minioStore{client: client, bucket: u.bucket, where: where, conns: conns}, nil
}

// mapErr turns a minio-go error into the package's error vocabulary.
func (s *minioStore) mapErr(op, key string, err error) error {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return fmt.Errorf("objstore: minio %s %s (%s): %w", op, key, s.where, err)
	}
	switch {
	case er.Code == "NoSuchKey" || er.Code == "NotFound" ||
		er.StatusCode == http.StatusNotFound && er.Code != "NoSuchBucket" && er.Code != "NoSuchUpload":
		return fmt.Errorf("objstore: minio %s %s: %w", op, key, ErrNotExist)
	case er.Code == "PreconditionFailed" || er.StatusCode == http.StatusPreconditionFailed:
		return fmt.Errorf("objstore: minio %s %s: %w", op, key, ErrPrecondition)
	case er.StatusCode != 0:
		return &StatusError{Op: op, Key: key, Code: er.StatusCode, Err: fmt.Errorf("%s: %w", s.where, err)}
	}
	return fmt.Errorf("objstore: minio %s %s (%s): %w", op, key, s.where, err)
}

func (s *minioStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) error {
	if err := checkPut(key, size, opts); err != nil {
		return err
	}
	po := minio.PutObjectOptions{
		UserMetadata: opts.Metadata,
		PartSize:     minioPartSize,
		NumThreads:   minioNumThreads,
	}
	if opts.IfAbsent {
		po.SetMatchETagExcept("*")
	}
	if opts.IfAbsent && size > minioPartSize {
		// minio-go's PutObject drops If-None-Match from the
		// CompleteMultipartUpload of a multipart upload, so two overlapping
		// creates would both succeed; drive the upload through minio.Core,
		// which sends the condition on the complete call.
		return s.putMultipartIfAbsent(ctx, key, r, size, po)
	}
	cr := &countReader{r: r}
	body := io.Reader(cr)
	if ra, base, ok := readerAtOf(r); ok {
		// Random access lets minio-go upload parts in parallel without
		// buffering them.
		sr := io.NewSectionReader(ra, base, size)
		body, cr = sr, nil
	}
	info, err := s.client.PutObject(ctx, s.bucket, key, body, size, po)
	if err != nil {
		return s.mapErr("put", key, err)
	}
	if cr != nil && cr.n < size || info.Size != size {
		// minio-go stops at EOF; the object must not stay short.
		_ = s.client.RemoveObject(context.WithoutCancel(ctx), s.bucket, key, minio.RemoveObjectOptions{})
		return fmt.Errorf("objstore: minio put %s: body ended after %d of %d bytes: %w", key, info.Size, size, io.ErrUnexpectedEOF)
	}
	return nil
}

// putMultipartIfAbsent uploads size bytes of r in minioPartSize parts and
// completes the upload with the create-if-absent condition of po, so that of
// concurrent creates exactly one wins. A failed upload is aborted.
func (s *minioStore) putMultipartIfAbsent(ctx context.Context, key string, r io.Reader, size int64, po minio.PutObjectOptions) error {
	core := minio.Core{Client: s.client}
	uploadID, err := core.NewMultipartUpload(ctx, s.bucket, key, po)
	if err != nil {
		return s.mapErr("put", key, err)
	}
	done := false
	defer func() {
		if !done {
			_ = core.AbortMultipartUpload(context.WithoutCancel(ctx), s.bucket, key, uploadID)
		}
	}()
	ra, base, random := readerAtOf(r)
	var buf []byte
	if !random {
		buf = make([]byte, minioPartSize)
	}
	var parts []minio.CompletePart
	for off, n := int64(0), 1; off < size; n++ {
		want := min(int64(minioPartSize), size-off)
		var part io.Reader
		if random {
			part = io.NewSectionReader(ra, base+off, want)
		} else {
			if _, err := io.ReadFull(r, buf[:want]); err != nil {
				return fmt.Errorf("objstore: minio put %s: body ended after %d of %d bytes: %w", key, off, size, io.ErrUnexpectedEOF)
			}
			part = bytes.NewReader(buf[:want])
		}
		p, err := core.PutObjectPart(ctx, s.bucket, key, uploadID, n, part, want, minio.PutObjectPartOptions{})
		if err != nil {
			return s.mapErr("put", key, err)
		}
		parts = append(parts, minio.CompletePart{PartNumber: n, ETag: p.ETag})
		off += want
	}
	info, err := core.CompleteMultipartUpload(ctx, s.bucket, key, uploadID, parts, po)
	if err != nil {
		return s.mapErr("put", key, err)
	}
	done = true
	if info.Size != 0 && info.Size != size {
		return fmt.Errorf("objstore: minio put %s: stored %d of %d bytes: %w", key, info.Size, size, io.ErrUnexpectedEOF)
	}
	return nil
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// open starts a GET and waits for the response headers, so that a missing
// key is reported here and never only at the first Read. Errors are
// minio-go's, for the caller to map.
func (s *minioStore) open(ctx context.Context, key string, opts minio.GetObjectOptions) (*minio.Object, minio.ObjectInfo, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		return nil, minio.ObjectInfo{}, err
	}
	st, err := obj.Stat()
	if err != nil {
		_ = obj.Close()
		return nil, minio.ObjectInfo{}, err
	}
	return obj, st, nil
}

func (s *minioStore) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return nil, ObjectInfo{}, err
	}
	obj, st, err := s.open(ctx, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, ObjectInfo{}, s.mapErr("get", key, err)
	}
	return minioReader{obj, s, key}, minioInfo(key, st), nil
}

// minioReader maps the errors of reading an object's body like those of
// the request: minio-go sends the GET lazily, so an object deleted after
// Stat surfaces at the first Read, and must still match ErrNotExist.
type minioReader struct {
	*minio.Object
	s   *minioStore
	key string
}

func (r minioReader) Read(p []byte) (int, error) {
	n, err := r.Object.Read(p)
	if err != nil && err != io.EOF {
		err = r.s.mapErr("get", r.key, err)
		if errors.Is(err, ErrPrecondition) {
			// minio-go pins the ETag it saw: the object was replaced while
			// it was read. Reading it again gives the new one.
			err = fmt.Errorf("objstore: minio get %s: the object changed while it was read: %w", r.key, ErrVanished)
		}
	}
	return n, err
}

func (s *minioStore) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := checkRange(key, offset); err != nil {
		return nil, err
	}
	if length == 0 {
		if _, err := s.Head(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	var opts minio.GetObjectOptions
	var err error
	switch {
	case length > 0:
		err = opts.SetRange(offset, offset+length-1)
	case offset > 0:
		err = opts.SetRange(offset, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("objstore: minio getrange %s: %w", key, err)
	}
	obj, _, err := s.open(ctx, key, opts)
	if err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && (er.StatusCode == http.StatusRequestedRangeNotSatisfiable || er.Code == "InvalidRange") {
			// The object exists but the range starts at or past its end.
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, s.mapErr("getrange", key, err)
	}
	return minioReader{obj, s, key}, nil
}

func (s *minioStore) Head(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	st, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, s.mapErr("head", key, err)
	}
	return minioInfo(key, st), nil
}

// minioInfo converts minio-go's object info, taking user metadata from the
// X-Amz-Meta-* response headers.
func minioInfo(key string, st minio.ObjectInfo) ObjectInfo {
	info := ObjectInfo{Key: key, Size: st.Size, LastModified: st.LastModified}
	const metaPrefix = "x-amz-meta-"
	for k, vs := range st.Metadata {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, metaPrefix) && len(vs) > 0 {
			if info.Metadata == nil {
				info.Metadata = make(map[string]string)
			}
			info.Metadata[lk[len(metaPrefix):]] = vs[0]
		}
	}
	return info
}

func (s *minioStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's listing goroutine on an early return
	var out []ObjectInfo
	for o := range s.client.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, s.mapErr("list", prefix, o.Err)
		}
		out = append(out, ObjectInfo{Key: o.Key, Size: o.Size, LastModified: o.LastModified})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *minioStore) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		if err := s.mapErr("delete", key, err); !errors.Is(err, ErrNotExist) {
			return err
		}
	}
	return nil
}

// Close closes the backend's connections.
func (s *minioStore) Close() error {
	s.conns.closeAll()
	return nil
}
