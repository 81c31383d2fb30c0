package reliability

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/tiered"
)

// Environment of the snapshot writer process (TestHelperSnapWriter).
const (
	envSnapWriter  = "TIERKV_XP_SNAP_WRITER" // "1" in the writer process
	envSnapDir     = "TIERKV_XP_DIR"
	envSnapRemote  = "TIERKV_XP_REMOTE"
	envSnapEngine  = "TIERKV_XP_ENGINE"
	envSnapSeed    = "TIERKV_XP_SEED"
	envSnapCommits = "TIERKV_XP_COMMITS"
)

// storeOptions are the options of the stores the GC tests write with: tiny
// engine parameters, so that runs seal and upload all the time.
func storeOptions(dir, remote, kind string) tiered.Options {
	return tiered.Options{Dir: dir, Remote: remote, Engine: kind, Params: tinyParams(kind),
		UploadConcurrency: 2, CacheBytes: 1 << 20}
}

// randomWrites applies n random sets and deletes to s and to the model cur.
func randomWrites(s *tiered.Store, rng *rand.Rand, seq *seqCounter, cur state, n int) error {
	for i := 0; i < n; i++ {
		k := rng.IntN(numKeys)
		if rng.IntN(4) == 0 {
			if err := s.Delete([]byte(keyName(k))); err != nil {
				return fmt.Errorf("delete %s: %w", keyName(k), err)
			}
			delete(cur, k)
			continue
		}
		sq, pad := seq.next(), rng.IntN(200)
		if err := s.Set([]byte(keyName(k)), makeValue(k, sq, pad)); err != nil {
			return fmt.Errorf("set %s: %w", keyName(k), err)
		}
		cur[k] = entry{Seq: sq, Pad: pad}
	}
	return nil
}

// TestHelperSnapWriter is not a test: it is the writer process of
// TestCrossProcGCDuringSnapshots, started with envSnapWriter=1. It writes a
// little and snapshots in a loop until it has the number of commits asked
// for, printing "commit VERSION PARENT STATE" per commit and "fail LATEST
// ERROR" per failed snapshot (LATEST: the remote's latest version right
// after it), then reopening its store from local state. Right after each
// commit it checks that every run of the version is in the remote. An
// unexpected error exits with status 3.
func TestHelperSnapWriter(t *testing.T) {
	if os.Getenv(envSnapWriter) != "1" {
		t.Skip("helper process of TestCrossProcGCDuringSnapshots; started by it")
	}
	if err := runSnapWriter(); err != nil {
		fmt.Fprintf(os.Stderr, "snapshot writer: %v\n", err)
		os.Exit(exitWrong)
	}
	os.Exit(0)
}

func runSnapWriter() error {
	ctx := context.Background()
	seed, _ := strconv.ParseUint(os.Getenv(envSnapSeed), 10, 64)
	want, _ := strconv.Atoi(os.Getenv(envSnapCommits))
	rng := rand.New(rand.NewPCG(seed, 7))
	o := storeOptions(os.Getenv(envSnapDir), os.Getenv(envSnapRemote), os.Getenv(envSnapEngine))
	remote, err := objstore.Open(ctx, o.Remote)
	if err != nil {
		return err
	}
	defer remote.Close()
	s, err := tiered.Open(ctx, o)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer func() { _ = s.Close() }()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	cur, seq := state{}, &seqCounter{}
	for commits, attempts := 0, 0; commits < want; attempts++ {
		if attempts >= 3*want {
			return fmt.Errorf("%d commits in %d snapshot attempts", commits, attempts)
		}
		if err := randomWrites(s, rng, seq, cur, 1+rng.IntN(6)); err != nil {
			return err
		}
		res, serr := s.Snapshot(ctx, tiered.WithMetadata(map[string]string{"digest": cur.digest()}))
		if serr == nil {
			commits++
			if err := checkRunsPresent(ctx, remote, res.Version); err != nil {
				return err
			}
			fmt.Fprintf(out, "commit %d %d %s\n", res.Version, res.Parent, cur.encode())
			continue
		}
		vs, err := manifest.ListVersions(ctx, remote)
		if err != nil {
			return fmt.Errorf("list versions after a failed snapshot: %w", err)
		}
		var latest uint64
		if len(vs) > 0 {
			latest = vs[len(vs)-1]
		}
		fmt.Fprintf(out, "fail %d %s\n", latest, strings.ReplaceAll(serr.Error(), "\n", " "))
		if err := s.Close(); err != nil {
			return fmt.Errorf("close after a failed snapshot: %w", err)
		}
		o.ResumeLocal = true
		if s, err = tiered.Open(ctx, o); err != nil {
			return fmt.Errorf("reopen after a failed snapshot: %w", err)
		}
	}
	return nil
}

