package reliability

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/objstore/objstoretest"
)

// The cross-process suite (crossproc_test.go, crossproc_gc_test.go) drives
// the tierkv CLI, built once per test binary without -race, and writer
// processes that re-execute the test binary.

// cliBuild is the tierkv binary of this test binary.
var cliBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// TestMain runs the tests and removes the tierkv binary afterwards.
func TestMain(m *testing.M) {
	code := m.Run()
	if cliBuild.dir != "" {
		_ = os.RemoveAll(cliBuild.dir)
	}
	os.Exit(code)
}

// tierkvCLI builds ./cmd/tierkv on first use and returns its path.
func tierkvCLI(t *testing.T) string {
	t.Helper()
	cliBuild.once.Do(func() {
		// go test puts its own toolchain first on PATH.
		goCmd, err := exec.LookPath("go")
		if err != nil {
			cliBuild.err = fmt.Errorf("find the go command to build the CLI (put go on PATH): %w", err)
			return
		}
		if cliBuild.dir, err = os.MkdirTemp("", "tierkv-reliability-cli-"); err != nil {
			cliBuild.err = err
			return
		}
		cliBuild.path = filepath.Join(cliBuild.dir, "tierkv")
		out, err := exec.Command(goCmd, "build", "-o", cliBuild.path, "github.com/tierkv/tierkv/cmd/tierkv").CombinedOutput()
		if err != nil {
			cliBuild.err = fmt.Errorf("build the tierkv CLI with %s: %w\n%s", goCmd, err, out)
		}
	})
	if cliBuild.err != nil {
		t.Fatal(cliBuild.err)
	}
	return cliBuild.path
}

// cliRun is the outcome of one tierkv process.
type cliRun struct {
	args   []string
	stdout string
	stderr string
	code   int
}

func (r cliRun) String() string {
	return fmt.Sprintf("`tierkv %s` exited %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code,
		strings.TrimSpace(r.stdout), strings.TrimSpace(r.stderr))
}

