package engines

import (
	"errors"
	"fmt"
)

// Limits on keys and values, checked before anything is written.
const (
	// MaxKeySize is the largest key in bytes. Keys are at least 1 byte.
	MaxKeySize = 65535
	// MaxValueSize is the largest value in bytes (16 MiB).
	MaxValueSize = 16 << 20
)

// Errors returned by engines.
var (
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("engines: engine is closed")
	// ErrLimit is matched (errors.Is) by every *LimitError.
	ErrLimit = errors.New("engines: key or value outside limits")
	// ErrCorrupt is matched (errors.Is) by every *CorruptionError: the one
	// marker of corruption in tierkv, local or remote.
	ErrCorrupt = errors.New("engines: corruption")
	// ErrTruncated reports a record cut short by the end of its buffer: the
	// torn tail of a log. Logs recover by truncating at the record's offset.
	ErrTruncated = errors.New("engines: truncated record")
	// ErrKindMismatch is returned when a checkpoint of another engine kind is
	// opened.
	ErrKindMismatch = errors.New("engines: checkpoint is for another engine kind")
	// ErrMissingRun is returned when a checkpoint names a run that is not in
	// the directory.
	ErrMissingRun = errors.New("engines: run file missing")
)

// LimitError reports a key or value outside the limits. Nothing was written.
type LimitError struct {
	What string // "key" or "value"
	Size int
	Max  int
}

func (e *LimitError) Error() string {
	if e.What == "key" && e.Size == 0 {
		return "engines: empty key: keys are 1..65535 bytes"
	}
	return fmt.Sprintf("engines: %s of %d bytes exceeds the limit of %d bytes", e.What, e.Size, e.Max)
}

// Is makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// CheckKey returns a *LimitError if key is empty or longer than MaxKeySize.
func CheckKey(key []byte) error {
	if len(key) == 0 || len(key) > MaxKeySize {
		return &LimitError{What: "key", Size: len(key), Max: MaxKeySize}
	}
	return nil
}

// CheckKV checks both a key and a value against the limits.
func CheckKV(key, value []byte) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if len(value) > MaxValueSize {
		return &LimitError{What: "value", Size: len(value), Max: MaxValueSize}
	}
	return nil
}

// UnknownOffset is the Offset of a *CorruptionError whose problem is not at
// a known byte offset: a checksum or size of a whole file or object, a value
// that breaks a rule of the schema, a name that does not fit.
const UnknownOffset = -1

// CorruptionError reports bytes that failed a check: a checksum, a magic
// number, a length, a rule of a format. It is tierkv's one corruption type,
// for local files (engine runs, state files, the STORE file) and remote
// objects (runs, manifests) alike: match it with errors.As, or the class
// with errors.Is(err, ErrCorrupt).
//
// Offset convention: Offset is the byte offset, from the start of the file
// or object, of the record, structure or member that failed (0 is the first
// byte); it is UnknownOffset (-1) when the problem is not at one place. The
// message names the offset only when it is known.
type CorruptionError struct {
	File   string // file name, or object key of a remote object
	Offset int64  // byte offset of the bad record or structure; UnknownOffset if none
	Reason string // what failed, e.g. "record checksum mismatch"
	Err    error  // optional underlying cause, appended to the message
}

// Error returns "engines: corruption in FILE[ at offset N]: REASON[: ERR]".
func (e *CorruptionError) Error() string {
	s := "engines: corruption in " + e.File
	if e.Offset >= 0 {
		s += fmt.Sprintf(" at offset %d", e.Offset)
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns the underlying cause, if any.
func (e *CorruptionError) Unwrap() error { return e.Err }

// Corruptf builds a *CorruptionError; off is a byte offset or UnknownOffset.
func Corruptf(file string, off int64, format string, args ...any) error {
	return &CorruptionError{File: file, Offset: off, Reason: fmt.Sprintf(format, args...)}
}
