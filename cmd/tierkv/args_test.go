package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tierkv/tierkv/engines/all"
)

func TestNormalizeArgs(t *testing.T) {
	app := newApp(nil, nil, nil)
	for _, tc := range []struct{ in, want string }{
		{"get k", "get k"},
		{"--dir D get k", "--dir D get k"},
		{"get --dir D k", "--dir D get k"},
		{"get k --dir D --json", "--dir D --json get k"},
		{"get k --dir=D", "--dir=D get k"},
		{"show 2 --json", "--json show 2"},
		{"verify --all --remote R --deep", "--remote R verify --all --deep"},
		{"verify --version 3 --json", "--json verify --version 3"},
		{"forget --keep-last 1 --density-factor 4", "--density-factor 4 forget --keep-last 1"},
		{"put k -5", "put k -5"},
		{"put -- -k v --json", "put -- -k v --json"},
		{"put k --json -- -v", "--json put -- k -v"},
		{"versions --no-such-flag", "versions --no-such-flag"},
		{"frobnicate --dir D", "frobnicate --dir D"},
		{"--json", "--json"},
		{"get --dir", "--dir get"},
		{"forget --help", "forget --help"},
	} {
		in := append([]string{"tierkv"}, strings.Fields(tc.in)...)
		got := strings.Join(normalizeArgs(app, in)[1:], " ")
		if got != tc.want {
			t.Errorf("normalizeArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestGlobalFlagsEitherSide: global flags work before and after the command
// name and after its arguments, and a command's flags after its arguments.
func TestGlobalFlagsEitherSide(t *testing.T) {
	f := newFixture(t).withVersions(t)
	for _, args := range [][]string{
		{"--dir", f.dir, "get", "a"},
		{"get", "--dir", f.dir, "a"},
		{"get", "a", "--dir", f.dir},
	} {
		if out := mustRun(t, "", args...); out != "3\n" {
			t.Errorf("%v printed %q, want 3", args, out)
		}
	}
	if out := mustRun(t, "", "get", "a", "--json", "--dir", f.dir); !strings.Contains(out, `"value": "3"`) {
		t.Errorf("get a --json printed %q", out)
	}
	if out := mustRun(t, "", "show", "2", "--json", "--remote", f.remote); !strings.Contains(out, `"version": 2`) {
		t.Errorf("show 2 --json printed %q", out)
	}
}

// TestHelpShowsFlagsOnce: engine parameters and global options are listed by
// 'tierkv --help' only, and every parameter of the registry has its flag.
func TestHelpShowsFlagsOnce(t *testing.T) {
	top := mustRun(t, "", "--help")
	for _, k := range all.Describe() {
		if !strings.Contains(top, k.Name) || !strings.Contains(top, k.Help) {
			t.Errorf("tierkv --help does not describe engine %s", k.Name)
		}
		for _, p := range k.Params {
			if strings.Count(top, "--"+flagOf(p.Name)+" ") != 1 {
				t.Errorf("tierkv --help lists --%s %d times, want once", flagOf(p.Name), strings.Count(top, "--"+flagOf(p.Name)+" "))
			}
		}
	}
	for _, cmd := range []string{"forget", "get", "verify", "show", "gc"} {
		out := mustRun(t, "", cmd, "--help")
		_, opts, _ := strings.Cut(out, "OPTIONS:")
		for _, flag := range []string{"--remote", "--dir", "--engine", "--json", "--density-factor", "--compaction", "--log-level"} {
			if strings.Contains(opts, flag) {
				t.Errorf("tierkv %s --help lists %s:\n%s", cmd, flag, out)
			}
		}
	}
}

// TestEngineFlagsFromRegistry: every parameter of every kind reaches the
// engine, and a parameter of another kind is a usage error naming the flag.
func TestEngineFlagsFromRegistry(t *testing.T) {
	for _, k := range all.Describe() {
		for _, other := range all.Describe() {
			def := all.DefaultParams(other.Name)
			for _, p := range other.Params {
				args := []string{"--engine", k.Name, "--" + flagOf(p.Name) + "=" + def[p.Name], "--dir", t.TempDir(), "put", "a", "1"}
				takes := slices.ContainsFunc(k.Params, func(q all.ParamInfo) bool { return q.Name == p.Name })
				r := runCLI(t, "", args...)
				switch {
				case takes && r.code != exitOK:
					t.Errorf("%v: exit %d, stderr %q", args, r.code, r.err)
				case !takes && (r.code != exitUsage || !strings.Contains(r.err, "--"+flagOf(p.Name)+" does not apply to engine "+k.Name)):
					t.Errorf("%v: exit %d, stderr %q; want a usage error", args, r.code, r.err)
				}
			}
		}
	}
}

// TestBadParamExit2: a bad parameter value and a parameter the recorded
// engine does not take are usage errors.
func TestBadParamExit2(t *testing.T) {
	f := newFixture(t)
	mustRun(t, "", "--engine", "hybridlog", "--dir", f.dir, "put", "a", "1")
	for _, args := range [][]string{
		{"--engine", "lsm", "--density-factor", "x", "--dir", t.TempDir(), "put", "a", "1"},
		{"--engine", "lsm", "--density-factor", "0", "--dir", t.TempDir(), "put", "a", "1"},
		{"--dir", t.TempDir(), "--memtable-bytes-limit", "lots", "put", "a", "1"},
		{"--dir", f.dir, "--density-factor", "4", "put", "a", "2"}, // the store is a hybridlog
	} {
		r := runCLI(t, "", args...)
		if r.code != exitUsage || strings.Count(r.err, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want one line and exit %d", args, r.code, r.err, exitUsage)
		}
	}
}

func TestHintFor(t *testing.T) {
	netHint := "check that the remote's endpoint is reachable"
	for _, tc := range []struct {
		err error
		net bool
	}{
		{&fs.PathError{Op: "open", Path: "/r/runs/x", Err: syscall.ENOTDIR}, false},
		{&fs.PathError{Op: "mkdir", Path: "/r/runs", Err: syscall.EROFS}, false},
		{fmt.Errorf("put: %w", &fs.PathError{Op: "write", Path: "/r/x", Err: syscall.ENOSPC}), false},
		{fmt.Errorf("link: %w", &os.LinkError{Op: "link", Old: "a", New: "b", Err: syscall.EROFS}), false},
		{fmt.Errorf("bare: %w", syscall.ENOSPC), false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}, true},
		{fmt.Errorf("list: %w", &net.DNSError{Err: "no such host", Name: "minio.invalid"}), true},
		{errors.New("something else"), false},
	} {
		if got := strings.Contains(hintFor(tc.err), netHint); got != tc.net {
			t.Errorf("hintFor(%v) = %q; network hint %v, want %v", tc.err, hintFor(tc.err), got, tc.net)
		}
	}
}

// TestEngineFromRemote: put and batch in a fresh directory without --engine
// take the engine of the remote's latest version.
func TestEngineFromRemote(t *testing.T) {
	f := newFixture(t)
	mustRun(t, "put a 1\nsnapshot\n", "--engine", "appendlog", "--remote", f.remote, "--dir", f.dir, "batch")
	// A fresh directory takes the engine of the remote's latest version; its
	// snapshot is refused (it descends from no version), so the engine is
	// read from its STORE.
	localEngine := func(dir string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, "STORE"))
		if err != nil {
			t.Fatal(err)
		}
		var sf struct {
			Engine string `json:"engine"`
		}
		if err := json.Unmarshal(b, &sf); err != nil {
			t.Fatal(err)
		}
		return sf.Engine
	}
	batchDir := filepath.Join(t.TempDir(), "b")
	mustRun(t, "put b 2\n", "--remote", f.remote, "--dir", batchDir, "batch")
	if got := localEngine(batchDir); got != "appendlog" {
		t.Fatalf("batch in a fresh dir made a %q store, want appendlog", got)
	}
	putDir := filepath.Join(t.TempDir(), "p")
	mustRun(t, "", "--remote", f.remote, "--dir", putDir, "put", "c", "3")
	if got := localEngine(putDir); got != "appendlog" {
		t.Fatalf("put in a fresh dir made a %q store, want appendlog", got)
	}
	if r := runCLI(t, "", "--remote", f.remote, "--dir", putDir, "snapshot"); r.code != 1 || !strings.Contains(r.err, "diverged") {
		t.Fatalf("snapshot of a fresh dir over a history: exit %d, stderr %q; want exit 1, diverged", r.code, r.err)
	}
	// An engine parameter of another kind is refused before anything is written.
	other := filepath.Join(t.TempDir(), "o")
	r := runCLI(t, "", "--remote", f.remote, "--dir", other, "--density-factor", "4", "put", "d", "4")
	if r.code != exitUsage || !strings.Contains(r.err, "does not apply to engine appendlog") {
		t.Fatalf("put --density-factor into an appendlog remote: exit %d, stderr %q", r.code, r.err)
	}
	if _, err := os.Stat(other); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the refused put created %s: %v", other, err)
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{time.Nanosecond, "1ns"},
		{1500 * time.Millisecond, "1.5s"},
		{90 * time.Minute, "1h30m"},
		{time.Hour, "1h"},
		{36 * time.Hour, "36h"},
		{48 * time.Hour, "2d"},
		{14 * 24 * time.Hour, "2w"},
		{time.Minute, "1m"},
		{0, "0s"},
	} {
		if got := formatDuration(tc.d); got != tc.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
		if tc.d > 0 {
			if back, err := parseDuration("x", formatDuration(tc.d)); err != nil || back != tc.d {
				t.Errorf("parseDuration(formatDuration(%v)) = %v, %v", tc.d, back, err)
			}
		}
	}
	f := newFixture(t).withVersions(t)
	out := mustRun(t, "", f.args("forget", "--keep-within", "1ns", "--dry-run")...)
	if !strings.Contains(out, "keeping those within 1ns)") {
		t.Fatalf("forget --keep-within 1ns printed %q", out)
	}
}

