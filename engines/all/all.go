// Package all opens any tierkv engine by its kind name, so that the tiered
// store, the CLI and the bench can choose an engine from a string (the
// manifest's engine kind, the --engine flag) with its parameters as strings.
//
// # Basics
//
// Kinds lists the engines compiled in: appendlog, hybridlog, lsm and memonly.
// Open parses the parameters of the kind (thesis names in snake_case, for
// example "max_runs_per_level"), filling defaults for absent ones, and opens
// the engine. CanonicalParams returns the complete parameter set in canonical
// form (every parameter, decimal strings), which is what a manifest records
// so that a restore opens the engine exactly as it was written.
// DefaultParams gives that form for the defaults. Describe lists every kind
// with its help text and parameters (name, help, unit), so that front ends
// such as the CLI build their flags and help from the registry instead of
// keeping a copy.
//
// # Concurrency
//
// Every function is safe for concurrent use; the registry is fixed at
// compile time.
package all

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/engines/appendlog"
	"github.com/tierkv/tierkv/engines/hybridlog"
	"github.com/tierkv/tierkv/engines/lsm"
	"github.com/tierkv/tierkv/engines/memonly"
)

// ErrUnknownKind is matched (errors.Is) by the error for an engine kind that
// is not compiled in; its message lists the valid kinds.
var ErrUnknownKind = errors.New("engines: unknown engine kind")

// ErrUnknownParam is matched (errors.Is) by the error for a parameter name
// the engine kind does not take; its message lists the ones it takes.
var ErrUnknownParam = errors.New("engines: unknown engine parameter")

// Unit says how a parameter's value is written.
type Unit string

// The units of engine parameters.
const (
	// UnitSize is a byte size: an integer with an optional suffix K, M or G
	// (powers of 1024), as engines.ParseSize reads it.
	UnitSize Unit = "size"
	// UnitCount is a plain decimal integer.
	UnitCount Unit = "count"
	// UnitBool is true or false.
	UnitBool Unit = "bool"
)

// ParamInfo describes one engine parameter.
type ParamInfo struct {
	// Name is the thesis's snake_case name, e.g. "max_runs_per_level".
	Name string
	// Help says what the parameter sets, in a few words.
	Help string
	// Unit says how the value is written.
	Unit Unit
}

// KindInfo describes one engine kind.
type KindInfo struct {
	// Name is the kind, as Open and the manifest spell it.
	Name string
	// Help says what the engine is, in one line.
	Help string
	// Params are the parameters the kind takes, in the order the engine
	// documents them.
	Params []ParamInfo
}

// paramInfo describes every parameter once; kinds taking the same name share
// its meaning.
var paramInfo = map[string]ParamInfo{
	"max_runs_per_level":   {Help: "runs per level before a merge", Unit: UnitCount},
	"density_factor":       {Help: "records between fence pointers", Unit: UnitCount},
	"memtable_bytes_limit": {Help: "memtable size before a flush", Unit: UnitSize},
	"mem_segment_len":      {Help: "in-memory segment size", Unit: UnitSize},
	"ro_lag_interval":      {Help: "read-only region size", Unit: UnitSize},
	"flush_interval":       {Help: "flush region size", Unit: UnitSize},
	"threshold":            {Help: "size of a run before the next one starts", Unit: UnitSize},
	"compaction":           {Help: "compact runs while merging", Unit: UnitBool},
}

// kind is one registered engine, with its typed parameters erased.
type kind struct {
	help      string
	params    []string // names, keys of paramInfo
	open      func(o engines.OpenOptions, p engines.Params) (engines.Engine, error)
	canonical func(p engines.Params) (engines.Params, error)
	defaults  func() engines.Params
}

// describe sets the kind's help text and parameter names.
func (k kind) describe(help string, params ...string) kind {
	k.help, k.params = help, params
	return k
}

// params is what every engine's Params type provides.
type params interface{ Map() engines.Params }

