package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
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

// cliBuild is the tierkv binary, built once per test binary.
var cliBuild struct {
	once sync.Once
	dir  string // temporary directory holding it
	path string
	err  error
}

// tierkvBin builds ./cmd/tierkv on first use and returns its path.
func tierkvBin(t *testing.T) string {
	t.Helper()
	cliBuild.once.Do(func() {
		goCmd, err := exec.LookPath("go")
		if err != nil {
			if root := os.Getenv("GOROOT"); root != "" {
				goCmd = filepath.Join(root, "bin", "go")
			} else {
				cliBuild.err = fmt.Errorf("find the go command to build tierkv: %w (put go on PATH)", err)
				return
			}
		}
		if cliBuild.dir, err = os.MkdirTemp("", "tierkv-integration-"); err != nil {
			cliBuild.err = fmt.Errorf("create a directory for the tierkv binary: %w", err)
			return
		}
		cliBuild.path = filepath.Join(cliBuild.dir, "tierkv")
		// Without -race: a race-enabled tierkv takes over a second to start,
		// and the CLI's own tests run it in-process under -race already.
		args := []string{"build", "-o", cliBuild.path, "github.com/tierkv/tierkv/cmd/tierkv"}
		start := time.Now()
		out, err := exec.Command(goCmd, args...).CombinedOutput()
		if err != nil {
			cliBuild.err = fmt.Errorf("%s %s: %w\n%s", goCmd, strings.Join(args, " "), err, out)
			return
		}
		fmt.Fprintf(os.Stderr, "integration: built the tierkv CLI in %s\n", time.Since(start).Round(time.Millisecond))
	})
	if cliBuild.err != nil {
		t.Fatal(cliBuild.err)
	}
	return cliBuild.path
}

// cliCleanup removes the binary (called by TestMain).
func cliCleanup() {
	if cliBuild.dir != "" {
		_ = os.RemoveAll(cliBuild.dir)
	}
}

// cliResult is the outcome of one tierkv process.
type cliResult struct {
	args     []string
	stdout   string
	stderr   string
	code     int
	duration time.Duration
}

