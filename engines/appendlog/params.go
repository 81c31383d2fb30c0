package appendlog

import (
	"strconv"

	"github.com/tierkv/tierkv/engines"
)

// Kind is the engine kind written into checkpoints.
const Kind = "appendlog"

// Parameter ranges.
const (
	// MinThreshold is the smallest threshold (1 KiB).
	MinThreshold = 1 << 10
	// MaxThreshold is the largest threshold (4 GiB).
	MaxThreshold = 4 << 30
	// MinRunsPerLevel is the smallest max_runs_per_level.
	MinRunsPerLevel = 2
	// MaxRunsPerLevel is the largest max_runs_per_level.
	MaxRunsPerLevel = 1000
)

// Params are the AppendLog's parameters, named as in the thesis.
type Params struct {
	// Threshold (threshold) is the number of bytes written to the active log
	// before it is sealed into a run and a new one started; 1 KiB..4 GiB.
	// Default: 4 MiB.
	Threshold int64
	// MaxRunsPerLevel (max_runs_per_level) is the number of sealed runs a
	// level holds before they are merged into one run at the next level;
	// 2..1000. Default: 10.
	MaxRunsPerLevel int
	// Compaction (compaction) makes merges drop superseded records and
	// tombstones that can no longer shadow anything (see the package doc).
	// Default: false.
	Compaction bool
}

// DefaultParams returns the default parameters.
func DefaultParams() Params {
	return Params{Threshold: 4 << 20, MaxRunsPerLevel: 10, Compaction: false}
}

// ParseParams reads p (snake_case names), fills defaults for absent names,
// checks ranges and refuses unknown names with one *engines.ParamError (or an
// error naming the unknown parameter).
func ParseParams(p engines.Params) (Params, error) {
	d := DefaultParams()
	pp := engines.NewParamParser(Kind, p)
	out := Params{
		Threshold:       pp.Size("threshold", d.Threshold, MinThreshold, MaxThreshold),
		MaxRunsPerLevel: int(pp.Int("max_runs_per_level", int64(d.MaxRunsPerLevel), MinRunsPerLevel, MaxRunsPerLevel)),
		Compaction:      pp.Bool("compaction", d.Compaction),
	}
	if err := pp.Err(); err != nil {
		return Params{}, err
	}
	return out, nil
}

// Map returns every parameter as canonical strings; it round-trips through
// ParseParams.
func (p Params) Map() engines.Params {
	return engines.Params{
		"threshold":          strconv.FormatInt(p.Threshold, 10),
		"max_runs_per_level": strconv.Itoa(p.MaxRunsPerLevel),
		"compaction":         strconv.FormatBool(p.Compaction),
	}
}

// validate checks p the way ParseParams does, for Params built in Go.
func (p Params) validate() error {
	_, err := ParseParams(p.Map())
	return err
}
