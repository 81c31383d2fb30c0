package main

import (
	"fmt"
	"time"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/tiered"
	"github.com/urfave/cli/v2"
)

func restoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "restore a version from the remote into a local directory",
		Description: "Plans the restore (runs to download, runs already present in --dir and reused),\n" +
			"prints the plan, then downloads the missing runs, verifies each (size and CRC-32C) and\n" +
			"switches the directory to the version. Running it again downloads nothing.\n" +
			"With --dry-run only the plan is printed and nothing is written.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "version", Value: "latest", Usage: "`VERSION` to restore, or latest"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan only"},
		},
		Action: runRestore,
	}
}

// planJSON is the plan in the output of "tierkv restore --json".
type planJSON struct {
	Version       uint64            `json:"version"`
	Download      []engines.RunInfo `json:"download"`
	Reuse         []engines.RunInfo `json:"reuse"`
	DownloadBytes int64             `json:"download_bytes"`
	ReuseBytes    int64             `json:"reuse_bytes"`
}

// restoreJSON is the output of "tierkv restore --json".
type restoreJSON struct {
	DryRun bool      `json:"dry_run"`
	Dir    string    `json:"dir"`
	Plan   planJSON  `json:"plan"`
	Result *restored `json:"result,omitempty"`
}

type restored struct {
	Version         uint64            `json:"version"`
	RunsDownloaded  int               `json:"runs_downloaded"`
	RunsReused      int               `json:"runs_reused"`
	BytesDownloaded int64             `json:"bytes_downloaded"`
	Seconds         float64           `json:"seconds"`
	Metadata        map[string]string `json:"metadata"`
}

func runRestore(c *cli.Context) (err error) {
	if c.NArg() > 0 {
		return usagef("restore takes no arguments, got %q: the version goes in --version", c.Args().First())
	}
	v, err := parseVersionArg(c.String("version"))
	if err != nil {
		return err
	}
	g, err := loadGlobals(c)
	if err != nil {
		return err
	}
	if err := g.requireDir(); err != nil {
		return err
	}
	st, err := openRemote(c.Context, g)
	if err != nil {
		return err
	}
	defer closeRemote(st, &err)
	if err := requireStore(c.Context, st, g.remote); err != nil {
		return err
	}

	var progress func(done, total int64)
	dryRun := c.Bool("dry-run")
	if !dryRun && isTerminal(c.App.ErrWriter) {
		bar := newProgressBar(c.App.ErrWriter, "restore")
		defer bar.Done()
		progress = bar.Update
	}
	// One plan, printed and then run: the directory stays locked between.
	pr, err := tiered.PrepareRestore(c.Context, g.dir, st, v, tiered.RestoreOptions{DryRun: dryRun, Progress: progress})
	if err != nil {
		return fmt.Errorf("plan restore into %s: %w", g.dir, err)
	}
	defer pr.Close()
	plan := pr.Plan()
	out := restoreJSON{DryRun: dryRun, Dir: g.dir, Plan: planJSON{
		Version: plan.Version, Download: nonNilRuns(plan.Download), Reuse: nonNilRuns(plan.Reuse),
		DownloadBytes: plan.DownloadBytes, ReuseBytes: plan.ReuseBytes,
	}}
	if !g.json {
		fmt.Fprintf(c.App.Writer, "version %d into %s: download %d runs (%s), reuse %d runs (%s)\n",
			plan.Version, g.dir, len(plan.Download), humanBytes(plan.DownloadBytes), len(plan.Reuse), humanBytes(plan.ReuseBytes))
		if dryRun {
			for _, r := range plan.Download {
				fmt.Fprintf(c.App.Writer, "  download %s (%s)\n", r.Name, humanBytes(r.Size))
			}
		}
	}
	if dryRun {
		if g.json {
			return writeJSON(c.App.Writer, out)
		}
		fmt.Fprintln(c.App.Writer, "dry run: nothing written")
		return nil
	}
	res, err := pr.Run(c.Context)
	if err != nil {
		return fmt.Errorf("restore version %d into %s: %w", plan.Version, g.dir, err)
	}
	if g.json {
		md := res.Metadata
		if md == nil {
			md = map[string]string{}
		}
		out.Result = &restored{
			Version: res.Version, RunsDownloaded: res.RunsDownloaded, RunsReused: res.RunsReused,
			BytesDownloaded: res.BytesDownloaded, Seconds: res.Duration.Seconds(), Metadata: md,
		}
		return writeJSON(c.App.Writer, out)
	}
	fmt.Fprintf(c.App.Writer, "restored version %d into %s: downloaded %d runs (%s), reused %d, in %s; metadata: %s\n",
		res.Version, g.dir, res.RunsDownloaded, humanBytes(res.BytesDownloaded), res.RunsReused,
		res.Duration.Round(time.Millisecond), formatMeta(res.Metadata))
	return nil
}

func nonNilRuns(r []engines.RunInfo) []engines.RunInfo {
	if r == nil {
		return []engines.RunInfo{}
	}
	return r
}