func (r cliResult) String() string {
	return fmt.Sprintf("tierkv %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// runTierkv runs the tierkv binary with args, stdin and extra environment
// (the test's environment otherwise, minus TIERKV_REMOTE and TIERKV_DIR, so
// that it has the server's credentials as an operator's shell would). It
// fails the test if the server's secret key appears in any output.
func runTierkv(t *testing.T, stdin string, env []string, args ...string) cliResult {
	t.Helper()
	_, _, secret := objstoretest.MinIOEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tierkvBin(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TIERKV_REMOTE=") && !strings.HasPrefix(kv, "TIERKV_DIR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := cliResult{args: args, stdout: out.String(), stderr: errb.String(), duration: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run tierkv %s: %v\n%s", strings.Join(args, " "), err, r)
	}
	if strings.Contains(r.stdout, secret) || strings.Contains(r.stderr, secret) {
		t.Fatalf("tierkv %s printed the secret key", strings.Join(args, " "))
	}
	for _, a := range args {
		if strings.Contains(a, secret) {
			t.Fatalf("test bug: the secret key is on a command line")
		}
	}
	return r
}

// mustTierkv runs tierkv and fails the test unless it exits with status 0.
func mustTierkv(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	r := runTierkv(t, stdin, nil, args...)
	if r.code != 0 {
		t.Fatalf("want exit 0: %s", r)
	}
	return r
}

// oneLine fails the test unless s is exactly one line starting with "tierkv: ".
func oneLine(t *testing.T, s, what string) {
	t.Helper()
	if !strings.HasPrefix(s, "tierkv: ") || strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Fatalf("%s: stderr is not one error line: %q", what, s)
	}
}

// TestCLI runs the tierkv binary against the server: batch (also a bad
// line), versions (table, --json, the ls alias with TIERKV_REMOTE), show,
// restore (dry run, twice, then another version), verify (shallow, deep,
// after a corruption), and usage errors; the secret key never appears.
func TestCLI(t *testing.T) {
	t.Parallel()
	forEachBackend(t, testCLI)
}

func testCLI(t *testing.T, b backend) {
	ctx := ctxT(t)
	base := t.TempDir()
	d1 := filepath.Join(base, "writer")
	g := []string{"--remote", b.url, "--dir", d1}

	// batch: two versions, every token form, comments and blank lines.
	r := mustTierkv(t, "# two versions\n\nput alpha one\nput beta two\nput hex:00ff hex:\n  snapshot step=1 note=first\n"+
		"put alpha uno\ndel beta\nput gamma hex:68656c6c6f\nsnapshot step=2\n"+
		"get alpha\nget beta\nget hex:00ff\nget gamma\n",
		append(g, "batch")...)
	if want := "1\n2\nuno\n(absent)\nhex:\nhello\n"; r.stdout != want {
		t.Fatalf("batch printed %q, want %q", r.stdout, want)
	}
	v1 := map[string]string{"alpha": "one", "beta": "two", "\x00\xff": ""}
	v2 := map[string]string{"alpha": "uno", "\x00\xff": "", "gamma": "hello"}
	universe := []string{"alpha", "beta", "gamma", "delta", "epsilon", "\x00\xff"}

	// A bad line: exit status 2, its line number, the lines before it applied.
	r = runTierkv(t, "put delta four\nget alpha\nfrobnicate x\nput epsilon five\n", nil, append(g, "batch")...)
	if r.code != 2 || !strings.Contains(r.stderr, "line 3") || r.stdout != "uno\n" {
		t.Fatalf("batch with a bad line 3: want exit 2, \"line 3\" on stderr and \"uno\" on stdout: %s", r)
	}
	oneLine(t, r.stderr, "bad batch line")
	r = runTierkv(t, "get alpha\nput x y z\n", nil, append(g, "batch")...)
	if r.code != 2 || !strings.Contains(r.stderr, "line 2") {
		t.Fatalf("batch with a bad line 2: %s", r)
	}
	r = mustTierkv(t, "get delta\nget epsilon\nsnapshot step=3\n", append(g, "batch")...)
	if want := "four\n(absent)\n3\n"; r.stdout != want {
		t.Fatalf("batch after the bad lines printed %q, want %q", r.stdout, want)
	}
	v3 := cloneMap(v2)
	v3["delta"] = "four"
	oracle := map[uint64]map[string]string{1: v1, 2: v2, 3: v3}

	st := b.open(t)
	ms := make(map[uint64]*manifest.Manifest)
	for v := uint64(1); v <= 3; v++ {
		m, err := manifest.Load(ctx, st, v)
		if err != nil {
			t.Fatalf("load manifest %d: %v", v, err)
		}
		ms[v] = m
	}

	// versions: the table.
	r = mustTierkv(t, "", "--remote", b.url, "versions")
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "VERSION") || !strings.Contains(lines[0], "METADATA") {
		t.Fatalf("versions table: %s", r)
	}
	for i, line := range lines[1:] {
		f := strings.Fields(line)
		v := uint64(i + 1)
		if f[0] != fmt.Sprint(v) || !strings.Contains(line, "step="+fmt.Sprint(v)) || !strings.Contains(line, ms[v].Engine) {
			t.Fatalf("versions row %d: %q", v, line)
		}
	}
	if !strings.Contains(lines[1], "note=first,step=1") {
		t.Fatalf("versions row 1 lacks its sorted metadata: %q", lines[1])
	}

	// versions --json: the documented shape and the manifests' values; the
	// ls alias, with the remote from TIERKV_REMOTE.
	r = runTierkv(t, "", []string{"TIERKV_REMOTE=" + b.url}, "ls", "--json")
	if r.code != 0 {
		t.Fatalf("ls --json with TIERKV_REMOTE: %s", r)
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || len(raw) != 3 {
		t.Fatalf("versions --json is not an array of 3 objects (%v): %s", err, r)
	}
	for i, obj := range raw {
		for _, field := range []string{"version", "parent", "created", "engine", "runs", "total_bytes", "new_bytes", "metadata"} {
			if _, ok := obj[field]; !ok {
				t.Fatalf("versions --json object %d lacks %q: %s", i, field, r.stdout)
			}
		}
	}
	var rows []struct {
		Version    uint64            `json:"version"`
		Parent     uint64            `json:"parent"`
		Created    time.Time         `json:"created"`
		Engine     string            `json:"engine"`
		Runs       int               `json:"runs"`
		TotalBytes int64             `json:"total_bytes"`
		NewBytes   int64             `json:"new_bytes"`
		Metadata   map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("decode versions --json: %v", err)
	}
	for _, row := range rows {
		m := ms[row.Version]
		if m == nil || row.Parent != m.Parent || !row.Created.Equal(m.Created) || row.Engine != m.Engine || row.Runs != len(m.Runs) ||
			row.TotalBytes != m.Stats.TotalBytes || row.NewBytes != m.Stats.NewBytes || !reflect.DeepEqual(row.Metadata, m.Metadata) {
			t.Fatalf("versions --json row %+v does not match manifest %+v", row, m)
		}
	}
	if rows[0].Parent != 0 || rows[1].Parent != 1 || rows[2].Parent != 2 || rows[0].TotalBytes == 0 {
		t.Fatalf("versions --json: unexpected parents or sizes: %+v", rows)
	}

	// show: the text form names every run; --json is the manifest.
	r = mustTierkv(t, "", "--remote", b.url, "show", "latest")
	for _, want := range []string{"version:   3\n", "parent:    2\n", "metadata:  step=3\n", "engine:    " + ms[3].Engine + "\n", "RUN"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("show latest lacks %q: %s", want, r)
		}
	}
	for _, run := range ms[3].Runs {
		if !strings.Contains(r.stdout, run.Name) || !strings.Contains(r.stdout, fmt.Sprintf("%08x", run.CRC32C)) {
			t.Fatalf("show latest lacks run %s: %s", run.Name, r)
		}
	}
	r = mustTierkv(t, "", "--remote", b.url, "--json", "show", "1")
	var shown manifest.Manifest
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil {
		t.Fatalf("show --json 1: %v\n%s", err, r)
	}
	if shown.Version != 1 || shown.Checksum != ms[1].Checksum || !reflect.DeepEqual(shown.Runs, ms[1].Runs) {
		t.Fatalf("show --json 1 = %+v, want %+v", shown, ms[1])
	}
	r = runTierkv(t, "", nil, "--remote", b.url, "show", "99")
	if r.code != 1 || !strings.Contains(r.stderr, "99") {
		t.Fatalf("show 99: want exit 1 naming the version: %s", r)
	}
	oneLine(t, r.stderr, "show 99")

	// restore: the plan only, then twice (the second downloads nothing),
	// then another version (downloads only what it lacks).
	d2 := filepath.Join(base, "restored")
	r = mustTierkv(t, "", "--remote", b.url, "--dir", d2, "restore", "--version", "2", "--dry-run")
	if !strings.Contains(r.stdout, fmt.Sprintf("download %d runs", len(ms[2].Runs))) || !strings.Contains(r.stdout, "dry run: nothing written") {
		t.Fatalf("restore --dry-run: %s", r)
	}
	if _, err := os.Stat(filepath.Join(d2, "STORE")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("restore --dry-run wrote a store into %s (stat: %v)", d2, err)
	}
	type restoreOut struct {
		Plan struct {
			Download      []engines.RunInfo `json:"download"`
			Reuse         []engines.RunInfo `json:"reuse"`
			DownloadBytes int64             `json:"download_bytes"`
		} `json:"plan"`
		Result *struct {
			Version         uint64            `json:"version"`
			RunsDownloaded  int               `json:"runs_downloaded"`
			RunsReused      int               `json:"runs_reused"`
			BytesDownloaded int64             `json:"bytes_downloaded"`
			Metadata        map[string]string `json:"metadata"`
		} `json:"result"`
	}
	restore := func(version string) restoreOut {
		t.Helper()
		r := mustTierkv(t, "", "--remote", b.url, "--dir", d2, "--json", "restore", "--version", version)
		var out restoreOut
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Result == nil {
			t.Fatalf("restore --json: %v: %s", err, r)
		}
		return out
	}
	var v2Bytes int64
	for _, run := range ms[2].Runs {
		v2Bytes += run.Size
	}
	first := restore("2")
	if res := first.Result; res.Version != 2 || res.RunsDownloaded != len(ms[2].Runs) || res.BytesDownloaded != v2Bytes || res.Metadata["step"] != "2" {
		t.Fatalf("first restore of version 2: %+v; want %d runs, %d bytes downloaded", *res, len(ms[2].Runs), v2Bytes)
	}
	second := restore("2")
	if res := second.Result; res.RunsDownloaded != 0 || res.BytesDownloaded != 0 || len(second.Plan.Download) != 0 ||
		res.RunsReused != len(ms[2].Runs) {
		t.Fatalf("second restore of version 2 downloaded something: %+v, plan %+v", *res, second.Plan)
	}
	have := map[string]bool{}
	for _, run := range ms[2].Runs {
		have[run.Name] = true
	}
	missing := 0
	for _, run := range ms[3].Runs {
		if !have[run.Name] {
			missing++
		}
	}
	r = mustTierkv(t, "", "--remote", b.url, "--dir", d2, "--log-level", "debug", "restore")
	if !strings.Contains(r.stdout, fmt.Sprintf("version 3 into %s: download %d runs", d2, missing)) ||
		!strings.Contains(r.stdout, "restored version 3") {
		t.Fatalf("restore latest after version 2: want %d runs to download: %s", missing, r)
	}
	// The restored directory opens as a store without any remote.
	s := openStore(t, tiered.Options{Dir: d2, ResumeLocal: true})
	if s.Version() != 3 {
		t.Fatalf("restored directory descends from version %d, want 3", s.Version())
	}
	checkState(t, s, oracle[3], universe, "directory restored by the CLI")
	if err := s.Close(); err != nil {
		t.Fatalf("close restored store: %v", err)
	}

	// verify: intact, shallow and deep.
	r = mustTierkv(t, "", "--remote", b.url, "verify")
	if !strings.Contains(r.stdout, "ok: 1 versions verified (shallow)") {
		t.Fatalf("verify: %s", r)
	}
	r = mustTierkv(t, "", "--remote", b.url, "verify", "--all", "--deep")
	if !strings.Contains(r.stdout, "ok: 3 versions verified (deep)") {
		t.Fatalf("verify --all --deep: %s", r)
	}

	// A run of version 1 overwritten behind tierkv's back with the same size
	// and the same crc32c metadata: only a deep verify sees it.
	victim := ms[1].Runs[0]
	key := manifest.RunKey(victim.Name)
	rc := b.raw(t)
	data := rc.get(t, key)
	data[len(data)/2] ^= 0x20
	rc.put(t, key, data, map[string]string{"crc32c": fmt.Sprintf("%08x", victim.CRC32C)})
	var affected []uint64
	for v := uint64(1); v <= 3; v++ {
		if slices.ContainsFunc(ms[v].Runs, func(r engines.RunInfo) bool { return r.Name == victim.Name }) {
			affected = append(affected, v)
		}
	}
	r = mustTierkv(t, "", "--remote", b.url, "verify", "--all")
	if !strings.Contains(r.stdout, "ok: 3 versions verified (shallow)") {
		t.Fatalf("shallow verify after a same-size corruption: %s", r)
	}
	r = runTierkv(t, "", nil, "--remote", b.url, "verify", "--all", "--deep")
	if r.code != 1 || strings.Count(r.stdout, "\n") != len(affected) || !strings.Contains(r.stdout, key+": content crc32c") {
		t.Fatalf("deep verify after corrupting %s (in versions %v): want exit 1 and one line per affected version: %s", key, affected, r)
	}
	for _, v := range affected {
		if !strings.Contains(r.stdout, fmt.Sprintf("version %d: %s:", v, key)) {
			t.Fatalf("deep verify does not report version %d: %s", v, r)
		}
	}
	oneLine(t, r.stderr, "deep verify")
	r = runTierkv(t, "", nil, "--remote", b.url, "--json", "verify", "--version", "1", "--deep")
	var vj struct {
		OK       bool `json:"ok"`
		Problems []struct {
			Version uint64 `json:"version"`
			Object  string `json:"object"`
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &vj); err != nil || r.code != 1 || vj.OK || len(vj.Problems) != 1 || vj.Problems[0].Object != key {
		t.Fatalf("verify --json --version 1 --deep: %v: %s", err, r)
	}
	// Restoring the damaged version fails and leaves nothing half-done.
	d3 := filepath.Join(base, "damaged")
	r = runTierkv(t, "", nil, "--remote", b.url, "--dir", d3, "restore", "--version", "1")
	if r.code != 1 || !strings.Contains(r.stderr, victim.Name) {
		t.Fatalf("restore of the damaged version 1: want exit 1 naming the run: %s", r)
	}
	oneLine(t, r.stderr, "restore of a damaged version")
	if _, err := os.Stat(filepath.Join(d3, "STORE")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed restore left a store in %s (stat: %v)", d3, err)
	}

	// Usage errors: exit status 2, one line.
	for _, args := range [][]string{
		{"versions"}, // no remote
		{"--remote", strings.Replace(b.url, b.bucket, "Bad_Bucket", 1), "versions"},
		{"--remote", b.url, "verify", "--all", "--version", "1"},
		{"--remote", b.url, "frobnicate"},
	} {
		r := runTierkv(t, "", nil, args...)
		if r.code != 2 {
			t.Fatalf("want exit 2: %s", r)
		}
		if !strings.Contains(r.stderr, "Usage") && !strings.Contains(r.stderr, "USAGE") {
			oneLine(t, r.stderr, strings.Join(args, " "))
		}
	}
	t.Logf("CLI on %s: batch, versions, show, restore, verify ran against %s", b.name, objstore.Redact(b.url))
}

// TestCLIDemo runs "tierkv demo --remote URL" (crash, recovery and check)
// against the server, then lists the versions it left.
func TestCLIDemo(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		remote := b.withPrefix(t, "demo")
		r := mustTierkv(t, "", "--remote", remote, "--log-level", "debug", "demo",
			"--events", "3000", "--keys", "200", "--every", "700", "--seed", "7")
		for _, want := range []string{
			"remote " + objstore.Redact(remote),
			"worker 1: killed with SIGKILL at offset 1740",
			"worker 2: restored version 2 ",
			"offset=1400; replaying from there",
			": PASS\n",
			"incremental snapshots uploaded ",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("demo output lacks %q: %s", want, r)
			}
		}
		r = mustTierkv(t, "", "--remote", remote, "--json", "versions")
		var rows []struct {
			Version  uint64            `json:"version"`
			Parent   uint64            `json:"parent"`
			Metadata map[string]string `json:"metadata"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
			t.Fatalf("versions --json after the demo: %v: %s", err, r)
		}
		// Worker 1: offsets 700, 1400; worker 2 from 1400: 2100, 2800, 3000.
		want := []string{"700", "1400", "2100", "2800", "3000"}
		if len(rows) != len(want) {
			t.Fatalf("demo left %d versions, want %d: %s", len(rows), len(want), r)
		}
		for i, row := range rows {
			if row.Version != uint64(i+1) || row.Metadata["offset"] != want[i] {
				t.Fatalf("demo version %d: %+v, want metadata offset=%s", i+1, row, want[i])
			}
		}
		if rows[2].Parent != 2 {
			t.Fatalf("worker 2's first snapshot has parent %d, want 2 (the version it restored)", rows[2].Parent)
		}
		r = mustTierkv(t, "", "--remote", remote, "verify", "--all", "--deep")
		if !strings.Contains(r.stdout, "ok: 5 versions verified (deep)") {
			t.Fatalf("verify after the demo: %s", r)
		}
		t.Logf("demo on %s passed in %s against %s", b.name, r.duration.Round(time.Millisecond), objstore.Redact(remote))
	})
}
