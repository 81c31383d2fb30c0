// Package experiments holds the benchmark suite's experiments, after the
// thesis's evaluation (§4): parameter sweeps, the engine comparison with
// peers, snapshots at scale and restores. Each experiment writes a CSV, a PNG
// plot and rows of the markdown summary into the output directory.
package experiments

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/tierkv/tierkv/bench/kv"
	"github.com/tierkv/tierkv/bench/report"
	"github.com/tierkv/tierkv/bench/workload"
	"github.com/tierkv/tierkv/engines"
)

// Config selects the scale and the targets of a run.
type Config struct {
	Quick  bool      // small scale: every experiment in a few minutes
	Out    string    // results directory
	Seed   uint64    // workload seed
	Log    io.Writer // progress lines
	MinIO  string    // host:port of a MinIO server for the snapshot experiment; "" = file:// only
	Bucket string    // bucket on that server. Default: tierkv-bench
	// LinkBytesPerSec simulates a network link of that bandwidth in the
	// snapshot experiment (the thesis used 1 µs per byte = 1 MB/s); 0 = none.
	LinkBytesPerSec float64
	// Runs is how many times each throughput point is measured; the median
	// is reported. Default: 3 (1 in quick mode).
	Runs int
}

// Scale is the size of every experiment.
type Scale struct {
	SweepKeys     uint64
	SweepOps      int64
	CompareKeys   uint64
	CompareOps    int64
	Rates         []float64 // open-loop target rates (ops/s)
	OpenLoopFor   time.Duration
	SpillFactor   int   // state size / memory budget in the spill test
	SnapshotState int64 // bytes of state before the snapshot series
	Snapshots     int
	SnapshotDelta int64    // bytes of updates between snapshots
	ReopenKeys    []uint64 // key counts for the reopen-time experiment
	RollbackK     []int
}

// ScaleFor returns the scale of a quick or a full run.
func ScaleFor(quick bool) Scale {
	if quick {
		return Scale{
			SweepKeys: 20_000, SweepOps: 40_000,
			CompareKeys: 100_000, CompareOps: 200_000,
			Rates: []float64{20_000, 100_000, 400_000}, OpenLoopFor: 300 * time.Millisecond,
			SpillFactor:   4,
			SnapshotState: 16 << 20, Snapshots: 20, SnapshotDelta: 256 << 10,
			ReopenKeys: []uint64{100_000}, RollbackK: []int{1, 4},
		}
	}
	return Scale{
		SweepKeys: 100_000, SweepOps: 500_000,
		CompareKeys: 1_000_000, CompareOps: 2_000_000,
		Rates: []float64{50_000, 200_000, 500_000, 1_000_000, 2_000_000}, OpenLoopFor: 2 * time.Second,
		SpillFactor:   4,
		SnapshotState: 1 << 30, Snapshots: 100, SnapshotDelta: 1 << 20,
		ReopenKeys: []uint64{1_000_000, 10_000_000}, RollbackK: []int{1, 4, 16},
	}
}

// Engines are tierkv's engines, in the order the plots list them.
var Engines = []string{"lsm", "hybridlog", "appendlog", "memonly"}

// Peers are the stores tierkv is compared with.
var Peers = []string{kv.Pebble, kv.Badger, kv.GoMap}

// Env is what an experiment runs with.
type Env struct {
	Config
	Scale   Scale
	Summary *report.Summary
	tmp     string
}

// NewEnv prepares the output and scratch directories.
func NewEnv(c Config) (*Env, error) {
	if c.Runs == 0 {
		c.Runs = 3
		if c.Quick {
			c.Runs = 1
		}
	}
	if c.Bucket == "" {
		c.Bucket = "tierkv-bench"
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return nil, fmt.Errorf("create results directory: %w", err)
	}
	tmp, err := os.MkdirTemp("", "tierkv-bench-")
	if err != nil {
		return nil, err
	}
	return &Env{Config: c, Scale: ScaleFor(c.Quick), Summary: &report.Summary{}, tmp: tmp}, nil
}

// Close removes the scratch directory.
func (e *Env) Close() error { return os.RemoveAll(e.tmp) }

// Dir returns a fresh scratch directory.
func (e *Env) Dir(name string) string {
	d, err := os.MkdirTemp(e.tmp, name+"-")
	if err != nil {
		panic(err)
	}
	return d
}

// Logf prints a progress line.
func (e *Env) Logf(format string, args ...any) {
	fmt.Fprintf(e.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// Save writes a table and a plot under name.
func (e *Env) Save(name string, t *report.Table, p *report.Plot) error {
	if err := t.WriteCSV(e.Out, name); err != nil {
		return err
	}
	if p != nil {
		return p.WritePNG(e.Out, name)
	}
	return nil
}

// measure opens store name in a fresh directory, preloads spec.Keys keys and
// runs ops operations closed-loop, c.Runs times, returning the run with the
// median throughput and the memory after preload.
func (e *Env) measure(name string, params engines.Params, spec workload.Spec, ops int64) (workload.Result, int64, int64, error) {
	var results []workload.Result
	var mem, disk int64
	for r := 0; r < e.Runs; r++ {
		dir := e.Dir(name)
		s, err := kv.Open(name, dir, params)
		if err != nil {
			return workload.Result{}, 0, 0, err
		}
		spec.Seed = e.Seed + uint64(r)
		g, err := workload.New(spec)
		if err != nil {
			s.Close()
			return workload.Result{}, 0, 0, err
		}
		if err := workload.Preload(s, g); err != nil {
			s.Close()
			return workload.Result{}, 0, 0, err
		}
		res := workload.ClosedLoop(s, g, ops)
		mem = s.MemoryUsage()
		if err := s.Close(); err != nil {
			return workload.Result{}, 0, 0, fmt.Errorf("close %s: %w", name, err)
		}
		disk = dirSize(dir)
		os.RemoveAll(dir)
		if res.FirstErr != nil {
			return res, mem, disk, fmt.Errorf("%s: %w", name, res.FirstErr)
		}
		results = append(results, res)
	}
	return medianResult(results), mem, disk, nil
}

func medianResult(rs []workload.Result) workload.Result {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = r.OpsPerS
	}
	m := workload.Median(xs)
	best := rs[0]
	for _, r := range rs {
		if abs(r.OpsPerS-m) < abs(best.OpsPerS-m) {
			best = r
		}
	}
	return best
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func us(ns float64) float64 { return ns / 1e3 }
