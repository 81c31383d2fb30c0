package objstore

import (
	"errors"
	"fmt"
	"strings"
)

// Errors about the shape of a call's arguments. They are permanent: retrying
// the same call fails the same way.
var (
	// ErrInvalidKey: a key that no backend accepts (see ValidateKey).
	ErrInvalidKey = errors.New("objstore: invalid key")
	// ErrInvalidMetadata: user metadata that not every backend can store.
	ErrInvalidMetadata = errors.New("objstore: invalid metadata")
	// ErrInvalidArgument: a negative size, offset or similar.
	ErrInvalidArgument = errors.New("objstore: invalid argument")
)

// MaxMetadataBytes bounds the total size of user metadata (keys plus values),
// matching Amazon S3's 2 KB limit on user-defined metadata.
const MaxMetadataBytes = 2048

// ValidateKey reports whether key is usable with every backend. A key is
// non-empty, at most 1024 bytes, uses "/" as its separator, and has no empty,
// "." or ".." segment (so no leading or trailing "/" and no "//"); it
// contains no backslash and no control character. Every backend refuses
// other keys with an error matching ErrInvalidKey, so that nothing is ever
// written outside a file store's root and every backend behaves the same.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if len(key) > 1024 {
		return fmt.Errorf("%w: key longer than 1024 bytes", ErrInvalidKey)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: control character in key %q", ErrInvalidKey, key)
		}
		if c == '\\' {
			return fmt.Errorf("%w: backslash in key %q", ErrInvalidKey, key)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: empty path segment in key %q (leading, trailing or double '/')", ErrInvalidKey, key)
		case ".", "..":
			return fmt.Errorf("%w: %q segment in key %q", ErrInvalidKey, seg, key)
		}
	}
	return nil
}

// ValidateMetadata reports whether md can be stored by every backend: keys
// are 1..128 lowercase ASCII letters, digits and '-'; values are printable
// ASCII (0x20..0x7e) without leading or trailing spaces; the total of keys
// and values is at most MaxMetadataBytes. Errors match ErrInvalidMetadata.
func ValidateMetadata(md map[string]string) error {
	total := 0
	for k, v := range md {
		if k == "" || len(k) > 128 {
			return fmt.Errorf("%w: key %q must be 1..128 bytes", ErrInvalidMetadata, k)
		}
		for i := 0; i < len(k); i++ {
			c := k[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%w: key %q may hold only a-z, 0-9 and '-'", ErrInvalidMetadata, k)
			}
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] > 0x7e {
				return fmt.Errorf("%w: value of %q is not printable ASCII", ErrInvalidMetadata, k)
			}
		}
		if strings.TrimSpace(v) != v {
			return fmt.Errorf("%w: value of %q has leading or trailing spaces", ErrInvalidMetadata, k)
		}
		total += len(k) + len(v)
	}
	if total > MaxMetadataBytes {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidMetadata, total, MaxMetadataBytes)
	}
	return nil
}

// checkPut validates the arguments common to every backend's Put.
func checkPut(key string, size int64, opts PutOptions) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("%w: negative size %d for %q", ErrInvalidArgument, size, key)
	}
	return ValidateMetadata(opts.Metadata)
}

// checkRange validates the arguments of GetRange.
func checkRange(key string, offset int64) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if offset < 0 {
		return fmt.Errorf("%w: negative offset %d for %q", ErrInvalidArgument, offset, key)
	}
	return nil
}

// copyMetadata returns a copy of md, or nil when md is empty.
func copyMetadata(md map[string]string) map[string]string {
	if len(md) == 0 {
		return nil
	}
	out := make(map[string]string, len(md))
	for k, v := range md {
		out[k] = v
	}
	return out
}

// validatePrefix checks a List prefix: it must be empty or a prefix of some
// valid key, so that it cannot name anything outside a file store's root.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := ValidateKey(prefix + "x"); err != nil {
		return fmt.Errorf("%w (list prefix %q)", err, prefix)
	}
	return nil
}
