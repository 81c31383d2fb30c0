package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/tiered"
)

// xpEnv is the setting of one cross-process case: a remote, what its
// versions hold, and writers on their own directories.
type xpEnv struct {
	url  string
	st   objstore.Store
	h    history
	seq  *seqCounter
	rng  *rand.Rand
	work string
}

func newXPEnv(t *testing.T, url string, seed uint64) *xpEnv {
	return &xpEnv{url: url, st: remoteStore(t, url), h: history{0: state{}}, seq: &seqCounter{},
		rng: rand.New(rand.NewPCG(seed, 5)), work: t.TempDir()}
}

// writer returns a writer on a new directory of the case, with the remote
// unless local.
func (e *xpEnv) writer(name string, local bool, flags ...string) *cliWriter {
	w := &cliWriter{name: name, dir: filepath.Join(e.work, name), remote: e.url, flags: flags,
		cur: state{}, seq: e.seq, rng: rand.New(rand.NewPCG(e.rng.Uint64(), 6))}
	if local {
		w.remote = ""
	}
	return w
}

// origin creates the store through the CLI with engine kind and commits
// versions 1 and 2 from it; it returns the writer, based on version 2.
func (e *xpEnv) origin(t *testing.T, kind string) *cliWriter {
	t.Helper()
	w := e.writer("origin", false, "--engine", kind)
	for i := 0; i < 2; i++ {
		w.write(t, 20)
		w.mustCommit(t, e.st, e.h)
	}
	return w
}

// TestCrossProcDescent checks C1 with real processes: a snapshot commits
// only when the store descends from the remote's latest version, or is a
// deliberate rollback nobody overtook; every other attempt fails with
// "diverged" and changes nothing.
func TestCrossProcDescent(t *testing.T) {
	seed := testSeed(t)
	remotes(t, func(t *testing.T, remote func(string) string) {
		cases := []struct {
			name string
			run  func(t *testing.T, e *xpEnv, kind string)
		}{
			{"two-restores", func(t *testing.T, e *xpEnv, kind string) {
				e.origin(t, kind)
				a, b := e.writer("a", false), e.writer("b", false)
				a.restore(t, 2, 2, e.h[2])
				b.restore(t, 2, 2, e.h[2])
				a.write(t, 10)
				a.mustCommit(t, e.st, e.h)
				b.write(t, 10)
				b.mustDiverge(t, e.st)
				checkLatest(t, e.st, e.h, 3)
			}},
			{"fresh-dir", func(t *testing.T, e *xpEnv, kind string) {
				e.origin(t, kind)
				f := e.writer("fresh", true) // `tierkv put` opens no remote
				f.write(t, 5)
				f.remote = e.url
				f.mustDiverge(t, e.st)
				checkLatest(t, e.st, e.h, 2)
			}},
			{"stale-reopened", func(t *testing.T, e *xpEnv, kind string) {
				o := e.origin(t, kind)
				a := e.writer("a", false)
				a.restore(t, 0, 2, e.h[2])
				a.write(t, 10)
				a.mustCommit(t, e.st, e.h)
				o.write(t, 10) // the CLI reopens o from its local state, based on 2
				o.mustDiverge(t, e.st)
				checkLatest(t, e.st, e.h, 3)
			}},
			{"rollback", func(t *testing.T, e *xpEnv, kind string) {
				o := e.origin(t, kind)
				o.write(t, 10)
				o.mustCommit(t, e.st, e.h) // 3
				o.write(t, 10)
				o.mustCommit(t, e.st, e.h) // 4
				d := e.writer("d", false)
				d.restore(t, 3, 4, e.h[3])
				d.write(t, 10)
				if v := d.mustCommit(t, e.st, e.h); v != 5 {
					t.Fatalf("rollback committed version %d, want 5", v)
				}
				checkLatest(t, e.st, e.h, 5)
			}},
			{"rollback-overtaken", func(t *testing.T, e *xpEnv, kind string) {
				o := e.origin(t, kind)
				o.write(t, 10)
				o.mustCommit(t, e.st, e.h) // 3
				d := e.writer("d", false)
				d.restore(t, 2, 3, e.h[2])
				d.write(t, 10)
				o.write(t, 10)
				o.mustCommit(t, e.st, e.h) // 4: latest moved past 3
				d.mustDiverge(t, e.st)
				checkLatest(t, e.st, e.h, 4)
			}},
		}
		for i, c := range cases {
			kind := kinds[i%len(kinds)]
			t.Run(c.name+"-"+kind, func(t *testing.T) {
				c.run(t, newXPEnv(t, remote(fmt.Sprintf("descent-%d", i)), seed+uint64(i)), kind)
			})
		}
	})
}

