package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRestore(t *testing.T) {
	f := newFixture(t).withVersions(t)
	target := filepath.Join(t.TempDir(), "restored")
	args := func(extra ...string) []string {
		return append([]string{"--remote", f.remote, "--dir", target}, extra...)
	}

	// A dry run plans and writes nothing.
	out := mustRun(t, "", args("restore", "--dry-run")...)
	if !strings.Contains(out, "version 3 into "+target+": download ") || !strings.Contains(out, "dry run: nothing written") {
		t.Fatalf("restore --dry-run printed:\n%s", out)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("restore --dry-run created %s (stat: %v)", target, err)
	}

	out = mustRun(t, "", args("restore")...)
	if !strings.Contains(out, "restored version 3 into "+target) || !strings.Contains(out, "metadata: n=3") {
		t.Fatalf("restore printed:\n%s", out)
	}
	if got := mustRun(t, "", args("get", "a")...); got != "3\n" {
		t.Fatalf("get a after restoring version 3 = %q, want 3", got)
	}
	if got := mustRun(t, "", args("get", "c")...); got != absentText+"\n" {
		t.Fatalf("get c after restoring version 3 = %q, want %s", got, absentText)
	}

	// Restoring again downloads nothing.
	out = mustRun(t, "", args("--json", "restore")...)
	var res restoreJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("restore --json: %v\n%s", err, out)
	}
	if res.Result == nil || res.Plan.Version != 3 || len(res.Plan.Download) != 0 || len(res.Plan.Reuse) == 0 ||
		res.Result.RunsDownloaded != 0 || res.Result.BytesDownloaded != 0 || res.Result.Metadata["n"] != "3" {
		t.Fatalf("second restore is not a no-op: %+v", res)
	}

	// Roll back to version 1.
	mustRun(t, "", args("restore", "--version", "1")...)
	if got := mustRun(t, "", args("get", "a")...); got != "1\n" {
		t.Fatalf("get a after restoring version 1 = %q, want 1", got)
	}
	if got := mustRun(t, "", args("get", "b")...); got != absentText+"\n" {
		t.Fatalf("get b after restoring version 1 = %q, want %s", got, absentText)
	}
}

func TestRestoreErrors(t *testing.T) {
	f := newFixture(t).withVersions(t)
	if r := runCLI(t, "", "--remote", f.remote, "restore"); r.code != exitUsage || !strings.Contains(r.err, "--dir") {
		t.Errorf("restore without --dir: exit %d, stderr %q", r.code, r.err)
	}
	if r := runCLI(t, "", f.args("restore", "--version", "x")...); r.code != exitUsage {
		t.Errorf("restore --version x: exit %d, stderr %q", r.code, r.err)
	}
	r := runCLI(t, "", "--remote", f.remote, "--dir", t.TempDir(), "restore", "--version", "7")
	if r.code != exitFailure || !strings.Contains(r.err, "version") {
		t.Errorf("restore --version 7: exit %d, stderr %q", r.code, r.err)
	}
}
