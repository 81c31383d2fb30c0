package reliability

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/objstore/faultstore"
	"github.com/tierkv/tierkv/tiered"
)

// Environment of the restore process TestCrashDuringRestore starts.
const (
	envRestorer = "TIERKV_RELIABILITY_RESTORER" // "open" | "restoreto" in the restore process
	envRVersion = "TIERKV_RR_VERSION"           // version to restore (0 = latest)
)

// restoreSlowdown delays every run download of the restore process, so that
// the driver can kill it between two verified downloads.
const restoreSlowdown = 15 * time.Millisecond

// TestHelperRestorer is not a test: it is the restore process of
// TestCrashDuringRestore. It restores a version from a file remote whose run
// downloads are slowed down, either with tiered.Open (envRestorer=open) or
// tiered.RestoreTo (restoreto), and exits; the driver kills it first.
func TestHelperRestorer(t *testing.T) {
	how := os.Getenv(envRestorer)
	if how == "" {
		t.Skip("helper process of TestCrashDuringRestore; started by it")
	}
	if err := runRestorer(how); err != nil {
		fmt.Fprintf(os.Stderr, "restorer: %v\n", err)
		os.Exit(exitWrong)
	}
	os.Exit(0)
}

func runRestorer(how string) error {
	ctx := context.Background()
	inner, err := objstore.NewFile(os.Getenv(envRemote))
	if err != nil {
		return err
	}
	slow := faultstore.NewWithOptions(inner, 1, faultstore.Options{SlowDelay: restoreSlowdown},
		faultstore.Rule{Ops: []faultstore.Op{faultstore.OpGet}, KeyPrefix: manifest.RunPrefix, Kind: faultstore.Slow})
	var v uint64
	fmt.Sscan(os.Getenv(envRVersion), &v)
	switch how {
	case "open":
		s, err := tiered.Open(ctx, tiered.Options{Dir: os.Getenv(envDir), ObjectStore: slow, Version: v, UploadConcurrency: 2})
		if err != nil {
			return err
		}
		return s.Close()
	case "restoreto":
		_, err := tiered.RestoreTo(ctx, os.Getenv(envDir), slow, v, nil)
		return err
	}
	return fmt.Errorf("unknown restorer %q", how)
}

