package uploader

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Prometheus collectors of an Uploader. They always exist;
// they are registered only when Options.Registerer is set.
type metrics struct {
	uploads  prometheus.Counter
	bytes    prometheus.Counter
	retries  prometheus.Counter
	failures prometheus.Counter
	queue    prometheus.Gauge
	duration prometheus.Histogram
	lag      prometheus.Histogram
}

// latencyBuckets span 5 ms to about 80 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.005, 2, 15)

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		uploads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tierkv_upload_runs_total",
			Help: "Runs made durable in the remote (uploaded, or found there with the same size and checksum).",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tierkv_upload_bytes_total",
			Help: "Bytes of runs sent by successful uploads.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tierkv_upload_retries_total",
			Help: "Upload attempts that failed with a transient error and were retried.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tierkv_upload_failures_total",
			Help: "Runs whose upload failed permanently.",
		}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tierkv_upload_queue_depth",
			Help: "Runs enqueued and waiting for an upload worker.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tierkv_upload_duration_seconds",
			Help:    "Time from the first upload attempt of a run to its durability, retries included.",
			Buckets: latencyBuckets,
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tierkv_upload_lag_seconds",
			Help:    "Time from a run's Enqueue (its seal) to its durability in the remote.",
			Buckets: latencyBuckets,
		}),
	}
	if r == nil {
		return m, nil
	}
	var err error
	if m.uploads, err = register(r, m.uploads); err != nil {
		return nil, err
	}
	if m.bytes, err = register(r, m.bytes); err != nil {
		return nil, err
	}
	if m.retries, err = register(r, m.retries); err != nil {
		return nil, err
	}
	if m.failures, err = register(r, m.failures); err != nil {
		return nil, err
	}
	if m.queue, err = register(r, m.queue); err != nil {
		return nil, err
	}
	if m.duration, err = register(r, m.duration); err != nil {
		return nil, err
	}
	if m.lag, err = register(r, m.lag); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector of the same description that
// is already registered, so that several uploaders can share a registry.
func register[C prometheus.Collector](r prometheus.Registerer, c C) (C, error) {
	err := r.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
