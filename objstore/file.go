package objstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// tmpPrefix starts the name of every temporary file the file store writes.
// Listings skip such files, and keys with a segment starting with it are
// refused, so a temporary file is never mistaken for an object.
const tmpPrefix = ".tierkv-tmp-"

// metaXattr is the extended attribute holding an object's user metadata as
// a JSON object. It is set on the temporary file before that file is linked
// or renamed into place, so data and metadata appear together atomically.
// On a file system without user xattrs no metadata is stored.
const metaXattr = "user.tierkv.meta"

// TempRemover is implemented by stores that can leave temporary files
// behind when an upload is killed (the file backend). Such files are never
// listed as objects, so only RemoveTemps collects them.
type TempRemover interface {
	// RemoveTemps removes the store's temporary files last modified before
	// olderThan and returns them (Key is the temporary file's path relative
	// to the root, with "/" separators). With dryRun it only returns them.
	// Pass a cutoff older than the slowest upload: a Put whose temporary
	// file is removed fails, it never half-writes an object.
	RemoveTemps(ctx context.Context, olderThan time.Time, dryRun bool) ([]ObjectInfo, error)
}

// NewFile returns a store keeping each object as a file under the absolute
// directory root. The root is created by the first Put, never by NewFile or
// a read: reading a root that does not exist finds no objects. See the
// package documentation for the layout and the durability guarantees.
func NewFile(root string) (Store, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("%w: file store root %q is not an absolute path", ErrInvalidURL, root)
	}
	root = filepath.Clean(root)
	fi, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("objstore: open file store root: %w", err)
	case !fi.IsDir():
		return nil, fmt.Errorf("objstore: open file store root %s: not a directory", root)
	}
	return &fileStore{root: root}, nil
}

type fileStore struct {
	root string
}

var (
	_ Store       = (*fileStore)(nil)
	_ TempRemover = (*fileStore)(nil)
)

// ensureRoot creates the root directory and its missing parents, fsyncing
// the directory that received the root.
func (s *fileStore) ensureRoot() error {
	fi, err := os.Stat(s.root)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("file store root %s is not a directory", s.root)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		return fmt.Errorf("create file store root: %w", err)
	}
	return syncDir(filepath.Dir(s.root))
}

// path maps a validated key to its file.
func (s *fileStore) path(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	for seg := range strings.SplitSeq(key, "/") {
		if strings.HasPrefix(seg, tmpPrefix) {
			return "", fmt.Errorf("%w: segment %q of key %q uses the file store's reserved prefix %q", ErrInvalidKey, seg, key, tmpPrefix)
		}
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

func (s *fileStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (err error) {
	if err := checkPut(key, size, opts); err != nil {
		return err
	}
	path, err := s.path(key)
	if err != nil {
		return err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%w: file put %s: keys exist below it, so it cannot be an object", ErrInvalidKey, key)
		}
		if opts.IfAbsent {
			return fmt.Errorf("objstore: file put %s: %w", key, ErrPrecondition)
		}
	}
	if err := s.ensureRoot(); err != nil {
		return fmt.Errorf("objstore: file put %s: %w", key, err)
	}
	dir := filepath.Dir(path)
	if err := mkdirAllSync(s.root, dir); err != nil {
		return fmt.Errorf("objstore: file put %s: %w", key, err)
	}
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("objstore: file put %s: create temporary file: %w", key, err)
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			_ = f.Close()
		}
		if tmp != "" {
			_ = os.Remove(tmp)
		}
	}()
	n, err := io.CopyN(f, ctxReader{ctx: ctx, r: r}, size)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("body ended after %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
		}
		return fmt.Errorf("objstore: file put %s: write: %w", key, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("objstore: file put %s: %w", key, err)
	}
	if len(opts.Metadata) > 0 {
		js, err := json.Marshal(opts.Metadata)
		if err != nil {
			return fmt.Errorf("objstore: file put %s: encode metadata: %w", key, err)
		}
		// Without user xattrs the object is stored without metadata.
		if err := setXattr(f, metaXattr, js); err != nil && !errors.Is(err, errors.ErrUnsupported) {
			return fmt.Errorf("objstore: file put %s: store metadata in extended attribute %s: %w", key, metaXattr, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("objstore: file put %s: sync: %w", key, err)
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		return fmt.Errorf("objstore: file put %s: close: %w", key, cerr)
	}
	if opts.IfAbsent {
		// link(2) fails with EEXIST when the name exists: the atomic
		// create-if-absent. The temporary name is removed by the defer.
		if err := os.Link(tmp, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("objstore: file put %s: %w", key, ErrPrecondition)
			}
			return fmt.Errorf("objstore: file put %s: link into place: %w", key, err)
		}
	} else {
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("objstore: file put %s: rename into place: %w", key, err)
		}
		tmp = ""
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("objstore: file put %s: sync directory: %w", key, err)
	}
	return nil
}

