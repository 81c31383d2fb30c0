// Command tierkv-bench runs tierkv's benchmark suite: the thesis's parameter
// sweeps, the engine comparison with Pebble, Badger and a Go map, snapshots
// and restores at scale, and reopen times. It writes CSV files, PNG plots and
// summary.md into the output directory.
//
//	go run ./cmd/tierkv-bench -quick            # every experiment, small scale, < 3 min
//	go run ./cmd/tierkv-bench                   # full scale (1 GiB snapshot state, 10M-key reopen)
//	go run ./cmd/tierkv-bench -exp snapshots -minio 127.0.0.1:9000 -link 1e6
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/tierkv/tierkv/bench/experiments"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tierkv-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		quick = flag.Bool("quick", false, "small scale: every experiment in under 3 minutes")
		out   = flag.String("out", "results", "directory for CSV, PNG and summary.md")
		exps  = flag.String("exp", "sweeps,compare,snapshots,reopen", "comma-separated experiments to run")
		mio   = flag.String("minio", os.Getenv("TIERKV_TEST_MINIO_ENDPOINT"), "host:port of a MinIO server for the snapshot experiment (credentials from MINIO_ACCESS_KEY/MINIO_SECRET_KEY)")
		link  = flag.Float64("link", 0, "simulated link bandwidth in bytes/s for snapshots (thesis: 1e6); 0 = none")
		seed  = flag.Uint64("seed", 1, "workload seed")
		runs  = flag.Int("runs", 0, "measurements per throughput point, median reported (default 3, quick 1)")
	)
	flag.Parse()
	all := map[string]func(*experiments.Env) error{
		"sweeps":    experiments.Sweeps,
		"compare":   experiments.Compare,
		"snapshots": experiments.Snapshots,
		"reopen":    experiments.Reopen,
	}
	var chosen []string
	for _, name := range strings.Split(*exps, ",") {
		name = strings.TrimSpace(name)
		if _, ok := all[name]; !ok {
			return fmt.Errorf("unknown experiment %q: choose from sweeps, compare, snapshots, reopen", name)
		}
		chosen = append(chosen, name)
	}
	env, err := experiments.NewEnv(experiments.Config{Quick: *quick, Out: *out, Seed: *seed, Log: os.Stderr, MinIO: *mio, LinkBytesPerSec: *link, Runs: *runs})
	if err != nil {
		return err
	}
	defer env.Close()
	start := time.Now()
	for _, name := range chosen {
		env.Logf("experiment %s", name)
		if err := all[name](env); err != nil {
			return fmt.Errorf("experiment %s: %w", name, err)
		}
	}
	var b strings.Builder
	scale := "full"
	if *quick {
		scale = "quick"
	}
	fmt.Fprintf(&b, "# tierkv benchmark results (%s scale)\n\n", scale)
	fmt.Fprintf(&b, "- Date: %s\n- Machine: %s, %d cores, %s/%s\n- Go: %s\n- Command: `go run ./cmd/tierkv-bench %s` (in `bench/`)\n- Wall time: %s\n",
		time.Now().UTC().Format(time.RFC3339), cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(),
		strings.Join(os.Args[1:], " "), time.Since(start).Round(time.Second))
	if *mio == "" {
		b.WriteString("- MinIO: not configured; the snapshot experiment ran against file:// only\n")
	}
	b.WriteString("\nThe machine is shared and noisy: compare ratios measured in the same run, not absolute figures across runs.\n")
	b.WriteString(env.Summary.String())
	if err := os.WriteFile(*out+"/summary.md", []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	env.Logf("done in %s; results in %s", time.Since(start).Round(time.Second), *out)
	return nil
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
