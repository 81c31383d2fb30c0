package experiments

import (
	"fmt"
	"os"
	"time"

	"github.com/tierkv/tierkv/bench/kv"
	"github.com/tierkv/tierkv/bench/report"
	"github.com/tierkv/tierkv/bench/workload"
)

// Reopen measures the time to reopen each store after Close and serve its
// first read, at each key count of the scale. For reference, the thesis's
// Styx runs measured recovery of 139/297 ms for the LSM and 284/1,488 ms for
// HybridLog at 100K/1M keys; its engines rescanned all data, ours read
// footers, fences, filters and hint files.
func Reopen(e *Env) error {
	e.Summary.Heading("Reopen time")
	e.Summary.Line("Time from Open to the first Get returning, after a clean Close (16 B keys, 100 B values). Thesis reference (Styx): LSM 139/297 ms, HybridLog 284/1,488 ms at 100K/1M keys.")
	t := &report.Table{Header: []string{"store", "keys", "reopen_ms", "disk_bytes"}}
	p := &report.Plot{Title: "Reopen time", XLabel: "keys", YLabel: "ms", LogX: true, LogY: true}
	for _, s := range append(append([]string{}, Engines...), kv.Pebble, kv.Badger) {
		for _, n := range e.Scale.ReopenKeys {
			dir := e.Dir("reopen-" + s)
			st, err := kv.Open(s, dir, compareParams(s))
			if err != nil {
				return err
			}
			g, err := workload.New(workload.Spec{Keys: n, Seed: e.Seed})
			if err != nil {
				return err
			}
			if err := workload.Preload(st, g); err != nil {
				return err
			}
			if err := st.Close(); err != nil {
				return err
			}
			var ms []float64
			for r := 0; r < max(e.Runs, 3); r++ {
				t0 := time.Now()
				st, err = kv.Open(s, dir, compareParams(s))
				if err != nil {
					return fmt.Errorf("reopen %s: %w", s, err)
				}
				if _, found, err := st.Get(g.Key(n / 2)); err != nil || !found {
					return fmt.Errorf("reopen %s: key %d lost (err %v)", s, n/2, err)
				}
				ms = append(ms, float64(time.Since(t0).Microseconds())/1e3)
				if err := st.Close(); err != nil {
					return err
				}
			}
			med := workload.Median(ms)
			t.Add(s, n, med, dirSize(dir))
			p.Add(s, float64(n), med)
			os.RemoveAll(dir)
			e.Logf("reopen %s at %d keys: %.1f ms", s, n, med)
		}
	}
	if err := e.Save("reopen", t, p); err != nil {
		return err
	}
	e.Summary.Markdown(t)
	return nil
}
