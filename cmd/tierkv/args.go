package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// normalizeArgs rewrites a command line so that urfave/cli, which stops
// parsing flags at the first argument, sees every flag where it looks:
//
//   - global flags given after the command name move before it, so that
//     they are defined once, on the application, and shown once, in
//     'tierkv --help';
//   - the command's own flags given after its arguments move before them
//     ('tierkv show 2 --json', 'tierkv get KEY --dir D').
//
// Arguments keep their order. After "--" everything is an argument. A token
// after the first argument that starts with "-" but names no flag stays an
// argument, so that values such as "-5" need no "--". An unknown command is
// left to the application to report.
func normalizeArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	global := flagTable(app.Flags)
	out := []string{args[0]}
	i := 1
	for i < len(args) && isFlagToken(args[i]) { // global flags before the command
		n := flagLen(global, args[i:])
		out = append(out, args[i:i+n]...)
		i += n
	}
	if i >= len(args) || args[i] == "--" {
		return append(out, args[i:]...)
	}
	cmd := app.Command(args[i])
	if cmd == nil {
		return append(out, args[i:]...)
	}
	local := flagTable(cmd.Flags)
	local["help"], local["h"] = false, false
	var globals, flags, positional []string
	dashdash := false
	rest := args[i+1:]
	for j := 0; j < len(rest); {
		a := rest[j]
		if a == "--" {
			dashdash = true
			positional = append(positional, rest[j+1:]...)
			break
		}
		if !isFlagToken(a) {
			positional = append(positional, a)
			j++
			continue
		}
		name := flagName(a)
		_, isLocal := local[name]
		_, isGlobal := global[name]
		switch {
		case isLocal:
			n := flagLen(local, rest[j:])
			flags = append(flags, rest[j:j+n]...)
			j += n
		case isGlobal:
			n := flagLen(global, rest[j:])
			globals = append(globals, rest[j:j+n]...)
			j += n
		case len(positional) == 0:
			flags = append(flags, a) // unknown: the command reports it
			j++
		default:
			positional = append(positional, a)
			j++
		}
	}
	out = append(out, globals...)
	out = append(out, args[i])
	out = append(out, flags...)
	if dashdash {
		out = append(out, "--")
	}
	return append(out, positional...)
}

// flagTable maps every name and alias of fs to whether the flag takes a
// value.
func flagTable(fs []cli.Flag) map[string]bool {
	t := make(map[string]bool)
	for _, f := range fs {
		takes := false
		if d, ok := f.(cli.DocGenerationFlag); ok {
			takes = d.TakesValue()
		}
		for _, n := range f.Names() {
			t[n] = takes
		}
	}
	return t
}

// isFlagToken reports whether a looks like a flag ("-x", "--name[=v]").
func isFlagToken(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" }

// flagName returns the name in a flag token: "--dir=x" -> "dir".
func flagName(a string) string {
	name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
	return name
}

// flagLen returns how many tokens the flag at toks[0] spans: two when it
// takes a value given as the next token, else one.
func flagLen(table map[string]bool, toks []string) int {
	if table[flagName(toks[0])] && !strings.Contains(toks[0], "=") && len(toks) > 1 {
		return 2
	}
	return 1
}
