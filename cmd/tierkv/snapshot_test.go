package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSnapshot(t *testing.T) {
	f := newFixture(t)
	mustRun(t, "", f.args("put", "a", "1")...)
	out := mustRun(t, "", f.args("snapshot", "--meta", "offset=10", "--meta", "src=a,b")...)
	if !strings.HasPrefix(out, "version 1 (parent -): ") {
		t.Fatalf("snapshot printed %q", out)
	}
	// put and del change only the local state; the next snapshot commits them.
	mustRun(t, "", f.args("put", "b", "2")...)
	if vs := versionList(t, f); len(vs) != 1 {
		t.Fatalf("put created a version: %v", vs)
	}
	out = mustRun(t, "", f.args("--json", "snapshot")...)
	var s snapshotJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.Version != 2 || s.Parent != 1 || s.NewRuns < 1 ||
		s.BytesUploaded <= 0 || s.BytesUploaded >= s.TotalBytes {
		t.Fatalf("snapshot --json = %+v (%v), want an incremental version 2", s, err)
	}
	show := mustRun(t, "", f.args("show", "1")...)
	if !strings.Contains(show, "metadata:  offset=10,src=a,b\n") {
		t.Fatalf("metadata of version 1 (commas kept in one --meta value):\n%s", show)
	}
}

func TestSnapshotUsage(t *testing.T) {
	f := newFixture(t)
	if r := runCLI(t, "", f.args("snapshot", "--meta", "novalue")...); r.code != exitUsage {
		t.Errorf("--meta novalue: exit %d, stderr %q", r.code, r.err)
	}
	if r := runCLI(t, "", "--dir", f.dir, "snapshot"); r.code != exitUsage || !strings.Contains(r.err, "--remote") {
		t.Errorf("snapshot without a remote: exit %d, stderr %q", r.code, r.err)
	}
}