// cliCommand prepares a tierkv process with args, with the test's
// environment minus TIERKV_REMOTE and TIERKV_DIR (so only the arguments
// choose the store).
func cliCommand(t *testing.T, ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, tierkvCLI(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TIERKV_REMOTE=") && !strings.HasPrefix(kv, "TIERKV_DIR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

// tryCLI runs tierkv with args and stdin and returns what it did; err is
// set only if the process could not run to its end. Safe to call from any
// goroutine.
func tryCLI(t *testing.T, stdin string, args ...string) (cliRun, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := cliCommand(t, ctx, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliRun{args: args, stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		return r, fmt.Errorf("run tierkv %s: %w\n%s", strings.Join(args, " "), err, r)
	}
	return r, nil
}

// runCLI is tryCLI that fails the test if the process could not run.
func runCLI(t *testing.T, stdin string, args ...string) cliRun {
	t.Helper()
	r, err := tryCLI(t, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// mustCLI runs tierkv and fails the test unless it exits 0.
func mustCLI(t *testing.T, stdin string, args ...string) cliRun {
	t.Helper()
	r := runCLI(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("want exit 0: %s", r)
	}
	return r
}

// remotes runs body once per remote backend: "file" (a fresh file://
// directory per name) and "minio" (a prefix of one bucket per name; skipped
// without a server, see objstoretest.NewBucket).
func remotes(t *testing.T, body func(t *testing.T, remote func(name string) string)) {
	t.Run("file", func(t *testing.T) {
		root := t.TempDir()
		body(t, func(name string) string { return "file://" + filepath.Join(root, name) })
	})
	t.Run("minio", func(t *testing.T) {
		_, minioURL := objstoretest.NewBucket(t)
		base, query, _ := strings.Cut(minioURL, "?")
		body(t, func(name string) string { return fmt.Sprintf("%s/%s?%s", base, name, query) })
	})
}

// remoteStore opens url for the test's own checks; it is closed at cleanup.
func remoteStore(t *testing.T, url string) objstore.Store {
	t.Helper()
	st, err := objstore.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open remote %s: %v", objstore.Redact(url), err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// latestVersion returns the newest version of st (0 when it has none).
func latestVersion(t *testing.T, st objstore.Store) uint64 {
	t.Helper()
	vs, err := manifest.ListVersions(context.Background(), st)
	if err != nil {
		t.Fatalf("list versions: %v", err)
	}
	if len(vs) == 0 {
		return 0
	}
	return vs[len(vs)-1]
}

// seqCounter hands out the sequence numbers of the writes of one test, so
// that every value written in it is unique.
type seqCounter struct{ n uint64 }

func (c *seqCounter) next() uint64 { c.n++; return c.n }

// cliWriter is one local store directory driven through the CLI, with the
// model of its state: what its writes made of the version it is based on.
type cliWriter struct {
	name   string
	dir    string
	remote string   // "" for a local-only store
	flags  []string // engine flags, given on every command
	cur    state    // model of the local state
	base   uint64   // version restored or last committed (0: none)
	// expect is the latest version the writer saw when it set base: a
	// snapshot must commit iff the remote's latest is still expect.
	expect uint64
	seq    *seqCounter
	rng    *rand.Rand
	maxPad int // values carry up to maxPad bytes of padding (0: 64)
}

// args returns the global flags of w followed by cmd.
func (w *cliWriter) args(cmd ...string) []string {
	a := []string{"--dir", w.dir}
	if w.remote != "" {
		a = append(a, "--remote", w.remote)
	}
	a = append(a, w.flags...)
	return append(a, cmd...)
}

// batchInput returns n random put and del lines and the state they make of
// cur.
func (w *cliWriter) batchInput(n int) (string, state) {
	next := w.cur.clone()
	var b strings.Builder
	for i := 0; i < n; i++ {
		k := w.rng.IntN(numKeys)
		if w.rng.IntN(5) == 0 {
			fmt.Fprintf(&b, "del %s\n", keyName(k))
			delete(next, k)
			continue
		}
		maxPad := w.maxPad
		if maxPad == 0 {
			maxPad = 64
		}
		seq, pad := w.seq.next(), w.rng.IntN(maxPad)
		fmt.Fprintf(&b, "put %s %s\n", keyName(k), makeValue(k, seq, pad))
		next[k] = entry{Seq: seq, Pad: pad}
	}
	return b.String(), next
}

// write applies n random writes with `tierkv batch` and fails the test
// unless it succeeds.
func (w *cliWriter) write(t *testing.T, n int) {
	t.Helper()
	in, next := w.batchInput(n)
	mustCLI(t, in, w.args("batch")...)
	w.cur = next
}

// snapResult is the JSON output of `tierkv --json snapshot`.
type snapResult struct {
	Version uint64 `json:"version"`
	Parent  uint64 `json:"parent"`
}

// snapshot runs `tierkv snapshot` with the digest of the model as metadata.
// On success it parses the new version and parent; ok reports success.
func (w *cliWriter) snapshot(t *testing.T) (res snapResult, r cliRun, ok bool) {
	t.Helper()
	r = runCLI(t, "", w.args("--json", "snapshot", "--meta", "digest="+w.cur.digest())...)
	if r.code != 0 {
		return snapResult{}, r, false
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("parse the output of a snapshot: %v\n%s", err, r)
	}
	return res, r, true
}

// restore runs `tierkv restore --version v` (0 = latest) into w's directory
// and sets the model to want, the committed state of that version.
func (w *cliWriter) restore(t *testing.T, v, latest uint64, want state) {
	t.Helper()
	ver := "latest"
	if v != 0 {
		ver = fmt.Sprint(v)
	}
	mustCLI(t, "", w.args("restore", "--version", ver)...)
	if v == 0 {
		v = latest
	}
	w.cur, w.base, w.expect = want.clone(), v, latest
}

// history is what a test knows the remote's versions hold.
type history map[uint64]state

// mustCommit snapshots w and fails the test unless it commits latest+1
// with parent w.base; it records the version's state and returns it.
func (w *cliWriter) mustCommit(t *testing.T, st objstore.Store, h history) uint64 {
	t.Helper()
	latest := latestVersion(t, st)
	res, r, ok := w.snapshot(t)
	if !ok || res.Version != latest+1 || res.Parent != w.base {
		t.Fatalf("%s (base %d, latest %d): want a commit of version %d with parent %d; got version %d parent %d: %s",
			w.name, w.base, latest, latest+1, w.base, res.Version, res.Parent, r)
	}
	h[res.Version] = w.cur.clone()
	w.base, w.expect = res.Version, res.Version
	return res.Version
}

// mustDiverge snapshots w and fails the test unless the CLI refuses with
// exit status 1 and "diverged" on stderr, committing nothing.
func (w *cliWriter) mustDiverge(t *testing.T, st objstore.Store) cliRun {
	t.Helper()
	latest := latestVersion(t, st)
	res, r, ok := w.snapshot(t)
	if ok || r.code != 1 || !strings.Contains(r.stderr, "diverged") {
		t.Fatalf("%s (base %d, latest %d): want the snapshot refused (exit 1, \"diverged\" on stderr); got version %d parent %d: %s",
			w.name, w.base, latest, res.Version, res.Parent, r)
	}
	if now := latestVersion(t, st); now != latest {
		t.Fatalf("%s: the refused snapshot moved latest from %d to %d: %s", w.name, latest, now, r)
	}
	return r
}

// checkLatest fails the test unless the remote's latest version is want and
// restores exactly to its recorded state.
func checkLatest(t *testing.T, st objstore.Store, h history, want uint64) {
	t.Helper()
	if got := latestVersion(t, st); got != want {
		t.Fatalf("latest version is %d, want %d", got, want)
	}
	checkRestore(t, context.Background(), st, 0, want, h[want])
}

// fileInfo is one entry of a directory listing: size and sha256, or "dir".
type fileInfo string

// listing returns every file and directory under dir (LOCK excepted) with
// its size and content hash; nil when dir does not exist.
func listing(t *testing.T, dir string) map[string]fileInfo {
	t.Helper()
	out := map[string]fileInfo{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Name() == "LOCK" {
			return nil
		}
		if d.IsDir() {
			out[rel] = "dir"
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		out[rel] = fileInfo(fmt.Sprintf("%d bytes sha256 %s", len(data), hex.EncodeToString(sum[:8])))
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	return out
}

// listingDiff describes how after differs from before ("" if equal).
func listingDiff(before, after map[string]fileInfo) string {
	var diffs []string
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			diffs = append(diffs, "removed "+p)
		case a != b:
			diffs = append(diffs, fmt.Sprintf("changed %s: %s -> %s", p, b, a))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			diffs = append(diffs, "created "+p)
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; ")
}

// mustRefuse runs tierkv with args and stdin and fails the test unless it
// exits non-zero with want on stderr and leaves dir exactly as it was.
func mustRefuse(t *testing.T, dir, want, stdin string, args ...string) {
	t.Helper()
	before := listing(t, dir)
	r := runCLI(t, stdin, args...)
	if r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("want a non-zero exit with %q on stderr: %s", want, r)
	}
	if d := listingDiff(before, listing(t, dir)); d != "" {
		t.Errorf("`tierkv %s` changed %s: %s\n%s", strings.Join(args, " "), dir, d, r)
	}
}
