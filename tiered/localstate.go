package tiered

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tierkv/tierkv/engines"
)

// Local file names inside a store directory.
const (
	storeFileName = "STORE"
	lockFileName  = "LOCK"
	genPrefix     = "data-"
)

// storeFormatVersion is the format of the STORE file.
const storeFormatVersion = 1

// maxStoreFileSize bounds what decodeStoreFile accepts.
const maxStoreFileSize = 1 << 20

// storeFile is the local state descriptor; see the package doc.
type storeFile struct {
	FormatVersion int               `json:"format_version"`
	StoreID       string            `json:"store_id"`
	Engine        string            `json:"engine"`
	Params        map[string]string `json:"params"`
	Version       uint64            `json:"version"`
	Data          string            `json:"data"`
	WriterID      string            `json:"writer_id"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	Checksum      string            `json:"checksum"`
}

// storeChecksum is the CRC-32C of the compact encoding of f with Checksum "".
func storeChecksum(f storeFile) (string, error) {
	f.Checksum = ""
	b, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%08x", crc32.Checksum(b, engines.CastagnoliTable)), nil
}

// encodeStoreFile fills in the format version and checksum and returns the
// indented encoding.
func encodeStoreFile(f storeFile) ([]byte, error) {
	f.FormatVersion = storeFormatVersion
	if err := f.validate(); err != nil {
		return nil, fmt.Errorf("encode %s: %w", storeFileName, err)
	}
	sum, err := storeChecksum(f)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", storeFileName, err)
	}
	f.Checksum = sum
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", storeFileName, err)
	}
	return append(b, '\n'), nil
}

// decodeStoreFile parses and checks a STORE file. Every problem is a
// *engines.CorruptionError naming STORE.
func decodeStoreFile(b []byte) (storeFile, error) {
	var f storeFile
	if len(b) > maxStoreFileSize {
		return f, engines.Corruptf(storeFileName, maxStoreFileSize, "file of %d bytes is larger than %d", len(b), maxStoreFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		var se *json.SyntaxError
		off := int64(engines.UnknownOffset)
		if errors.As(err, &se) {
			off = se.Offset
		}
		return storeFile{}, &engines.CorruptionError{File: storeFileName, Offset: off, Reason: "not a valid STORE file", Err: err}
	}
	if f.FormatVersion != storeFormatVersion {
		return storeFile{}, engines.Corruptf(storeFileName, engines.UnknownOffset, "format version %d, this build reads %d", f.FormatVersion, storeFormatVersion)
	}
	want, err := storeChecksum(f)
	if err != nil {
		return storeFile{}, &engines.CorruptionError{File: storeFileName, Offset: engines.UnknownOffset, Reason: "re-encode for checksum", Err: err}
	}
	if f.Checksum != want {
		return storeFile{}, engines.Corruptf(storeFileName, engines.UnknownOffset, "checksum %q, content hashes to %q", f.Checksum, want)
	}
	if err := f.validate(); err != nil {
		return storeFile{}, &engines.CorruptionError{File: storeFileName, Offset: engines.UnknownOffset, Reason: "invalid content", Err: err}
	}
	return f, nil
}

// validate checks the fields' shapes.
func (f *storeFile) validate() error {
	switch {
	case f.StoreID == "":
		return errors.New("empty store_id")
	case f.Engine == "" || strings.ContainsAny(f.Engine, "/\\ "):
		return fmt.Errorf("bad engine kind %q", f.Engine)
	}
	if _, ok := parseGen(f.Data); !ok {
		return fmt.Errorf("data directory %q is not %sNNNNNN", f.Data, genPrefix)
	}
	return nil
}

// readStoreFile returns the STORE of dir; ok is false when there is none.
func readStoreFile(dir string) (f storeFile, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, storeFileName))
	if errors.Is(err, os.ErrNotExist) {
		return storeFile{}, false, nil
	}
	if err != nil {
		return storeFile{}, false, fmt.Errorf("tiered: read %s: %w", filepath.Join(dir, storeFileName), err)
	}
	f, err = decodeStoreFile(b)
	if err != nil {
		return storeFile{}, false, fmt.Errorf("tiered: read local state in %s (move the directory away to start over): %w", dir, err)
	}
	return f, true, nil
}

// writeStoreFile replaces the STORE of dir atomically.
func writeStoreFile(dir string, f storeFile) error {
	b, err := encodeStoreFile(f)
	if err != nil {
		return fmt.Errorf("tiered: %w", err)
	}
	if err := engines.WriteFileAtomic(engines.OSFS{}, dir, storeFileName, b); err != nil {
		return fmt.Errorf("tiered: %w", err)
	}
	return nil
}

// genName returns the directory name of generation n.
func genName(n uint64) string { return fmt.Sprintf("%s%06d", genPrefix, n) }

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

// generations returns the generation directories present in dir and the
// highest generation number among them.
func generations(dir string) (names []string, highest uint64, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("tiered: list %s: %w", dir, err)
	}
	for _, e := range ents {
		if n, ok := parseGen(e.Name()); ok && e.IsDir() {
			names = append(names, e.Name())
			highest = max(highest, n)
		}
	}
	return names, highest, nil
}

// staleGenerations returns the paths of the generation directories in dir
// other than keep: left by a restore that crashed before its commit point.
func staleGenerations(dir, keep string) ([]string, error) {
	names, _, err := generations(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no directory yet: nothing stale
	}
	if err != nil {
		return nil, err
	}
	var stale []string
	for _, n := range names {
		if n != keep {
			stale = append(stale, filepath.Join(dir, n))
		}
	}
	return stale, nil
}

// removeDirs removes directories whose loss costs nothing but space (stale
// generations once a restore no longer needs them); failures are left for
// the next Open.
func removeDirs(paths []string) {
	for _, p := range paths {
		_ = os.RemoveAll(p)
	}
}

// nextGen returns the name of a new generation directory above every one
// present in dir.
func nextGen(dir string) (string, error) {
	_, hi, err := generations(dir)
	if err != nil {
		return "", err
	}
	return genName(hi + 1), nil
}
