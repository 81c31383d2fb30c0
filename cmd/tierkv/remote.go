package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/tierkv/tierkv/manifest"
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
// commands that work on a bare remote (versions, show, verify, forget, gc);
// a remote holding no object is refused by requireStore. The caller closes
// the store with closeRemote.
func remoteCommand(c *cli.Context) (*globals, objstore.Store, error) {
	g, err := loadGlobals(c)
	if err != nil {
		return nil, nil, err
	}
	st, err := openRemote(c.Context, g)
	if err != nil {
		return nil, nil, err
	}
	if err := requireStore(c.Context, st, g.remote); err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	return g, st, nil
}

// requireStore returns an error naming the remote when st, opened from
// rawURL, holds no object at all: a mistyped --remote must not read as an
// empty store ("no versions yet", "ok: 0 versions verified"). It only
// lists, so it creates nothing.
func requireStore(ctx context.Context, st objstore.Store, rawURL string) error {
	for _, prefix := range []string{manifest.ManifestPrefix, ""} {
		objs, err := st.List(ctx, prefix)
		if err != nil {
			return fmt.Errorf("list remote %s: %w", objstore.Redact(rawURL), err)
		}
		if len(objs) > 0 {
			return nil
		}
	}
	why := "it holds no object"
	if u, err := url.Parse(rawURL); err == nil && u.Scheme == "file" {
		if _, err := os.Stat(filepath.FromSlash(u.Path)); errors.Is(err, fs.ErrNotExist) {
			why = "directory " + filepath.FromSlash(u.Path) + " does not exist"
		}
	}
	return withHint(fmt.Errorf("no store at %s: %s", objstore.Redact(rawURL), why),
		"check --remote; a store's first 'tierkv snapshot' creates it")
}

// closeRemote closes st and keeps the first error.
func closeRemote(st objstore.Store, err *error) {
	if cerr := st.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("close remote: %w", cerr)
	}
}
