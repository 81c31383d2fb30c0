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
// DefaultParams gives that form for the defaults.
//
// # Concurrency
//
// Every function is safe for concurrent use; the registry is fixed at
// compile time.
package all

import (
	"errors"
	"fmt"
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

// kind is one registered engine, with its typed parameters erased.
type kind struct {
	open      func(o engines.OpenOptions, p engines.Params) (engines.Engine, error)
	canonical func(p engines.Params) (engines.Params, error)
	defaults  func() engines.Params
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
	appendlog.Kind: register(appendlog.ParseParams, appendlog.DefaultParams, appendlog.Open),
	hybridlog.Kind: register(hybridlog.ParseParams, hybridlog.DefaultParams, hybridlog.Open),
	lsm.Kind:       register(lsm.ParseParams, lsm.DefaultParams, lsm.Open),
	memonly.Kind:   register(memonly.ParseParams, memonly.DefaultParams, memonly.Open),
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

func lookup(name string) (kind, error) {
	k, ok := registry[name]
	if !ok {
		return kind{}, fmt.Errorf("%w %q: valid kinds are %s", ErrUnknownKind, name, strings.Join(Kinds(), ", "))
	}
	return k, nil
}

// Open parses params for the engine kind (absent names take their defaults;
// nil means all defaults) and opens the engine with o. A bad parameter is
// reported as a *engines.ParamError or an unknown-parameter error before
// anything is opened; an unknown kind wraps ErrUnknownKind.
func Open(kind string, params engines.Params, o engines.OpenOptions) (engines.Engine, error) {
	k, err := lookup(kind)
	if err != nil {
		return nil, err
	}
	return k.open(o, params)
}

// CanonicalParams parses params for the engine kind and returns every
// parameter of the kind in canonical form (defaults filled in, decimal
// strings). The result round-trips: CanonicalParams(kind, result) equals it.
func CanonicalParams(kind string, params engines.Params) (engines.Params, error) {
	k, err := lookup(kind)
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
