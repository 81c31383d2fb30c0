package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the test binary act as the demo's worker process: the demo
// re-executes os.Executable() (this binary under go test) with the hidden
// demo-worker command and demoWorkerEnv set.
func TestMain(m *testing.M) {
	if os.Getenv(demoWorkerEnv) == "1" {
		os.Exit(run(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr))
	}
	// The tests pass everything on the command line.
	os.Unsetenv("TIERKV_REMOTE")
	os.Unsetenv("TIERKV_DIR")
	os.Exit(m.Run())
}

// result is the outcome of one in-process run of the CLI.
type result struct {
	out, err string
	code     int
}

// runCLI runs "tierkv args..." in-process with stdin and returns what it
// printed and its exit status.
func runCLI(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), append([]string{"tierkv"}, args...), strings.NewReader(stdin), &out, &errb)
	return result{out: out.String(), err: errb.String(), code: code}
}

// mustRun runs the CLI and fails the test unless it exits with status 0.
func mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := runCLI(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("tierkv %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

// fixture is a local store directory and a file:// remote in t.TempDir().
type fixture struct {
	dir, remoteDir, remote string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	base := t.TempDir()
	f := fixture{dir: filepath.Join(base, "store"), remoteDir: filepath.Join(base, "remote")}
	f.remote = "file://" + f.remoteDir
	return f
}

// args returns the global options naming the fixture, then extra.
func (f fixture) args(extra ...string) []string {
	return append([]string{"--remote", f.remote, "--dir", f.dir}, extra...)
}

// withVersions writes three versions through "tierkv batch":
//
//	v1: a=1            metadata n=1
//	v2: a=1 b=2        metadata n=2
//	v3: a=3 b=2 (no c) metadata n=3
func (f fixture) withVersions(t *testing.T) fixture {
	t.Helper()
	out := mustRun(t, "put a 1\nsnapshot n=1\nput b 2\nput c 9\ndel c\nsnapshot n=2\nput a 3\nsnapshot n=3\n",
		f.args("batch")...)
	if out != "1\n2\n3\n" {
		t.Fatalf("batch printed %q, want the versions 1, 2, 3", out)
	}
	return f
}

// withOrphanRun puts one run object and no manifest in the remote: a
// store whose first snapshot never committed.
func (f fixture) withOrphanRun(t *testing.T) fixture {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(f.remoteDir, "runs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.remoteDir, "runs", "orphan"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// treeHash hashes every path, mode and content under dir.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		h.Write([]byte(rel + "\x00" + info.Mode().String() + "\x00"))
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		h.Write([]byte{0})
		return nil
	})
	if err != nil {
		t.Fatalf("hash %s: %v", dir, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
