package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
	"github.com/tierkv/tierkv/tiered"
	"github.com/urfave/cli/v2"
)

// openLocal opens the store in --dir from its local state (ResumeLocal: no
// restore). withRemote connects --remote too (needed to snapshot or
// restore); without it the remote is not touched at all. mustExist refuses
// a directory that does not exist instead of creating an empty store, for
// commands that make no sense on an empty store (get, del, snapshot).
func openLocal(c *cli.Context, g *globals, withRemote, mustExist bool) (*tiered.Store, error) {
	if err := g.requireDir(); err != nil {
		return nil, err
	}
	if withRemote {
		if err := g.requireRemote(); err != nil {
			return nil, err
		}
	}
	if mustExist {
		if _, err := os.Stat(g.dir); errors.Is(err, fs.ErrNotExist) {
			return nil, withHint(fmt.Errorf("no local store at %s", g.dir),
				"restore one with 'tierkv restore --dir "+g.dir+"' or check --dir")
		}
	}
	engine, err := defaultEngine(c, g)
	if err != nil {
		return nil, err
	}
	o := tiered.Options{
		Dir:         g.dir,
		Engine:      engine,
		Params:      g.params,
		ResumeLocal: true,
		Logger:      g.logger,
	}
	if withRemote {
		o.Remote = g.remote
	}
	s, err := tiered.Open(c.Context, o)
	if err != nil {
		return nil, fmt.Errorf("open store at %s: %w", g.dir, err) // tiered names the remote
	}
	return s, nil
}

// defaultEngine returns the engine kind to open --dir with: --engine if
// given; else, when --remote is given and --dir holds no store yet (missing
// or empty), the engine of the remote's latest version, so that a new local
// store joins the remote's history with its engine; else "" (the recorded
// one, or tiered's default for a new store).
func defaultEngine(c *cli.Context, g *globals) (string, error) {
	if g.engine != "" || g.remote == "" {
		return g.engine, nil
	}
	entries, err := os.ReadDir(g.dir)
	if err == nil && len(entries) > 0 {
		return "", nil // a store, or something tiered will refuse by name
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read local directory %s: %w", g.dir, err)
	}
	st, err := openRemote(c.Context, g)
	if err != nil {
		return "", err
	}
	defer st.Close()
	m, err := manifest.Latest(c.Context, st)
	if errors.Is(err, manifest.ErrNoVersions) {
		return "", nil
	}
	if err != nil {
		return "", withHint(fmt.Errorf("read the latest version of remote %s to choose the engine: %w", objstore.Redact(g.remote), err),
			"pass --engine to choose it, or check --remote")
	}
	if err := checkParamsFor(m.Engine, g.params); err != nil {
		return "", fmt.Errorf("the remote's latest version holds a %s store: %w", m.Engine, err)
	}
	return m.Engine, nil
}

// closeLocal closes s and keeps the first error.
func closeLocal(s *tiered.Store, err *error) {
	if cerr := s.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("close store: %w", cerr)
	}
}

// parseMeta parses "k=v" pairs into metadata.
func parseMeta(pairs []string) (map[string]string, error) {
	md := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid metadata %q: want KEY=VALUE", p)
		}
		if _, dup := md[k]; dup {
			return nil, fmt.Errorf("metadata key %q given twice", k)
		}
		md[k] = v
	}
	return md, nil
}
