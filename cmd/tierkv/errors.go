package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/engines/all"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/tiered"
)

// usageError is a wrong command line; it exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef builds a usage error.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitError carries an explicit exit status (for example verify's "problems
// found", which is not a usage error).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// hinted attaches what to try to an error.
type hinted struct {
	err  error
	hint string
}

func (e *hinted) Error() string { return e.err.Error() + ": " + e.hint }
func (e *hinted) Unwrap() error { return e.err }

// withHint returns err with a hint of what to try, or nil for a nil err.
func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hinted{err: err, hint: hint}
}

// errNoRemote is returned by commands that need a remote when none is given.
var errNoRemote = &usageError{msg: "no remote given: pass --remote URL or set TIERKV_REMOTE"}

// errNoDir is returned by commands that need a local directory when none is given.
var errNoDir = &usageError{msg: "no local directory given: pass --dir PATH or set TIERKV_DIR"}

// hintFor returns what to try for the known error classes, or "".
func hintFor(err error) string {
	var h *hinted
	if errors.As(err, &h) {
		return "" // already carries its own
	}
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted; run the command again to continue"
	case errors.Is(err, tiered.ErrNoRemote):
		return "pass --remote URL or set TIERKV_REMOTE"
	case errors.Is(err, manifest.ErrNoVersions):
		return "the remote holds no snapshot yet: take one with 'tierkv snapshot', or check --remote"
	case errors.Is(err, manifest.ErrVersionNotFound):
		return "run 'tierkv versions' to list the versions"
	case errors.Is(err, manifest.ErrFenced):
		return "another writer committed to this remote prefix; stop it, or restore its latest version and continue from there"
	case errors.Is(err, engines.ErrCorrupt):
		return "run 'tierkv verify --all --deep' to list every damaged object"
	case errors.Is(err, manifest.ErrFormat):
		return "the manifest was written by another tierkv version; upgrade tierkv"
	case errors.Is(err, tiered.ErrLocked):
		return "another process has this directory open; stop it or pass another --dir"
	case errors.Is(err, engines.ErrKindMismatch):
		return "pass the --engine the store was created with ('tierkv show latest' names it)"
	case errors.Is(err, engines.ErrLimit):
		return "keys are 1..65535 bytes, values at most 16 MiB"
	}
	var pe *engines.ParamError
	if errors.As(err, &pe) {
		return "fix the engine parameter flag"
	}
	if errors.Is(err, all.ErrUnknownParam) {
		return "pass only the parameters of the store's engine ('tierkv show latest' names it)"
	}
	if isNetworkError(err) {
		return "check that the remote's endpoint is reachable and --remote names it"
	}
	return ""
}

// isNetworkError reports whether err comes from the network. A bare
// syscall.Errno also satisfies net.Error, so local file-system errors
// (ENOTDIR, EROFS, ENOSPC) are told apart by the absence of a network
// operation around them.
func isNetworkError(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	if errors.As(err, &op) || errors.As(err, &dns) {
		return true
	}
	var ne net.Error
	var errno syscall.Errno
	return errors.As(err, &ne) && !errors.As(err, &errno)
}

// isParamError reports whether err is a bad engine parameter given on the
// command line: a usage error.
func isParamError(err error) bool {
	var pe *engines.ParamError
	return errors.As(err, &pe) || errors.Is(err, all.ErrUnknownParam)
}

// secretEnv lists the environment variables whose values must never be
// printed.
var secretEnv = []string{
	"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "MINIO_SECRET_KEY", "MINIO_ROOT_PASSWORD",
	"TIERKV_TEST_MINIO_SECRET_KEY",
}

// scrubSecrets replaces every secret found in the environment by
// "[REDACTED]". Messages are built from redacted URLs already; this is the
// last line of defence for errors that echo a credential back.
func scrubSecrets(s string) string {
	for _, name := range secretEnv {
		if v := os.Getenv(name); len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "[REDACTED]")
		}
	}
	return s
}
