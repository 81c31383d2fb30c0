package experiments

import (
	"fmt"
	"os"

	"github.com/tierkv/tierkv/bench/kv"
	"github.com/tierkv/tierkv/bench/report"
	"github.com/tierkv/tierkv/bench/workload"
	"github.com/tierkv/tierkv/engines"
)

// compareParams are the engine settings of the comparison: thesis §4.2's
// max_runs_per_level=10, with buffers large enough that the state fits in
// memory unless the experiment says otherwise.
func compareParams(engine string) engines.Params {
	switch engine {
	case "lsm":
		return engines.Params{"max_runs_per_level": "10", "density_factor": "16", "memtable_bytes_limit": "16M"}
	case "hybridlog":
		return engines.Params{"max_runs_per_level": "10", "mem_segment_len": "512M", "ro_lag_interval": "16M", "flush_interval": "16M"}
	case "appendlog":
		return engines.Params{"max_runs_per_level": "10", "threshold": "16M"}
	}
	return nil
}

// spillParams bound each engine's memory to budget bytes.
func spillParams(engine string, budget int64) engines.Params {
	switch engine {
	case "lsm":
		return engines.Params{"max_runs_per_level": "10", "density_factor": "16", "memtable_bytes_limit": fmt.Sprint(budget)}
	case "hybridlog":
		return engines.Params{"max_runs_per_level": "10", "mem_segment_len": fmt.Sprint(budget), "ro_lag_interval": fmt.Sprint(budget / 4), "flush_interval": fmt.Sprint(budget / 4)}
	case "appendlog":
		return engines.Params{"max_runs_per_level": "10", "threshold": fmt.Sprint(budget)}
	}
	return nil
}

func stores() []string { return append(append([]string{}, Engines...), Peers...) }

