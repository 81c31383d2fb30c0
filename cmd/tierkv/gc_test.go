package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGC(t *testing.T) {
	f := newFixture(t).withVersions(t)
	// Two runs no manifest names: one uploaded long ago, one just now.
	old := filepath.Join(f.remoteDir, "runs", "orphan-old")
	fresh := filepath.Join(f.remoteDir, "runs", "orphan-fresh")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("not referenced"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-3 * time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}

	before := treeHash(t, f.remoteDir)
	out := mustRun(t, "", f.args("gc", "--dry-run")...)
	if out != "would delete runs/orphan-old\nwould delete 1 objects (14 B); grace 1h\n" {
		t.Fatalf("gc --dry-run printed:\n%s", out)
	}
	if treeHash(t, f.remoteDir) != before {
		t.Fatal("gc --dry-run changed the remote")
	}

	out = mustRun(t, "", f.args("--json", "gc", "--grace", "0")...)
	var res gcJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("gc --json: %v\n%s", err, out)
	}
	if len(res.Deleted) != 2 || res.Bytes != 28 || res.DryRun {
		t.Fatalf("gc --grace 0 = %+v, want both orphans deleted", res)
	}
	for _, p := range []string{old, fresh} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s survived gc (%v)", p, err)
		}
	}
	// Everything the versions need is still there.
	mustRun(t, "", f.args("verify", "--all", "--deep")...)

	if r := runCLI(t, "", f.args("gc", "--grace", "-1h")...); r.code != exitUsage || !strings.Contains(r.err, "--grace") {
		t.Errorf("gc --grace -1h: exit %d, stderr %q", r.code, r.err)
	}
}
