package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tierkv/tierkv/engines"
)

// FormatVersion is the manifest format this package writes, and the newest
// it reads: Decode reads formats 1 to FormatVersion and refuses a newer one
// with ErrFormat. See the package documentation for when it changes.
const FormatVersion = 1

// MaxSize is the largest manifest, in bytes, that Decode and Load accept
// (about half a million runs).
const MaxSize = 64 << 20

// MaxRunNameLen is the longest run name a manifest may hold.
const MaxRunNameLen = 255

// Stats summarises a snapshot.
type Stats struct {
	// NewRuns is the number of runs of this version its parent did not have.
	NewRuns int `json:"new_runs"`
	// NewBytes is the total size of those runs.
	NewBytes int64 `json:"new_bytes"`
	// TotalRuns is len(Runs); Encode fills it in.
	TotalRuns int `json:"total_runs"`
	// TotalBytes is the sum of the run sizes; Encode fills it in.
	TotalBytes int64 `json:"total_bytes"`
}

// Manifest is one snapshot of a store: the runs and engine state that
// reproduce it, and who wrote it. See the package documentation for the
// encoding and the rules Validate enforces.
type Manifest struct {
	// FormatVersion is the format of the encoding (FormatVersion). Encode
	// fills in a zero value.
	FormatVersion int `json:"format_version"`
	// StoreID identifies the store (may be empty).
	StoreID string `json:"store_id"`
	// Version is this snapshot's version, >= 1.
	Version uint64 `json:"version"`
	// Parent is the version the state descends from; 0 = none.
	Parent uint64 `json:"parent"`
	// WriterID identifies the writing process.
	WriterID string `json:"writer_id"`
	// CommitID is random per commit; it recognises our own manifest on an
	// ambiguous retry. Commit fills in an empty one.
	CommitID string `json:"commit_id"`
	// Created is the creation time. Commit fills in a zero one (UTC).
	Created time.Time `json:"created"`
	// Engine is the engine kind ("lsm", "hybridlog", "appendlog", "memonly").
	Engine string `json:"engine"`
	// Params are the engine parameters, thesis names.
	Params map[string]string `json:"params"`
	// EngineState is the engine's private state blob (Checkpoint.State).
	EngineState []byte `json:"engine_state"`
	// Runs lists the run files of the state, in the engine's order
	// (Checkpoint.Runs). A run's name is also its object name under runs/.
	Runs []engines.RunInfo `json:"runs"`
	// Metadata is user metadata committed atomically with the state.
	Metadata map[string]string `json:"metadata"`
	// Stats summarises the snapshot.
	Stats Stats `json:"stats"`
	// Checksum is the CRC-32C (8 lowercase hex digits) of the encoded bytes
	// with this member's value left empty. Encode fills it in; Decode checks
	// it against the bytes as written.
	Checksum string `json:"checksum"`
}

// Validate checks every rule of the schema except the checksum. A format
// version other than FormatVersion returns an error matching ErrFormat; any
// other problem an error matching ErrInvalid that names it.
func (m *Manifest) Validate() error {
	if m.FormatVersion != FormatVersion {
		return fmt.Errorf("%w %d: this build reads format %d; upgrade tierkv", ErrFormat, m.FormatVersion, FormatVersion)
	}
	if msg := m.problem(); msg != "" {
		return fmt.Errorf("%w: %s", ErrInvalid, msg)
	}
	return nil
}

