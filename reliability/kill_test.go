package reliability

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/objstore/objstoretest"
	"github.com/tierkv/tierkv/tiered"
)

// TestKill9File runs the kill -9 scenario against a file:// remote: 30
// kills (300 under TIERKV_STRESS=1).
func TestKill9File(t *testing.T) {
	root := t.TempDir()
	runKillTest(t, pick(30, 300), func(slot int) string {
		return "file://" + filepath.Join(root, fmt.Sprintf("remote-%d", slot))
	})
}

// TestKill9MinIO runs the kill -9 scenario against the MinIO server of
// scripts/with-minio.sh (skipped without one): 8 kills (60 under
// TIERKV_STRESS=1).
func TestKill9MinIO(t *testing.T) {
	_, minioURL := objstoretest.NewBucket(t)
	base, query, _ := strings.Cut(minioURL, "?")
	runKillTest(t, pick(8, 60), func(slot int) string {
		return fmt.Sprintf("%s/store-%d?%s", base, slot, query)
	})
}

// EnvTrigger forces the kill trigger of every kill: one of delay, set, snap,
// restore, forget and open, or a comma-separated list to pick from, to hunt
// a failure in some phases.
const EnvTrigger = "TIERKV_RELIABILITY_TRIGGER"

// postMortem describes the state around a failed local check and keeps a
// copy of the store directory and journal, whose path it returns.
// pre is a copy of the directory as the kill left it.
func postMortem(t *testing.T, sl *slot, pre string, m *model, got state, latest uint64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "engine %s; got %s\nlast durable state %s; %d writes since; latest version %d: %s\n",
		sl.kind, got.encode(), m.lb.encode(), len(m.since), latest, m.versions[latest].encode())
	keep, err := os.MkdirTemp("", "tierkv-kill-failure-")
	if err == nil {
		copyDir(t, pre, filepath.Join(keep, "dir"))
		if data, err := os.ReadFile(sl.journal); err == nil {
			_ = os.WriteFile(filepath.Join(keep, "journal"), data, 0o644)
		}
		fmt.Fprintf(&b, "directory and journal kept in %s\n", keep)
	}
	_ = filepath.WalkDir(pre, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				rel, _ := filepath.Rel(pre, p)
				fmt.Fprintf(&b, "  %s %d\n", rel, fi.Size())
			}
		}
		return nil
	})
	if data, err := os.ReadFile(filepath.Join(pre, "STORE")); err == nil {
		fmt.Fprintf(&b, "STORE: %s\n", data)
	}
	return b.String()
}

// killStats counts what the kill tests did.
type killStats struct {
	kills         int
	byPhase       map[string]int // last journal event before the kill
	byTrigger     map[string]int // what the driver waited for
	landed        int            // snapshots in flight at the kill that committed
	restoresFresh int            // fresh-directory restores checked
	versionsCheck int            // older versions restored and checked
	verifyRuns    int            // runs deep-verified
	localChecks   int            // ResumeLocal reopenings checked
	inFlightLocal int            // local checks that found a restore in flight
	// unfinishedRestores: local reopenings refused as an unfinished restore
	// (killed before its commit point) and finished by a restore.
	unfinishedRestores int
	leftToWriter       int // crashed directories reopened by the next writer (remote mode)
}

// slot is one store (one engine, one local directory, one remote prefix)
// whose history continues across the writer processes killed in it.
type slot struct {
	kind    string
	dir     string
	remote  string
	journal string
	// forceRemote: the driver skipped its local check after the last kill,
	// so the next writer must restore from the remote over the crashed
	// directory (its own check then applies).
	forceRemote bool
}

// runKillTest starts writer processes on 4 stores (one per engine) in turn
// and kills each with SIGKILL at a random moment, kills times in all; after
// every kill it checks the remote and the local directory.
func runKillTest(t *testing.T, kills int, remoteURL func(slot int) string) {
	if testing.Short() {
		t.Skip("kill test skipped in -short mode")
	}
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	work := t.TempDir()
	var slots []*slot
	for i, k := range kinds {
		slots = append(slots, &slot{
			kind:    k,
			dir:     filepath.Join(work, fmt.Sprintf("local-%d-%s", i, k)),
			remote:  remoteURL(i),
			journal: filepath.Join(work, fmt.Sprintf("journal-%d-%s", i, k)),
		})
	}
	st := killStats{byPhase: map[string]int{}, byTrigger: map[string]int{}}
	start := time.Now()
	for i := 0; i < kills; i++ {
		sl := slots[i%len(slots)]
		phase, trigger := killWriter(t, sl, rng)
		st.kills++
		st.byPhase[phase]++
		st.byTrigger[trigger]++
		// Mostly the driver reopens the crashed directory itself; sometimes
		// it leaves it to the next writer, which then restores the latest
		// version over it.
		sl.forceRemote = rng.IntN(3) == 0
		checkAfterKill(t, sl, rng, &st, !sl.forceRemote)
		if t.Failed() {
			t.Fatalf("kill %d (%s, killed during %s after trigger %s) failed; journal %s, dir %s, remote %s",
				i+1, sl.kind, phase, trigger, sl.journal, sl.dir, sl.remote)
		}
	}
	checkNoLeaks(t)
	t.Logf("kills: %d in %s; by phase %v; by trigger %v", st.kills, time.Since(start).Round(time.Millisecond), sortedCounts(st.byPhase), sortedCounts(st.byTrigger))
	t.Logf("checks: %d in-flight snapshots landed, %d fresh restores of the latest version, %d restores of older versions, %d runs deep-verified, %d local reopenings (%d with a restore in flight, %d of them refused as unfinished and finished by a restore), %d crashed directories restored over by the next writer",
		st.landed, st.restoresFresh, st.versionsCheck, st.verifyRuns, st.localChecks, st.inFlightLocal, st.unfinishedRestores, st.leftToWriter)
	for _, sl := range slots {
		m, err := replay(sl.journal)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("store %s: %d journal lines, latest version %d", sl.kind, m.lines, m.latest)
	}
}

