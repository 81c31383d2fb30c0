// Package faultfs is an engines.FS that injects write and fsync errors, for
// error-injection sweeps in the style of pebble's errorfs: fail the n-th
// operation of a class, for n = 0, 1, 2, ... until the workload runs without
// reaching it, and check that every failure surfaces cleanly.
//
// # Basics
//
// An FS wraps another engines.FS (usually engines.OSFS). Every call of a
// class selected by Options.Ops is counted, across all files, from 0; the
// call whose index is Options.FailAt fails with an *Error (and, with
// Options.Sticky, so does every later counted call: a dead disk). Reads,
// directory listings and MkdirAll are never failed.
//
// The operation classes are OpCreate (OpenFile with O_CREATE), OpWrite
// (File.Write), OpTruncate (File.Truncate), OpRename, OpRemove, OpSync
// (File.Sync) and OpSyncDir. WriteOps and SyncOps group the usual sets.
//
// # Failed fsyncs lose data
//
// On Linux a failed fsync may drop the dirty pages it could not write and
// mark them clean, so the next fsync succeeds and the data is silently gone
// (the "fsyncgate" lesson PostgreSQL learnt in 2018). By default an injected
// OpSync failure models that: the file is truncated to the size it had at
// its last successful Sync (its size at open for an existing file opened
// without O_TRUNC, 0 for a new or truncated one), so bytes written since are
// lost and later writes through the same handle leave a hole of zeros. An
// engine that ignores the error and reports the data as durable is then
// caught by the state it reopens with. Options.KeepUnsynced turns this off.
//
// # Speed
//
// With Options.NoSync, Sync and SyncDir that are not failed return at once
// without an fsync: the bookkeeping above still runs, so tests that only
// kill processes (never the machine) stay fast on shared disks.
//
// # Concurrency
//
// An FS and its files are safe for concurrent use (engines flush and merge
// in background goroutines); counting is serialized by one mutex.
package faultfs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/tierkv/tierkv/engines"
)

// ErrInjected is matched (errors.Is) by every error the FS makes up.
var ErrInjected = errors.New("faultfs: injected fault")

// Op is a set of operation classes (a bit mask).
type Op uint32

// The operation classes.
const (
	OpCreate   Op = 1 << iota // OpenFile with O_CREATE
	OpWrite                   // File.Write
	OpTruncate                // File.Truncate
	OpRename                  // FS.Rename
	OpRemove                  // FS.Remove
	OpSync                    // File.Sync
	OpSyncDir                 // FS.SyncDir
)

// Groups of classes.
const (
	// WriteOps are the calls that change data or names: create, write,
	// truncate and rename.
	WriteOps = OpCreate | OpWrite | OpTruncate | OpRename
	// SyncOps are file and directory fsyncs.
	SyncOps = OpSync | OpSyncDir
)

var opNames = []string{"create", "write", "truncate", "rename", "remove", "sync", "syncdir"}

// String names the classes in o, joined by "|".
func (o Op) String() string {
	var parts []string
	for i, n := range opNames {
		if o&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// Error is an injected failure. It matches ErrInjected and unwraps to
// syscall.EIO, as a failing disk would report.
type Error struct {
	Op   Op     // the class of the failed call
	Path string // the file or directory
	N    int    // the call's index among counted calls
}

func (e *Error) Error() string {
	return fmt.Sprintf("faultfs: injected %s error on %s (call %d): %v", e.Op, e.Path, e.N, syscall.EIO)
}

// Is makes errors.Is(err, ErrInjected) true.
func (e *Error) Is(target error) bool { return target == ErrInjected }

// Unwrap returns syscall.EIO.
func (e *Error) Unwrap() error { return syscall.EIO }

// Options configure an FS.
type Options struct {
	// Ops selects the classes that are counted and may fail. Default:
	// WriteOps | SyncOps.
	Ops Op
	// FailAt is the index, from 0 among counted calls, of the call to fail.
	// A negative value fails nothing (the FS only counts). Default: 0.
	FailAt int
	// Sticky makes every counted call after the first failure fail too.
	// Default: false (one failure).
	Sticky bool
	// NoSync skips the real fsync of Sync and SyncDir calls that are not
	// failed. Default: false.
	NoSync bool
	// KeepUnsynced keeps the bytes written since the last successful Sync
	// when a Sync fails, instead of dropping them. Default: false.
	KeepUnsynced bool
}

// Event is one injected failure.
type Event struct {
	N    int
	Op   Op
	Path string
}

// FS injects failures into the calls of an inner engines.FS; see the package
// documentation.
type FS struct {
	inner engines.FS
	o     Options // o.FailAt is guarded by mu

	mu struct {
		sync.Mutex
		count    int
		injected []Event
	}
}

var _ engines.FS = (*FS)(nil)

// New wraps inner (nil: engines.OSFS).
func New(inner engines.FS, o Options) *FS {
	if inner == nil {
		inner = engines.OSFS{}
	}
	if o.Ops == 0 {
		o.Ops = WriteOps | SyncOps
	}
	return &FS{inner: inner, o: o}
}

// Count returns the number of counted calls so far.
func (f *FS) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.count
}

// SetFailAt changes Options.FailAt: the index, among all counted calls
// since New, of the call to fail (negative: none). SetFailAt(f.Count()+k)
// fails the k-th counted call from now (from 0).
func (f *FS) SetFailAt(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.o.FailAt = n
}

// Injected returns the failures injected so far, in order.
func (f *FS) Injected() []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Event(nil), f.mu.injected...)
}

