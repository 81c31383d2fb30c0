package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/tiered"
	"github.com/urfave/cli/v2"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run a streaming job, crash it, recover it from the remote, and check the result",
		Description: "A stateful streaming job counts events per key over a seeded event stream. It\n" +
			"snapshots every --every events with the input offset in the version's metadata. The\n" +
			"job runs in a child process that is killed with SIGKILL mid-stream (at --crash-at),\n" +
			"with writes since its last snapshot and uploads possibly in flight. A second worker\n" +
			"then opens the remote in an empty directory (restoring the latest version), reads the\n" +
			"offset from its metadata, replays the stream from there, and the final state is\n" +
			"compared with a computation from scratch: PASS or FAIL (exit status 1).\n" +
			"The table at the end shows the bytes each snapshot uploaded beside what a full\n" +
			"snapshot would have uploaded.\n\n" +
			"Without --remote the remote is a file:// directory in a temporary directory (no\n" +
			"server needed). Without --dir everything lives in a temporary directory that is\n" +
			"removed at the end; --dir must name an empty or missing directory.",
		Flags: append(demoStreamFlags(),
			&cli.Int64Flag{Name: "crash-at", Usage: "kill the first worker at input `OFFSET` (default: 58% of --events)"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the temporary directory (it is printed)"},
		),
		Action: runDemo,
	}
}

// demoStreamFlags are the flags that shape the demo's stream.
func demoStreamFlags() []cli.Flag {
	return []cli.Flag{
		&cli.Int64Flag{Name: "events", Value: 200_000, Usage: "number of `N` events in the stream"},
		&cli.IntFlag{Name: "keys", Value: 5_000, Usage: "number of distinct keys"},
		&cli.Int64Flag{Name: "every", Value: 20_000, Usage: "snapshot every `N` events"},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the event stream"},
	}
}

// demoStreamOf reads and checks the stream flags.
func demoStreamOf(c *cli.Context) (demoStream, int64, error) {
	d := demoStream{seed: c.Uint64("seed"), keys: c.Int("keys"), events: c.Int64("events")}
	every := c.Int64("every")
	switch {
	case d.events < 1:
		return d, 0, usagef("invalid --events %d: want 1 or more", d.events)
	case d.keys < 1 || d.keys > 1_000_000:
		return d, 0, usagef("invalid --keys %d: want 1..1000000", d.keys)
	case every < 1:
		return d, 0, usagef("invalid --every %d: want 1 or more", every)
	}
	return d, every, nil
}

// demoVersion is one version in the demo's summary.
type demoVersion struct {
	Version    uint64 `json:"version"`
	Offset     int64  `json:"offset"`
	Runs       int    `json:"runs"`
	NewBytes   int64  `json:"new_bytes"`
	TotalBytes int64  `json:"total_bytes"`
}

// demoJSON is the output of "tierkv demo --json".
type demoJSON struct {
	Pass              bool          `json:"pass"`
	Events            int64         `json:"events"`
	Keys              int           `json:"keys"`
	Engine            string        `json:"engine"`
	CrashOffset       int64         `json:"crash_offset"`
	RestoredVersion   uint64        `json:"restored_version"`
	RestoredOffset    int64         `json:"restored_offset"`
	Versions          []demoVersion `json:"versions"`
	UploadedBytes     int64         `json:"uploaded_bytes"`
	FullSnapshotBytes int64         `json:"full_snapshot_bytes"`
	Seconds           float64       `json:"seconds"`
}