func sortedCounts(m map[string]int) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for i, k := range ks {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	return b.String()
}

// killWriter starts a writer process on sl, waits for a randomly chosen
// trigger (a delay, or the n-th event of some kind plus a short delay),
// SIGKILLs it and returns the kind of the last event it logged and the
// trigger.
func killWriter(t *testing.T, sl *slot, rng *rand.Rand) (phase, trigger string) {
	t.Helper()
	mode := "remote"
	if rng.IntN(2) == 0 && !sl.forceRemote {
		mode = "local"
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		envWriter+"=1", envDir+"="+sl.dir, envRemote+"="+sl.remote, envJournal+"="+sl.journal,
		envEngine+"="+sl.kind, envMode+"="+mode, fmt.Sprintf("%s=%d", envSeed, rng.Uint64()))
	cmd.ExtraFiles = []*os.File{pw}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()

	// Events from the writer, as they are journaled.
	events := make(chan string, 1024)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(events)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) > 0 {
				select {
				case events <- f[0]:
				default: // the driver only needs the events it waits for
				}
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// Choose when to kill.
	triggers := []string{"delay", "delay", "set", "set", "snap", "snap", "restore", "forget", "open"}
	trigger = triggers[rng.IntN(len(triggers))]
	if tr := os.Getenv(EnvTrigger); tr != "" {
		list := strings.Split(tr, ",")
		trigger = list[rng.IntN(len(list))]
	}
	var target string
	count := 1
	switch trigger {
	case "set":
		target, count = "set", 1+rng.IntN(1500)
	case "snap":
		target, count = "snap", 1+rng.IntN(4)
	case "restore":
		target = "restore"
	case "forget":
		target = "forget"
	case "open":
		target = "open"
	}
	deadline := time.NewTimer(4 * time.Second)
	defer deadline.Stop()
	var delay time.Duration
	if trigger == "delay" {
		delay = time.Duration(rng.IntN(900)) * time.Millisecond
		deadline.Reset(delay)
	}
	seen := 0
wait:
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if target != "" && ev == target {
				seen++
				if seen == count {
					// Somewhere inside the operation (or just after it).
					time.Sleep(time.Duration(rng.IntN(4000)) * time.Microsecond)
					break wait
				}
			}
		case <-deadline.C:
			if trigger != "delay" {
				trigger += "-timeout"
			}
			break wait
		case err := <-exited:
			t.Fatalf("writer (%s, %s mode) exited before the kill: %v\n%s", sl.kind, mode, err, stderr.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill writer: %v", err)
	}
	err = <-exited
	wg.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("writer (%s, %s mode) was not killed by SIGKILL: %v\n%s", sl.kind, mode, err, stderr.String())
	}
	if out := stderr.String(); strings.Contains(out, "DATA RACE") || strings.Contains(out, "panic:") {
		t.Fatalf("writer (%s, %s mode) reported a race or a panic:\n%s", sl.kind, mode, out)
	}
	m, err := replay(sl.journal)
	if err != nil {
		t.Fatal(err)
	}
	return m.last, trigger
}

// openRemote opens the remote of sl for the driver.
func openRemote(t *testing.T, sl *slot) objstore.Store {
	t.Helper()
	st, err := objstore.Open(context.Background(), sl.remote)
	if err != nil {
		t.Fatalf("open remote %s: %v", objstore.Redact(sl.remote), err)
	}
	return st
}

