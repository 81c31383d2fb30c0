package lsm

import (
	"strconv"

	"github.com/tierkv/tierkv/engines"
)

// Kind is the engine kind recorded in checkpoints.
const Kind = "lsm"

// Parameter names as they appear on the wire (the thesis's names).
const (
	ParamMaxRunsPerLevel    = "max_runs_per_level"
	ParamDensityFactor      = "density_factor"
	ParamMemtableBytesLimit = "memtable_bytes_limit"
)

// Parameter ranges.
const (
	minMaxRunsPerLevel    = 1
	maxMaxRunsPerLevel    = 1000
	minDensityFactor      = 1
	maxDensityFactor      = 1_000_000
	minMemtableBytesLimit = 1 << 10
	maxMemtableBytesLimit = 1 << 30
)

// Params are the LSM-tree's parameters; see the package doc for their
// trade-offs.
type Params struct {
	// MaxRunsPerLevel (max_runs_per_level) is the most runs a level holds at
	// rest; when a level holds more, its runs are merged into one run at the
	// next level. 1 gives leveled-like behaviour (one run per level). Range
	// 1..1000. Default: 10.
	MaxRunsPerLevel int
	// DensityFactor (density_factor) keeps one fence pointer in memory for
	// every DensityFactor-th record of a run. Range 1..1000000. Default: 16.
	DensityFactor int
	// MemtableBytesLimit (memtable_bytes_limit) is the framed size of the
	// records the memtable holds before it is frozen and flushed. Range
	// 1 KiB..1 GiB. Default: 4 MiB.
	MemtableBytesLimit int64
}

// DefaultParams returns the default parameters.
func DefaultParams() Params {
	return Params{MaxRunsPerLevel: 10, DensityFactor: 16, MemtableBytesLimit: 4 << 20}
}

// ParseParams reads p (snake_case names), fills defaults for absent names,
// checks ranges and refuses unknown names. The error is an
// *engines.ParamError for a bad value.
func ParseParams(p engines.Params) (Params, error) {
	d := DefaultParams()
	pp := engines.NewParamParser(Kind, p)
	out := Params{
		MaxRunsPerLevel:    int(pp.Int(ParamMaxRunsPerLevel, int64(d.MaxRunsPerLevel), minMaxRunsPerLevel, maxMaxRunsPerLevel)),
		DensityFactor:      int(pp.Int(ParamDensityFactor, int64(d.DensityFactor), minDensityFactor, maxDensityFactor)),
		MemtableBytesLimit: pp.Size(ParamMemtableBytesLimit, d.MemtableBytesLimit, minMemtableBytesLimit, maxMemtableBytesLimit),
	}
	if err := pp.Err(); err != nil {
		return Params{}, err
	}
	return out, nil
}

// Map returns every parameter as a canonical decimal string; ParseParams of
// the result gives p back.
func (p Params) Map() engines.Params {
	return engines.Params{
		ParamMaxRunsPerLevel:    strconv.Itoa(p.MaxRunsPerLevel),
		ParamDensityFactor:      strconv.Itoa(p.DensityFactor),
		ParamMemtableBytesLimit: strconv.FormatInt(p.MemtableBytesLimit, 10),
	}
}

// validate checks a Params built in Go (not parsed), so Open refuses bad
// values with the same errors ParseParams gives.
func (p Params) validate() error {
	_, err := ParseParams(p.Map())
	return err
}
