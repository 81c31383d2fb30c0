package objstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// NewMem returns a new, private in-process store. Objects live until the
// store is garbage collected; Close is a no-op.
func NewMem() Store { return newMemStore() }

// memRegistry holds the named stores of mem:// URLs for the life of the
// process, so two Opens of the same name share objects.
var memRegistry struct {
	sync.Mutex
	stores map[string]*memStore
}

// namedMem returns the process-wide store called name, creating it.
func namedMem(name string) *memStore {
	memRegistry.Lock()
	defer memRegistry.Unlock()
	if memRegistry.stores == nil {
		memRegistry.stores = make(map[string]*memStore)
	}
	s, ok := memRegistry.stores[name]
	if !ok {
		s = newMemStore()
		memRegistry.stores[name] = s
	}
	return s
}

type memObject struct {
	data     []byte // never modified after the Put that made it
	modTime  time.Time
	metadata map[string]string
}

type memStore struct {
	mu struct {
		sync.Mutex
		objects map[string]*memObject
	}
}

var _ Store = (*memStore)(nil)

func newMemStore() *memStore {
	s := &memStore{}
	s.mu.objects = make(map[string]*memObject)
	return s
}

func (s *memStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) error {
	if err := checkPut(key, size, opts); err != nil {
		return err
	}
	if opts.IfAbsent && s.exists(key) {
		// Fail before reading the body; the check under the lock below is
		// the one that counts.
		return fmt.Errorf("objstore: mem put %s: %w", key, ErrPrecondition)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return fmt.Errorf("objstore: mem put %s: read body: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: mem put %s: %w", key, err)
	}
	obj := &memObject{data: data, modTime: time.Now(), metadata: copyMetadata(opts.Metadata)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.mu.objects[key]; ok && opts.IfAbsent {
		return fmt.Errorf("objstore: mem put %s: %w", key, ErrPrecondition)
	}
	s.mu.objects[key] = obj
	return nil
}

func (s *memStore) exists(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.mu.objects[key]
	return ok
}

func (s *memStore) lookup(ctx context.Context, op, key string) (*memObject, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("objstore: mem %s %s: %w", op, key, err)
	}
	s.mu.Lock()
	obj, ok := s.mu.objects[key]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("objstore: mem %s %s: %w", op, key, ErrNotExist)
	}
	return obj, nil
}

func (obj *memObject) info(key string) ObjectInfo {
	return ObjectInfo{Key: key, Size: int64(len(obj.data)), LastModified: obj.modTime, Metadata: copyMetadata(obj.metadata)}
}

func (s *memStore) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	obj, err := s.lookup(ctx, "get", key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	return io.NopCloser(bytes.NewReader(obj.data)), obj.info(key), nil
}

func (s *memStore) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := checkRange(key, offset); err != nil {
		return nil, err
	}
	obj, err := s.lookup(ctx, "getrange", key)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(clip(obj.data, offset, length))), nil
}

// clip returns data[offset:offset+length] clipped to data's bounds; a
// negative length means to the end.
func clip(data []byte, offset, length int64) []byte {
	n := int64(len(data))
	if offset >= n {
		return nil
	}
	end := n
	if length >= 0 && length < n-offset {
		end = offset + length
	}
	return data[offset:end]
}

func (s *memStore) Head(ctx context.Context, key string) (ObjectInfo, error) {
	obj, err := s.lookup(ctx, "head", key)
	if err != nil {
		return ObjectInfo{}, err
	}
	return obj.info(key), nil
}

func (s *memStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("objstore: mem list %s: %w", prefix, err)
	}
	s.mu.Lock()
	var out []ObjectInfo
	for k, obj := range s.mu.objects {
		if strings.HasPrefix(k, prefix) {
			out = append(out, ObjectInfo{Key: k, Size: int64(len(obj.data)), LastModified: obj.modTime})
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *memStore) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: mem delete %s: %w", key, err)
	}
	s.mu.Lock()
	delete(s.mu.objects, key)
	s.mu.Unlock()
	return nil
}

// Close is a no-op: a named store keeps its objects for later Opens.
func (s *memStore) Close() error { return nil }
