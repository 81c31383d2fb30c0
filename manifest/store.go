package manifest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/objstore"
)

// ListVersions returns the versions of the manifests in s, ascending. Keys
// under manifests/ that ParseKey refuses (temporary or foreign objects) are
// skipped.
func ListVersions(ctx context.Context, s objstore.Store) ([]uint64, error) {
	vs, err := listVersions(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("manifest: list versions: %w", err)
	}
	return vs, nil
}

// listVersions is ListVersions with the store's error unwrapped, for callers
// that say what they were doing themselves.
func listVersions(ctx context.Context, s objstore.Store) ([]uint64, error) {
	objs, err := s.List(ctx, ManifestPrefix)
	if err != nil {
		return nil, err
	}
	vs := make([]uint64, 0, len(objs))
	for _, o := range objs {
		if v, ok := ParseKey(o.Key); ok {
			vs = append(vs, v)
		}
	}
	slices.Sort(vs)
	return slices.Compact(vs), nil
}

// Load reads and decodes manifest version v and checks that it records
// version v. A missing version returns a *VersionNotFoundError (matching
// ErrVersionNotFound) whose message names the nearest existing versions.
func Load(ctx context.Context, s objstore.Store, v uint64) (*Manifest, error) {
	m, err := load(ctx, s, v)
	if errors.Is(err, objstore.ErrNotExist) {
		return nil, notFound(ctx, s, v)
	}
	return m, err
}

// load is Load without the not-found diagnosis: a missing object returns an
// error matching objstore.ErrNotExist.
func load(ctx context.Context, s objstore.Store, v uint64) (*Manifest, error) {
	if v == 0 {
		return nil, objstore.ErrNotExist
	}
	key := Key(v)
	rc, _, err := s.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("manifest: load %s: %w", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("manifest: load %s: %w", key, err)
	}
	m, err := decode(key, b)
	if err != nil {
		return nil, err
	}
	if m.Version != v {
		return nil, engines.Corruptf(key, engines.UnknownOffset, "object of version %d records version %d", v, m.Version)
	}
	return m, nil
}

// notFound builds the *VersionNotFoundError for v from a listing. If the
// listing itself fails, the error still matches ErrVersionNotFound.
func notFound(ctx context.Context, s objstore.Store, v uint64) error {
	vs, err := listVersions(ctx, s)
	if err != nil {
		return fmt.Errorf("manifest: version %d does not exist (%w); list versions: %w", v, ErrVersionNotFound, err)
	}
	return VersionNotFound(v, vs)
}

// VersionNotFound builds the error for version v, missing from versions
// (ascending, as ListVersions returns them): the nearest versions below and
// above v, and the latest. v itself in versions (created since the failed
// read) is skipped.
func VersionNotFound(v uint64, versions []uint64) *VersionNotFoundError {
	e := &VersionNotFoundError{Version: v}
	if len(versions) == 0 {
		return e
	}
	e.Latest = versions[len(versions)-1]
	i, found := slices.BinarySearch(versions, v)
	if i > 0 {
		e.Below = versions[i-1]
	}
	if found {
		i++
	}
	if i < len(versions) {
		e.Above = versions[i]
	}
	return e
}

// Latest loads the manifest with the highest version. An empty store returns
// an error matching ErrNoVersions. A latest manifest that fails its checks is
// an error, never silently replaced by an older version.
func Latest(ctx context.Context, s objstore.Store) (*Manifest, error) {
	for attempt := 1; ; attempt++ {
		vs, err := ListVersions(ctx, s)
		if err != nil {
			return nil, err
		}
		if len(vs) == 0 {
			return nil, ErrNoVersions
		}
		m, err := load(ctx, s, vs[len(vs)-1])
		if errors.Is(err, objstore.ErrNotExist) && attempt < 3 {
			// Deleted between the listing and the read (only a version that is
			// no longer the latest can be forgotten): list again.
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			continue
		}
		return m, err
	}
}

// commitIDBytes is the number of random bytes in a commit id.
const commitIDBytes = 8

// NewID returns n random bytes (crypto/rand) as 2n lowercase hex digits: the
// one generator of tierkv's random identities (commit ids, store ids, writer
// nonces).
func NewID(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails; it crashes the program if the OS has no randomness
	return hex.EncodeToString(b)
}

