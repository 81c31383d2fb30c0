//go:build linux

package objstore

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// errNotDir is what the OS returns when a path component is a file.
var errNotDir error = unix.ENOTDIR

// setXattr sets the extended attribute name of f to value. An error
// matching errors.ErrUnsupported means the file system has no user
// extended attributes.
func setXattr(f *os.File, name string, value []byte) error {
	err := unix.Fsetxattr(int(f.Fd()), name, value, 0)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("%w: %w", errors.ErrUnsupported, err)
	}
	return err
}

// getXattr returns the extended attribute name of f, or nil when f has none
// or the file system has no extended attributes.
func getXattr(f *os.File, name string) ([]byte, error) {
	buf := make([]byte, 4096)
	for {
		n, err := unix.Fgetxattr(int(f.Fd()), name, buf)
		switch {
		case err == nil:
			return buf[:n], nil
		case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP):
			return nil, nil
		case errors.Is(err, unix.ERANGE) && len(buf) < 1<<20:
			buf = make([]byte, 4*len(buf))
		default:
			return nil, err
		}
	}
}