// Compare reproduces thesis §4.2 with peers in the same run: write latency
// against throughput (open loop, uniform and zipfian), read latency,
// throughput with the state in memory, memory per key, and a state four
// times larger than the memory budget.
func Compare(e *Env) error {
	sc := e.Scale
	e.Summary.Heading("Engine comparison with peers (thesis §4.2)")
	e.Summary.Line("%d keys of 16 B with 100 B values, one goroutine. Peers: Pebble v2 with the WAL off, Badger v4 without synchronous writes, a Go map updated in place. Throughput is the median of %d runs.", sc.CompareKeys, e.Runs)

	// Throughput with the state in memory, and memory per key.
	tp := &report.Table{Header: []string{"store", "dist", "set_ops_per_s", "set_p50_us", "set_p99_us", "get_ops_per_s", "get_p50_us", "get_p99_us", "memory_bytes_per_key"}}
	rates := map[string]map[workload.Distribution]float64{}
	readLat := &report.Plot{Title: "Read latency percentiles (uniform)", XLabel: "percentile", YLabel: "latency (µs)", LogY: true}
	for _, s := range stores() {
		rates[s] = map[workload.Distribution]float64{}
		for _, d := range []workload.Distribution{workload.Uniform, workload.Zipfian} {
			w, mem, _, err := e.measure(s, compareParams(s), workload.Spec{Keys: sc.CompareKeys, Dist: d}, sc.CompareOps)
			if err != nil {
				return err
			}
			r, _, _, err := e.measure(s, compareParams(s), workload.Spec{Keys: sc.CompareKeys, Dist: d, ReadFrac: 1}, sc.CompareOps)
			if err != nil {
				return err
			}
			perKey := "n/a"
			if mem >= 0 {
				perKey = fmt.Sprintf("%.1f", float64(mem)/float64(sc.CompareKeys))
			}
			tp.Add(s, string(d), w.OpsPerS, us(w.Write.P50), us(w.Write.P99), r.OpsPerS, us(r.Read.P50), us(r.Read.P99), perKey)
			rates[s][d] = w.OpsPerS
			if d == workload.Uniform {
				for _, pc := range []struct {
					x float64
					v float64
				}{{50, r.Read.P50}, {95, r.Read.P95}, {99, r.Read.P99}, {99.9, r.Read.P999}} {
					readLat.Add(s, pc.x, us(pc.v))
				}
			}
			e.Logf("compare %s %s: set %.0f/s get %.0f/s", s, d, w.OpsPerS, r.OpsPerS)
		}
	}
	if err := e.Save("compare-throughput", tp, nil); err != nil {
		return err
	}
	if err := e.Save("compare-read-latency", &report.Table{Header: []string{"see compare-throughput.csv"}}, readLat); err != nil {
		return err
	}
	thr := &report.Plot{Title: "Set throughput, state in memory", XLabel: "distribution (0 = uniform, 1 = zipfian)", YLabel: "ops/s", LogY: true}
	for _, s := range stores() {
		thr.Add(s, 0, rates[s][workload.Uniform])
		thr.Add(s, 1, rates[s][workload.Zipfian])
	}
	if err := thr.WritePNG(e.Out, "compare-set-throughput"); err != nil {
		return err
	}
	e.Summary.Markdown(tp)
	e.Summary.Image("compare-set-throughput", "Set throughput")
	e.Summary.Image("compare-read-latency", "Read latency")
	headlines(e, rates)

	// Write latency against throughput, open loop.
	for _, d := range []workload.Distribution{workload.Uniform, workload.Zipfian} {
		t := &report.Table{Header: []string{"store", "target_ops_per_s", "achieved_ops_per_s", "p50_us", "p99_us", "p999_us"}}
		p := &report.Plot{Title: fmt.Sprintf("Write latency vs throughput (%s, open loop)", d), XLabel: "achieved ops/s", YLabel: "p99 latency from intended start (µs)", LogX: true, LogY: true}
		for _, s := range stores() {
			dir := e.Dir(s)
			st, err := kv.Open(s, dir, compareParams(s))
			if err != nil {
				return err
			}
			g, err := workload.New(workload.Spec{Keys: sc.CompareKeys, Dist: d, Seed: e.Seed})
			if err != nil {
				return err
			}
			if err := workload.Preload(st, g); err != nil {
				return err
			}
			for _, rate := range sc.Rates {
				res := workload.OpenLoop(st, g, rate, sc.OpenLoopFor)
				if res.FirstErr != nil {
					return res.FirstErr
				}
				t.Add(s, rate, res.OpsPerS, us(res.Write.P50), us(res.Write.P99), us(res.Write.P999))
				p.Add(s, res.OpsPerS, us(res.Write.P99))
			}
			st.Close()
			os.RemoveAll(dir)
		}
		name := "compare-write-latency-" + string(d)
		if err := e.Save(name, t, p); err != nil {
			return err
		}
		e.Summary.Line("\n### Write latency vs throughput, %s keys\n", d)
		e.Summary.Markdown(t)
		e.Summary.Image(name, name)
		e.Logf("%s done", name)
	}

	// Spill to disk: state four times the memory budget.
	state := int64(sc.CompareKeys) * (16 + 100)
	budget := state / int64(sc.SpillFactor)
	t := &report.Table{Header: []string{"store", "memory_budget_bytes", "ops_per_s", "set_p99_us", "get_p99_us", "memory_bytes", "disk_bytes"}}
	for _, s := range append([]string{"lsm", "hybridlog", "appendlog"}, kv.Pebble, kv.Badger) {
		res, mem, disk, err := e.measure(s, spillParams(s, budget), workload.Spec{Keys: sc.CompareKeys, ReadFrac: 0.5}, sc.CompareOps/2)
		if err != nil {
			return err
		}
		t.Add(s, budget, res.OpsPerS, us(res.Write.P99), us(res.Read.P99), mem, disk)
	}
	if err := e.Save("compare-spill", t, nil); err != nil {
		return err
	}
	e.Summary.Line("\n### State %d× the memory budget (spill to disk; the thesis did not test this)\n", sc.SpillFactor)
	e.Summary.Line("Uniform keys, 1:1 reads and writes; engine buffers set to %d bytes for a %d-byte state. AppendLog keeps its whole index in memory by design; MemOnly cannot spill and is left out; Pebble and Badger use their defaults.\n", budget, state)
	e.Summary.Markdown(t)
	return nil
}

func headlines(e *Env, r map[string]map[workload.Distribution]float64) {
	z := workload.Zipfian
	e.Summary.Line("\n**Headlines (same run, one goroutine, state in memory):**\n")
	e.Summary.Line("- HybridLog zipfian updates: %.2f× Pebble, %.0f%% of an in-place Go map (targets: ≥ 6×, ≥ 80%%).", r["hybridlog"][z]/r[kv.Pebble][z], 100*r["hybridlog"][z]/r[kv.GoMap][z])
	e.Summary.Line("- LSM zipfian Set: %.2f× Pebble; uniform: %.2f× (target ≥ 1×).", r["lsm"][z]/r[kv.Pebble][z], r["lsm"][workload.Uniform]/r[kv.Pebble][workload.Uniform])
	for _, s := range Engines {
		e.Summary.Line("- %s point updates vs Badger: %.2f× (zipfian), %.2f× (uniform) (target > 1×).", s, r[s][z]/r[kv.Badger][z], r[s][workload.Uniform]/r[kv.Badger][workload.Uniform])
	}
}