// problem returns a description of the first rule m breaks, or "".
func (m *Manifest) problem() string {
	if m.Version == 0 {
		return "version 0: versions start at 1"
	}
	if m.Parent >= m.Version {
		return fmt.Sprintf("parent %d is not below version %d", m.Parent, m.Version)
	}
	if msg := checkText("store_id", m.StoreID); msg != "" {
		return msg
	}
	if msg := checkText("writer_id", m.WriterID); msg != "" {
		return msg
	}
	if msg := checkText("commit_id", m.CommitID); msg != "" {
		return msg
	}
	if y := m.Created.Year(); y < 0 || y > 9999 {
		return fmt.Sprintf("created time %s is outside the years 0..9999", m.Created)
	}
	if m.Engine == "" {
		return "engine kind is empty"
	}
	if !isEngineName(m.Engine) {
		return fmt.Sprintf("engine kind %q is not a lowercase name", m.Engine)
	}
	if msg := checkMap("params", m.Params); msg != "" {
		return msg
	}
	if msg := checkMap("metadata", m.Metadata); msg != "" {
		return msg
	}
	seen := make(map[string]int, len(m.Runs))
	var total int64
	for i, r := range m.Runs {
		if err := CheckRunName(r.Name); err != nil {
			return fmt.Sprintf("run %d: %v", i, err)
		}
		if j, dup := seen[r.Name]; dup {
			return fmt.Sprintf("run %d: name %q duplicates run %d", i, r.Name, j)
		}
		seen[r.Name] = i
		if r.Size < 0 {
			return fmt.Sprintf("run %d (%s): negative size %d", i, r.Name, r.Size)
		}
		if total > math.MaxInt64-r.Size {
			return fmt.Sprintf("run %d (%s): total size overflows", i, r.Name)
		}
		total += r.Size
	}
	s := m.Stats
	switch {
	case s.NewRuns < 0 || s.NewBytes < 0 || s.TotalRuns < 0 || s.TotalBytes < 0:
		return fmt.Sprintf("negative stats %+v", s)
	case s.TotalRuns != len(m.Runs):
		return fmt.Sprintf("stats.total_runs %d, but %d runs are listed", s.TotalRuns, len(m.Runs))
	case s.TotalBytes != total:
		return fmt.Sprintf("stats.total_bytes %d, but the runs add up to %d", s.TotalBytes, total)
	case s.NewRuns > s.TotalRuns:
		return fmt.Sprintf("stats.new_runs %d exceeds total_runs %d", s.NewRuns, s.TotalRuns)
	case s.NewBytes > s.TotalBytes:
		return fmt.Sprintf("stats.new_bytes %d exceeds total_bytes %d", s.NewBytes, s.TotalBytes)
	}
	return ""
}

func checkText(field, s string) string {
	if !utf8.ValidString(s) {
		return fmt.Sprintf("%s %q is not valid UTF-8", field, s)
	}
	return ""
}

func checkMap(field string, m map[string]string) string {
	for k, v := range m {
		if k == "" {
			return fmt.Sprintf("%s has an empty key", field)
		}
		if !utf8.ValidString(k) {
			return fmt.Sprintf("%s key %q is not valid UTF-8", field, k)
		}
		if !utf8.ValidString(v) {
			return fmt.Sprintf("%s[%q] = %q is not valid UTF-8", field, k, v)
		}
	}
	return ""
}

func isEngineName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// CheckRunName returns an error unless name is a plain file name that may
// appear in a manifest: 1..255 bytes of ASCII letters, digits, '.', '_' and
// '-', starting with a letter or digit, without "..". Names made by
// engines.RunNamer always pass.
func CheckRunName(name string) error {
	switch {
	case name == "":
		return errors.New("empty run name")
	case len(name) > MaxRunNameLen:
		return fmt.Errorf("run name of %d bytes is longer than %d", len(name), MaxRunNameLen)
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '/' || c == '\\':
			return fmt.Errorf("run name %q contains a path separator", name)
		case c == 0:
			return fmt.Errorf("run name %q contains NUL", name)
		case c == '.' && i+1 < len(name) && name[i+1] == '.':
			return fmt.Errorf("run name %q contains \"..\"", name)
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("run name %q is not a plain file name (letters, digits, '.', '_', '-'; starting with a letter or digit)", name)
		}
	}
	return nil
}

// fillTotals sets Stats.TotalRuns and Stats.TotalBytes from the runs. Sizes
// are not checked here; Validate does that.
func (m *Manifest) fillTotals() {
	var total int64
	for _, r := range m.Runs {
		total += r.Size
	}
	m.Stats.TotalRuns = len(m.Runs)
	m.Stats.TotalBytes = total
}

// Encode fills in m's FormatVersion (when zero), Stats.TotalRuns,
// Stats.TotalBytes and Checksum, validates m and returns its canonical
// encoding (indented JSON, see the package documentation) with the checksum
// of those very bytes.
func Encode(m *Manifest) ([]byte, error) {
	if m.FormatVersion == 0 {
		m.FormatVersion = FormatVersion
	}
	m.fillTotals()
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	m.Checksum = ""
	body, err := canonical(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	// body holds "checksum": ""; the checksum covers exactly these bytes and
	// goes between the two quotes.
	at, end, err := checksumSpan(body)
	if err != nil || at != end {
		return nil, fmt.Errorf("encode manifest: no empty checksum member in the encoding (%v)", err)
	}
	m.Checksum = formatCRC(crc32.Checksum(body, engines.CastagnoliTable))
	out := make([]byte, 0, len(body)+len(m.Checksum))
	out = append(append(append(out, body[:at]...), m.Checksum...), body[at:]...)
	return out, nil
}

// canonical returns the canonical encoding of m as it is (Checksum included).
func canonical(m *Manifest) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// checksumSpan locates the checksum member of b, which must be one
// syntactically valid JSON object: b[start:end] is the text between the
// quotes of its value. It refuses an object that is not one, a missing or
// repeated checksum member, and a value that is not a string.
func checksumSpan(b []byte) (start, end int, err error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, 0, errors.New("not a JSON object")
	}
	start, end = -1, -1
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return 0, 0, err
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0, 0, err
		}
		if key != "checksum" {
			continue
		}
		if start >= 0 {
			return 0, 0, errors.New("two checksum members")
		}
		vend := int(dec.InputOffset())
		if len(raw) < 2 || raw[0] != '"' || vend < len(raw) || !bytes.Equal(b[vend-len(raw):vend], raw) {
			return 0, 0, fmt.Errorf("checksum %s is not a string", raw)
		}
		start, end = vend-len(raw)+1, vend-1
	}
	if start < 0 {
		return 0, 0, errors.New("no checksum member")
	}
	return start, end, nil
}