// checkRunsPresent returns an error unless every run of version v is in
// remote: right after its commit nothing may have deleted one.
func checkRunsPresent(ctx context.Context, remote objstore.Store, v uint64) error {
	m, err := manifest.Load(ctx, remote, v)
	if err != nil {
		return fmt.Errorf("load version %d right after its commit: %w", v, err)
	}
	for _, r := range m.Runs {
		if _, err := remote.Head(ctx, manifest.RunKey(r.Name)); err != nil {
			return fmt.Errorf("run %s of version %d, committed just now, is not in the remote: %w", r.Name, v, err)
		}
	}
	return nil
}

// gcLoop runs `tierkv gc --grace 0s` and `tierkv forget --keep-last 1`
// (unless gcOnly) against url in another process, over and over until stop
// is closed; wait returns the number of passes and the runs that failed.
type gcLoop struct {
	once   sync.Once
	stop   chan struct{}
	done   chan struct{}
	passes int
	failed []cliRun
	err    error
}

func startGCLoop(t *testing.T, url string, gcOnly bool) *gcLoop {
	tierkvCLI(t) // built before the goroutine needs it
	l := &gcLoop{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			cmds := [][]string{{"--remote", url, "gc", "--grace", "0s"}}
			if !gcOnly {
				cmds = append(cmds, []string{"--remote", url, "forget", "--keep-last", "1"})
			}
			for _, args := range cmds {
				r, err := tryCLI(t, "", args...)
				if err != nil {
					l.err = err
					return
				}
				// Before the writer's first upload the remote holds no store
				// (gc and forget say so), and forget refuses a remote without
				// versions yet.
				if r.code != 0 && !strings.Contains(r.stderr, "no versions") && !strings.Contains(r.stderr, "no store at") {
					l.failed = append(l.failed, r)
				}
			}
			l.passes++
		}
	}()
	return l
}

// wait stops the loop (once; later calls only return the count) and fails
// the test if a GC or forget failed.
func (l *gcLoop) wait(t *testing.T) int {
	t.Helper()
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		if l.err != nil {
			t.Error(l.err)
		}
		for _, r := range l.failed {
			t.Errorf("a concurrent GC pass failed: %s", r)
		}
	})
	return l.passes
}

// TestCrossProcGCDuringSnapshots is scenario (a) of issue 9 (C2): a writer
// process snapshots in a loop while another process runs `gc --grace 0s`
// and `forget --keep-last 1` in a loop. Every version the writer reported
// committed that still exists restores exactly, the latest is the writer's
// last commit, a failed snapshot committed nothing, and a deep verify is
// clean. 50 commits per engine, 200 in all (500 and 2,000 under
// TIERKV_STRESS=1) on file://; a quarter of that on MinIO, where every
// commit costs a dozen requests.
func TestCrossProcGCDuringSnapshots(t *testing.T) {
	seed := testSeed(t)
	remotes(t, func(t *testing.T, remote func(string) string) {
		perEngine := pick(50, 500)
		if !strings.HasPrefix(remote(""), "file://") {
			perEngine /= 4
		}
		for i, kind := range kinds {
			t.Run(kind, func(t *testing.T) {
				url := remote("gcsnap-" + kind)
				st := remoteStore(t, url)
				gc := startGCLoop(t, url, false)
				out, err := runSnapWriterProcess(t, url, kind, seed+uint64(i), perEngine)
				passes := gc.wait(t)
				if err != nil {
					t.Fatal(err)
				}
				h, fails := parseSnapWriter(t, out)
				if len(h) != perEngine {
					t.Fatalf("writer reported %d commits, want %d", len(h), perEngine)
				}
				checkSurvivors(t, st, url, h)
				t.Logf("%s: %d commits, %d failed snapshots, %d GC+forget passes in another process", kind, len(h), fails, passes)
			})
		}
	})
}

