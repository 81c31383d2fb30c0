package appendlog

import (
	"errors"
	"os"
	"sync"

	"github.com/tierkv/tierkv/engines"
)

// noSyncFS is the OS file system with fsyncs skipped: the conformance suite
// checks logic, not power-loss durability, and fsyncs would dominate its run
// time on a shared machine. A crash copy of a live directory (what the suite
// does) sees the page cache, so it is unaffected.
type noSyncFS struct{ engines.OSFS }

func (noSyncFS) OpenFile(name string, flag int, perm os.FileMode) (engines.File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (noSyncFS) SyncDir(string) error { return nil }

type noSyncFile struct{ *os.File }

func (noSyncFile) Sync() error { return nil }

// errInjected is the error faultFS returns.
var errInjected = errors.New("injected fault")

// faultFS fails the operations its fail function selects.
type faultFS struct {
	engines.FS
	mu   sync.Mutex
	fail func(op, name string) bool
}

func (f *faultFS) check(op, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil && f.fail(op, name) {
		return errInjected
	}
	return nil
}

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (engines.File, error) {
	if err := f.check("open", name); err != nil {
		return nil, err
	}
	return f.FS.OpenFile(name, flag, perm)
}

func (f *faultFS) Rename(oldpath, newpath string) error {
	if err := f.check("rename", newpath); err != nil {
		return err
	}
	return f.FS.Rename(oldpath, newpath)
}

func (f *faultFS) SyncDir(dir string) error {
	if err := f.check("syncdir", dir); err != nil {
		return err
	}
	return f.FS.SyncDir(dir)
}
