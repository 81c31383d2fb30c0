package manifest

import (
	"fmt"
	"strconv"
	"strings"
)

// Key prefixes of a store's objects in the remote.
const (
	// ManifestPrefix starts the key of every manifest.
	ManifestPrefix = "manifests/"
	// RunPrefix starts the key of every run object.
	RunPrefix = "runs/"
)

// versionDigits is the width of a version in a manifest key.
const versionDigits = 20

// Key returns the object key of manifest version v: "manifests/" followed by
// v as 20 zero-padded decimal digits.
func Key(version uint64) string {
	return fmt.Sprintf("%s%0*d", ManifestPrefix, versionDigits, version)
}

// ParseKey returns the version named by a manifest key. ok is false for any
// key Key would not produce and for version 0.
func ParseKey(key string) (uint64, bool) {
	digits, found := strings.CutPrefix(key, ManifestPrefix)
	if !found || len(digits) != versionDigits {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || v == 0 {
		return 0, false
	}
	return v, true
}

// RunKey returns the object key of a run: "runs/" + name.
func RunKey(name string) string { return RunPrefix + name }
