package main

import (
	"fmt"

	"github.com/tierkv/tierkv/tiered"
	"github.com/urfave/cli/v2"
)

func forgetCommand() *cli.Command {
	return &cli.Command{
		Name:  "forget",
		Usage: "delete old manifests by a retention policy",
		Description: "Deletes the manifests of the versions the policy does not keep. A version is kept\n" +
			"if any rule keeps it: among the last N (--keep-last), created within DURATION of now\n" +
			"(--keep-within, e.g. 36h, 7d, 2w), or pinned (--pin). The latest version is always\n" +
			"kept. Runs are not deleted: run 'tierkv gc' afterwards to free their space.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "keep-last", Usage: "keep the last `N` versions"},
			&cli.StringFlag{Name: "keep-within", Usage: "keep versions created within `DURATION`"},
			&cli.Uint64SliceFlag{Name: "pin", Usage: "always keep `VERSION` (repeatable)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would be forgotten, delete nothing"},
		},
		Action: runForget,
	}
}

// forgetJSON is the output of "tierkv forget --json".
type forgetJSON struct {
	DryRun    bool     `json:"dry_run"`
	Forgotten []uint64 `json:"forgotten"`
}

func runForget(c *cli.Context) (err error) {
	if c.NArg() > 0 {
		return usagef("forget takes no arguments, got %q", c.Args().First())
	}
	var p tiered.Policy
	if c.IsSet("keep-last") {
		p.KeepLast = c.Int("keep-last")
		if p.KeepLast < 1 {
			return usagef("invalid --keep-last %d: want 1 or more (the latest version is always kept)", p.KeepLast)
		}
	}
	if c.IsSet("keep-within") {
		if p.KeepWithin, err = parseDuration("keep-within", c.String("keep-within")); err != nil {
			return err
		}
	}
	if p.KeepLast == 0 && p.KeepWithin == 0 {
		return usagef("forget needs a policy: pass --keep-last N and/or --keep-within DURATION")
	}
	for _, v := range c.Uint64Slice("pin") {
		if v == 0 {
			return usagef("invalid --pin 0: versions start at 1")
		}
		p.Pins = append(p.Pins, v)
	}
	g, st, err := remoteCommand(c)
	if err != nil {
		return err
	}
	defer closeRemote(st, &err)

	dry := c.Bool("dry-run")
	forgotten, err := tiered.Forget(c.Context, st, p, dry)
	if err != nil {
		return fmt.Errorf("forget: %w", err)
	}
	if g.json {
		if forgotten == nil {
			forgotten = []uint64{}
		}
		return writeJSON(c.App.Writer, forgetJSON{DryRun: dry, Forgotten: forgotten})
	}
	verb := "forgot"
	if dry {
		verb = "would forget"
	}
	for _, v := range forgotten {
		fmt.Fprintf(c.App.Writer, "%s version %d\n", verb, v)
	}
	fmt.Fprintf(c.App.Writer, "%s %d versions%s\n", verb, len(forgotten), policySuffix(p))
	return nil
}

// policySuffix describes a policy for the summary line.
func policySuffix(p tiered.Policy) string {
	s := " (keeping"
	if p.KeepLast > 0 {
		s += fmt.Sprintf(" the last %d", p.KeepLast)
	}
	if p.KeepWithin > 0 {
		if p.KeepLast > 0 {
			s += ","
		}
		s += " those within " + formatDuration(p.KeepWithin)
	}
	if len(p.Pins) > 0 {
		s += fmt.Sprintf(", pinned %v", p.Pins)
	}
	return s + ")"
}
