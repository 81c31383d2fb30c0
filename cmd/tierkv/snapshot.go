package main

import (
	"fmt"
	"time"

	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/tiered"
	"github.com/urfave/cli/v2"
)

func snapshotCommand() *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "commit the local store as a new version in the remote",
		Description: "Opens the existing store in --dir from its local state with --remote, takes a snapshot\n" +
			"(uploads the runs the remote lacks, then creates manifest latest+1 with the given\n" +
			"metadata) and closes it. Prints the new version.",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "meta", Usage: "metadata `KEY=VALUE` to commit with the version (repeatable)"},
		},
		Action: runSnapshot,
	}
}

// snapshotJSON is the output of "tierkv snapshot --json".
type snapshotJSON struct {
	Version       uint64  `json:"version"`
	Parent        uint64  `json:"parent"`
	Runs          int     `json:"runs"`
	NewRuns       int     `json:"new_runs"`
	BytesUploaded int64   `json:"bytes_uploaded"`
	TotalBytes    int64   `json:"total_bytes"`
	Seconds       float64 `json:"seconds"`
}

func runSnapshot(c *cli.Context) (err error) {
	if c.NArg() > 0 {
		return usagef("snapshot takes no arguments, got %q: metadata goes in --meta KEY=VALUE", c.Args().First())
	}
	md, err := parseMeta(c.StringSlice("meta"))
	if err != nil {
		return usagef("%v", err)
	}
	g, err := loadGlobals(c)
	if err != nil {
		return err
	}
	s, err := openLocal(c, g, true, true)
	if err != nil {
		return err
	}
	defer closeLocal(s, &err)
	res, err := s.Snapshot(c.Context, tiered.WithMetadata(md))
	if err != nil {
		return fmt.Errorf("snapshot %s to %s: %w", g.dir, objstore.Redact(g.remote), err)
	}
	if g.json {
		return writeJSON(c.App.Writer, snapshotJSON{
			Version: res.Version, Parent: res.Parent, Runs: res.Runs, NewRuns: res.NewRuns,
			BytesUploaded: res.BytesUploaded, TotalBytes: res.TotalBytes, Seconds: res.Duration.Seconds(),
		})
	}
	fmt.Fprintf(c.App.Writer, "version %d (parent %s): %d runs, %d new; uploaded %s of %s in %s\n",
		res.Version, formatParent(res.Parent), res.Runs, res.NewRuns, humanBytes(res.BytesUploaded),
		humanBytes(res.TotalBytes), res.Duration.Round(time.Millisecond))
	return nil
}
