package main

import (
	"fmt"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/urfave/cli/v2"
)

func showCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show one version's manifest and runs",
		ArgsUsage: "VERSION|latest",
		Description: "Prints the manifest of a version: its parent, writer, engine and parameters,\n" +
			"metadata, statistics and every run (name, size, CRC-32C). With --json, the manifest\n" +
			"itself. Read-only.",
		Action: runShow,
	}
}

// loadManifest loads version v (0 = latest) from st.
func loadManifest(c *cli.Context, st objstore.Store, v uint64) (*manifest.Manifest, error) {
	if v == 0 {
		m, err := manifest.Latest(c.Context, st)
		if err != nil {
			return nil, fmt.Errorf("load latest version: %w", err)
		}
		return m, nil
	}
	m, err := manifest.Load(c.Context, st, v)
	if err != nil {
		return nil, fmt.Errorf("load version %d: %w", v, err)
	}
	return m, nil
}

func runShow(c *cli.Context) (err error) {
	if c.NArg() != 1 {
		return usagef("show takes one argument, VERSION or latest: e.g. 'tierkv show latest'")
	}
	v, err := parseVersionArg(c.Args().First())
	if err != nil {
		return err
	}
	g, st, err := remoteCommand(c)
	if err != nil {
		return err
	}
	defer closeRemote(st, &err)
	m, err := loadManifest(c, st, v)
	if err != nil {
		return err
	}
	if g.json {
		return writeJSON(c.App.Writer, m)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "version:   %d\n", m.Version)
	fmt.Fprintf(w, "parent:    %s\n", formatParent(m.Parent))
	fmt.Fprintf(w, "created:   %s\n", formatTime(m.Created))
	fmt.Fprintf(w, "store:     %s\n", m.StoreID)
	fmt.Fprintf(w, "writer:    %s\n", m.WriterID)
	fmt.Fprintf(w, "engine:    %s\n", m.Engine)
	fmt.Fprintf(w, "params:    %s\n", formatMeta(m.Params))
	fmt.Fprintf(w, "metadata:  %s\n", formatMeta(m.Metadata))
	fmt.Fprintf(w, "runs:      %d (%s), %d new in this version (%s)\n",
		m.Stats.TotalRuns, humanBytes(m.Stats.TotalBytes), m.Stats.NewRuns, humanBytes(m.Stats.NewBytes))
	fmt.Fprintf(w, "state:     %d bytes of engine state\n", len(m.EngineState))
	fmt.Fprintln(w)
	tw := newTable(w) // runs in manifest (engine) order
	fmt.Fprintln(tw, "RUN\tSIZE\tCRC32C")
	for _, r := range m.Runs {
		fmt.Fprintf(tw, "%s\t%d\t%08x\n", r.Name, r.Size, r.CRC32C)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}
