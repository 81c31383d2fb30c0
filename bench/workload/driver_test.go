package workload

import (
	"testing"
	"time"
)

func TestRecorderPercentiles(t *testing.T) {
	var r Recorder
	for i := 1; i <= 1000; i++ {
		r.Record(time.Duration(i) * time.Microsecond)
	}
	s := r.Summary()
	check := func(name string, got, want float64) {
		if got < want*0.97 || got > want*1.03 {
			t.Errorf("%s = %.0f ns, want about %.0f", name, got, want)
		}
	}
	check("p50", s.P50, 500e3)
	check("p95", s.P95, 950e3)
	check("p99", s.P99, 990e3)
	check("max", s.Max, 1000e3)
	if s.Count != 1000 {
		t.Errorf("count %d", s.Count)
	}
}

type mapStore map[string][]byte

func (m mapStore) Get(k []byte) ([]byte, bool, error) { v, ok := m[string(k)]; return v, ok, nil }
func (m mapStore) Set(k, v []byte) error              { m[string(k)] = append([]byte(nil), v...); return nil }

func TestGeneratorsAndDrivers(t *testing.T) {
	for _, d := range []Distribution{Uniform, Zipfian, Drifting} {
		g, err := New(Spec{Keys: 1000, ReadFrac: 0.5, Dist: d, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[uint64]int{}
		for i := 0; i < 20000; i++ {
			idx := g.NextIndex()
			if idx >= 1000 {
				t.Fatalf("%s: index %d out of range", d, idx)
			}
			seen[idx]++
		}
		top := 0
		for _, c := range seen {
			top = max(top, c)
		}
		if d == Uniform && top > 80 || d != Uniform && top < 80 {
			t.Errorf("%s: hottest key drawn %d times of 20000", d, top)
		}
		s := mapStore{}
		if err := Preload(s, g); err != nil || len(s) != 1000 {
			t.Fatalf("preload: %v, %d keys", err, len(s))
		}
		res := ClosedLoop(s, g, 5000)
		if res.Ops != 5000 || res.Read.Count+res.Write.Count != 5000 || res.Read.Count == 0 || res.Write.Count == 0 {
			t.Fatalf("%s: closed loop %+v", d, res)
		}
	}
	g, _ := New(Spec{Keys: 100, Seed: 2})
	res := OpenLoop(mapStore{}, g, 20000, 50*time.Millisecond)
	if res.Ops < 900 || res.Ops > 1100 {
		t.Fatalf("open loop at 20k/s for 50ms ran %d ops", res.Ops)
	}
	if _, err := New(Spec{KeySize: 4}); err == nil {
		t.Fatal("4-byte keys accepted")
	}
}
