package tiered

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus collectors. A nil *metrics records
// nothing, so free functions (RestoreTo) can share the download code.
type metrics struct {
	reg          prometheus.Registerer
	registered   []prometheus.Collector
	snapshots    *prometheus.CounterVec
	snapDuration prometheus.Histogram
	snapBytes    prometheus.Counter
	restores     *prometheus.CounterVec
	restDuration prometheus.Histogram
	restBytes    prometheus.Counter
	dlBytes      prometheus.Counter
	dlOps        prometheus.Counter
}

// newMetrics builds the collectors and registers them (and the gauges read
// from s) with reg when reg is non-nil.
func newMetrics(reg prometheus.Registerer, s *Store) (*metrics, error) {
	m := &metrics{
		reg: reg,
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tierkv_snapshots_total", Help: "Snapshots attempted, by result (ok, error, fenced).",
		}, []string{"result"}),
		snapDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tierkv_snapshot_duration_seconds", Help: "Duration of successful snapshots, seal to manifest commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		snapBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tierkv_snapshot_new_bytes_total", Help: "Bytes of runs committed snapshots had and their parent had not.",
		}),
		restores: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tierkv_restores_total", Help: "Restores attempted (including the one at open), by result (ok, error).",
		}, []string{"result"}),
		restDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tierkv_restore_duration_seconds", Help: "Duration of successful restores.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		restBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tierkv_restore_bytes_total", Help: "Bytes of runs downloaded by successful restores.",
		}),
		dlBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tierkv_download_bytes_total", Help: "Bytes downloaded from the remote for runs (every attempt).",
		}),
		dlOps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tierkv_downloads_total", Help: "Run download attempts.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	cs := []prometheus.Collector{m.snapshots, m.snapDuration, m.snapBytes, m.restores, m.restDuration,
		m.restBytes, m.dlBytes, m.dlOps,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tierkv_engine_memory_bytes", Help: "Bytes held by the engine's in-memory structures.",
		}, func() float64 { return float64(s.engineMemory()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tierkv_cache_bytes", Help: "Bytes held by the block cache.",
		}, func() float64 { return float64(s.cache.Stats().Bytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tierkv_cache_hits_total", Help: "Block cache lookups that found the block.",
		}, func() float64 { return float64(s.cache.Stats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tierkv_cache_misses_total", Help: "Block cache lookups that missed.",
		}, func() float64 { return float64(s.cache.Stats().Misses) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tierkv_store_version", Help: "Remote version the local state descends from (0 = none).",
		}, func() float64 { return float64(s.Version()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			m.unregister()
			return nil, fmt.Errorf("tiered: register metrics (give each store its own registerer, e.g. prometheus.WrapRegistererWith): %w", err)
		}
		m.registered = append(m.registered, c)
	}
	return m, nil
}

// unregister removes every registered collector.
func (m *metrics) unregister() {
	if m == nil || m.reg == nil {
		return
	}
	for _, c := range m.registered {
		m.reg.Unregister(c)
	}
	m.registered = nil
}

func (m *metrics) download(n int64) {
	if m != nil {
		m.dlOps.Inc()
		m.dlBytes.Add(float64(n))
	}
}