func runDemo(c *cli.Context) (err error) {
	if c.NArg() > 0 {
		return usagef("demo takes no arguments, got %q", c.Args().First())
	}
	start := time.Now()
	d, every, err := demoStreamOf(c)
	if err != nil {
		return err
	}
	crashAt := c.Int64("crash-at")
	if !c.IsSet("crash-at") {
		crashAt = max(1, d.events*58/100)
	}
	if crashAt < 1 || crashAt >= d.events {
		return usagef("invalid --crash-at %d: want 1..%d (before the end of the stream)", crashAt, d.events-1)
	}
	g, err := loadGlobals(c)
	if err != nil {
		return err
	}

	base, cleanup, err := demoBaseDir(g.dir, c.Bool("keep"))
	if err != nil {
		return err
	}
	defer cleanup()
	if g.remote == "" {
		g.remote = "file://" + filepath.Join(base, "remote")
	}
	out := io.Discard // progress lines; JSON mode prints only the summary
	if !g.json {
		out = c.App.Writer
	}
	engine := g.engine
	if engine == "" {
		engine = tiered.DefaultEngine
	}
	fmt.Fprintf(out, "tierkv demo: count events per key; %d events over %d keys (seed %d), snapshot every %d events\n",
		d.events, d.keys, d.seed, every)
	fmt.Fprintf(out, "  engine %s, remote %s, local directories under %s\n", engine, objstore.Redact(g.remote), base)

	// Worker 1, a child process, runs until the crash point and is killed.
	w1 := filepath.Join(base, "worker-1")
	fmt.Fprintf(out, "worker 1: processing from offset 0 in %s\n", w1)
	lastSnap, err := runCrashingWorker(c, g, w1, crashAt, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "worker 1: killed with SIGKILL at offset %d; %d events after its last snapshot were never committed\n",
		crashAt, crashAt-lastSnap)

	// Worker 2 takes over on an empty directory, as on another machine.
	w2 := filepath.Join(base, "worker-2")
	s, err := openDemoStore(c, g, w2)
	if err != nil {
		return err
	}
	defer closeLocal(s, &err)
	off, err := offsetOf(s.Metadata())
	if err != nil {
		return err
	}
	restored := s.Version()
	fmt.Fprintf(out, "worker 2: restored version %d into %s; its metadata says offset=%d; replaying from there\n",
		restored, w2, off)
	report := func(offset int64, res tiered.SnapshotResult) {
		fmt.Fprintf(out, "  snapshot v%d at offset %d: uploaded %s, state %s\n",
			res.Version, offset, humanBytes(res.BytesUploaded), humanBytes(res.TotalBytes))
	}
	if err := d.process(c.Context, s, off, d.events, every, report); err != nil {
		return fmt.Errorf("worker 2: %w", err)
	}
	if d.events%every != 0 {
		if err := d.snapshot(c.Context, s, d.events, report); err != nil {
			return fmt.Errorf("worker 2: %w", err)
		}
	}

	bad, first, err := d.check(s)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	summary := demoJSON{Pass: bad == 0, Events: d.events, Keys: d.keys, Engine: engine, CrashOffset: crashAt,
		RestoredVersion: restored, RestoredOffset: off, Versions: []demoVersion{}}
	ms, err := s.Versions(c.Context)
	if err != nil {
		return fmt.Errorf("list versions: %w", err)
	}
	for _, m := range ms {
		o, _ := offsetOf(m.Metadata)
		summary.Versions = append(summary.Versions, demoVersion{Version: m.Version, Offset: o, Runs: len(m.Runs),
			NewBytes: m.Stats.NewBytes, TotalBytes: m.Stats.TotalBytes})
		summary.UploadedBytes += m.Stats.NewBytes
		summary.FullSnapshotBytes += m.Stats.TotalBytes
	}
	summary.Seconds = time.Since(start).Seconds()

	if g.json {
		if err := writeJSON(c.App.Writer, summary); err != nil {
			return err
		}
	} else {
		verdict := "PASS"
		if bad > 0 {
			verdict = "FAIL"
		}
		fmt.Fprintf(out, "check: %d keys after %d events, compared with a computation from scratch: %s\n",
			d.keys, d.events, verdict)
		if err := printDemoTable(out, summary); err != nil {
			return err
		}
		fmt.Fprintf(out, "done in %.1fs\n", summary.Seconds)
	}
	if bad > 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("demo FAIL: %d of %d keys differ from the recomputation, first %s",
			bad, d.keys, first)}
	}
	return nil
}

// printDemoTable prints the versions with the bytes each snapshot uploaded
// beside what a full snapshot would have uploaded.
func printDemoTable(w io.Writer, s demoJSON) error {
	fmt.Fprintln(w)
	tw := newTable(w)
	fmt.Fprintln(tw, "VERSION\tOFFSET\tRUNS\tUPLOADED\tFULL SNAPSHOT")
	for _, v := range s.Versions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\n", v.Version, v.Offset, v.Runs, humanBytes(v.NewBytes), humanBytes(v.TotalBytes))
	}
	fmt.Fprintf(tw, "total\t\t\t%s\t%s\n", humanBytes(s.UploadedBytes), humanBytes(s.FullSnapshotBytes))
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	if s.UploadedBytes > 0 {
		fmt.Fprintf(w, "incremental snapshots uploaded %s; full snapshots would have uploaded %s (%.1fx)\n",
			humanBytes(s.UploadedBytes), humanBytes(s.FullSnapshotBytes), float64(s.FullSnapshotBytes)/float64(s.UploadedBytes))
	}
	return nil
}