// TestCrossProcLocalMetadata checks C3: with STORE, the engine's CURRENT or
// the generation directory missing or truncated, get and snapshot fail
// naming the file and change nothing in the directory.
func TestCrossProcLocalMetadata(t *testing.T) {
	seed := testSeed(t)
	remotes(t, func(t *testing.T, remote func(string) string) {
		for i, kind := range kinds {
			t.Run(kind, func(t *testing.T) {
				damages := []struct {
					name, file string // file: the base name the error must give
					do         func(dir, data string) error
				}{
					{"remove-STORE", "STORE", func(d, _ string) error { return os.Remove(filepath.Join(d, "STORE")) }},
					{"truncate-STORE", "STORE", func(d, _ string) error { return truncHalf(filepath.Join(d, "STORE")) }},
					{"remove-CURRENT", "CURRENT", func(d, g string) error { return os.Remove(filepath.Join(d, g, "CURRENT")) }},
					{"truncate-CURRENT", "CURRENT", func(d, g string) error { return truncHalf(filepath.Join(d, g, "CURRENT")) }},
					{"remove-data", "", func(d, g string) error { return os.RemoveAll(filepath.Join(d, g)) }},
				}
				for j, dm := range damages {
					t.Run(dm.name, func(t *testing.T) {
						// A store and a remote of its own, so that nothing a
						// damaged store does reaches the other cases.
						e := newXPEnv(t, remote(fmt.Sprintf("meta-%s-%d", kind, j)), seed+uint64(i*len(damages)+j))
						w := e.writer("store", false, "--engine", kind)
						w.write(t, 30)
						w.mustCommit(t, e.st, e.h)
						w.write(t, 10) // uncommitted local writes too
						data := storeData(t, w.dir)
						if err := dm.do(w.dir, data); err != nil {
							t.Fatal(err)
						}
						file := dm.file
						if file == "" {
							file = data
						}
						mustRefuse(t, w.dir, file, "", w.args("get", keyName(0))...)
						mustRefuse(t, w.dir, file, "", w.args("snapshot")...)
					})
				}
			})
		}
	})
}

// storeData returns the generation directory the STORE file of dir names.
func storeData(t *testing.T, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "STORE"))
	if err != nil {
		t.Fatal(err)
	}
	var sf struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(raw, &sf); err != nil || !strings.HasPrefix(sf.Data, "data-") {
		t.Fatalf("STORE of %s names no generation directory (%v): %s", dir, err, raw)
	}
	return sf.Data
}

// truncHalf truncates the file at p to half its size.
func truncHalf(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	return os.Truncate(p, fi.Size()/2)
}

// TestCrossProcNotAStore checks C4: a directory holding other files is not
// taken for a store; an empty or missing one becomes a new store on put.
func TestCrossProcNotAStore(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a store\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, dir, "not a tierkv store", "", "--dir", dir, "get", "a")
	mustRefuse(t, dir, "not a tierkv store", "", "--dir", dir, "put", "a", "1")

	for _, d := range []string{t.TempDir(), filepath.Join(t.TempDir(), "missing")} {
		mustCLI(t, "", "--dir", d, "put", "a", "1")
		if _, err := os.Stat(filepath.Join(d, "STORE")); err != nil {
			t.Errorf("put into %s made no store: %v", d, err)
		}
		if r := mustCLI(t, "", "--dir", d, "get", "a"); strings.TrimSpace(r.stdout) != "1" {
			t.Errorf("get a after put a 1 in a new store: %s", r)
		}
	}
}

// TestCrossProcAddRemote checks C6: a store created without a remote
// commits its local state as version 1 of an empty remote, and keeps its
// local files.
func TestCrossProcAddRemote(t *testing.T) {
	seed := testSeed(t)
	remotes(t, func(t *testing.T, remote func(string) string) {
		for i, kind := range kinds {
			t.Run(kind, func(t *testing.T) {
				e := newXPEnv(t, remote("add-"+kind), seed+uint64(i))
				w := e.writer("local", true, "--engine", kind)
				w.write(t, 40)
				before := listing(t, w.dir)
				w.remote = e.url
				w.mustCommit(t, e.st, e.h)
				checkLatest(t, e.st, e.h, 1)
				after := listing(t, w.dir)
				for p := range before {
					if _, ok := after[p]; !ok {
						t.Errorf("the first snapshot to a remote deleted %s from the local store", p)
					}
				}
			})
		}
	})
}

