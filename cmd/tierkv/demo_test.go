package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	out := mustRun(t, "", "demo", "--events", "3000", "--keys", "200", "--every", "700", "--seed", "7")
	for _, want := range []string{
		"worker 1: killed with SIGKILL at offset 1740",
		"worker 2: restored version 2 ",
		"offset=1400; replaying from there",
		": PASS\n",
		"VERSION  OFFSET",
		"incremental snapshots uploaded ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

func TestDemoJSON(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	out := mustRun(t, "", "--dir", dir, "--engine", "memonly", "--json", "demo", "--events", "1000", "--keys", "50",
		"--every", "300", "--crash-at", "650")
	var s demoJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("demo --json: %v\n%s", err, out)
	}
	if !s.Pass || s.Engine != "memonly" || s.CrashOffset != 650 || s.RestoredVersion != 2 || s.RestoredOffset != 600 {
		t.Fatalf("demo summary = %+v", s)
	}
	// Versions 1, 2 from the first worker; 3 (offset 900) and 4 (the end) from the second.
	if len(s.Versions) != 4 || s.Versions[3].Offset != 1000 || s.Versions[2].Offset != 900 {
		t.Fatalf("demo versions = %+v", s.Versions)
	}
	// The demo refuses a remote that already holds versions, and a used directory.
	r := runCLI(t, "", "--remote", "file://"+filepath.Join(dir, "remote"), "demo", "--events", "10")
	if r.code != exitUsage || !strings.Contains(r.err, "already holds version 4") {
		t.Fatalf("demo on a used remote: exit %d, stderr %q", r.code, r.err)
	}
	if r = runCLI(t, "", "--dir", dir, "demo", "--events", "10"); r.code != exitUsage || !strings.Contains(r.err, "empty") {
		t.Fatalf("demo in a used --dir: exit %d, stderr %q", r.code, r.err)
	}
}
