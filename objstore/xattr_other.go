//go:build !linux

package objstore

import (
	"errors"
	"os"
	"syscall"
)

// errNotDir is what the OS returns when a path component is a file.
var errNotDir error = syscall.ENOTDIR

// setXattr reports errors.ErrUnsupported: the file store keeps metadata in
// Linux extended attributes only, so on this platform it stores none.
func setXattr(f *os.File, name string, value []byte) error {
	return errors.ErrUnsupported
}

// getXattr returns nil: no metadata is stored on this platform.
func getXattr(f *os.File, name string) ([]byte, error) { return nil, nil }
