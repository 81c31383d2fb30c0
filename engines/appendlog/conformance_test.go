package appendlog

import (
	"testing"

	"github.com/tierkv/tierkv/cache"
	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/engines/enginetest"
)

// tinyParams make everything spill and merge many times in a short test.
// The compaction variant uses a larger threshold (fewer seals, same merge
// depth with two runs per level) to keep the package's test time down.
func tinyParams(compaction bool) Params {
	if compaction {
		return Params{Threshold: 4 * MinThreshold, MaxRunsPerLevel: 2, Compaction: true}
	}
	return Params{Threshold: MinThreshold, MaxRunsPerLevel: 3}
}

func TestConformance(t *testing.T) {
	for _, c := range []struct {
		name       string
		compaction bool
	}{{"Plain", false}, {"Compaction", true}} {
		t.Run(c.name, func(t *testing.T) {
			enginetest.Run(t, enginetest.Factory{
				Kind:      Kind,
				StateFile: currentName,
				Open: func(o engines.OpenOptions) (engines.Engine, error) {
					if o.FS == nil {
						o.FS = noSyncFS{}
					}
					return Open(o, tinyParams(c.compaction))
				},
			})
		})
	}
}

// BenchmarkEngine runs the shared benchmarks with the default parameters and
// a block cache large enough for the benchmark's data (1M keys x 100 B).
func BenchmarkEngine(b *testing.B) {
	c, err := cache.New(512 << 20)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	enginetest.RunBenchmarks(b, enginetest.Factory{
		Kind: Kind,
		Open: func(o engines.OpenOptions) (engines.Engine, error) {
			if o.Cache == nil {
				o.Cache = c
			}
			return Open(o, DefaultParams())
		},
	})
}
