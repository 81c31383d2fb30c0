package hybridlog

import (
	"errors"
	"strings"
	"testing"

	"github.com/tierkv/tierkv/engines"
)

func TestParams(t *testing.T) {
	p, err := ParseParams(nil)
	if err != nil || p != DefaultParams() {
		t.Fatalf("ParseParams(nil) = %+v, %v", p, err)
	}
	q, err := ParseParams(engines.Params{"mem_segment_len": "1M", "ro_lag_interval": "64K", "flush_interval": "128KiB", "max_runs_per_level": "4"})
	if err != nil {
		t.Fatal(err)
	}
	want := Params{MemSegmentLen: 1 << 20, ROLagInterval: 64 << 10, FlushInterval: 128 << 10, MaxRunsPerLevel: 4}
	if q != want {
		t.Fatalf("got %+v, want %+v", q, want)
	}
	if r, err := ParseParams(q.Map()); err != nil || r != q {
		t.Fatalf("Map does not round-trip: %+v, %v", r, err)
	}
}

func TestParamsRejects(t *testing.T) {
	var pe *engines.ParamError
	_, err := ParseParams(engines.Params{"mem_segment_len": "2048", "ro_lag_interval": "1024", "flush_interval": "1024"})
	if !errors.As(err, &pe) || pe.Name != "mem_segment_len" || !strings.Contains(pe.Want, "ro_lag_interval + flush_interval (2048)") {
		t.Fatalf("equal sum: got %v", err)
	}
	for _, bad := range []engines.Params{
		{"mem_segment_len": "12"},
		{"flush_interval": "0"},
		{"ro_lag_interval": "-1"},
		{"max_runs_per_level": "1"},
		{"max_runs_per_level": "x"},
	} {
		if _, err := ParseParams(bad); !errors.As(err, &pe) {
			t.Errorf("%v: got %v, want a *ParamError", bad, err)
		}
	}
	if _, err := ParseParams(engines.Params{"compaction_enabled": "true"}); err == nil || !strings.Contains(err.Error(), "unknown parameter") {
		t.Errorf("unknown name: got %v", err)
	}
	if _, err := Open(engines.OpenOptions{Dir: t.TempDir()}, Params{MemSegmentLen: 100}); err == nil {
		t.Error("Open accepted invalid parameters")
	}
}