// open opens key's file for reading, mapping absence to ErrNotExist.
func (s *fileStore) open(ctx context.Context, op, key string) (*os.File, os.FileInfo, error) {
	path, err := s.path(key)
	if err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("objstore: file %s %s: %w", op, key, err)
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
			return nil, nil, fmt.Errorf("objstore: file %s %s: %w", op, key, ErrNotExist)
		}
		return nil, nil, fmt.Errorf("objstore: file %s %s: %w", op, key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("objstore: file %s %s: %w", op, key, err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, nil, fmt.Errorf("objstore: file %s %s: %w", op, key, ErrNotExist)
	}
	return f, fi, nil
}

// info builds the ObjectInfo of an open object file, metadata included.
func (s *fileStore) info(f *os.File, fi os.FileInfo, key string) (ObjectInfo, error) {
	info := ObjectInfo{Key: key, Size: fi.Size(), LastModified: fi.ModTime()}
	js, err := getXattr(f, metaXattr)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("objstore: file read metadata of %s: %w", key, err)
	}
	if js != nil {
		if err := json.Unmarshal(js, &info.Metadata); err != nil {
			return ObjectInfo{}, fmt.Errorf("objstore: file decode metadata of %s: %w", key, err)
		}
	}
	return info, nil
}

func (s *fileStore) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	f, fi, err := s.open(ctx, "get", key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	info, err := s.info(f, fi, key)
	if err != nil {
		_ = f.Close()
		return nil, ObjectInfo{}, err
	}
	return f, info, nil
}

func (s *fileStore) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := checkRange(key, offset); err != nil {
		return nil, err
	}
	f, fi, err := s.open(ctx, "getrange", key)
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if offset > size {
		offset = size
	}
	n := size - offset
	if length >= 0 && length < n {
		n = length
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, offset, n), f}, nil
}

func (s *fileStore) Head(ctx context.Context, key string) (ObjectInfo, error) {
	f, fi, err := s.open(ctx, "head", key)
	if err != nil {
		return ObjectInfo{}, err
	}
	defer f.Close()
	return s.info(f, fi, key)
}

func (s *fileStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	// Walk only the deepest directory the prefix names.
	start := s.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = filepath.Join(s.root, filepath.FromSlash(prefix[:i]))
	}
	var out []ObjectInfo
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), tmpPrefix) || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while listing
		}
		if err != nil {
			return err
		}
		out = append(out, ObjectInfo{Key: key, Size: fi.Size(), LastModified: fi.ModTime()})
		return nil
	})
	if err != nil && !errors.Is(err, filepath.SkipDir) {
		return nil, fmt.Errorf("objstore: file list %s: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *fileStore) Delete(ctx context.Context, key string) error {
	path, err := s.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: file delete %s: %w", key, err)
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) || err == nil && fi.IsDir() {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("objstore: file delete %s: %w", key, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("objstore: file delete %s: sync directory: %w", key, err)
	}
	return nil
}

// RemoveTemps implements TempRemover.
func (s *fileStore) RemoveTemps(ctx context.Context, olderThan time.Time, dryRun bool) ([]ObjectInfo, error) {
	var out []ObjectInfo
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == s.root && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !strings.HasPrefix(d.Name(), tmpPrefix) || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // its Put finished meanwhile
		}
		if err != nil {
			return err
		}
		if !fi.ModTime().Before(olderThan) {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		if !dryRun {
			if err := os.Remove(p); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if err := syncDir(filepath.Dir(p)); err != nil {
				return fmt.Errorf("sync directory: %w", err)
			}
		}
		out = append(out, ObjectInfo{Key: filepath.ToSlash(rel), Size: fi.Size(), LastModified: fi.ModTime()})
		return nil
	})
	if err != nil && !errors.Is(err, filepath.SkipDir) {
		return out, fmt.Errorf("objstore: file remove temporary files: %w", err)
	}
	return out, nil
}

// Close is a no-op: the store holds no open files between calls.
func (s *fileStore) Close() error { return nil }

// mkdirAllSync creates dir and its missing parents below root, fsyncing each
// parent whose entries changed so the new directories survive a crash.
func mkdirAllSync(root, dir string) error {
	if dir == root || len(dir) < len(root) {
		return nil
	}
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			rel, _ := filepath.Rel(root, dir)
			return fmt.Errorf("%w: %q is an object, so it cannot also hold keys below it", ErrInvalidKey, filepath.ToSlash(rel))
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if err := mkdirAllSync(root, parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		if errors.Is(err, errNotDir) {
			return fmt.Errorf("%w: a parent of %q is an object", ErrInvalidKey, dir)
		}
		return fmt.Errorf("create directory: %w", err)
	}
	return syncDir(parent)
}

// syncDir fsyncs a directory so that entries created in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
