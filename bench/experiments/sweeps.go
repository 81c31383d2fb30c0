package experiments

import (
	"fmt"
	"strconv"

	"github.com/tierkv/tierkv/bench/report"
	"github.com/tierkv/tierkv/bench/workload"
	"github.com/tierkv/tierkv/engines"
)

type sweep struct {
	engine string
	param  string
	values []string
	fixed  engines.Params
}

func sweeps() []sweep {
	return []sweep{
		{"lsm", "max_runs_per_level", []string{"1", "2", "4", "8", "16"}, engines.Params{"memtable_bytes_limit": "64K"}},
		{"lsm", "density_factor", []string{"1", "4", "16", "64", "256"}, engines.Params{"memtable_bytes_limit": "64K"}},
		{"lsm", "memtable_bytes_limit", []string{"16K", "64K", "256K", "1M", "4M"}, nil},
		{"hybridlog", "mem_segment_len", []string{"192K", "512K", "1M", "4M", "16M"}, engines.Params{"ro_lag_interval": "64K", "flush_interval": "64K"}},
		{"hybridlog", "ro_lag_interval", []string{"16K", "64K", "256K", "1M", "2M"}, engines.Params{"mem_segment_len": "4M", "flush_interval": "256K"}},
		{"hybridlog", "flush_interval", []string{"16K", "64K", "256K", "1M", "2M"}, engines.Params{"mem_segment_len": "4M", "ro_lag_interval": "256K"}},
		{"appendlog", "threshold", []string{"16K", "64K", "256K", "1M", "4M"}, nil},
		{"appendlog", "compaction", []string{"false", "true"}, engines.Params{"threshold": "64K"}},
	}
}

// Sweeps reproduces thesis §4.1: latency (p50, p95 of reads and writes),
// memory and disk use against each engine parameter, on a uniform 1:1
// read/write workload.
func Sweeps(e *Env) error {
	e.Summary.Heading("Parameter sweeps (thesis §4.1)")
	e.Summary.Line("Uniform keys, 1:1 reads and writes, %d keys of 16 B with 100 B values, %d operations per point after a preload; latencies in µs.", e.Scale.SweepKeys, e.Scale.SweepOps)
	for _, s := range sweeps() {
		name := fmt.Sprintf("sweep-%s-%s", s.engine, s.param)
		t := &report.Table{Header: []string{s.param, "ops_per_s", "write_p50_us", "write_p95_us", "read_p50_us", "read_p95_us", "memory_bytes", "disk_bytes"}}
		p := &report.Plot{Title: fmt.Sprintf("%s: latency vs %s", s.engine, s.param), XLabel: s.param, YLabel: "latency (µs)", LogY: true}
		for i, v := range s.values {
			params := engines.Params{}
			for k, fv := range s.fixed {
				params[k] = fv
			}
			params[s.param] = v
			res, mem, disk, err := e.measure(s.engine, params, workload.Spec{Keys: e.Scale.SweepKeys, ReadFrac: 0.5}, e.Scale.SweepOps)
			if err != nil {
				return fmt.Errorf("%s=%s: %w", s.param, v, err)
			}
			x := float64(i)
			if n, err := engines.ParseSize(v); err == nil {
				x = float64(n)
			}
			t.Add(v, res.OpsPerS, us(res.Write.P50), us(res.Write.P95), us(res.Read.P50), us(res.Read.P95), mem, disk)
			p.Add("write p50", x, us(res.Write.P50))
			p.Add("write p95", x, us(res.Write.P95))
			p.Add("read p50", x, us(res.Read.P50))
			p.Add("read p95", x, us(res.Read.P95))
		}
		if _, err := strconv.ParseBool(s.values[0]); err != nil {
			p.LogX = true
		} else {
			p.XLabel = s.param + " (0 = false, 1 = true)"
		}
		if err := e.Save(name, t, p); err != nil {
			return err
		}
		e.Logf("%s done", name)
		e.Summary.Line("\n### %s `%s`\n", s.engine, s.param)
		e.Summary.Markdown(t)
		e.Summary.Image(name, name)
	}
	return nil
}
