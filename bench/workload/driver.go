package workload

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Store is what the drivers measure.
type Store interface {
	Get(key []byte) ([]byte, bool, error)
	Set(key, value []byte) error
}

// Result summarises one driver run.
type Result struct {
	Ops      int64
	Elapsed  time.Duration
	OpsPerS  float64
	Target   float64 // target rate of an open-loop run (0 for closed loop)
	Read     Latencies
	Write    Latencies
	Errors   int64
	FirstErr error
}

// Latencies are percentiles of one operation type, in nanoseconds.
type Latencies struct {
	Count                    int64
	P50, P95, P99, P999, Max float64
}

// Recorder collects latency samples in a log-linear histogram: 1 ns to ~1 h
// with 1/64 relative precision, a fixed 1,920 counters, no allocation per
// sample.
type Recorder struct {
	counts [30 * 64]int64
	n      int64
	max    int64
}

func bucketOf(ns int64) int {
	if ns < 64 {
		if ns < 0 {
			return 0
		}
		return int(ns)
	}
	exp := 63 - leadingZeros(uint64(ns)) // >= 6
	mant := int(ns>>(exp-6)) & 63        // next 6 bits
	b := (exp-5)*64 + mant
	if b >= len(Recorder{}.counts) {
		return len(Recorder{}.counts) - 1
	}
	return b
}

func leadingZeros(x uint64) int {
	n := 0
	for x&(1<<63) == 0 {
		x <<= 1
		n++
	}
	return n
}

// bucketValue returns a representative (upper-bound) value of bucket b.
func bucketValue(b int) float64 {
	if b < 64 {
		return float64(b)
	}
	exp := b/64 + 5
	mant := b % 64
	return float64((int64(64+mant) + 1) << (exp - 6))
}

// Record adds one sample.
func (r *Recorder) Record(d time.Duration) {
	ns := int64(d)
	r.counts[bucketOf(ns)]++
	r.n++
	if ns > r.max {
		r.max = ns
	}
}

// Summary computes the percentiles.
func (r *Recorder) Summary() Latencies {
	l := Latencies{Count: r.n, Max: float64(r.max)}
	if r.n == 0 {
		return l
	}
	want := []float64{0.50, 0.95, 0.99, 0.999}
	out := []*float64{&l.P50, &l.P95, &l.P99, &l.P999}
	var seen int64
	i := 0
	for b, c := range r.counts {
		seen += c
		for i < len(want) && float64(seen) >= want[i]*float64(r.n) {
			*out[i] = math.Min(bucketValue(b), float64(r.max))
			i++
		}
	}
	return l
}

// ClosedLoop runs n operations from g against s back to back and measures each.
func ClosedLoop(s Store, g *Generator, n int64) Result {
	var rr, wr Recorder
	res := Result{}
	start := time.Now()
	for i := int64(0); i < n; i++ {
		op := g.Next()
		t0 := time.Now()
		var err error
		if op.Read {
			_, _, err = s.Get(op.Key)
			rr.Record(time.Since(t0))
		} else {
			err = s.Set(op.Key, op.Value)
			wr.Record(time.Since(t0))
		}
		if err != nil {
			res.Errors++
			if res.FirstErr == nil {
				res.FirstErr = fmt.Errorf("op %d: %w", i, err)
			}
		}
	}
	res.Elapsed = time.Since(start)
	res.Ops = n
	res.OpsPerS = float64(n) / res.Elapsed.Seconds()
	res.Read, res.Write = rr.Summary(), wr.Summary()
	return res
}

// OpenLoop issues operations at rate per second for duration d. Operation i
// is due at start + i/rate; its latency is measured from that intended start,
// so a stall delays and penalises every operation queued behind it.
func OpenLoop(s Store, g *Generator, rate float64, d time.Duration) Result {
	var rr, wr Recorder
	res := Result{Target: rate}
	interval := float64(time.Second) / rate
	start := time.Now()
	var i int64
	for {
		due := start.Add(time.Duration(float64(i) * interval))
		if due.Sub(start) >= d {
			break
		}
		if now := time.Now(); now.Before(due) {
			if wait := due.Sub(now); wait > 50*time.Microsecond {
				time.Sleep(wait - 20*time.Microsecond)
			}
			for time.Now().Before(due) {
			}
		}
		op := g.Next()
		var err error
		if op.Read {
			_, _, err = s.Get(op.Key)
			rr.Record(time.Since(due))
		} else {
			err = s.Set(op.Key, op.Value)
			wr.Record(time.Since(due))
		}
		if err != nil {
			res.Errors++
			if res.FirstErr == nil {
				res.FirstErr = fmt.Errorf("op %d: %w", i, err)
			}
		}
		i++
	}
	res.Elapsed = time.Since(start)
	res.Ops = i
	res.OpsPerS = float64(i) / res.Elapsed.Seconds()
	res.Read, res.Write = rr.Summary(), wr.Summary()
	return res
}

// Preload writes every key 0..Keys-1 once, in a shuffled order.
func Preload(s Store, g *Generator) error {
	n := g.spec.Keys
	order := make([]uint64, n)
	for i := range order {
		order[i] = uint64(i)
	}
	g.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, i := range order {
		if err := s.Set(g.Key(i), g.value); err != nil {
			return fmt.Errorf("preload key %d: %w", i, err)
		}
	}
	return nil
}

// Median returns the median of xs (0 for none).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