// TestCrashDuringRestore kills a process while it restores a version (its
// downloads slowed down), after a random number of runs were downloaded and
// verified, then restores again in-process: the state is exactly the
// version's, and no run that was already downloaded and verified is
// downloaded a second time. Variants: Open into an empty directory, Open of
// another version over an existing store directory, and RestoreTo.
func TestCrashDuringRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("kill test skipped in -short mode")
	}
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 6))
	ctx := context.Background()

	// A remote with two versions of an appendlog store that has many runs.
	root := t.TempDir()
	remote, err := objstore.NewFile(root)
	if err != nil {
		t.Fatal(err)
	}
	params := engines.Params{"threshold": "2048", "max_runs_per_level": "1000", "compaction": "false"}
	w, err := tiered.Open(ctx, tiered.Options{Dir: t.TempDir(), ObjectStore: remote, Engine: "appendlog", Params: params})
	if err != nil {
		t.Fatal(err)
	}
	cur := state{}
	seq := uint64(0)
	write := func(n int) {
		for i := 0; i < n; i++ {
			seq++
			k, pad := rng.IntN(numKeys), 100+rng.IntN(300)
			if err := w.Set([]byte(keyName(k)), makeValue(k, seq, pad)); err != nil {
				t.Fatal(err)
			}
			cur[k] = entry{Seq: seq, Pad: pad}
		}
	}
	write(200)
	if _, err := w.Snapshot(ctx, tiered.WithMetadata(map[string]string{"digest": cur.digest()})); err != nil {
		t.Fatal(err)
	}
	v1 := cur.clone()
	write(200)
	if _, err := w.Snapshot(ctx, tiered.WithMetadata(map[string]string{"digest": cur.digest()})); err != nil {
		t.Fatal(err)
	}
	v2 := cur.clone()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m2, err := manifest.Load(ctx, remote, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("version 2 has %d runs, %d bytes", len(m2.Runs), m2.Stats.TotalBytes)

	kills := pick(3, 20)
	var total struct{ kills, verifiedAtKill, redownloaded, downloaded, notKilled int }
	for _, variant := range []string{"open-empty", "open-existing", "restoreto"} {
		for i := 0; i < kills; i++ {
			dir := t.TempDir()
			how := "open"
			if variant == "restoreto" {
				how = "restoreto"
			}
			if variant == "open-existing" {
				// The directory holds version 1; the process restores 2.
				s, err := tiered.Open(ctx, tiered.Options{Dir: dir, ObjectStore: remote, Version: 1})
				if err != nil {
					t.Fatal(err)
				}
				if got, err := readState(s); err != nil || !got.equal(v1) {
					t.Fatalf("version 1 restores as %v, %v; want %v", got, err, v1)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			target := 1 + rng.IntN(len(m2.Runs)/2)
			verified, killed := killRestore(t, dir, root, how, target)
			if !killed {
				total.notKilled++
				continue
			}
			total.kills++
			total.verifiedAtKill += len(verified)

			// Restore again, counting what is downloaded.
			cnt := objstore.NewCounting(remote)
			cnt.SetLogging(true)
			s, err := tiered.Open(ctx, tiered.Options{Dir: dir, ObjectStore: cnt})
			if err != nil {
				t.Fatalf("%s: restore again after the kill: %v", variant, err)
			}
			got, err := readState(s)
			if cerr := s.Close(); cerr != nil {
				t.Errorf("close: %v", cerr)
			}
			if err != nil {
				t.Fatalf("%s: after the second restore: %v", variant, err)
			}
			if !got.equal(v2) {
				t.Fatalf("%s: second restore gives %v, version 2 is %v:%s", variant, got, v2, diffStates(got, v2))
			}
			var again []string
			runGets := 0
			for _, line := range cnt.Log() {
				name, ok := strings.CutPrefix(line, "GET "+manifest.RunPrefix)
				if !ok {
					continue
				}
				name, _, _ = strings.Cut(name, " ")
				total.downloaded++
				runGets++
				if verified[name] {
					again = append(again, name)
				}
			}
			total.redownloaded += len(again)
			t.Logf("%s: killed after %d verified downloads (target %d); the second restore downloaded %d runs, %d of them already verified",
				variant, len(verified), target, runGets, len(again))
		}
	}
	checkNoLeaks(t)
	t.Logf("restore crashes: %d kills (%d restores finished before the kill), %d runs verified before the kills, %d downloaded by the second restores, %d of them a second time",
		total.kills, total.notKilled, total.verifiedAtKill, total.downloaded, total.redownloaded)
	if total.kills == 0 {
		t.Fatal("no restore was killed in the middle")
	}
	if total.redownloaded > 0 {
		t.Fatalf("%d runs that a killed restore had already downloaded and verified were downloaded again", total.redownloaded)
	}
}

// killRestore starts the restore process on dir and SIGKILLs it once the
// generation directory being built holds target verified runs. It returns
// the names of the runs verified by then and whether the process was killed
// (false: it finished first).
func killRestore(t *testing.T, dir, root, how string, target int) (map[string]bool, bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRestorer$", "-test.count=1")
	cmd.Env = append(os.Environ(), envRestorer+"="+how, envDir+"="+dir, envRemote+"="+root, envRVersion+"=2")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	live := map[string]bool{}
	if g, err := storeGeneration(dir); err == nil {
		live[g] = true
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("restore process failed: %v\n%s", err, out.String())
			}
			return nil, false
		case <-tick.C:
		}
		if n := len(stagedRuns(dir, live)); n >= target {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		// It finished between the check and the signal.
		return nil, false
	}
	return stagedRuns(dir, live), true
}

// storeGeneration returns the generation directory named by dir/STORE.
func storeGeneration(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "STORE"))
	if err != nil {
		return "", err
	}
	i := bytes.Index(b, []byte(`"data": "`))
	if i < 0 {
		return "", fmt.Errorf("no data field in STORE")
	}
	rest := b[i+len(`"data": "`):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "", fmt.Errorf("bad data field in STORE")
	}
	return string(rest[:j]), nil
}

// stagedRuns returns the run files (complete: renamed from their temporary
// name after verification) in the generation directories of dir other than
// those in live, leaving out the runs the live ones hold (reused by a hard
// link, not downloaded).
func stagedRuns(dir string, live map[string]bool) map[string]bool {
	runs := map[string]bool{}
	old := map[string]bool{} // runs of the live generation: linked, not downloaded
	for g := range live {
		files, _ := os.ReadDir(filepath.Join(dir, g))
		for _, f := range files {
			old[f.Name()] = true
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "data-") || live[e.Name()] {
			continue
		}
		files, _ := os.ReadDir(filepath.Join(dir, e.Name()))
		for _, f := range files {
			if _, _, _, ok := engines.ParseRunName(f.Name()); ok && !old[f.Name()] {
				runs[f.Name()] = true
			}
		}
	}
	return runs
}
