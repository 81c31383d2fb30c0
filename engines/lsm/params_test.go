package lsm

import (
	"errors"
	"reflect"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

func TestParseParams(t *testing.T) {
	p, err := ParseParams(nil)
	if err != nil || p != DefaultParams() {
		t.Fatalf("ParseParams(nil) = %+v, %v; want defaults", p, err)
	}
	if d := DefaultParams(); d.MaxRunsPerLevel != 10 || d.DensityFactor != 16 || d.MemtableBytesLimit != 4<<20 {
		t.Fatalf("defaults changed: %+v", d)
	}
	p, err = ParseParams(engines.Params{"max_runs_per_level": "1", "density_factor": "1000000", "memtable_bytes_limit": "64K"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Params{MaxRunsPerLevel: 1, DensityFactor: 1000000, MemtableBytesLimit: 64 << 10}); p != want {
		t.Fatalf("got %+v, want %+v", p, want)
	}
	back, err := ParseParams(p.Map())
	if err != nil || back != p {
		t.Fatalf("Map round trip: %+v, %v", back, err)
	}
	if !reflect.DeepEqual(p.Map(), engines.Params{"max_runs_per_level": "1", "density_factor": "1000000", "memtable_bytes_limit": "65536"}) {
		t.Fatalf("Map = %v", p.Map())
	}
	for _, bad := range []engines.Params{
		{"max_runs_per_level": "0"},
		{"max_runs_per_level": "1001"},
		{"max_runs_per_level": "ten"},
		{"density_factor": "0"},
		{"density_factor": "1000001"},
		{"memtable_bytes_limit": "1023"},
		{"memtable_bytes_limit": "2G"},
	} {
		_, err := ParseParams(bad)
		var pe *engines.ParamError
		if !errors.As(err, &pe) {
			t.Errorf("ParseParams(%v) = %v, want a *engines.ParamError", bad, err)
			continue
		}
		for name := range bad {
			if pe.Name != name || pe.Engine != Kind {
				t.Errorf("ParseParams(%v): error names %s/%s", bad, pe.Engine, pe.Name)
			}
		}
	}
	if _, err := ParseParams(engines.Params{"flush_interval": "5"}); err == nil {
		t.Error("unknown parameter accepted")
	}
	if _, err := Open(engines.OpenOptions{Dir: t.TempDir()}, Params{DensityFactor: -1}); err == nil {
		t.Error("Open accepted a negative density factor")
	}
}
