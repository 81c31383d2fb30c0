package main

import (
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"--no-such-flag", "versions"},
		{"versions", "--no-such-flag"},
		{"--engine", "btree", "--dir", t.TempDir(), "get", "k"},
		{"--engine", "hybridlog", "--density-factor", "8", "--dir", t.TempDir(), "get", "k"},
		{"--log-level", "loud", "--dir", t.TempDir(), "get", "k"},
		{"--remote", "bogus://x", "versions"},
		{"--remote", "file://relative/path", "show", "latest"},
	} {
		r := runCLI(t, "", args...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, r.code, exitUsage, r.err)
			continue
		}
		lines := strings.Split(strings.TrimSpace(r.err), "\n")
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "tierkv: ") {
			t.Errorf("%v: last stderr line %q is not a one-line error", args, last)
		}
	}
}

func TestEngineParamFlags(t *testing.T) {
	f := newFixture(t)
	// The flags reach the engine under their thesis names; only the ones set.
	mustRun(t, "", f.args("--engine", "lsm", "--density-factor", "4", "--max-runs-per-level", "3", "put", "a", "1")...)
	mustRun(t, "", f.args("snapshot")...)
	out := mustRun(t, "", f.args("show", "latest")...)
	if !strings.Contains(out, "engine:    lsm\n") || !strings.Contains(out, "density_factor=4") || !strings.Contains(out, "max_runs_per_level=3") {
		t.Fatalf("show after put with engine flags:\n%s", out)
	}
	if r := runCLI(t, "", f.args("--engine", "lsm", "--density-factor", "x", "put", "a", "1")...); r.code == 0 || !strings.Contains(r.err, "density_factor") {
		t.Fatalf("--density-factor x: exit %d, stderr %q", r.code, r.err)
	}
}

// TestReadOnlyCommands checks that versions, show, verify, restore --dry-run
// and get leave the remote byte-identical.
func TestReadOnlyCommands(t *testing.T) {
	f := newFixture(t).withVersions(t)
	before := treeHash(t, f.remoteDir)
	other := t.TempDir() + "/other"
	for _, args := range [][]string{
		{"versions"},
		{"--json", "versions"},
		{"show", "latest"},
		{"show", "--json", "1"},
		{"verify", "--all", "--deep"},
		{"restore", "--dry-run"},
		{"--dir", other, "restore", "--dry-run", "--version", "1"},
		{"get", "a"},
	} {
		mustRun(t, "", f.args(args...)...)
		if treeHash(t, f.remoteDir) != before {
			t.Fatalf("%v changed the remote", args)
		}
	}
	// get opens without a snapshot: still three versions.
	if vs := versionList(t, f); len(vs) != 3 {
		t.Fatalf("versions after read-only commands: %v", vs)
	}
}

// TestSecretsNeverPrinted sets fake credentials and feeds them to every path
// that prints a remote URL or an error, then greps the output for them.
func TestSecretsNeverPrinted(t *testing.T) {
	const secret = "SuperSecretValue-4f9a1c"
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("MINIO_SECRET_KEY", secret)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFAKE")
	t.Setenv("AWS_REGION", "us-east-1")
	dir := t.TempDir()
	every := [][]string{
		{"versions"}, {"show", "latest"}, {"verify"}, {"--dir", dir, "restore", "--dry-run"},
		{"forget", "--keep-last", "1", "--dry-run"}, {"gc", "--dry-run"}, {"--dir", dir, "snapshot"},
		{"--log-level", "debug", "versions"},
	}
	// Servers that do not answer: a few commands (each retries a while).
	few := [][]string{{"--log-level", "debug", "versions"}, {"--dir", dir, "snapshot"}}
	for _, tc := range []struct {
		remote string
		cmds   [][]string
	}{
		{"s3://user:" + secret + "@bucket/prefix?endpoint=http://127.0.0.1:1&path_style=true", every},
		{"minio://127.0.0.1:1/bucket/p?secure=false&secret_key=" + secret, every},
		{"bogus://" + secret + "@x", every},
		{"s3://bucket/prefix?endpoint=http://127.0.0.1:1&path_style=true", few},
		{"minio://127.0.0.1:1/bucket/p?secure=false", few},
	} {
		for _, args := range tc.cmds {
			r := runCLI(t, "", append([]string{"--remote", tc.remote}, args...)...)
			if r.code == 0 {
				t.Errorf("%s %v succeeded against a closed port", tc.remote, args)
			}
			if strings.Contains(r.out+r.err, secret) {
				t.Fatalf("%v printed the secret:\nstdout: %s\nstderr: %s", args, r.out, r.err)
			}
		}
	}
}
