package objstore

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// WithPrefix returns a Store that keeps every key of s under prefix: Put of
// "a" on the result writes prefix+"a" in s, and List strips the prefix again.
// A non-empty prefix gets a trailing "/" if it has none. It is how Open
// implements the prefix part of s3://, minio:// and mem:// URLs, and how a
// caller can give each partition its own prefix in one bucket. Closing the
// result closes s.
func WithPrefix(s Store, prefix string) (Store, error) {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return s, nil
	}
	if err := ValidateKey(prefix); err != nil {
		return nil, fmt.Errorf("objstore: use prefix %q: %w", prefix, err)
	}
	return &prefixStore{s: s, prefix: prefix + "/"}, nil
}

type prefixStore struct {
	s      Store
	prefix string
}

var _ Store = (*prefixStore)(nil)

func (p *prefixStore) full(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return p.prefix + key, nil
}

func (p *prefixStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) error {
	k, err := p.full(key)
	if err != nil {
		return err
	}
	return p.s.Put(ctx, k, r, size, opts)
}

func (p *prefixStore) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	k, err := p.full(key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	rc, info, err := p.s.Get(ctx, k)
	info.Key = key
	return rc, info, err
}

func (p *prefixStore) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	k, err := p.full(key)
	if err != nil {
		return nil, err
	}
	return p.s.GetRange(ctx, k, offset, length)
}

func (p *prefixStore) Head(ctx context.Context, key string) (ObjectInfo, error) {
	k, err := p.full(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	info, err := p.s.Head(ctx, k)
	info.Key = key
	return info, err
}

func (p *prefixStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	infos, err := p.s.List(ctx, p.prefix+prefix)
	if err != nil {
		return nil, err
	}
	for i := range infos {
		infos[i].Key = strings.TrimPrefix(infos[i].Key, p.prefix)
	}
	return infos, nil
}

func (p *prefixStore) Delete(ctx context.Context, key string) error {
	k, err := p.full(key)
	if err != nil {
		return err
	}
	return p.s.Delete(ctx, k)
}

func (p *prefixStore) Close() error { return p.s.Close() }
