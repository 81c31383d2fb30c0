package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tierkv/tierkv/manifest"
)

func TestShow(t *testing.T) {
	f := newFixture(t).withVersions(t)
	out := mustRun(t, "", f.args("show", "latest")...)
	for _, want := range []string{"version:   3\n", "parent:    2\n", "metadata:  n=3\n", "RUN", "CRC32C"} {
		if !strings.Contains(out, want) {
			t.Errorf("show latest lacks %q:\n%s", want, out)
		}
	}

	out = mustRun(t, "", f.args("show", "--json", "2")...)
	var m manifest.Manifest
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("show --json is not a manifest: %v\n%s", err, out)
	}
	if m.Version != 2 || m.Parent != 1 || m.Metadata["n"] != "2" || len(m.Runs) == 0 {
		t.Fatalf("show --json 2 = version %d parent %d metadata %v runs %d", m.Version, m.Parent, m.Metadata, len(m.Runs))
	}
}

func TestShowErrors(t *testing.T) {
	f := newFixture(t).withVersions(t)
	r := runCLI(t, "", f.args("show", "9")...)
	if r.code != exitFailure || !strings.Contains(r.err, "tierkv versions") || strings.Count(r.err, "\n") != 1 {
		t.Fatalf("show 9: exit %d, stderr %q: want 1 and a one-line hint to run 'tierkv versions'", r.code, r.err)
	}
	for _, args := range [][]string{{"show"}, {"show", "0"}, {"show", "newest"}, {"show", "1", "2"}} {
		if r := runCLI(t, "", f.args(args...)...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, r.code, exitUsage, r.err)
		}
	}
}