// checkAfterKill checks the pass rule of issue 6 after a kill of the writer
// of sl: the latest version is the newest committed one (or the one in
// flight at the kill), it restores exactly into a fresh directory, an older
// version restores exactly too, a deep Verify finds nothing, and (with
// local) reopening the killed directory gives at least its last durable
// state.
func checkAfterKill(t *testing.T, sl *slot, rng *rand.Rand, st *killStats, local bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	remote := openRemote(t, sl)
	defer remote.Close()
	m, err := replay(sl.journal)
	if err != nil {
		t.Fatal(err)
	}

	vs, err := manifest.ListVersions(ctx, remote)
	if err != nil {
		t.Fatalf("list versions: %v", err)
	}
	var latest uint64
	if len(vs) > 0 {
		latest = vs[len(vs)-1]
	}
	switch {
	case latest == m.latest:
	case m.snapping && latest == m.latest+1:
		// The commit landed just before the kill: it is committed.
		j, err := openJournal(sl.journal, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.log(true, "landed %d %s", latest, m.snapState.digest()); err != nil {
			t.Fatal(err)
		}
		j.close()
		st.landed++
		if m, err = replay(sl.journal); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("remote latest version is %d; the journal's newest committed version is %d (snapshot in flight: %v)",
			latest, m.latest, m.snapping)
	}
	for _, v := range vs {
		if _, ok := m.versions[v]; !ok {
			t.Fatalf("remote holds version %d, which no snapshot reported committed (journal latest %d)", v, m.latest)
		}
	}

	if latest != 0 {
		problems, err := tiered.Verify(ctx, remote, nil, true)
		if err != nil || len(problems) != 0 {
			t.Fatalf("deep verify after the kill: %v, %v", problems, err)
		}
		for _, v := range vs {
			mf, err := manifest.Load(ctx, remote, v)
			if err != nil {
				t.Fatalf("load version %d: %v", v, err)
			}
			st.verifyRuns += len(mf.Runs)
		}
		checkRestore(t, ctx, remote, 0, latest, m.versions[latest])
		st.restoresFresh++
		if len(vs) > 1 {
			v := vs[rng.IntN(len(vs)-1)]
			checkRestore(t, ctx, remote, v, v, m.versions[v])
			st.versionsCheck++
		}
	}

	if !local {
		st.leftToWriter++
		return
	}
	// The killed writer's directory, reopened as it was (a copy as it was
	// is kept for the post-mortem of a failure).
	pre := filepath.Join(t.TempDir(), "dir")
	copyDir(t, sl.dir, pre)
	s, err := tiered.Open(ctx, tiered.Options{Dir: sl.dir, ObjectStore: remote, ResumeLocal: true, Engine: sl.kind, UploadConcurrency: 2, CacheBytes: 1 << 20})
	var unfinished *tiered.RestoreUnfinishedError
	if errors.As(err, &unfinished) {
		// Killed inside a restore, before its commit point: the local state
		// is refused; only a restore finishes it, reusing what it verified.
		if !m.restoring {
			t.Fatalf("reopen the killed writer's directory: %v, but the journal shows no restore in flight", err)
		}
		st.unfinishedRestores++
		s, err = tiered.Open(ctx, tiered.Options{Dir: sl.dir, ObjectStore: remote, Version: unfinished.Version, Engine: sl.kind, UploadConcurrency: 2, CacheBytes: 1 << 20})
	}
	if err != nil {
		t.Fatalf("reopen the killed writer's directory: %v", err)
	}
	got, rerr := readState(s)
	var verr error
	if rerr == nil {
		verr = m.checkLocal(got)
	}
	if m.restoring {
		st.inFlightLocal++
	}
	st.localChecks++
	if err := s.Close(); err != nil {
		t.Errorf("close the reopened store: %v", err)
	}
	if rerr != nil {
		t.Fatalf("reopened directory: %v", rerr)
	}
	if verr != nil {
		t.Fatalf("reopened directory (last event %q): %v\n%s", m.last, verr, postMortem(t, sl, pre, m, got, latest))
	}
	j, err := openJournal(sl.journal, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	if err := j.log(true, "base %d %s", s.Version(), got.encode()); err != nil {
		t.Fatal(err)
	}
}

// checkRestore opens version v (0 = latest) of remote in a fresh directory
// and checks that it is version wantV with exactly the state want and the
// metadata committed with it.
func checkRestore(t *testing.T, ctx context.Context, remote objstore.Store, v, wantV uint64, want state) {
	t.Helper()
	s, err := tiered.Open(ctx, tiered.Options{Dir: t.TempDir(), ObjectStore: remote, Version: v, UploadConcurrency: 2, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatalf("restore version %d into a fresh directory: %v", v, err)
	}
	defer s.Close()
	if s.Version() != wantV {
		t.Fatalf("fresh restore of version %d gives version %d, want %d", v, s.Version(), wantV)
	}
	got, err := readState(s)
	if err != nil {
		t.Fatalf("fresh restore of version %d: %v", wantV, err)
	}
	if !got.equal(want) {
		t.Fatalf("fresh restore of version %d gives %v, the committed state is %v:%s", wantV, got, want, diffStates(got, want))
	}
	if md := s.Metadata()["digest"]; md != want.digest() {
		t.Fatalf("fresh restore of version %d: metadata digest %q, committed state digest %s", wantV, md, want.digest())
	}
}
