package engines

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Params are an engine's parameters as strings, keyed by the thesis's
// snake_case names (for example "max_runs_per_level"). They travel through the
// CLI and the manifest in this form; each engine parses them into its own
// typed struct.
type Params map[string]string

// ParamError reports a bad engine parameter: its name, the value given and
// the valid range.
type ParamError struct {
	Engine string
	Name   string
	Value  string
	Want   string // e.g. "an integer in 1..1000" or "greater than ro_lag_interval + flush_interval (2097152)"
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("%s: parameter %s=%q is invalid: want %s", e.Engine, e.Name, e.Value, e.Want)
}

// ParamParser reads typed values out of Params, remembering the first error
// and which names were consumed so that unknown names can be refused.
type ParamParser struct {
	engine string
	p      Params
	used   map[string]bool
	err    error
}

// NewParamParser starts parsing p for the named engine.
func NewParamParser(engine string, p Params) *ParamParser {
	return &ParamParser{engine: engine, p: p, used: map[string]bool{}}
}

// Int reads an integer parameter in [min, max], returning def when absent.
func (pp *ParamParser) Int(name string, def, min, max int64) int64 {
	pp.used[name] = true
	s, ok := pp.p[name]
	if !ok || pp.err != nil {
		return def
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v < min || v > max {
		pp.err = &ParamError{Engine: pp.engine, Name: name, Value: s, Want: fmt.Sprintf("an integer in %d..%d", min, max)}
		return def
	}
	return v
}

// Size reads a byte size in [min, max]: an integer with an optional suffix K,
// M or G (powers of 1024, case-insensitive, optional trailing "iB" or "B").
func (pp *ParamParser) Size(name string, def, min, max int64) int64 {
	pp.used[name] = true
	s, ok := pp.p[name]
	if !ok || pp.err != nil {
		return def
	}
	v, err := ParseSize(s)
	if err != nil || v < min || v > max {
		pp.err = &ParamError{Engine: pp.engine, Name: name, Value: s, Want: fmt.Sprintf("a size in %d..%d bytes (suffixes K, M, G allowed)", min, max)}
		return def
	}
	return v
}

// Bool reads a boolean parameter (true/false, on/off, 1/0, yes/no).
func (pp *ParamParser) Bool(name string, def bool) bool {
	pp.used[name] = true
	s, ok := pp.p[name]
	if !ok || pp.err != nil {
		return def
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "on", "1", "yes":
		return true
	case "false", "off", "0", "no":
		return false
	}
	pp.err = &ParamError{Engine: pp.engine, Name: name, Value: s, Want: "true or false"}
	return def
}

// Fail records a cross-field error (the first error wins).
func (pp *ParamParser) Fail(name string, value any, want string) {
	if pp.err == nil {
		pp.err = &ParamError{Engine: pp.engine, Name: name, Value: fmt.Sprint(value), Want: want}
	}
}

// Err returns the first error, or an error naming an unknown parameter and
// listing the known ones.
func (pp *ParamParser) Err() error {
	if pp.err != nil {
		return pp.err
	}
	var unknown, known []string
	for k := range pp.p {
		if !pp.used[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	for k := range pp.used {
		known = append(known, k)
	}
	sort.Strings(unknown)
	sort.Strings(known)
	return fmt.Errorf("%s: unknown parameter %q: known parameters are %s", pp.engine, unknown[0], strings.Join(known, ", "))
}

// ParseSize parses "4096", "64K", "16M", "1G", "16MiB", "16MB" (powers of 1024).
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "IB")
	t = strings.TrimSuffix(t, "B")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult, t = 1<<10, t[:n-1]
		case 'M':
			mult, t = 1<<20, t[:n-1]
		case 'G':
			mult, t = 1<<30, t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return v * mult, nil
}