// runSnapWriterProcess runs TestHelperSnapWriter to its end and returns its
// standard output.
func runSnapWriterProcess(t *testing.T, url, kind string, seed uint64, commits int) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperSnapWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), envSnapWriter+"=1", envSnapDir+"="+filepath.Join(t.TempDir(), "dir"),
		envSnapRemote+"="+url, envSnapEngine+"="+kind, fmt.Sprintf("%s=%d", envSnapSeed, seed),
		fmt.Sprintf("%s=%d", envSnapCommits, commits))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("snapshot writer (%s): %v\nstderr: %s\nlast output: %s", kind, err, errb.String(), tail(out.String(), 5))
	}
	return out.String(), nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// parseSnapWriter reads the writer's report: the state of every version it
// committed, and the number of failed snapshots. It fails the test if a
// commit's parent is not the previous commit or a failed snapshot left a
// version newer than the last commit.
func parseSnapWriter(t *testing.T, out string) (history, int) {
	t.Helper()
	h, fails := history{}, 0
	var last uint64
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.SplitN(line, " ", 4)
		switch {
		case len(f) == 4 && f[0] == "commit":
			v, _ := strconv.ParseUint(f[1], 10, 64)
			parent, _ := strconv.ParseUint(f[2], 10, 64)
			s, err := decodeState(f[3])
			if err != nil {
				t.Fatalf("writer line %q: %v", line, err)
			}
			if v != last+1 || parent != last {
				t.Errorf("commit of version %d with parent %d; the writer's previous commit was %d (want version %d, parent %d)",
					v, parent, last, last+1, last)
			}
			h[v], last = s, v
		case len(f) >= 2 && f[0] == "fail":
			latest, _ := strconv.ParseUint(f[1], 10, 64)
			if latest != last {
				t.Errorf("a failed snapshot left latest version %d; the writer's last commit was %d: %s", latest, last, line)
			}
			fails++
		default:
			t.Fatalf("unexpected writer output %q", line)
		}
	}
	return h, fails
}

