package main

import (
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/engines/all"
	"github.com/urfave/cli/v2"
)

// Help sections of the global options.
const (
	globalCategory = "Global"
	engineCategory = "Engine parameters (thesis names; only the ones given are passed)"
)

// paramFlag is the flag that sets one engine parameter, derived from the
// registry of package engines/all.
type paramFlag struct {
	flag    string // e.g. "max-runs-per-level"
	param   string // e.g. "max_runs_per_level"
	usage   string // e.g. "lsm, hybridlog, appendlog: runs per level before a merge, an integer `N`"
	boolean bool
}

// flagOf returns the flag name of an engine parameter: the thesis's
// snake_case name in kebab-case.
func flagOf(param string) string { return strings.ReplaceAll(param, "_", "-") }

// paramFlags returns one flag per engine parameter, in the order the
// registry lists kinds and their parameters; a parameter several kinds take
// is one flag naming them all.
func paramFlags() []paramFlag {
	var order []string
	info := map[string]all.ParamInfo{}
	kinds := map[string][]string{}
	for _, k := range all.Describe() {
		for _, p := range k.Params {
			if _, seen := info[p.Name]; !seen {
				order = append(order, p.Name)
				info[p.Name] = p
			}
			kinds[p.Name] = append(kinds[p.Name], k.Name)
		}
	}
	out := make([]paramFlag, len(order))
	for i, name := range order {
		p := info[name]
		usage := strings.Join(kinds[name], ", ") + ": " + p.Help
		switch p.Unit {
		case all.UnitSize:
			usage += ", a `SIZE` such as 64K"
		case all.UnitCount:
			usage += ", an integer `N`"
		}
		out[i] = paramFlag{flag: flagOf(name), param: name, usage: usage, boolean: p.Unit == all.UnitBool}
	}
	return out
}

// engineKinds describes the engine kinds for the application's help.
func engineKinds() string {
	var b strings.Builder
	b.WriteString("Engines (--engine):")
	for _, k := range all.Describe() {
		fmt.Fprintf(&b, "\n  %-10s %s", k.Name, k.Help)
	}
	return b.String()
}

// globalFlags returns the global flags. They belong to the application;
// normalizeArgs moves the ones given after the command name before it, so
// that they are shown once, in 'tierkv --help'.
func globalFlags() []cli.Flag {
	fs := []cli.Flag{
		&cli.StringFlag{Name: "remote", Usage: "object-store `URL` of the store (file://, s3://, minio://)", EnvVars: []string{"TIERKV_REMOTE"}, Category: globalCategory},
		&cli.StringFlag{Name: "dir", Usage: "local store directory `PATH`", EnvVars: []string{"TIERKV_DIR"}, Category: globalCategory},
		&cli.StringFlag{Name: "engine", Usage: "engine `KIND`: " + strings.Join(all.Kinds(), ", ") + " (default: the recorded one, from --dir or else the remote's latest version; lsm for a new store)", Category: globalCategory},
		&cli.BoolFlag{Name: "json", Usage: "print JSON instead of tables", Category: globalCategory},
		&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "log `LEVEL` on stderr: debug, info, warn, error", Category: globalCategory},
	}
	for _, p := range paramFlags() {
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
	if g.engine != "" && !slices.Contains(all.Kinds(), g.engine) {
		return nil, usagef("unknown engine %q: use one of %s", g.engine, strings.Join(all.Kinds(), ", "))
	}
	for _, p := range paramFlags() {
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
	var known []string
	for _, k := range all.Describe() {
		if k.Name == engine {
			for _, p := range k.Params {
				known = append(known, p.Name)
			}
		}
	}
	var bad []string
	for name := range params {
		if !slices.Contains(known, name) {
			bad = append(bad, "--"+flagOf(name))
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
			fl[i] = "--" + flagOf(k)
		}
		takes = strings.Join(fl, ", ")
	}
	return usagef("%s does not apply to engine %s: it takes %s", strings.Join(bad, ", "), engine, takes)
}

// paramArgs renders params back into command-line flags (for the demo's
// child process).
func paramArgs(params engines.Params) []string {
	var out []string
	for _, p := range paramFlags() {
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