// register erases the parameter and DB types of one engine package.
func register[P params, E engines.Engine](
	parse func(engines.Params) (P, error),
	defaults func() P,
	open func(engines.OpenOptions, P) (E, error),
) kind {
	return kind{
		open: func(o engines.OpenOptions, p engines.Params) (engines.Engine, error) {
			tp, err := parse(p)
			if err != nil {
				return nil, err
			}
			e, err := open(o, tp)
			if err != nil {
				return nil, err // never a typed nil in the interface
			}
			return e, nil
		},
		canonical: func(p engines.Params) (engines.Params, error) {
			tp, err := parse(p)
			if err != nil {
				return nil, err
			}
			return tp.Map(), nil
		},
		defaults: func() engines.Params { return defaults().Map() },
	}
}

var registry = map[string]kind{
	appendlog.Kind: register(appendlog.ParseParams, appendlog.DefaultParams, appendlog.Open).
		describe("Bitcask-like: a hash index over append-only logs",
			"threshold", "max_runs_per_level", "compaction"),
	hybridlog.Kind: register(hybridlog.ParseParams, hybridlog.DefaultParams, hybridlog.Open).
		describe("FASTER's hybrid log: a hash index over an in-memory and on-disk log",
			"mem_segment_len", "ro_lag_interval", "flush_interval", "max_runs_per_level"),
	lsm.Kind: register(lsm.ParseParams, lsm.DefaultParams, lsm.Open).
		describe("log-structured merge tree: memtable, sorted runs, tiered merging",
			"max_runs_per_level", "density_factor", "memtable_bytes_limit"),
	memonly.Kind: register(memonly.ParseParams, memonly.DefaultParams, memonly.Open).
		describe("baseline: a map in memory, dumped whole at every snapshot"),
}

// Describe returns every kind compiled in, sorted by name, with its help
// text and parameters.
func Describe() []KindInfo {
	out := make([]KindInfo, 0, len(registry))
	for _, name := range Kinds() {
		k := registry[name]
		ki := KindInfo{Name: name, Help: k.help, Params: make([]ParamInfo, len(k.params))}
		for i, p := range k.params {
			ki.Params[i] = paramInfo[p]
			ki.Params[i].Name = p
		}
		out = append(out, ki)
	}
	return out
}

// Kinds returns the kinds of the engines compiled in, sorted.
func Kinds() []string {
	ks := make([]string, 0, len(registry))
	for k := range registry {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// lookup returns the kind name, checking that it takes every parameter of
// params.
func lookup(name string, params engines.Params) (kind, error) {
	k, ok := registry[name]
	if !ok {
		return kind{}, fmt.Errorf("%w %q: valid kinds are %s", ErrUnknownKind, name, strings.Join(Kinds(), ", "))
	}
	var unknown []string
	for p := range params {
		if !slices.Contains(k.params, p) {
			unknown = append(unknown, p)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		takes := "no parameters"
		if len(k.params) > 0 {
			takes = strings.Join(k.params, ", ")
		}
		return kind{}, fmt.Errorf("%w %q for engine %s: it takes %s", ErrUnknownParam, unknown[0], name, takes)
	}
	return k, nil
}

// Open parses params for the engine kind (absent names take their defaults;
// nil means all defaults) and opens the engine with o. A bad parameter is
// reported as a *engines.ParamError or an error wrapping ErrUnknownParam
// before anything is opened; an unknown kind wraps ErrUnknownKind.
func Open(kind string, params engines.Params, o engines.OpenOptions) (engines.Engine, error) {
	k, err := lookup(kind, params)
	if err != nil {
		return nil, err
	}
	return k.open(o, params)
}

// CanonicalParams parses params for the engine kind and returns every
// parameter of the kind in canonical form (defaults filled in, decimal
// strings). The result round-trips: CanonicalParams(kind, result) equals it.
func CanonicalParams(kind string, params engines.Params) (engines.Params, error) {
	k, err := lookup(kind, params)
	if err != nil {
		return nil, err
	}
	return k.canonical(params)
}

// DefaultParams returns the default parameters of the engine kind in
// canonical form, or nil for an unknown kind.
func DefaultParams(kind string) engines.Params {
	k, ok := registry[kind]
	if !ok {
		return nil
	}
	return k.defaults()
}
