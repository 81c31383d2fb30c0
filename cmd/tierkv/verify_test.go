package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// remoteRuns lists the run objects of a file:// remote.
func remoteRuns(t *testing.T, f fixture) []string {
	t.Helper()
	runs, err := filepath.Glob(filepath.Join(f.remoteDir, "runs", "*"))
	if err != nil || len(runs) == 0 {
		t.Fatalf("no runs in %s (%v)", f.remoteDir, err)
	}
	return runs
}

func TestVerify(t *testing.T) {
	f := newFixture(t).withVersions(t)
	if out := mustRun(t, "", f.args("verify")...); out != "ok: 1 versions verified (shallow)\n" {
		t.Fatalf("verify printed %q", out)
	}
	if out := mustRun(t, "", f.args("verify", "--all", "--deep")...); out != "ok: 3 versions verified (deep)\n" {
		t.Fatalf("verify --all --deep printed %q", out)
	}
	out := mustRun(t, "", f.args("--json", "verify", "--version", "2")...)
	var v verifyJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil || !v.OK || len(v.Versions) != 1 || v.Versions[0] != 2 || v.Problems == nil {
		t.Fatalf("verify --json --version 2 = %+v (%v):\n%s", v, err, out)
	}
}

func TestVerifyFindsDamage(t *testing.T) {
	f := newFixture(t).withVersions(t)
	runs := remoteRuns(t, f)

	// Flip one byte of a run: same size, so only --deep sees it.
	b, err := os.ReadFile(runs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(runs[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "", f.args("verify", "--all", "--deep")...)
	name := filepath.Base(runs[0])
	if r.code != exitFailure || !strings.Contains(r.out, name) || !strings.Contains(r.err, "verify (deep) found") {
		t.Fatalf("verify --deep of a damaged run: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.out), "\n") {
		if !strings.HasPrefix(line, "version ") || !strings.Contains(line, name) {
			t.Errorf("problem line %q does not name a version and the damaged run %s", line, name)
		}
	}

	// A missing run is seen without --deep.
	if err := os.Remove(runs[0]); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "", f.args("--json", "verify", "--all")...)
	var v verifyJSON
	if err := json.Unmarshal([]byte(r.out), &v); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, r.out)
	}
	if r.code != exitFailure || v.OK || len(v.Problems) == 0 || !strings.Contains(v.Problems[0].Object, name) {
		t.Fatalf("verify of a missing run: exit %d, %+v", r.code, v)
	}
}

func TestVerifyUsage(t *testing.T) {
	f := newFixture(t).withVersions(t)
	if r := runCLI(t, "", f.args("verify", "--all", "--version", "1")...); r.code != exitUsage {
		t.Errorf("verify --all --version 1: exit %d, want %d", r.code, exitUsage)
	}
	empty := newFixture(t).withOrphanRun(t)
	if r := runCLI(t, "", empty.args("verify")...); r.code != exitFailure || !strings.Contains(r.err, "no snapshot yet") {
		t.Errorf("verify on a remote without versions: exit %d, stderr %q", r.code, r.err)
	}
}
