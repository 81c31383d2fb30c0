package main

import (
	"fmt"

	"github.com/tierkv/tierkv/tiered"
	"github.com/urfave/cli/v2"
)

// defaultGrace is gc's default grace period: a run uploaded less than this
// long ago may belong to a snapshot still in flight, so it is kept even when
// no manifest names it yet.
const defaultGrace = "1h"

func gcCommand() *cli.Command {
	return &cli.Command{
		Name:  "gc",
		Usage: "delete runs no manifest references",
		Description: "Deletes the runs that no remaining manifest names and that are older than the grace\n" +
			"period. The grace period protects runs of snapshots still being taken by a running\n" +
			"writer: keep it longer than your slowest snapshot.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "grace", Value: defaultGrace, Usage: "keep unreferenced runs younger than `DURATION`"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would be deleted, delete nothing"},
		},
		Action: runGC,
	}
}

// gcJSON is the output of "tierkv gc --json".
type gcJSON struct {
	DryRun  bool     `json:"dry_run"`
	Deleted []string `json:"deleted"`
	Bytes   int64    `json:"bytes"`
}

func runGC(c *cli.Context) (err error) {
	if c.NArg() > 0 {
		return usagef("gc takes no arguments, got %q", c.Args().First())
	}
	grace, err := parseDuration("grace", c.String("grace"))
	if err != nil {
		return err
	}
	g, st, err := remoteCommand(c)
	if err != nil {
		return err
	}
	defer closeRemote(st, &err)

	dry := c.Bool("dry-run")
	res, err := tiered.GC(c.Context, st, grace, dry)
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	if g.json {
		deleted := res.Deleted
		if deleted == nil {
			deleted = []string{}
		}
		return writeJSON(c.App.Writer, gcJSON{DryRun: dry, Deleted: deleted, Bytes: res.Bytes})
	}
	verb := "deleted"
	if dry {
		verb = "would delete"
	}
	for _, name := range res.Deleted {
		fmt.Fprintf(c.App.Writer, "%s %s\n", verb, name)
	}
	fmt.Fprintf(c.App.Writer, "%s %d objects (%s); grace %s\n", verb, len(res.Deleted), humanBytes(res.Bytes), formatDuration(grace))
	return nil
}
