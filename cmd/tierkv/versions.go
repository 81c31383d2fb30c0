package main

import (
	"fmt"
	"time"

	"github.com/tierkv/tierkv/manifest"
	"github.com/urfave/cli/v2"
)

// versionRow is one version in the output of "tierkv versions --json".
type versionRow struct {
	Version    uint64            `json:"version"`
	Parent     uint64            `json:"parent"`
	Created    time.Time         `json:"created"`
	Engine     string            `json:"engine"`
	Runs       int               `json:"runs"`
	TotalBytes int64             `json:"total_bytes"`
	NewBytes   int64             `json:"new_bytes"`
	Metadata   map[string]string `json:"metadata"`
}

func rowOf(m *manifest.Manifest) versionRow {
	md := m.Metadata
	if md == nil {
		md = map[string]string{}
	}
	return versionRow{
		Version: m.Version, Parent: m.Parent, Created: m.Created, Engine: m.Engine,
		Runs: len(m.Runs), TotalBytes: m.Stats.TotalBytes, NewBytes: m.Stats.NewBytes, Metadata: md,
	}
}

func versionsCommand() *cli.Command {
	return &cli.Command{
		Name:    "versions",
		Aliases: []string{"ls"},
		Usage:   "list the snapshot versions in the remote",
		Description: "Lists every version with its creation time, parent, engine, run count, total bytes,\n" +
			"bytes new in that version (what its snapshot uploaded) and metadata. Read-only.",
		Action: runVersions,
	}
}

func runVersions(c *cli.Context) (err error) {
	if c.NArg() > 0 {
		return usagef("versions takes no arguments, got %q", c.Args().First())
	}
	g, st, err := remoteCommand(c)
	if err != nil {
		return err
	}
	defer closeRemote(st, &err)

	vs, err := manifest.ListVersions(c.Context, st)
	if err != nil {
		return fmt.Errorf("list versions: %w", err)
	}
	rows := make([]versionRow, 0, len(vs))
	var failed []error
	for _, v := range vs {
		m, err := manifest.Load(c.Context, st, v)
		if err != nil {
			// Show the others; report the damaged ones after the table.
			failed = append(failed, fmt.Errorf("load version %d: %w", v, err))
			continue
		}
		rows = append(rows, rowOf(m))
	}
	if g.json {
		if err := writeJSON(c.App.Writer, rows); err != nil {
			return err
		}
	} else {
		tw := newTable(c.App.Writer)
		fmt.Fprintln(tw, "VERSION\tCREATED\tPARENT\tENGINE\tRUNS\tTOTAL\tNEW\tMETADATA")
		for _, r := range rows {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Version, formatTime(r.Created), formatParent(r.Parent),
				r.Engine, r.Runs, humanBytes(r.TotalBytes), humanBytes(r.NewBytes), formatMeta(r.Metadata))
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write table: %w", err)
		}
		if len(rows) == 0 && len(failed) == 0 {
			fmt.Fprintln(c.App.ErrWriter, "no versions yet")
		}
	}
	if len(failed) > 0 {
		for _, e := range failed[1:] {
			fmt.Fprintln(c.App.ErrWriter, "tierkv: "+errorLine(e))
		}
		return withHint(fmt.Errorf("%d of %d versions could not be read, first: %w", len(failed), len(vs), failed[0]),
			"run 'tierkv verify --all' for details")
	}
	return nil
}
