package faults

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/objstore/objstoretest"
	"github.com/tierkv/tierkv/tiered"
)

// encodeUnchecked encodes m as manifest.Encode does (canonical indented
// JSON, CRC-32C of the encoding with an empty checksum) but without
// validating it: what a hostile or buggy writer could put in a bucket.
func encodeUnchecked(t testing.TB, m manifest.Manifest) []byte {
	t.Helper()
	m.FormatVersion = manifest.FormatVersion
	m.Stats.TotalRuns = len(m.Runs)
	m.Stats.TotalBytes = 0
	for _, r := range m.Runs {
		m.Stats.TotalBytes += r.Size
	}
	m.Stats.NewRuns = min(m.Stats.NewRuns, m.Stats.TotalRuns)
	m.Stats.NewBytes = min(m.Stats.NewBytes, m.Stats.TotalBytes)
	m.Checksum = ""
	body, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	m.Checksum = fmt.Sprintf("%08x", crc32.Checksum(append(body, '\n'), engines.CastagnoliTable))
	out, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// hostileNames are run names that try to leave the restore directory. The
// run files of a restore go into <dir>/data-NNNNNN/, so "../../x" would
// land beside <dir>.
func hostileNames(sandbox string) []string {
	return []string{
		"../evil",
		"../../evil",
		"../../../evil",
		"a/../../../evil",
		"sub/evil",
		filepath.Join(sandbox, "evil-abs"),
		"/evil-root",
		`..\evil`,
		`..\..\evil`,
		`a\..\..\..\evil`,
		`C:\evil`,
		"..",
		".",
		"evil\x00.run",
		"./evil",
	}
}

// treeState maps every path under root, except the skipped subtrees, to
// its mode, and for files their size and modification time.
func treeState(t *testing.T, root string, skip ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if slices.Contains(skip, p) {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			// A directory's size and time change when the target
			// directories inside it are created; its entries are checked.
			out[p] = info.Mode().String()
			return nil
		}
		out[p] = fmt.Sprintf("%s %d %d", info.Mode(), info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// findEvil returns every path under root whose name contains "evil".
func findEvil(t *testing.T, root string) []string {
	t.Helper()
	var found []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), "evil") {
			found = append(found, p)
		}
		return nil
	})
	return found
}

