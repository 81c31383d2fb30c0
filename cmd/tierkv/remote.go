package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/tierkv/tierkv/objstore"
	"github.com/urfave/cli/v2"
)

// openRemote opens the object store named by --remote, for the commands that
// work on a bare remote (versions, show, verify, restore, forget, gc).
func openRemote(ctx context.Context, g *globals) (objstore.Store, error) {
	if err := g.requireRemote(); err != nil {
		return nil, err
	}
	st, err := objstore.Open(ctx, g.remote)
	if errors.Is(err, objstore.ErrInvalidURL) {
		return nil, err // names the (redacted) URL and the accepted forms
	}
	if err != nil {
		return nil, fmt.Errorf("open remote %s: %w", objstore.Redact(g.remote), err)
	}
	return st, nil
}

// remoteCommand loads the global flags and opens the --remote store, for the
// commands that work on a bare remote; the caller closes it with closeRemote.
func remoteCommand(c *cli.Context) (*globals, objstore.Store, error) {
	g, err := loadGlobals(c)
	if err != nil {
		return nil, nil, err
	}
	st, err := openRemote(c.Context, g)
	if err != nil {
		return nil, nil, err
	}
	return g, st, nil
}

// closeRemote closes st and keeps the first error.
func closeRemote(st objstore.Store, err *error) {
	if cerr := st.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("close remote: %w", cerr)
	}
}
