package main

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestVersionsJSON(t *testing.T) {
	f := newFixture(t).withVersions(t)
	out := mustRun(t, "", f.args("--json", "versions")...)
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("versions --json is not a JSON array: %v\n%s", err, out)
	}
	if len(rows) != 3 {
		t.Fatalf("got %d versions, want 3:\n%s", len(rows), out)
	}
	wantFields := []string{"created", "engine", "metadata", "new_bytes", "parent", "runs", "total_bytes", "version"}
	for i, r := range rows {
		if got := slices.Sorted(maps.Keys(r)); !slices.Equal(got, wantFields) {
			t.Fatalf("row %d has fields %v, want %v", i, got, wantFields)
		}
		if v := r["version"].(float64); v != float64(i+1) {
			t.Errorf("row %d: version %v, want %d", i, v, i+1)
		}
		if p := r["parent"].(float64); p != float64(i) {
			t.Errorf("row %d: parent %v, want %d", i, p, i)
		}
		md := r["metadata"].(map[string]any)
		if md["n"] != strconv.Itoa(i+1) {
			t.Errorf("row %d: metadata %v, want n=%d", i, md, i+1)
		}
		if r["total_bytes"].(float64) <= 0 || r["runs"].(float64) < 1 {
			t.Errorf("row %d: empty version: %v", i, r)
		}
	}
	// Later versions hold more state than they uploaded.
	if last := rows[2]; last["new_bytes"].(float64) >= last["total_bytes"].(float64) {
		t.Errorf("version 3 uploaded %v of %v bytes: want an incremental snapshot", last["new_bytes"], last["total_bytes"])
	}
}

func TestVersionsTable(t *testing.T) {
	f := newFixture(t).withVersions(t)
	// "ls" is an alias, and global options may follow the command name.
	out := mustRun(t, "", "ls", "--remote", f.remote)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 rows, got:\n%s", out)
	}
	for _, col := range []string{"VERSION", "CREATED", "PARENT", "ENGINE", "RUNS", "TOTAL", "NEW", "METADATA"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("header %q lacks column %s", lines[0], col)
		}
	}
	if f := strings.Fields(lines[1]); f[0] != "1" || f[2] != "-" || f[len(f)-1] != "n=1" {
		t.Errorf("row for version 1 is %q, want version 1, no parent, metadata n=1", lines[1])
	}
}

func TestVersionsEmptyRemote(t *testing.T) {
	f := newFixture(t).withOrphanRun(t)
	if out := mustRun(t, "", f.args("--json", "versions")...); strings.TrimSpace(out) != "[]" {
		t.Fatalf("versions --json on an empty remote printed %q, want []", out)
	}
}

func TestVersionsNoRemote(t *testing.T) {
	r := runCLI(t, "", "versions")
	if r.code != exitUsage {
		t.Fatalf("exit %d, want %d", r.code, exitUsage)
	}
	if want := "tierkv: no remote given: pass --remote URL or set TIERKV_REMOTE\n"; r.err != want {
		t.Fatalf("stderr %q, want %q", r.err, want)
	}
}

func TestVersionsRemoteFromEnv(t *testing.T) {
	f := newFixture(t).withVersions(t)
	t.Setenv("TIERKV_REMOTE", f.remote)
	if out := mustRun(t, "", "versions"); strings.Count(out, "\n") != 4 {
		t.Fatalf("versions with TIERKV_REMOTE printed:\n%s", out)
	}
}
