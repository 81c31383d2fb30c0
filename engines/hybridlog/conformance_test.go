package hybridlog

import (
	"testing"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/engines/enginetest"
)

// tinyParams make everything spill, flush and merge many times.
func tinyParams() Params {
	return Params{MemSegmentLen: 16 << 10, ROLagInterval: 4 << 10, FlushInterval: 4 << 10, MaxRunsPerLevel: 3}
}

func factory(p Params) enginetest.Factory {
	return enginetest.Factory{
		Kind:      Kind,
		StateFile: currentName,
		Open:      func(o engines.OpenOptions) (engines.Engine, error) { return Open(o, p) },
	}
}

func TestConformance(t *testing.T) {
	t.Parallel() // both suites mostly wait for fsync
	enginetest.Run(t, factory(tinyParams()))
}

// TestConformanceRoomy runs the suite with a window large enough that most
// updates happen in place.
func TestConformanceRoomy(t *testing.T) {
	t.Parallel()
	enginetest.Run(t, factory(Params{MemSegmentLen: 1 << 20, ROLagInterval: 64 << 10, FlushInterval: 64 << 10, MaxRunsPerLevel: 4}))
}