// TestCrossProcReadOnlyNoStore checks C7: the read-only commands on a
// file:// remote that does not exist fail with "no store at" and create
// nothing.
func TestCrossProcReadOnlyNoStore(t *testing.T) {
	tmp := t.TempDir()
	missing := filepath.Join(tmp, "no", "such", "remote")
	url := "file://" + missing
	for _, cmd := range [][]string{
		{"versions"}, {"show", "1"}, {"verify"}, {"gc", "--dry-run"},
		{"forget", "--keep-last", "1", "--dry-run"},
		{"restore", "--dry-run", "--dir", filepath.Join(tmp, "restore")},
	} {
		r := runCLI(t, "", append([]string{"--remote", url}, cmd...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "no store at") {
			t.Errorf("want exit 1 with \"no store at\" on stderr: %s", r)
		}
		if _, err := os.Stat(filepath.Join(tmp, "no")); err == nil {
			t.Errorf("`tierkv %s` created %s", strings.Join(r.args, " "), filepath.Join(tmp, "no"))
			_ = os.RemoveAll(filepath.Join(tmp, "no"))
		}
	}
}

// restoreOut is the part of `tierkv --json restore` the tests read.
type restoreOut struct {
	Result *struct {
		Version        uint64 `json:"version"`
		RunsDownloaded int    `json:"runs_downloaded"`
		RunsReused     int    `json:"runs_reused"`
	} `json:"result"`
}

// TestCrossProcKillRestore checks C5: a restore killed with SIGKILL leaves
// a directory every other command refuses (naming the unfinished restore)
// without changing it; restoring again downloads only the runs not
// downloaded before and gives the version's state. 4 kills (20 under
// TIERKV_STRESS=1).
func TestCrossProcKillRestore(t *testing.T) {
	seed := testSeed(t)
	e := newXPEnv(t, "file://"+filepath.Join(t.TempDir(), "remote"), seed)
	src := e.writer("src", false, "--engine", "appendlog", "--threshold", "4K", "--max-runs-per-level", "1000")
	src.maxPad = 800
	src.write(t, 600)
	v := src.mustCommit(t, e.st, e.h)
	m, err := manifest.Load(context.Background(), e.st, v)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Runs) < 40 {
		t.Fatalf("the source version has %d runs; the test needs at least 40", len(m.Runs))
	}
	sizes := map[string]int64{}
	for _, r := range m.Runs {
		sizes[r.Name] = r.Size
	}
	kills, finished := pick(4, 20), 0
	for i := 0; i < kills; i++ {
		w := e.writer(fmt.Sprintf("restore-%d", i), false)
		target := 1 + e.rng.IntN(len(m.Runs)-1)
		done := killRestoreAt(t, w, v, sizes, target)
		if _, err := os.Stat(filepath.Join(w.dir, "STORE")); done >= 0 && err == nil {
			// Killed after the commit point (STORE written into the new
			// directory): the restore did finish, and the next command
			// completes its cleanup. Counted with the finished ones.
			done = -1
		}
		if done < 0 {
			finished++
			i-- // the restore ended before the kill: try again
			if finished > 4*kills {
				t.Fatalf("%d restores finished before they could be killed", finished)
			}
			continue
		}
		t.Logf("kill %d: %d of %d runs downloaded (target %d)", i+1, done, len(m.Runs), target)
		for _, cmd := range []struct {
			stdin string
			args  []string
		}{
			{"", []string{"get", keyName(0)}},
			{"", []string{"put", keyName(0), "x"}},
			{"", []string{"del", keyName(0)}},
			{"", []string{"snapshot"}},
			{"put " + keyName(1) + " y\n", []string{"batch"}},
		} {
			mustRefuse(t, w.dir, "restore", cmd.stdin, w.args(cmd.args...)...)
		}
		r := mustCLI(t, "", w.args("--json", "restore", "--version", fmt.Sprint(v))...)
		var out restoreOut
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Result == nil {
			t.Fatalf("parse the restore's JSON output (%v): %s", err, r)
		}
		if out.Result.RunsDownloaded+done != len(m.Runs) || out.Result.RunsReused != done {
			t.Errorf("restore after a kill with %d of %d runs downloaded: downloaded %d, reused %d; want %d and %d",
				done, len(m.Runs), out.Result.RunsDownloaded, out.Result.RunsReused, len(m.Runs)-done, done)
		}
		checkLocal(t, w.dir, e.h[v])
	}
	t.Logf("%d restores killed part-way, %d finished (reached their commit point) before the kill and were retried", kills, finished)
}