// checkSurvivors checks that the remote holds only versions in h, that its
// latest is the newest of h, that each restores exactly, and that `tierkv
// verify --all --deep` is clean.
func checkSurvivors(t *testing.T, st objstore.Store, url string, h history) {
	t.Helper()
	ctx := context.Background()
	vs, err := manifest.ListVersions(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	var newest uint64
	for v := range h {
		newest = max(newest, v)
	}
	if len(vs) == 0 || vs[len(vs)-1] != newest {
		t.Fatalf("remote versions %v; the writer's last commit was %d", vs, newest)
	}
	for _, v := range vs {
		want, ok := h[v]
		if !ok {
			t.Fatalf("remote holds version %d, which no snapshot reported committed", v)
		}
		checkRestore(t, ctx, st, v, v, want)
	}
	checkRestore(t, ctx, st, 0, newest, h[newest])
	if r := runCLI(t, "", "--remote", url, "verify", "--all", "--deep"); r.code != 0 {
		t.Fatalf("deep verify after the GC loop: %s", r)
	}
}

// TestCrossProcGCSimpleSequence is the short reproduction (C2):
// snapshot version 1, write (runs upload in the background), wait past the
// grace period, `tierkv gc --grace 1s` in another process, snapshot again:
// version 2 restores exactly and deep-verifies clean. One store per engine.
func TestCrossProcGCSimpleSequence(t *testing.T) {
	seed := testSeed(t)
	remotes(t, func(t *testing.T, remote func(string) string) {
		ctx := context.Background()
		type store struct {
			kind string
			url  string
			s    *tiered.Store
			cur  state
			h    history
			rng  *rand.Rand
			seq  *seqCounter
		}
		var ss []*store
		for i, kind := range kinds {
			url := remote("simple-" + kind)
			s, err := tiered.Open(ctx, storeOptions(t.TempDir(), url, kind))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			x := &store{kind: kind, url: url, s: s, cur: state{}, h: history{}, rng: rand.New(rand.NewPCG(seed, uint64(i))), seq: &seqCounter{}}
			ss = append(ss, x)
			if err := randomWrites(s, x.rng, x.seq, x.cur, 100); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Snapshot(ctx, tiered.WithMetadata(map[string]string{"digest": x.cur.digest()})); err != nil {
				t.Fatalf("%s: first snapshot: %v", kind, err)
			}
			x.h[1] = x.cur.clone()
			if err := randomWrites(s, x.rng, x.seq, x.cur, 300); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(1100 * time.Millisecond) // past the grace of the GC below
		for _, x := range ss {
			mustCLI(t, "", "--remote", x.url, "gc", "--grace", "1s")
			res, err := x.s.Snapshot(ctx, tiered.WithMetadata(map[string]string{"digest": x.cur.digest()}))
			if err != nil {
				t.Errorf("%s: snapshot after the GC: %v", x.kind, err)
				continue
			}
			x.h[res.Version] = x.cur.clone()
			t.Run(x.kind, func(t *testing.T) {
				checkSurvivors(t, remoteStore(t, x.url), x.url, x.h)
			})
		}
	})
}

// TestCrossProcGCRollback (C2): in one process Restore(older version),
// Forget(KeepLast 1), GC(0) and Snapshot, while another process runs `gc
// --grace 0s` in a loop; the rollback commit restores exactly and the
// remote deep-verifies clean. 3 rounds per engine (20 under
// TIERKV_STRESS=1).
func TestCrossProcGCRollback(t *testing.T) {
	seed := testSeed(t)
	rounds := pick(3, 20)
	remotes(t, func(t *testing.T, remote func(string) string) {
		for i, kind := range kinds {
			t.Run(kind, func(t *testing.T) {
				ctx := context.Background()
				url := remote("rollback-" + kind)
				s, err := tiered.Open(ctx, storeOptions(t.TempDir(), url, kind))
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				rng, seq, cur, h := rand.New(rand.NewPCG(seed, uint64(i))), &seqCounter{}, state{}, history{}
				commit := func(what string) uint64 {
					t.Helper()
					res, err := s.Snapshot(ctx, tiered.WithMetadata(map[string]string{"digest": cur.digest()}))
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					h[res.Version] = cur.clone()
					return res.Version
				}
				write := func(n int) {
					t.Helper()
					if err := randomWrites(s, rng, seq, cur, n); err != nil {
						t.Fatal(err)
					}
				}
				gc := startGCLoop(t, url, true)
				defer gc.wait(t)
				write(60)
				a := commit("first snapshot")
				for r := 0; r < rounds; r++ {
					write(60)
					b := commit("snapshot")
					if _, err := s.Restore(ctx, a); err != nil {
						t.Fatalf("restore %d: %v", a, err)
					}
					cur = h[a].clone()
					if _, err := s.Forget(ctx, tiered.Policy{KeepLast: 1}, false); err != nil {
						t.Fatalf("forget: %v", err)
					}
					if _, err := s.GC(ctx, 0, false); err != nil {
						t.Fatalf("gc: %v", err)
					}
					write(30)
					c := commit(fmt.Sprintf("rollback snapshot from %d over %d", a, b))
					if c != b+1 {
						t.Fatalf("rollback from %d over %d committed version %d, want %d", a, b, c, b+1)
					}
					checkRestore(t, ctx, remoteStore(t, url), c, c, h[c])
					a = c
				}
				t.Logf("%s: %d rollbacks, %d GC passes in another process", kind, rounds, gc.wait(t))
			})
		}
	})
}