// TestHostileRunNames plants, as version 2 of a real store, manifests with a
// valid checksum whose run names try to escape the restore directory. Every
// entry point that reads a manifest refuses them, and nothing appears or
// changes outside the target directories.
func TestHostileRunNames(t *testing.T) {
	leakCheck(t)
	ctx := ctxT(t)
	root := t.TempDir()
	sandbox := filepath.Join(root, "sandbox")
	remoteDir := filepath.Join(root, "remote")
	for _, d := range []string{sandbox, remoteDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sandbox, "sentinel"), []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	remote := "file://" + remoteDir
	st := openURL(t, remote)

	// Version 1: a real store's snapshot.
	keys := newUniverse(50)
	w := openStore(t, tiered.Options{Dir: filepath.Join(root, "writer"), ObjectStore: st, Engine: "lsm", Params: tinyParams("lsm")})
	v1 := state{}
	for i, k := range keys {
		v := strings.Repeat(string(rune('a'+i%26)), 40)
		if err := w.Set([]byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
		v1[k] = v
	}
	if _, err := w.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	good, err := manifest.Load(ctx, st, 1)
	if err != nil {
		t.Fatal(err)
	}
	runsBefore, err := st.List(ctx, manifest.RunPrefix)
	if err != nil {
		t.Fatal(err)
	}

	// The unchecked encoder is right: an untouched copy as version 2 loads.
	probe := *good
	probe.Version, probe.Parent = 2, 1
	putObject(t, st, manifest.Key(2), encodeUnchecked(t, probe), nil)
	if _, err := manifest.Load(ctx, st, 2); err != nil {
		t.Fatalf("a valid manifest encoded without validation does not load: %v", err)
	}
	if err := st.Delete(ctx, manifest.Key(2)); err != nil {
		t.Fatal(err)
	}

	live := openStore(t, tiered.Options{Dir: filepath.Join(sandbox, "live"), ObjectStore: st})
	checkState(t, live, v1, keys, "live store at version 1")
	targets := []string{filepath.Join(sandbox, "live"), filepath.Join(sandbox, "target"), filepath.Join(sandbox, "open"), filepath.Join(sandbox, "cli")}
	before := treeState(t, sandbox, targets...)
	cli := cliBinary(t)
	refusals := 0

	for i, name := range hostileNames(sandbox) {
		for _, mode := range []string{"added", "replaced"} {
			t.Run(fmt.Sprintf("%d-%s", i, mode), func(t *testing.T) {
				m := *good
				m.Version, m.Parent = 2, 1
				m.Runs = slices.Clone(good.Runs)
				// Size and CRC of a real run, so that only the name is wrong.
				hostile := engines.RunInfo{Name: name, Size: good.Runs[0].Size, CRC32C: good.Runs[0].CRC32C}
				if mode == "added" {
					m.Runs = append(m.Runs, hostile)
				} else {
					m.Runs[0] = hostile
				}
				putObject(t, st, manifest.Key(2), encodeUnchecked(t, m), nil)
				defer func() {
					if err := st.Delete(ctx, manifest.Key(2)); err != nil {
						t.Fatal(err)
					}
				}()
				refused := func(what string, err error) {
					t.Helper()
					if err == nil {
						t.Errorf("%s of a manifest with run %q succeeded", what, name)
						return
					}
					if !errors.Is(err, engines.ErrCorrupt) || !errors.Is(err, manifest.ErrInvalid) {
						t.Errorf("%s with run %q: %v; want an error matching engines.ErrCorrupt and manifest.ErrInvalid", what, name, err)
					}
					refusals++
				}
				_, err := manifest.Load(ctx, st, 2)
				refused("manifest.Load", err)
				_, err = live.Restore(ctx, 2)
				refused("Store.Restore", err)
				_, err = live.Restore(ctx, 0)
				refused("Store.Restore(latest)", err)
				checkState(t, live, v1, keys, "live store after refused restores")
				s, err := tiered.Open(ctx, tiered.Options{Dir: filepath.Join(sandbox, "open"), ObjectStore: st, Logger: discardLogger()})
				if err == nil {
					_ = s.Close()
				}
				refused("Open(latest)", err)
				_, err = tiered.RestoreTo(ctx, filepath.Join(sandbox, "target"), st, 2, nil)
				refused("RestoreTo", err)
				_, err = tiered.PlanRestore(ctx, filepath.Join(sandbox, "target"), st, 2)
				refused("PlanRestore", err)
				problems, err := tiered.Verify(ctx, st, nil, true)
				if err != nil || len(problems) != 1 || problems[0].Version != 2 {
					t.Errorf("Verify: %v, %v; want exactly one problem, with version 2", problems, err)
				} else {
					refusals++
				}
				_, err = tiered.GC(ctx, st, 0, false)
				refused("GC", err)
				_, err = live.GC(ctx, 0, false)
				refused("Store.GC", err)
				runs, err := st.List(ctx, manifest.RunPrefix)
				if err != nil || len(runs) != len(runsBefore) {
					t.Fatalf("runs after refused GCs: %d (%v), before %d", len(runs), err, len(runsBefore))
				}
				cliCases := [][]string{
					{"restore", "--version", "2", "--dir", filepath.Join(sandbox, "cli")},
					{"restore", "--dir", filepath.Join(sandbox, "cli")},
					{"verify", "--all", "--deep"},
					{"show", "2"},
					{"gc", "--grace", "0s"},
				}
				if mode != "added" || i >= 5 {
					cliCases = cliCases[:1] // the CLI goes through the same code; keep the test short
				}
				for _, args := range cliCases {
					out := cli.run(t, nil, append([]string{"--remote", remote}, args...)...)
					if out.code == 0 {
						t.Errorf("tierkv %s succeeded on a manifest with run %q:\n%s%s", strings.Join(args, " "), name, out.stdout, out.stderr)
					} else {
						refusals++
					}
				}
				if evil := findEvil(t, root); len(evil) > 0 {
					t.Fatalf("files written for run %q: %v", name, evil)
				}
				if after := treeState(t, sandbox, targets...); !maps.Equal(before, after) {
					t.Fatalf("the sandbox around the target directories changed:\nbefore %v\nafter  %v", before, after)
				}
			})
		}
	}
	t.Logf("%d hostile manifests, %d refusals checked", 2*len(hostileNames(sandbox)), refusals)
	// The store is intact once the hostile manifest is gone.
	if _, err := live.Restore(ctx, 1); err != nil {
		t.Fatal(err)
	}
	checkState(t, live, v1, keys, "version 1 at the end")
}

// TestHostileStoreFile plants a STORE file with a valid checksum whose data
// directory points outside the store directory: Open and RestoreTo refuse
// it and delete nothing outside.
func TestHostileStoreFile(t *testing.T) {
	ctx := ctxT(t)
	root := t.TempDir()
	dir := filepath.Join(root, "store")
	victim := filepath.Join(root, "victim")
	if err := os.MkdirAll(filepath.Join(victim, "data-000001"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(victim, "data-000001", "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, tiered.Options{Dir: dir, Engine: "memonly"})
	if err := s.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "STORE"))
	if err != nil {
		t.Fatal(err)
	}
	before := treeState(t, root, dir)
	for _, data := range []string{"../victim/data-000001", "../victim", "/", victim, `..\victim`, "data-000001/../../victim", ""} {
		t.Run(data, func(t *testing.T) {
			var f map[string]any
			if err := json.Unmarshal(raw, &f); err != nil {
				t.Fatal(err)
			}
			f["data"] = data
			f["checksum"] = ""
			compact, err := json.Marshal(f) // keys sorted, as encoding/json writes the struct's
			if err != nil {
				t.Fatal(err)
			}
			f["checksum"] = fmt.Sprintf("%08x", crc32.Checksum(compact, engines.CastagnoliTable))
			out, err := json.MarshalIndent(f, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "STORE"), out, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := tiered.Open(ctx, tiered.Options{Dir: dir, Logger: discardLogger()})
			if err == nil {
				_ = s.Close()
				t.Errorf("Open with STORE data %q succeeded", data)
			} else if !errors.Is(err, engines.ErrCorrupt) {
				t.Errorf("Open with STORE data %q: %v; want corruption", data, err)
			}
			_, err = tiered.RestoreTo(ctx, dir, objstore.NewMem(), 1, nil)
			if err == nil {
				t.Errorf("RestoreTo with STORE data %q succeeded", data)
			}
			if after := treeState(t, root, dir); !maps.Equal(before, after) {
				t.Fatalf("STORE data %q changed files outside the store directory", data)
			}
		})
	}
}

// cliResult is the outcome of one run of the tierkv binary.
type cliResult struct {
	stdout, stderr string
	code           int
}

// tierkvCLI is the tierkv command built for the tests.
type tierkvCLI struct{ path string }

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// cliBinary builds ./cmd/tierkv once per test binary (into a directory
// removed by TestMain).
func cliBinary(t *testing.T) *tierkvCLI {
	t.Helper()
	cliOnce.Do(func() {
		// go test puts its own toolchain's bin directory first on PATH.
		goCmd, err := exec.LookPath("go")
		if err != nil {
			cliErr = fmt.Errorf("find the go command to build ./cmd/tierkv: %w (put go on PATH)", err)
			return
		}
		dir, err := os.MkdirTemp("", "tierkv-faults-cli-")
		if err != nil {
			cliErr = err
			return
		}
		buildDir = dir
		cliPath = filepath.Join(dir, "tierkv")
		cmd := exec.Command(goCmd, "build", "-o", cliPath, "./cmd/tierkv")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("go build ./cmd/tierkv: %v\n%s", err, out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return &tierkvCLI{path: cliPath}
}

// buildDir holds the built CLI; TestMain removes it.
var buildDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// run runs the CLI with args; env, when non-nil, replaces the environment.
func (c *tierkvCLI) run(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.path, args...)
	if env != nil {
		cmd.Env = env
	} else {
		cmd.Env = cleanEnv(nil)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = strings.NewReader("")
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run tierkv %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("tierkv %v did not finish within 2 minutes", args)
	}
	return cliResult{stdout: out.String(), stderr: errb.String(), code: code}
}

// cleanEnv returns the environment without any credential or tierkv
// setting, plus extra.
func cleanEnv(extra map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "MINIO_") || strings.HasPrefix(k, "TIERKV_") {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// newSecret returns a unique, greppable secret.
func newSecret(what string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return what + "S3CR3T" + hex.EncodeToString(b)
}

// leaks returns the forms of any secret found in text.
func leaks(text string, secrets ...string) []string {
	var found []string
	for _, s := range secrets {
		for _, form := range []string{s, url.QueryEscape(s), s[len(s)-16:]} {
			if strings.Contains(text, form) {
				found = append(found, form)
			}
		}
	}
	return found
}

// TestSecretsNeverPrinted runs the CLI with credentials in the environment
// (fake ones against an unreachable endpoint and against the real MinIO, the
// real ones against the real MinIO) and with credentials wrongly put into
// the remote URL, at log level debug, with and without --json, and greps
// stdout and stderr for every secret. It also opens stores in-process with
// a debug logger and greps the log and the errors.
func TestSecretsNeverPrinted(t *testing.T) {
	cli := cliBinary(t)
	secret, token := newSecret("env"), newSecret("token")
	fake := map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE", "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token,
		"AWS_REGION": "us-east-1", "MINIO_ACCESS_KEY": "AKIAFAKEFAKEFAKE", "MINIO_SECRET_KEY": secret,
	}
	urlSecret := newSecret("url")
	dir := t.TempDir()
	remotes := []string{
		"minio://127.0.0.1:1/bucket/p?secure=false",
		"s3://bucket/p?endpoint=http://127.0.0.1:1&path_style=true&region=us-east-1",
		// Credentials where they do not belong: refused, never echoed.
		"minio://AKIAFAKE:" + urlSecret + "@127.0.0.1:1/bucket/p?secure=false",
		"s3://bucket/p?endpoint=http://u:" + urlSecret + "@127.0.0.1:1",
		"s3://bucket/p?secret_key=" + urlSecret,
		"s3://bucket/p?aws_secret_access_key=" + urlSecret + "&region=us-east-1",
		"s3://bucket/p?X-Amz-Security-Token=" + urlSecret,
		"s3://bucket/p?X-Amz-Credential=" + urlSecret,
		"minio://127.0.0.1:1/bucket/p?password=" + urlSecret,
		"file:///tmp/x?token=" + urlSecret,
		"s3://AKIA:" + urlSecret + "@bucket/p",
		"minio://" + urlSecret + "@127.0.0.1:1/bucket",
	}
	endpoint := os.Getenv(objstoretest.EnvEndpoint)
	realSecret := os.Getenv(objstoretest.EnvSecretKey)
	if endpoint != "" {
		s3u, mu := objstoretest.NewBucket(t)
		remotes = append(remotes, withPrefix(s3u, "p"), withPrefix(mu, "p"))
	}
	commands := [][]string{
		{"versions"},
		{"show", "latest"},
		{"verify", "--all", "--deep"},
		{"restore", "--dir", filepath.Join(dir, "r")},
		{"gc", "--grace", "0s", "--dry-run"},
		{"forget", "--keep-last", "1", "--dry-run"},
		{"snapshot", "--dir", filepath.Join(dir, "s")},
	}
	runs := 0
	check := func(what string, res cliResult, secrets ...string) {
		t.Helper()
		runs++
		if l := leaks(res.stdout+res.stderr, secrets...); len(l) > 0 {
			t.Errorf("%s: secret %q printed:\nstdout: %s\nstderr: %s", what, l, res.stdout, res.stderr)
		}
	}
	for ri, remote := range remotes {
		for ci, args := range commands {
			if ri >= 2 && ri < 12 && ci > 0 && args[0] != "restore" {
				continue // URLs refused up front: the same path for every command
			}
			for _, json := range []bool{false, true} {
				if json && args[0] != "versions" && args[0] != "verify" {
					continue // JSON output is checked on two commands
				}
				a := append([]string{"--remote", remote, "--log-level", "debug"}, args...)
				if json {
					a = append(a, "--json")
				}
				what := fmt.Sprintf("tierkv %s (fake credentials)", strings.Join(a, " "))
				check(what, cli.run(t, cleanEnv(fake), a...), secret, token, urlSecret)
			}
		}
	}
	if endpoint != "" && realSecret != "" {
		// The real credentials, a real store: write, snapshot, list, verify, restore.
		s3u, mu := objstoretest.NewBucket(t)
		env := cleanEnv(map[string]string{
			"AWS_ACCESS_KEY_ID": os.Getenv(objstoretest.EnvAccessKey), "AWS_SECRET_ACCESS_KEY": realSecret,
			"AWS_REGION": "us-east-1", "MINIO_ACCESS_KEY": os.Getenv(objstoretest.EnvAccessKey), "MINIO_SECRET_KEY": realSecret,
		})
		for i, remote := range []string{withPrefix(s3u, "real"), withPrefix(mu, "real2")} {
			store := filepath.Join(dir, fmt.Sprintf("real%d", i))
			for _, args := range [][]string{
				{"put", "--dir", store, "k", "v"},
				{"snapshot", "--dir", store, "--meta", "src=1"},
				{"versions"},
				{"show", "latest"},
				{"verify", "--all", "--deep"},
				{"restore", "--dir", store + "-restored"},
				{"gc", "--grace", "0s"},
			} {
				a := append([]string{"--remote", remote, "--log-level", "debug"}, args...)
				res := cli.run(t, env, a...)
				if res.code != 0 {
					t.Errorf("tierkv %s: exit %d\n%s%s", strings.Join(a, " "), res.code, res.stdout, res.stderr)
				}
				check("tierkv "+strings.Join(a, " ")+" (real credentials)", res, realSecret)
			}
		}
	} else {
		t.Log("no MinIO server: only unreachable endpoints were used")
	}

	// In-process: the store's own log and errors.
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", token)
	t.Setenv("MINIO_SECRET_KEY", secret)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKE")
	t.Setenv("MINIO_ACCESS_KEY", "AKIAFAKEFAKEFAKE")
	for _, remote := range remotes[:12] {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		s, err := tiered.Open(ctx, tiered.Options{Dir: t.TempDir(), Remote: remote, Logger: logger})
		cancel()
		if err == nil {
			_ = s.Close()
			t.Errorf("Open(%s) succeeded against an unreachable or refused remote", objstore.Redact(remote))
			continue
		}
		runs++
		if l := leaks(err.Error(), secret, token, urlSecret); len(l) > 0 {
			t.Errorf("Open error names a secret %q: %v", l, err)
		}
	}
	if l := leaks(logBuf.String(), secret, token, urlSecret); len(l) > 0 {
		t.Errorf("store log names a secret %q:\n%s", l, logBuf.String())
	}
	t.Logf("%d runs checked for %d secrets", runs, 4)
}
