package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/tiered"
	"github.com/urfave/cli/v2"
)

// demoWorkerEnv is set in the environment of the demo's worker process. A
// test binary re-executed as the worker checks it (see TestMain).
const demoWorkerEnv = "TIERKV_DEMO_WORKER"

// The worker reports to the demo on its standard output, one line each:
//
//	opened VERSION OFFSET                   after Open (version 0: empty remote)
//	snapshot VERSION OFFSET UPLOADED TOTAL  after each snapshot
//	crash-point OFFSET                      reached the crash point; waits to be killed
//
// At the crash point it blocks reading its standard input: the demo kills it
// with SIGKILL there. If the demo goes away instead (EOF), it exits without
// closing the store, which is a crash too.
func demoWorkerCommand() *cli.Command {
	return &cli.Command{
		Name:   "demo-worker",
		Hidden: true,
		Usage:  "the demo's streaming worker (started by 'tierkv demo'; not for direct use)",
		Flags:  append(demoStreamFlags(), &cli.Int64Flag{Name: "crash-at", Usage: "offset to stop and wait to be killed at"}),
		Action: runDemoWorker,
	}
}

func runDemoWorker(c *cli.Context) error {
	g, err := loadGlobals(c)
	if err != nil {
		return err
	}
	if err := g.requireDir(); err != nil {
		return err
	}
	if err := g.requireRemote(); err != nil {
		return err
	}
	d, every, err := demoStreamOf(c)
	if err != nil {
		return err
	}
	crashAt := c.Int64("crash-at")
	if crashAt <= 0 || crashAt > d.events {
		return usagef("invalid --crash-at %d: want 1..%d", crashAt, d.events)
	}
	s, err := openDemoStore(c, g, g.dir)
	if err != nil {
		return err
	}
	// From here on the store is never closed: the process ends by SIGKILL.
	off, err := offsetOf(s.Metadata())
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "opened %d %d\n", s.Version(), off)
	err = d.process(c.Context, s, off, crashAt, every, func(offset int64, res tiered.SnapshotResult) {
		fmt.Fprintf(w, "snapshot %d %d %d %d\n", res.Version, offset, res.BytesUploaded, res.TotalBytes)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "crash-point %d\n", crashAt)
	_, _ = io.Copy(io.Discard, c.App.Reader)
	return errors.New("demo worker: the demo went away before killing the worker")
}

// openDemoStore opens the demo's store in dir, restoring the latest version
// of the remote (an empty remote gives an empty store).
func openDemoStore(c *cli.Context, g *globals, dir string) (*tiered.Store, error) {
	o := tiered.Options{Dir: dir, Remote: g.remote, Engine: g.engine, Params: g.params, Logger: g.logger}
	s, err := tiered.Open(c.Context, o)
	if errors.Is(err, tiered.ErrNoVersions) {
		// Nothing to restore yet: start from the (empty) local state.
		o.ResumeLocal = true
		s, err = tiered.Open(c.Context, o)
	}
	if err != nil {
		return nil, fmt.Errorf("open store at %s with remote %s: %w", dir, objstore.Redact(g.remote), err)
	}
	return s, nil
}
