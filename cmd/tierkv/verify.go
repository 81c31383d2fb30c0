package main

import (
	"fmt"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/tiered"
	"github.com/urfave/cli/v2"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "check that versions are complete and intact in the remote",
		Description: "Checks the latest version (or --version N, or --all): the manifest decodes and its\n" +
			"checksum matches, and every run it names exists with the recorded size. --deep also\n" +
			"downloads every run and checks its CRC-32C. Prints one line per problem and exits\n" +
			"with status 1 if there is any. Read-only.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "version", Usage: "`VERSION` to check, or latest (the default)"},
			&cli.BoolFlag{Name: "all", Usage: "check every version"},
			&cli.BoolFlag{Name: "deep", Usage: "download every run and check its CRC-32C"},
		},
		Action: runVerify,
	}
}

// problemJSON is one problem in the output of "tierkv verify --json".
type problemJSON struct {
	Version uint64 `json:"version"`
	Object  string `json:"object"`
	Detail  string `json:"detail"`
}

// verifyJSON is the output of "tierkv verify --json".
type verifyJSON struct {
	Versions []uint64      `json:"versions"`
	Deep     bool          `json:"deep"`
	OK       bool          `json:"ok"`
	Problems []problemJSON `json:"problems"`
}

func runVerify(c *cli.Context) (err error) {
	if c.NArg() > 0 {
		return usagef("verify takes no arguments, got %q: use --version N or --all", c.Args().First())
	}
	if c.IsSet("version") && c.Bool("all") {
		return usagef("--version and --all exclude each other")
	}
	v, err := parseVersionArg(c.String("version"))
	if err != nil {
		return err
	}
	g, st, err := remoteCommand(c)
	if err != nil {
		return err
	}
	defer closeRemote(st, &err)

	all, err := manifest.ListVersions(c.Context, st)
	if err != nil {
		return fmt.Errorf("list versions: %w", err)
	}
	var versions []uint64
	switch {
	case c.Bool("all"):
		versions = all
	case v != 0:
		versions = []uint64{v}
	case len(all) == 0:
		return fmt.Errorf("verify latest version: %w", manifest.ErrNoVersions)
	default:
		versions = []uint64{all[len(all)-1]}
	}
	deep := c.Bool("deep")
	var problems []tiered.Problem
	if len(versions) > 0 {
		problems, err = tiered.Verify(c.Context, st, versions, deep)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	}
	out := verifyJSON{Versions: versions, Deep: deep, OK: len(problems) == 0, Problems: []problemJSON{}}
	if out.Versions == nil {
		out.Versions = []uint64{}
	}
	for _, p := range problems {
		out.Problems = append(out.Problems, problemJSON{Version: p.Version, Object: p.Object, Detail: p.Detail})
	}
	if g.json {
		if err := writeJSON(c.App.Writer, out); err != nil {
			return err
		}
	} else {
		for _, p := range problems {
			fmt.Fprintf(c.App.Writer, "version %d: %s: %s\n", p.Version, p.Object, p.Detail)
		}
	}
	kind := "shallow"
	if deep {
		kind = "deep"
	}
	if len(problems) > 0 {
		return &exitError{code: exitFailure, err: withHint(
			fmt.Errorf("verify (%s) found %d problems in %d versions", kind, len(problems), len(versions)),
			"restore an intact version, or re-upload the damaged runs from a writer that still has them")}
	}
	if !g.json {
		fmt.Fprintf(c.App.Writer, "ok: %d versions verified (%s)\n", len(versions), kind)
	}
	return nil
}
