package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func versionList(t *testing.T, f fixture) []uint64 {
	t.Helper()
	var rows []versionRow
	if err := json.Unmarshal([]byte(mustRun(t, "", f.args("--json", "versions")...)), &rows); err != nil {
		t.Fatal(err)
	}
	var vs []uint64
	for _, r := range rows {
		vs = append(vs, r.Version)
	}
	return vs
}

func TestForget(t *testing.T) {
	f := newFixture(t).withVersions(t)
	before := treeHash(t, f.remoteDir)
	out := mustRun(t, "", f.args("forget", "--keep-last", "1", "--dry-run")...)
	if !strings.Contains(out, "would forget version 1\nwould forget version 2\n") {
		t.Fatalf("forget --dry-run printed:\n%s", out)
	}
	if treeHash(t, f.remoteDir) != before {
		t.Fatal("forget --dry-run changed the remote")
	}

	out = mustRun(t, "", f.args("--json", "forget", "--keep-last", "2")...)
	var res forgetJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.DryRun || len(res.Forgotten) != 1 || res.Forgotten[0] != 1 {
		t.Fatalf("forget --keep-last 2 --json = %+v (%v):\n%s", res, err, out)
	}
	if vs := versionList(t, f); len(vs) != 2 || vs[0] != 2 || vs[1] != 3 {
		t.Fatalf("versions after forget = %v, want [2 3]", vs)
	}
	// Pins and time windows keep versions too.
	mustRun(t, "", f.args("forget", "--keep-last", "1", "--pin", "2")...)
	mustRun(t, "", f.args("forget", "--keep-within", "7d")...)
	if vs := versionList(t, f); len(vs) != 2 {
		t.Fatalf("versions after pinned forget = %v, want [2 3]", vs)
	}
}

func TestForgetUsage(t *testing.T) {
	f := newFixture(t).withVersions(t)
	for _, args := range [][]string{
		{"forget"},
		{"forget", "--keep-last", "0"},
		{"forget", "--keep-within", "soon"},
		{"forget", "--keep-last", "x"},
		{"forget", "--keep-last", "1", "--pin", "0"},
	} {
		r := runCLI(t, "", f.args(args...)...)
		if r.code != exitUsage || strings.Count(r.err, "\n") != 1 || !strings.HasPrefix(r.err, "tierkv: ") {
			t.Errorf("%v: exit %d, stderr %q: want %d and one line", args, r.code, r.err, exitUsage)
		}
	}
	if vs := versionList(t, f); len(vs) != 3 {
		t.Fatalf("a refused forget changed the versions: %v", vs)
	}
}
