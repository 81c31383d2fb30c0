package manifest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Errors of the manifest package; compare with errors.Is. A manifest that
// cannot be trusted (bad JSON, checksum, content) is corruption: an
// *engines.CorruptionError naming the object, matching engines.ErrCorrupt.
var (
	// ErrFormat: the manifest has a format version this build cannot read.
	ErrFormat = errors.New("manifest: unsupported format version")
	// ErrInvalid: a manifest's content breaks a rule of the schema (see
	// Manifest.Validate). Decode reports it as corruption (an
	// *engines.CorruptionError) that also matches ErrInvalid.
	ErrInvalid = errors.New("manifest: invalid manifest")
	// ErrFenced: another writer committed this version or a later one; the
	// writer that gets it must stop committing.
	ErrFenced = errors.New("manifest: fenced by another writer")
	// ErrVersionNotFound: the requested version does not exist.
	ErrVersionNotFound = errors.New("manifest: version not found")
	// ErrNoVersions: the store holds no manifest at all.
	ErrNoVersions = errors.New("manifest: no versions in the store")
)

// VersionNotFoundError reports a version that does not exist, with the
// versions around it so that the message can suggest one. It matches
// ErrVersionNotFound, and also ErrNoVersions when the store has none.
type VersionNotFoundError struct {
	Version uint64
	Below   uint64 // nearest existing version below Version; 0 = none
	Above   uint64 // nearest existing version above Version; 0 = none
	Latest  uint64 // highest existing version; 0 = the store has none
}

func (e *VersionNotFoundError) Error() string {
	if e.Latest == 0 {
		return fmt.Sprintf("manifest: version %d does not exist; the store has no versions", e.Version)
	}
	var near []string
	if e.Below != 0 {
		near = append(near, strconv.FormatUint(e.Below, 10))
	}
	if e.Above != 0 {
		near = append(near, strconv.FormatUint(e.Above, 10))
	}
	return fmt.Sprintf("manifest: version %d does not exist; nearest: %s (latest %d)",
		e.Version, strings.Join(near, ", "), e.Latest)
}

// Is makes errors.Is(err, ErrVersionNotFound) true, and errors.Is(err,
// ErrNoVersions) when the store holds no version.
func (e *VersionNotFoundError) Is(target error) bool {
	return target == ErrVersionNotFound || (target == ErrNoVersions && e.Latest == 0)
}
