package tiered

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/tierkv/tierkv/engines"
)

// Local file names inside a store directory.
const (
	storeFileName     = "STORE"
	lockFileName      = "LOCK"
	restoringFileName = "RESTORING"
	genPrefix         = "data-"
)

// storeFormatVersion is the format of the STORE and RESTORING files.
const storeFormatVersion = 1

// maxStoreFileSize bounds what the local descriptor decoders accept.
const maxStoreFileSize = 1 << 20

// storeFile is the local state descriptor; see the package doc.
type storeFile struct {
	FormatVersion int               `json:"format_version"`
	StoreID       string            `json:"store_id"`
	Engine        string            `json:"engine"`
	Params        map[string]string `json:"params"`
	Version       uint64            `json:"version"`
	// RollbackOf is the remote's latest version when the local state was
	// rolled back to Version (0 = not a rollback): the next commit may
	// continue history from there while latest is still RollbackOf.
	RollbackOf uint64            `json:"rollback_of,omitempty"`
	Data       string            `json:"data"`
	WriterID   string            `json:"writer_id"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	// Pending is a commit of this state that was attempted and whose
	// outcome is not recorded yet: settled against the remote at Open.
	Pending  *pendingCommit `json:"pending,omitempty"`
	Checksum string         `json:"checksum"`
}

// pendingCommit names a manifest commit by version and commit id.
type pendingCommit struct {
	Version  uint64 `json:"version"`
	CommitID string `json:"commit_id"`
}

func (f *storeFile) checksum() *string { return &f.Checksum }

// validate checks the fields' shapes.
func (f *storeFile) validate() error {
	switch {
	case f.StoreID == "":
		return errors.New("empty store_id")
	case f.Engine == "" || strings.ContainsAny(f.Engine, "/\\ "):
		return fmt.Errorf("bad engine kind %q", f.Engine)
	case f.RollbackOf != 0 && f.RollbackOf <= f.Version:
		return fmt.Errorf("rollback_of %d is not above version %d", f.RollbackOf, f.Version)
	case f.Pending != nil && (f.Pending.Version <= f.Version || f.Pending.CommitID == ""):
		return fmt.Errorf("pending commit %+v is not above version %d", *f.Pending, f.Version)
	}
	if _, ok := parseGen(f.Data); !ok {
		return fmt.Errorf("data directory %q is not %sNNNNNN", f.Data, genPrefix)
	}
	return nil
}

// restoreMarker is the RESTORING file: written before a restore creates its
// staging generation, removed once the restore has committed (STORE names
// the new generation) and cleaned up. Version 0 marks the creation of a new
// store (Open writes it before the first generation, removes it after the
// first STORE). Its presence marks a restore that has
// not finished; it names every directory the restore may have written, so
// that only those are ever removed.
type restoreMarker struct {
	FormatVersion int    `json:"format_version"`
	Version       uint64 `json:"version"`
	// Previous is the generation STORE named when the restore began ("" =
	// none): removed once the restore committed.
	Previous string `json:"previous,omitempty"`
	// Staging are the generations restores built (the newest last): the one
	// that STORE names after the commit is kept, the others removed.
	Staging  []string `json:"staging"`
	Checksum string   `json:"checksum"`
}

func (m *restoreMarker) checksum() *string { return &m.Checksum }

func (m *restoreMarker) validate() error {
	if len(m.Staging) == 0 {
		return errors.New("no staging generation")
	}
	for _, g := range append(slices.Clone(m.Staging), m.Previous) {
		if _, ok := parseGen(g); !ok && g != "" {
			return fmt.Errorf("generation %q is not %sNNNNNN", g, genPrefix)
		}
	}
	return nil
}

// descriptor is a local JSON file with a checksum of its own.
type descriptor interface {
	checksum() *string
	validate() error
}

// checksumOf is the CRC-32C of the compact encoding of d with an empty
// checksum, 8 lowercase hex digits.
func checksumOf(d descriptor) (string, error) {
	p := d.checksum()
	saved := *p
	*p = ""
	b, err := json.Marshal(d)
	*p = saved
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%08x", crc32.Checksum(b, engines.CastagnoliTable)), nil
}

// encodeDescriptor fills in d's checksum and returns its indented encoding.
func encodeDescriptor(name string, d descriptor) ([]byte, error) {
	if err := d.validate(); err != nil {
		return nil, fmt.Errorf("encode %s: %w", name, err)
	}
	sum, err := checksumOf(d)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", name, err)
	}
	*d.checksum() = sum
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", name, err)
	}
	return append(b, '\n'), nil
}

// decodeDescriptor parses and checks a descriptor whose format version is
// *format. Every problem is a corruption error naming name.
func decodeDescriptor(name string, b []byte, d descriptor, format *int) error {
	if len(b) > maxStoreFileSize {
		return engines.Corruptf(name, maxStoreFileSize, "file of %d bytes is larger than %d", len(b), maxStoreFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(d); err != nil {
		var se *json.SyntaxError
		off := int64(engines.UnknownOffset)
		if errors.As(err, &se) {
			off = se.Offset
		}
		return engines.Corruptf(name, off, "not a valid %s file: %v", filepath.Base(name), err)
	}
	if dec.More() {
		return engines.Corruptf(name, dec.InputOffset(), "trailing data after the %s object", filepath.Base(name))
	}
	if *format != storeFormatVersion {
		return engines.Corruptf(name, engines.UnknownOffset, "format version %d, this build reads %d", *format, storeFormatVersion)
	}
	want, err := checksumOf(d)
	if err != nil {
		return engines.Corruptf(name, engines.UnknownOffset, "re-encode for checksum: %v", err)
	}
	if got := *d.checksum(); got != want {
		return engines.Corruptf(name, engines.UnknownOffset, "checksum %q, content hashes to %q", got, want)
	}
	if err := d.validate(); err != nil {
		return engines.Corruptf(name, engines.UnknownOffset, "%v", err)
	}
	return nil
}

// encodeStoreFile fills in the format version and checksum of f.
func encodeStoreFile(f storeFile) ([]byte, error) {
	f.FormatVersion = storeFormatVersion
	return encodeDescriptor(storeFileName, &f)
}

// decodeStoreFile parses and checks a STORE file.
func decodeStoreFile(b []byte) (storeFile, error) {
	var f storeFile
	if err := decodeDescriptor(storeFileName, b, &f, &f.FormatVersion); err != nil {
		return storeFile{}, err
	}
	return f, nil
}

// decodeRestoreMarker parses and checks a RESTORING file.
func decodeRestoreMarker(b []byte) (restoreMarker, error) {
	var m restoreMarker
	if err := decodeDescriptor(restoringFileName, b, &m, &m.FormatVersion); err != nil {
		return restoreMarker{}, err
	}
	return m, nil
}

// localDir is what a store directory holds, read once by inspectDir.
type localDir struct {
	fs     engines.FS
	dir    string
	exists bool
	store  *storeFile     // nil: no STORE
	marker *restoreMarker // nil: no RESTORING
	gens   []string       // data-NNNNNN directories present
	other  []string       // names that are not part of a store
}

// Errors about the local directory; compare with errors.Is.
var (
	// ErrNotAStore: the directory holds files that a tierkv store never
	// writes; it is not used, and nothing is created in it.
	ErrNotAStore = errors.New("tiered: not a tierkv store")
	// ErrRestoreUnfinished: the directory holds a restore that was
	// interrupted; only a restore (Open with a remote, RestoreTo, tierkv
	// restore) may continue it, reusing what it already downloaded.
	ErrRestoreUnfinished = errors.New("tiered: unfinished restore")
)

// RestoreUnfinishedError reports a directory holding an interrupted restore
// (see ErrRestoreUnfinished, which it matches).
type RestoreUnfinishedError struct {
	Dir     string
	Version uint64 // the version the restore was restoring
}

func (e *RestoreUnfinishedError) Error() string {
	return fmt.Sprintf("tiered: unfinished restore of version %d in %s (%s): finish it with 'tierkv restore' or Open with a remote; nothing else uses the directory meanwhile",
		e.Version, e.Dir, restoringFileName)
}

// Is makes errors.Is(err, ErrRestoreUnfinished) true.
func (e *RestoreUnfinishedError) Is(target error) bool { return target == ErrRestoreUnfinished }

// inspectDir reads the store directory dir. A missing directory is a new
// store. STORE and RESTORING must decode when present.
func inspectDir(fsys engines.FS, dir string) (*localDir, error) {
	d := &localDir{fs: fsys, dir: dir}
	ents, err := fsys.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return d, nil
	case err != nil:
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	d.exists = true
	for _, e := range ents {
		name := e.Name()
		switch {
		case name == lockFileName, name == storeFileName+engines.TempSuffix, name == restoringFileName+engines.TempSuffix:
		case name == storeFileName:
			f, err := readDescriptorFile(fsys, dir, name, decodeStoreFile)
			if err != nil {
				return nil, err
			}
			d.store = &f
		case name == restoringFileName:
			m, err := readDescriptorFile(fsys, dir, name, decodeRestoreMarker)
			if err != nil {
				return nil, err
			}
			d.marker = &m
		case isGen(name) && e.IsDir():
			d.gens = append(d.gens, name)
		default:
			d.other = append(d.other, name)
		}
	}
	return d, nil
}

// readDescriptorFile reads and decodes dir/name; errors name the file.
func readDescriptorFile[T any](fsys engines.FS, dir, name string, decode func([]byte) (T, error)) (T, error) {
	path := filepath.Join(dir, name)
	b, err := engines.ReadFile(fsys, path)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("read %s: %w", path, err)
	}
	v, err := decode(b)
	if err != nil {
		return v, fmt.Errorf("read local state in %s (restore it from the remote, or move the directory away): %w", dir, err)
	}
	return v, nil
}

// isNew reports whether the directory is nonexistent or holds nothing but a
// LOCK file (left by an open that failed): a new store may be created.
func (d *localDir) isNew() bool {
	return d.store == nil && d.marker == nil && len(d.gens) == 0 && len(d.other) == 0
}

// committedRestore reports whether RESTORING is left by a restore that did
// reach its commit point (STORE names its newest staging generation) but
// not its cleanup.
func (d *localDir) committedRestore() bool {
	return d.marker != nil && d.store != nil && d.store.Version == d.marker.Version &&
		slices.Contains(d.marker.Staging, d.store.Data)
}

// checkForeign refuses a directory holding files a store never writes.
func (d *localDir) checkForeign() error {
	if len(d.other) == 0 {
		return nil
	}
	shown := d.other
	if len(shown) > 3 {
		shown = append(slices.Clone(shown[:3]), "...")
	}
	return fmt.Errorf("%w: %s holds %s; use an empty or new directory", ErrNotAStore, d.dir, strings.Join(shown, ", "))
}

// checkOpenable returns the error for a directory that cannot be opened as
// it is, by anything but a restore: foreign files, an unfinished restore, a
// missing STORE or data directory. Call settleMarker first.
func (d *localDir) checkOpenable() error {
	if err := d.checkForeign(); err != nil {
		return err
	}
	if d.marker != nil && !d.committedRestore() {
		return &RestoreUnfinishedError{Dir: d.dir, Version: d.marker.Version}
	}
	return d.checkStore()
}

// checkStore checks that STORE exists (when anything else does) and that the
// data directory it names exists.
func (d *localDir) checkStore() error {
	if d.isNew() {
		return nil
	}
	if d.store == nil {
		return engines.Corruptf(filepath.Join(d.dir, storeFileName), engines.UnknownOffset,
			"missing, while %s holds %s: the local state cannot be identified; restore from the remote into another directory, nothing was changed", d.dir, strings.Join(d.gens, ", "))
	}
	if !slices.Contains(d.gens, d.store.Data) {
		return engines.Corruptf(filepath.Join(d.dir, d.store.Data), engines.UnknownOffset,
			"data directory named by %s is missing: restore from the remote into another directory, nothing was changed", storeFileName)
	}
	return nil
}

// settleMarker handles a RESTORING that needs no restore to go on with:
//   - left by a restore that reached its commit point (committedRestore) but
//     not its cleanup: the generations it names other than STORE's go;
//   - left by the creation of a new store (version 0) cut short before its
//     first STORE: its generation goes and the directory is new again.
//     Nothing was ever written there: Open writes STORE before it returns.
//
// Then the marker goes. Any other marker (an unfinished restore) stays.
func (d *localDir) settleMarker() error {
	var doomed []string
	switch {
	case d.committedRestore():
		for _, g := range append(slices.Clone(d.marker.Staging), d.marker.Previous) {
			if g != "" && g != d.store.Data {
				doomed = append(doomed, g)
			}
		}
	case d.store == nil && d.marker != nil && d.marker.Version == 0:
		doomed = d.marker.Staging
	default:
		return nil
	}
	if err := d.removeGens(doomed); err != nil {
		return err
	}
	if err := removeFile(d.fs, d.dir, restoringFileName); err != nil {
		return err
	}
	d.marker = nil
	return nil
}

// removeGens removes the named generation directories of d.
func (d *localDir) removeGens(names []string) error {
	for _, g := range names {
		if err := removeAll(d.fs, filepath.Join(d.dir, g)); err != nil {
			return err
		}
		d.gens = slices.DeleteFunc(d.gens, func(x string) bool { return x == g })
	}
	return nil
}

// writeStoreFile replaces the STORE of dir atomically.
func writeStoreFile(fsys engines.FS, dir string, f storeFile) error {
	b, err := encodeStoreFile(f)
	if err != nil {
		return err
	}
	return engines.WriteFileAtomic(fsys, dir, storeFileName, b)
}

// writeRestoreMarker replaces the RESTORING file of dir atomically.
func writeRestoreMarker(fsys engines.FS, dir string, m restoreMarker) error {
	m.FormatVersion = storeFormatVersion
	b, err := encodeDescriptor(restoringFileName, &m)
	if err != nil {
		return err
	}
	return engines.WriteFileAtomic(fsys, dir, restoringFileName, b)
}

// genName returns the directory name of generation n.
func genName(n uint64) string { return fmt.Sprintf("%s%06d", genPrefix, n) }

func isGen(name string) bool {
	_, ok := parseGen(name)
	return ok
}

// parseGen returns the generation number of a directory name made by
// genName.
func parseGen(name string) (uint64, bool) {
	digits, ok := strings.CutPrefix(name, genPrefix)
	if !ok || len(digits) < 6 || len(digits) > 19 {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// nextGen returns the name of a new generation directory above every one in
// gens.
func nextGen(gens []string) string {
	var hi uint64
	for _, g := range gens {
		n, _ := parseGen(g)
		hi = max(hi, n)
	}
	return genName(hi + 1)
}

// removeFile removes dir/name and syncs dir; a missing file is not an error.
func removeFile(fsys engines.FS, dir, name string) error {
	if err := fsys.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", filepath.Join(dir, name), err)
	}
	return syncDir(fsys, dir)
}

// removeAll removes path and everything below it through fsys; a missing
// path is not an error.
func removeAll(fsys engines.FS, path string) error {
	ents, err := fsys.ReadDir(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		// Not a directory (or unreadable): try it as a file.
		if rerr := fsys.Remove(path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", path, rerr)
		}
		return nil
	}
	for _, e := range ents {
		if err := removeAll(fsys, filepath.Join(path, e.Name())); err != nil {
			return err
		}
	}
	if err := fsys.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

func syncDir(fsys engines.FS, dir string) error {
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// existsDir reports whether path is an existing directory, through fsys.
func existsDir(fsys engines.FS, path string) bool {
	_, err := fsys.ReadDir(path)
	return err == nil
}
