package main

import (
	"strings"
	"testing"
)

func TestBatch(t *testing.T) {
	f := newFixture(t)
	in := `# counters
put a 1
put hex:00 hex:

get a
get hex:00
get nope
snapshot offset=3
put a 2
del hex:00
snapshot offset=5
get a
restore 1
get a
get hex:00
restore latest
get a
`
	out := mustRun(t, in, f.args("batch")...)
	want := "1\nhex:\n(absent)\n1\n2\n2\n1\n1\nhex:\n2\n2\n"
	if out != want {
		t.Fatalf("batch printed:\n%s\nwant:\n%s", out, want)
	}
}

func TestBatchBadLine(t *testing.T) {
	f := newFixture(t)
	in := "put a 1\n\n# ok so far\nput b\nput c 3\n"
	r := runCLI(t, in, f.args("batch")...)
	if r.code != exitUsage {
		t.Fatalf("exit %d, want %d; stderr %q", r.code, exitUsage, r.err)
	}
	if !strings.HasPrefix(r.err, "tierkv: line 4: put takes 2 argument(s), got 1") || strings.Count(r.err, "\n") != 1 {
		t.Fatalf("stderr %q: want one line naming line 4", r.err)
	}
	// The lines before the bad one were applied, the ones after it not.
	if got := mustRun(t, "get a\nget c\n", f.args("batch")...); got != "1\n(absent)\n" {
		t.Fatalf("after the failed batch: %q", got)
	}
}

func TestBatchFailures(t *testing.T) {
	dir := t.TempDir()
	// A snapshot without a remote fails (status 1) and names the line and the fix.
	r := runCLI(t, "put a 1\nsnapshot\n", "--dir", dir, "batch")
	if r.code != exitFailure || !strings.Contains(r.err, "line 2: snapshot") || !strings.Contains(r.err, "--remote") {
		t.Fatalf("snapshot without a remote: exit %d, stderr %q", r.code, r.err)
	}
	for _, in := range []string{"frobnicate x\n", "restore 0\n", "put hex:1 x\n"} {
		if r := runCLI(t, in, "--dir", dir, "batch"); r.code != exitUsage || !strings.Contains(r.err, "line 1: ") {
			t.Errorf("%q: exit %d, stderr %q", in, r.code, r.err)
		}
	}
}