// demoBaseDir returns the directory the demo works in: dir (which must be
// empty or missing) or a new temporary directory, removed by cleanup unless
// keep is set.
func demoBaseDir(dir string, keep bool) (base string, cleanup func(), err error) {
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", nil, fmt.Errorf("read --dir %s: %w", dir, err)
		}
		if len(entries) > 0 {
			return "", nil, usagef("demo needs an empty or missing --dir: %s holds files; remove them or pick another", dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, fmt.Errorf("create --dir %s: %w", dir, err)
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", nil, fmt.Errorf("resolve --dir %s: %w", dir, err)
		}
		return abs, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "tierkv-demo-")
	if err != nil {
		return "", nil, fmt.Errorf("create temporary directory: %w", err)
	}
	if tmp, err = filepath.Abs(tmp); err != nil {
		return "", nil, fmt.Errorf("resolve temporary directory: %w", err)
	}
	if keep {
		return tmp, func() {}, nil
	}
	return tmp, func() { _ = os.RemoveAll(tmp) }, nil
}

// runCrashingWorker runs the demo's first worker in a child process (this
// executable, hidden command demo-worker), relays its snapshot reports, and
// kills it with SIGKILL when it reports the crash point. It returns the
// offset of the worker's last snapshot.
func runCrashingWorker(c *cli.Context, g *globals, dir string, crashAt int64, out io.Writer) (lastSnap int64, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find this executable to start the demo worker: %w", err)
	}
	args := []string{"--log-level", globalString(c, "log-level")}
	if args[1] == "" {
		args[1] = "warn"
	}
	if g.engine != "" {
		args = append(args, "--engine", g.engine)
	}
	args = append(args, paramArgs(g.params)...)
	args = append(args, "demo-worker", "--dir", dir,
		"--events", strconv.FormatInt(c.Int64("events"), 10), "--keys", strconv.Itoa(c.Int("keys")),
		"--every", strconv.FormatInt(c.Int64("every"), 10), "--seed", strconv.FormatUint(c.Uint64("seed"), 10),
		"--crash-at", strconv.FormatInt(crashAt, 10))
	cmd := exec.CommandContext(c.Context, exe, args...)
	// The remote goes through the environment, not argv, which other users
	// of the machine can read.
	cmd.Env = append(os.Environ(), "TIERKV_REMOTE="+g.remote, demoWorkerEnv+"=1")
	cmd.Stderr = c.App.ErrWriter
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, fmt.Errorf("start demo worker: %w", err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, fmt.Errorf("start demo worker: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start demo worker %s: %w", exe, err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
		}
		werr := cmd.Wait()
		if err == nil && !killed {
			err = fmt.Errorf("demo worker exited before its crash point: %v", werr)
		}
	}()

	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		nums := make([]int64, len(f)-1)
		for i := range nums {
			if nums[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
				return 0, fmt.Errorf("demo worker sent %q: not a report", sc.Text())
			}
		}
		switch {
		case f[0] == "opened" && len(nums) == 2:
			if nums[0] != 0 {
				return 0, usagef("demo needs an empty remote, but %s already holds version %d: point --remote at an empty prefix",
					objstore.Redact(g.remote), nums[0])
			}
		case f[0] == "snapshot" && len(nums) == 4:
			lastSnap = nums[1]
			fmt.Fprintf(out, "  snapshot v%d at offset %d: uploaded %s, state %s\n",
				nums[0], nums[1], humanBytes(nums[2]), humanBytes(nums[3]))
		case f[0] == "crash-point" && len(nums) == 1:
			if err := cmd.Process.Kill(); err != nil {
				return 0, fmt.Errorf("kill demo worker: %w", err)
			}
			killed = true
			return lastSnap, nil
		default:
			return 0, fmt.Errorf("demo worker sent %q: not a report", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read demo worker reports: %w", err)
	}
	return 0, errors.New("demo worker stopped reporting before its crash point (its error is above)")
}