// withdrawIfOvertaken closes the one window the listing before the create
// leaves open: a writer paused between that listing and its create can land
// in a gap that Forget left below the latest version, and create-if-absent
// cannot see that. After the create the versions are listed again; if one
// above m exists, m is stale: it is deleted (it is ours: we just created it)
// and the commit reports ErrFenced. A reader listing in between may see the
// stale version, never as the latest. If the confirming listing fails, the
// error is returned with m in place; a retry of Commit with the same m finds
// it, recognises it as ours and confirms again.
func withdrawIfOvertaken(ctx context.Context, s objstore.Store, m *Manifest) error {
	vs, err := listVersions(ctx, s)
	if err != nil {
		return fmt.Errorf("manifest: commit version %d: confirm: list versions: %w", m.Version, err)
	}
	n := len(vs)
	if n == 0 || vs[n-1] <= m.Version {
		return nil
	}
	if err := s.Delete(ctx, Key(m.Version)); err != nil {
		return fmt.Errorf("manifest: commit version %d: withdraw it after version %d was found above it: %w", m.Version, vs[n-1], err)
	}
	return fmt.Errorf("%w: commit version %d: version %d already exists above it (the version was free only because Forget deleted it); withdrawn", ErrFenced, m.Version, vs[n-1])
}

// Commit creates manifest m.Version with create-if-absent, following the
// protocol in the package documentation. Every run m names must already be
// durable in s. Commit fills in m's FormatVersion, CommitID and Created when
// they are zero (and what Encode fills in), so a retry after an ambiguous
// failure must pass the same *Manifest. It returns nil if the manifest is in
// place (including when an earlier attempt of ours created it), an error
// matching ErrFenced if another writer holds this version or a later one, and
// otherwise an error after which the outcome is unknown and a retry is safe.
func Commit(ctx context.Context, s objstore.Store, m *Manifest) error {
	if m.CommitID == "" {
		m.CommitID = NewID(commitIDBytes)
	}
	if m.Created.IsZero() {
		m.Created = time.Now().UTC()
	}
	body, err := Encode(m)
	if err != nil {
		return fmt.Errorf("manifest: commit version %d: %w", m.Version, err)
	}
	key := Key(m.Version)

	vs, err := listVersions(ctx, s)
	if err != nil {
		return fmt.Errorf("manifest: commit version %d: list versions: %w", m.Version, err)
	}
	if n := len(vs); n > 0 && vs[n-1] > m.Version {
		return fmt.Errorf("%w: commit version %d: version %d already exists", ErrFenced, m.Version, vs[n-1])
	}

	err = s.Put(ctx, key, bytes.NewReader(body), int64(len(body)), objstore.PutOptions{
		IfAbsent: true,
		Metadata: map[string]string{"crc32c": m.Checksum},
	})
	if err == nil {
		return withdrawIfOvertaken(ctx, s, m)
	}
	if !errors.Is(err, objstore.ErrPrecondition) {
		return fmt.Errorf("manifest: commit version %d: %w", m.Version, err)
	}
	existing, lerr := load(ctx, s, m.Version)
	switch {
	case lerr == nil && existing.CommitID == m.CommitID:
		return withdrawIfOvertaken(ctx, s, m) // our own earlier attempt succeeded
	case lerr == nil:
		return fmt.Errorf("%w: commit version %d: it was created by writer %q at %s (commit %s)",
			ErrFenced, m.Version, existing.WriterID, existing.Created.Format(time.RFC3339), existing.CommitID)
	case errors.Is(lerr, engines.ErrCorrupt) || errors.Is(lerr, ErrFormat):
		return fmt.Errorf("%w: commit version %d: it exists and is not ours: %w", ErrFenced, m.Version, lerr)
	case errors.Is(lerr, objstore.ErrNotExist):
		// Deleted between the create and the read: a retry starts over.
		return fmt.Errorf("manifest: commit version %d: %s existed at the create, not at the read back: %w", m.Version, key, objstore.ErrVanished)
	default:
		// Cannot tell whose it is yet; the caller may retry.
		return fmt.Errorf("manifest: commit version %d: read back existing manifest: %w", m.Version, lerr)
	}
}