// check counts a call of class op on path and returns the error to inject,
// if any.
func (f *FS) check(op Op, path string) error {
	if f.o.Ops&op == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.mu.count
	f.mu.count++
	if f.o.FailAt < 0 || n < f.o.FailAt || (n > f.o.FailAt && !f.o.Sticky) {
		return nil
	}
	f.mu.injected = append(f.mu.injected, Event{N: n, Op: op, Path: path})
	return &Error{Op: op, Path: path, N: n}
}

// OpenFile implements engines.FS. Opening with O_CREATE is an OpCreate call.
func (f *FS) OpenFile(name string, flag int, perm os.FileMode) (engines.File, error) {
	if flag&os.O_CREATE != 0 {
		if err := f.check(OpCreate, name); err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
	}
	file, err := f.inner.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	var synced int64
	if flag&os.O_TRUNC == 0 {
		if st, err := file.Stat(); err == nil {
			synced = st.Size()
		}
	}
	return &faultFile{File: file, fs: f, synced: synced}, nil
}

// Remove implements engines.FS.
func (f *FS) Remove(name string) error {
	if err := f.check(OpRemove, name); err != nil {
		return &os.PathError{Op: "remove", Path: name, Err: err}
	}
	return f.inner.Remove(name)
}

// Rename implements engines.FS.
func (f *FS) Rename(oldpath, newpath string) error {
	if err := f.check(OpRename, newpath); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return f.inner.Rename(oldpath, newpath)
}

// ReadDir implements engines.FS; it never fails by injection.
func (f *FS) ReadDir(dir string) ([]os.DirEntry, error) { return f.inner.ReadDir(dir) }

// MkdirAll implements engines.FS; it never fails by injection.
func (f *FS) MkdirAll(dir string, perm os.FileMode) error { return f.inner.MkdirAll(dir, perm) }

// SyncDir implements engines.FS.
func (f *FS) SyncDir(dir string) error {
	if err := f.check(OpSyncDir, dir); err != nil {
		return &os.PathError{Op: "sync", Path: dir, Err: err}
	}
	if f.o.NoSync {
		return nil
	}
	return f.inner.SyncDir(dir)
}

// faultFile is a file opened through an FS.
type faultFile struct {
	engines.File
	fs *FS

	mu     sync.Mutex
	synced int64 // size at the last successful Sync
}

// Write implements engines.File. An injected failure writes nothing.
func (ff *faultFile) Write(p []byte) (int, error) {
	if err := ff.fs.check(OpWrite, ff.Name()); err != nil {
		return 0, &os.PathError{Op: "write", Path: ff.Name(), Err: err}
	}
	return ff.File.Write(p)
}

// Truncate implements engines.File.
func (ff *faultFile) Truncate(size int64) error {
	if err := ff.fs.check(OpTruncate, ff.Name()); err != nil {
		return &os.PathError{Op: "truncate", Path: ff.Name(), Err: err}
	}
	if err := ff.File.Truncate(size); err != nil {
		return err
	}
	ff.mu.Lock()
	ff.synced = min(ff.synced, size)
	ff.mu.Unlock()
	return nil
}

// Sync implements engines.File. An injected failure drops the bytes written
// since the last successful Sync unless Options.KeepUnsynced.
func (ff *faultFile) Sync() error {
	ff.mu.Lock()
	defer ff.mu.Unlock()
	if err := ff.fs.check(OpSync, ff.Name()); err != nil {
		if !ff.fs.o.KeepUnsynced {
			if st, serr := ff.File.Stat(); serr == nil && st.Size() > ff.synced {
				_ = ff.File.Truncate(ff.synced)
			}
		}
		return &os.PathError{Op: "sync", Path: ff.Name(), Err: err}
	}
	if !ff.fs.o.NoSync {
		if err := ff.File.Sync(); err != nil {
			return err
		}
	}
	if st, err := ff.File.Stat(); err == nil {
		ff.synced = st.Size()
	}
	return nil
}
