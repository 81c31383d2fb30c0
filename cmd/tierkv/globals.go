package main

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/tierkv/tierkv/engines"
	"github.com/urfave/cli/v2"
)

// Help sections of the global options.
const (
	globalCategory = "Global"
	engineCategory = "Engine parameters (thesis names; only the ones given are passed)"
)

// engineNames are the values --engine accepts.
var engineNames = []string{"lsm", "hybridlog", "appendlog", "memonly"}

// paramFlag maps a CLI flag to the engine parameter (thesis name) it sets.
type paramFlag struct {
	flag    string // e.g. "max-runs-per-level"
	param   string // e.g. "max_runs_per_level"
	usage   string
	boolean bool
}

// paramFlags are the engine parameters, named as in the thesis.
var paramFlags = []paramFlag{
	{flag: "max-runs-per-level", param: "max_runs_per_level", usage: "lsm, hybridlog, appendlog: `N` runs per level before a merge"},
	{flag: "density-factor", param: "density_factor", usage: "lsm: `N` records between fence pointers"},
	{flag: "memtable-bytes-limit", param: "memtable_bytes_limit", usage: "lsm: memtable `SIZE` before a flush (e.g. 100K)"},
	{flag: "mem-segment-len", param: "mem_segment_len", usage: "hybridlog: in-memory segment `SIZE` (e.g. 210K)"},
	{flag: "ro-lag-interval", param: "ro_lag_interval", usage: "hybridlog: read-only region `SIZE`"},
	{flag: "flush-interval", param: "flush_interval", usage: "hybridlog: flush region `SIZE`"},
	{flag: "threshold", param: "threshold", usage: "appendlog: `SIZE` of a run before the next one starts"},
	{flag: "compaction", param: "compaction", usage: "appendlog: compact runs while merging", boolean: true},
}

// engineParams lists the parameters each engine takes (DESIGN.md).
var engineParams = map[string][]string{
	"lsm":       {"max_runs_per_level", "density_factor", "memtable_bytes_limit"},
	"hybridlog": {"mem_segment_len", "ro_lag_interval", "flush_interval", "max_runs_per_level"},
	"appendlog": {"threshold", "max_runs_per_level", "compaction"},
	"memonly":   {},
}

// globalFlags returns fresh instances of the global flags. They are attached
// to the application and to every command, so that they may be given on
// either side of the command name.
func globalFlags() []cli.Flag {
	fs := []cli.Flag{
		&cli.StringFlag{Name: "remote", Usage: "object-store `URL` of the store (file://, s3://, minio://)", EnvVars: []string{"TIERKV_REMOTE"}, Category: globalCategory},
		&cli.StringFlag{Name: "dir", Usage: "local store directory `PATH`", EnvVars: []string{"TIERKV_DIR"}, Category: globalCategory},
		&cli.StringFlag{Name: "engine", Usage: "engine `KIND`: " + strings.Join(engineNames, ", ") + " (default: the recorded one; lsm for a new store)", Category: globalCategory},
		&cli.BoolFlag{Name: "json", Usage: "print JSON instead of tables", Category: globalCategory},
		&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "log `LEVEL` on stderr: debug, info, warn, error", Category: globalCategory},
	}
	for _, p := range paramFlags {
		if p.boolean {
			fs = append(fs, &cli.BoolFlag{Name: p.flag, Usage: p.usage, Category: engineCategory})
		} else {
			fs = append(fs, &cli.StringFlag{Name: p.flag, Usage: p.usage, Category: engineCategory})
		}
	}
	return fs
}

// globals are the global options of one invocation.
type globals struct {
	remote string
	dir    string
	engine string // "" = tiered's default
	// params holds only the parameters the user set; nil when none was, so
	// that a reopened store keeps its recorded parameters.
	params engines.Params
	json   bool
	logger *slog.Logger
}

// setIn returns the context of c's lineage in which the flag name was set
// (on the command line or from its environment variable), or nil.
func setIn(c *cli.Context, name string) *cli.Context {
	for _, x := range c.Lineage() {
		if x.IsSet(name) {
			return x
		}
	}
	return nil
}

func globalString(c *cli.Context, name string) string {
	if x := setIn(c, name); x != nil {
		return x.String(name)
	}
	return ""
}

func globalBool(c *cli.Context, name string) bool {
	if x := setIn(c, name); x != nil {
		return x.Bool(name)
	}
	return false
}

// loadGlobals reads and checks the global options.
func loadGlobals(c *cli.Context) (*globals, error) {
	g := &globals{
		remote: globalString(c, "remote"),
		dir:    globalString(c, "dir"),
		engine: globalString(c, "engine"),
		json:   globalBool(c, "json"),
	}
	if g.engine != "" {
		if _, ok := engineParams[g.engine]; !ok {
			return nil, usagef("unknown engine %q: use one of %s", g.engine, strings.Join(engineNames, ", "))
		}
	}
	for _, p := range paramFlags {
		if setIn(c, p.flag) == nil {
			continue
		}
		if g.params == nil {
			g.params = engines.Params{}
		}
		if p.boolean {
			g.params[p.param] = fmt.Sprint(globalBool(c, p.flag))
		} else {
			g.params[p.param] = globalString(c, p.flag)
		}
	}
	if err := checkParamsFor(g.engine, g.params); err != nil {
		return nil, err
	}
	level := globalString(c, "log-level")
	if level == "" {
		level = "warn"
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("invalid --log-level %q: use debug, info, warn or error", level)
	}
	g.logger = slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: lv}))
	return g, nil
}

// checkParamsFor refuses parameters that the chosen engine does not take.
// With no engine chosen the engine itself checks them when the store opens.
func checkParamsFor(engine string, params engines.Params) error {
	if engine == "" || len(params) == 0 {
		return nil
	}
	known := engineParams[engine]
	var bad []string
	for name := range params {
		ok := false
		for _, k := range known {
			ok = ok || k == name
		}
		if !ok {
			bad = append(bad, "--"+strings.ReplaceAll(name, "_", "-"))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	takes := "no parameters"
	if len(known) > 0 {
		fl := make([]string, len(known))
		for i, k := range known {
			fl[i] = "--" + strings.ReplaceAll(k, "_", "-")
		}
		takes = strings.Join(fl, ", ")
	}
	return usagef("%s does not apply to engine %s: it takes %s", strings.Join(bad, ", "), engine, takes)
}

// paramArgs renders params back into command-line flags (for the demo's
// child process).
func paramArgs(params engines.Params) []string {
	var out []string
	for _, p := range paramFlags {
		if v, ok := params[p.param]; ok {
			out = append(out, "--"+p.flag+"="+v)
		}
	}
	return out
}

// requireRemote returns errNoRemote when no remote was given.
func (g *globals) requireRemote() error {
	if g.remote == "" {
		return errNoRemote
	}
	return nil
}

// requireDir returns errNoDir when no directory was given.
func (g *globals) requireDir() error {
	if g.dir == "" {
		return errNoDir
	}
	return nil
}