// TestNoStoreAtMissingRemote: read-only commands on a mistyped file://
// path fail with one line naming it and create nothing.
func TestNoStoreAtMissingRemote(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "typo", "remote")
	remote := "file://" + missing
	for _, args := range [][]string{
		{"versions"},
		{"--json", "versions"},
		{"show", "latest"},
		{"verify"},
		{"verify", "--all", "--deep"},
		{"forget", "--keep-last", "1", "--dry-run"},
		{"gc", "--dry-run"},
		{"--dir", filepath.Join(t.TempDir(), "d"), "restore", "--dry-run"},
		{"--dir", filepath.Join(t.TempDir(), "d"), "restore"},
	} {
		r := runCLI(t, "", append([]string{"--remote", remote}, args...)...)
		want := "tierkv: no store at " + remote + ": directory " + missing + " does not exist: "
		if r.code != exitFailure || !strings.HasPrefix(r.err, want) || strings.Count(r.err, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and %q...", args, r.code, r.err, want)
		}
		if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%v created %s: %v", args, filepath.Dir(missing), err)
		}
	}
	// An existing but empty directory holds no store either.
	empty := t.TempDir()
	r := runCLI(t, "", "--remote", "file://"+empty, "versions")
	if r.code != exitFailure || !strings.Contains(r.err, "no store at file://"+empty+": it holds no object") {
		t.Errorf("versions on an empty directory: exit %d, stderr %q", r.code, r.err)
	}
}

// TestVerifyCopiedRemote: a file:// remote copied with cp -r, which drops
// extended attributes, verifies clean, deep included.
func TestVerifyCopiedRemote(t *testing.T) {
	f := newFixture(t).withVersions(t)
	cp := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-r", f.remoteDir, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp -r: %v\n%s", err, out)
	}
	out := mustRun(t, "", "--remote", "file://"+cp, "verify", "--all", "--deep")
	if out != "ok: 3 versions verified (deep)\n" {
		t.Fatalf("verify of a copy printed %q", out)
	}
}
