package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPutGetDel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	d := func(args ...string) []string { return append([]string{"--dir", dir}, args...) }

	mustRun(t, "", d("put", "k", "hello world")...)
	mustRun(t, "", d("put", "hex:00ff", "hex:")...)
	mustRun(t, "", d("put", "bin", "hex:0001")...)
	for _, tt := range []struct{ key, want string }{
		{"k", "hello world"},
		{"hex:00ff", "hex:"}, // the empty value, not absent
		{"bin", "hex:0001"},
		{"missing", absentText},
	} {
		if got := mustRun(t, "", d("get", tt.key)...); got != tt.want+"\n" {
			t.Errorf("get %s = %q, want %q", tt.key, got, tt.want)
		}
	}
	mustRun(t, "", d("del", "k")...)
	out := mustRun(t, "", d("--json", "get", "k")...)
	var g getJSON
	if err := json.Unmarshal([]byte(out), &g); err != nil || g.Found || g.Key != "k" {
		t.Fatalf("get --json of a deleted key = %+v (%v): %s", g, err, out)
	}
	out = mustRun(t, "", d("--json", "get", "hex:00ff")...)
	if err := json.Unmarshal([]byte(out), &g); err != nil || !g.Found || g.Value != "hex:" || g.Key != "hex:00ff" {
		t.Fatalf("get --json of the empty value = %+v (%v): %s", g, err, out)
	}
}

func TestGetDoesNotCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "none")
	r := runCLI(t, "", "--dir", dir, "get", "k")
	if r.code != exitFailure || !strings.Contains(r.err, "no local store at "+dir) || !strings.Contains(r.err, "tierkv restore") {
		t.Fatalf("get in a missing dir: exit %d, stderr %q", r.code, r.err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("get created %s", dir)
	}
}

func TestKVUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"get"}, {"get", "a", "b"}, {"put", "a"}, {"put", "hex:zz", "v"}, {"del"},
	} {
		if r := runCLI(t, "", append([]string{"--dir", dir}, args...)...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, r.code, exitUsage, r.err)
		}
	}
	if r := runCLI(t, "", "put", "a", "b"); r.code != exitUsage || !strings.Contains(r.err, "pass --dir PATH or set TIERKV_DIR") {
		t.Errorf("put without --dir: exit %d, stderr %q", r.code, r.err)
	}
	if r := runCLI(t, "", "--dir", dir, "put", "", "v"); r.code != exitFailure || !strings.Contains(r.err, "keys are 1..65535 bytes") {
		t.Errorf("put of an empty key: exit %d, stderr %q", r.code, r.err)
	}
}
