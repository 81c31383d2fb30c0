package hybridlog

import (
	"fmt"
	"strconv"

	"github.com/tierkv/tierkv/engines"
)

// Kind is the engine kind recorded in checkpoints and manifests.
const Kind = "hybridlog"

// Parameter names, as in the thesis (snake_case on the wire).
const (
	ParamMemSegmentLen   = "mem_segment_len"
	ParamROLagInterval   = "ro_lag_interval"
	ParamFlushInterval   = "flush_interval"
	ParamMaxRunsPerLevel = "max_runs_per_level"
)

// Limits of the parameters.
const (
	minMemSegmentLen = 256
	maxSegmentBytes  = 1 << 40
	minFlushInterval = 64
	minRunsPerLevel  = 2
	maxRunsPerLevel  = 1000
)

// Params are the HybridLog parameters. All sizes are in bytes of the log
// (framed records, see engines.RecordSize). The in-memory window of the log is
// mem_segment_len bytes; its newest mem_segment_len - ro_lag_interval -
// flush_interval bytes are the mutable region, the rest is read-only. See the
// package documentation for the exact life of a record.
type Params struct {
	// MemSegmentLen (mem_segment_len) is the size of the in-memory window of
	// the log: the ring buffer holding the newest records. Reads of records in
	// the window are served from memory. It must exceed ROLagInterval +
	// FlushInterval; the difference is the mutable region, where records are
	// updated in place. Default: 64 MiB.
	MemSegmentLen int64
	// ROLagInterval (ro_lag_interval) is the size of the read-only region kept
	// in memory behind the flush segment: records already written to a run
	// but still served from memory. It is also the headroom writers append
	// into while a flush segment is being written. Default: 8 MiB.
	ROLagInterval int64
	// FlushInterval (flush_interval) is the size of the flush segment: as soon
	// as that many read-only bytes are not yet on disk they are written, in
	// one sequential write, as one run. Default: 8 MiB.
	FlushInterval int64
	// MaxRunsPerLevel (max_runs_per_level) is the number of runs a level
	// collects before they are merged into one run of the next level.
	// Default: 10.
	MaxRunsPerLevel int
}

// DefaultParams returns the default parameters.
func DefaultParams() Params {
	return Params{
		MemSegmentLen:   64 << 20,
		ROLagInterval:   8 << 20,
		FlushInterval:   8 << 20,
		MaxRunsPerLevel: 10,
	}
}

// ParseParams reads p (snake_case names, decimal or K/M/G-suffixed sizes),
// fills defaults for absent names, checks ranges and the rule mem_segment_len
// > ro_lag_interval + flush_interval, and refuses unknown names.
func ParseParams(p engines.Params) (Params, error) {
	d := DefaultParams()
	pp := engines.NewParamParser(Kind, p)
	var out Params
	out.MemSegmentLen = pp.Size(ParamMemSegmentLen, d.MemSegmentLen, minMemSegmentLen, maxSegmentBytes)
	out.ROLagInterval = pp.Size(ParamROLagInterval, d.ROLagInterval, 0, maxSegmentBytes)
	out.FlushInterval = pp.Size(ParamFlushInterval, d.FlushInterval, minFlushInterval, maxSegmentBytes)
	out.MaxRunsPerLevel = int(pp.Int(ParamMaxRunsPerLevel, int64(d.MaxRunsPerLevel), minRunsPerLevel, maxRunsPerLevel))
	if sum := out.ROLagInterval + out.FlushInterval; out.MemSegmentLen <= sum {
		pp.Fail(ParamMemSegmentLen, out.MemSegmentLen,
			fmt.Sprintf("greater than ro_lag_interval + flush_interval (%d)", sum))
	}
	if err := pp.Err(); err != nil {
		return Params{}, err
	}
	return out, nil
}

// Validate checks p as ParseParams would.
func (p Params) Validate() error {
	_, err := ParseParams(p.Map())
	return err
}

// Map returns every parameter as a canonical decimal string; it round-trips
// through ParseParams.
func (p Params) Map() engines.Params {
	return engines.Params{
		ParamMemSegmentLen:   strconv.FormatInt(p.MemSegmentLen, 10),
		ParamROLagInterval:   strconv.FormatInt(p.ROLagInterval, 10),
		ParamFlushInterval:   strconv.FormatInt(p.FlushInterval, 10),
		ParamMaxRunsPerLevel: strconv.Itoa(p.MaxRunsPerLevel),
	}
}

// mutableLen is the size of the mutable region.
func (p Params) mutableLen() int64 { return p.MemSegmentLen - p.ROLagInterval - p.FlushInterval }