// killRestoreAt starts `tierkv restore` of version v into w's
// directory and SIGKILLs it once at least target of the runs in sizes are
// complete there. It returns the number of complete runs at the kill, or
// -1 if the restore finished first.
func killRestoreAt(t *testing.T, w *cliWriter, v uint64, sizes map[string]int64, target int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := cliCommand(t, ctx, w.args("restore", "--version", fmt.Sprint(v))...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("restore into %s failed before the kill: %v\n%s", w.dir, err, out.String())
			}
			return -1
		default:
		}
		if completeRuns(w.dir, sizes) >= target {
			break
		}
		time.Sleep(50 * time.Microsecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill the restore: %v", err)
	}
	err := <-exited
	if err == nil {
		return -1 // it finished between the check and the signal
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("restore into %s failed before the kill: %v\n%s", w.dir, err, out.String())
	}
	return completeRuns(w.dir, sizes)
}

// completeRuns counts the run files under dir's generation directories that
// have a run's name and its full size.
func completeRuns(dir string, sizes map[string]int64) int {
	gens, _ := filepath.Glob(filepath.Join(dir, "data-*"))
	n := 0
	for _, g := range gens {
		ents, _ := os.ReadDir(g)
		for _, d := range ents {
			want, ok := sizes[d.Name()]
			if fi, err := d.Info(); ok && err == nil && fi.Size() == want {
				n++
			}
		}
	}
	return n
}

// checkLocal opens the store in dir from its local state, without a remote,
// and fails the test unless it holds exactly want.
func checkLocal(t *testing.T, dir string, want state) {
	t.Helper()
	s, err := tiered.Open(context.Background(), tiered.Options{Dir: dir, ResumeLocal: true})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	defer s.Close()
	got, err := readState(s)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	if !got.equal(want) {
		t.Fatalf("%s holds %v, want %v:%s", dir, got, want, diffStates(got, want))
	}
}

// TestCrossProcWriters is scenario (b) of issue 9: two CLI writers that
// catch up by restoring the latest version and a stale writer that never
// does, in a random (seeded) order, with GC passes between. A snapshot must
// commit exactly when the writer's base is the latest version, with that
// version as parent, and otherwise fail with "diverged"; the latest version
// always holds the committing writer's model. 60 steps (600 under
// TIERKV_STRESS=1) per remote.
func TestCrossProcWriters(t *testing.T) {
	seed := testSeed(t)
	remotes(t, func(t *testing.T, remote func(string) string) {
		e := newXPEnv(t, remote("writers"), seed)
		w1 := e.writer("w1", false, "--engine", kinds[e.rng.IntN(len(kinds))])
		w1.write(t, 10)
		w1.mustCommit(t, e.st, e.h)
		w2, stale := e.writer("w2", false), e.writer("stale", false)
		w2.restore(t, 0, 1, e.h[1])
		stale.restore(t, 0, 1, e.h[1])
		ws := []*cliWriter{w1, w2, stale}
		commits, refusals, gcs, restores := 1, 0, 0, 2
		steps := pick(60, 600)
		for i := 0; i < steps; i++ {
			w := ws[e.rng.IntN(len(ws))]
			switch r := e.rng.IntN(10); {
			case r < 4:
				w.write(t, 1+e.rng.IntN(8))
			case r < 8:
				latest := latestVersion(t, e.st)
				if w.expect == latest {
					w.mustCommit(t, e.st, e.h)
					checkLatest(t, e.st, e.h, latest+1)
					commits++
				} else {
					w.mustDiverge(t, e.st)
					refusals++
				}
			case r < 9 && w != stale:
				latest := latestVersion(t, e.st)
				w.restore(t, 0, latest, e.h[latest])
				restores++
			default:
				mustCLI(t, "", "--remote", e.url, "forget", "--keep-last", "2")
				mustCLI(t, "", "--remote", e.url, "gc", "--grace", "0s")
				gcs++
			}
		}
		mustCLI(t, "", "--remote", e.url, "verify", "--all", "--deep")
		t.Logf("%d steps: %d commits, %d refusals (diverged), %d restores of latest, %d forget+GC passes; latest %d",
			steps, commits, refusals, restores, gcs, latestVersion(t, e.st))
	})
}