func formatCRC(c uint32) string {
	const hexdigits = "0123456789abcdef"
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = hexdigits[c&0xf]
		c >>= 4
	}
	return string(b[:])
}

func parseCRC(s string) (uint32, bool) {
	if len(s) != 8 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 16, 32)
	return uint32(v), err == nil
}

// Decode parses and checks a manifest; see the package documentation for
// every check. Corruption errors are *engines.CorruptionError values naming
// the object (matching engines.ErrCorrupt); a format this build does not
// read matches ErrFormat.
func Decode(b []byte) (*Manifest, error) {
	return decode("manifest", b)
}

// decode is Decode with the object's name for the errors.
func decode(object string, b []byte) (*Manifest, error) {
	corrupt := func(off int64, err error, format string, args ...any) error {
		return &engines.CorruptionError{File: object, Offset: off, Reason: fmt.Sprintf(format, args...), Err: err}
	}
	if len(b) > MaxSize {
		return nil, corrupt(engines.UnknownOffset, nil, "%d bytes, more than the limit of %d", len(b), MaxSize)
	}

	// The format version first, so that a newer format is reported as such
	// whatever else it changed. json.Unmarshal checks the syntax of the whole
	// input, trailing data included.
	var head struct {
		FormatVersion *json.Number `json:"format_version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, jsonCorrupt(object, err)
	}
	if head.FormatVersion == nil {
		return nil, corrupt(engines.UnknownOffset, nil, "no format_version member: not a tierkv manifest")
	}
	fv, err := strconv.ParseInt(head.FormatVersion.String(), 10, 64)
	if err != nil {
		return nil, corrupt(engines.UnknownOffset, err, "format_version %s is not an integer", head.FormatVersion)
	}
	switch {
	case fv > FormatVersion:
		return nil, fmt.Errorf("%w %d in %s: written by a newer tierkv; this build reads formats 1 to %d: upgrade tierkv", ErrFormat, fv, object, FormatVersion)
	case fv < 1:
		return nil, fmt.Errorf("%w %d in %s: formats start at 1", ErrFormat, fv, object)
	}

	// The checksum covers the bytes as written, members this build does not
	// know included.
	at, end, err := checksumSpan(b)
	if err != nil {
		return nil, corrupt(engines.UnknownOffset, err, "cannot locate the checksum")
	}
	stored := string(b[at:end])
	want, ok := parseCRC(stored)
	if !ok {
		return nil, corrupt(int64(at), nil, "checksum %q is not 8 lowercase hex digits", stored)
	}
	got := crc32.Update(crc32.Checksum(b[:at], engines.CastagnoliTable), engines.CastagnoliTable, b[end:])
	if got != want {
		return nil, corrupt(engines.UnknownOffset, nil, "checksum mismatch: stored %s, computed %s", stored, formatCRC(got))
	}

	// Members this build does not know are optional by the format's rules
	// and ignored.
	m := new(Manifest)
	if err := json.Unmarshal(b, m); err != nil {
		return nil, jsonCorrupt(object, err)
	}
	m.Checksum = stored
	if msg := m.problem(); msg != "" {
		return nil, corrupt(engines.UnknownOffset, ErrInvalid, "%s", msg)
	}
	return m, nil
}

// jsonCorrupt turns an encoding/json error into an *engines.CorruptionError
// with the offset when the error has one.
func jsonCorrupt(object string, err error) error {
	e := &engines.CorruptionError{File: object, Offset: engines.UnknownOffset, Reason: "invalid JSON", Err: err}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		e.Offset = syn.Offset
	case errors.As(err, &typ):
		e.Offset = typ.Offset
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		e.Reason = "invalid JSON: truncated"
	}
	return e
}
