package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

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
	o := tiered.Options{
		Dir:         g.dir,
		Engine:      g.engine,
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
