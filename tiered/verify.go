package tiered

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/manifest"
	"github.com/tierkv/tierkv/objstore"
)

// Problem is one integrity problem Verify found.
type Problem struct {
	// Version is the version concerned.
	Version uint64
	// Object is the object key: the manifest's or a run's.
	Object string
	// Detail says what is wrong, in one line.
	Detail string
}

// String formats the problem as "version 3: runs/x: run is missing".
func (p Problem) String() string {
	return fmt.Sprintf("version %d: %s: %s", p.Version, p.Object, p.Detail)
}

// Verify checks versions (nil = all) of st: each manifest decodes and
// validates, and each of its runs exists with the size the manifest records
// (shallow, a Head per run) or, with deep, also downloads and matches the
// CRC-32C the manifest records. The manifest is the authority: a run's
// crc32c object metadata is only a copy of it, which copy tools and some
// file systems drop, so missing metadata is no problem, while metadata that
// contradicts the manifest is (the object was replaced). A run shared by
// several versions is checked once.
// The error is for failures that stop the check (listing, a transient read
// error); what is wrong with the data is in the problems.
func Verify(ctx context.Context, st objstore.Store, versions []uint64, deep bool) ([]Problem, error) {
	st = withReadRetries(st)
	if versions == nil {
		vs, err := manifest.ListVersions(ctx, st)
		if err != nil {
			return nil, fmt.Errorf("tiered: verify: list versions: %w", err)
		}
		versions = vs
	}
	checked := make(map[string]string) // run name -> problem detail ("" = fine)
	var problems []Problem
	for _, v := range versions {
		m, err := manifest.Load(ctx, st, v)
		if err != nil {
			if errors.Is(err, manifest.ErrVersionNotFound) || errors.Is(err, engines.ErrCorrupt) || errors.Is(err, manifest.ErrFormat) {
				problems = append(problems, Problem{Version: v, Object: manifest.Key(v), Detail: err.Error()})
				continue
			}
			return problems, fmt.Errorf("tiered: verify version %d: %w", v, err)
		}
		for _, r := range m.Runs {
			detail, ok := checked[r.Name]
			if !ok {
				if detail, err = verifyRun(ctx, st, r, deep); err != nil {
					return problems, fmt.Errorf("tiered: verify version %d: %w", v, err)
				}
				checked[r.Name] = detail
			}
			if detail != "" {
				problems = append(problems, Problem{Version: v, Object: manifest.RunKey(r.Name), Detail: detail})
			}
		}
	}
	return problems, nil
}

// verifyRun returns what is wrong with run r in st ("" = nothing).
func verifyRun(ctx context.Context, st objstore.Store, r engines.RunInfo, deep bool) (string, error) {
	key := manifest.RunKey(r.Name)
	info, err := st.Head(ctx, key)
	if errors.Is(err, objstore.ErrNotExist) {
		return "run is missing", nil
	}
	if err != nil {
		return "", err
	}
	if info.Size != r.Size {
		return fmt.Sprintf("size %d, manifest records %d", info.Size, r.Size), nil
	}
	if md, ok := info.Metadata["crc32c"]; ok {
		if c, err := strconv.ParseUint(md, 16, 32); err != nil || len(md) != 8 || uint32(c) != r.CRC32C {
			return fmt.Sprintf("crc32c metadata %q, manifest records %08x", md, r.CRC32C), nil
		}
	}
	if !deep {
		return "", nil
	}
	rc, _, err := st.Get(ctx, key)
	if errors.Is(err, objstore.ErrNotExist) {
		return "run is missing", nil
	}
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := crc32.New(engines.CastagnoliTable)
	n, err := io.Copy(h, rc)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	switch {
	case n != r.Size:
		return fmt.Sprintf("content is %d bytes, manifest records %d", n, r.Size), nil
	case h.Sum32() != r.CRC32C:
		return fmt.Sprintf("content crc32c %08x, manifest records %08x", h.Sum32(), r.CRC32C), nil
	}
	return "", nil
}
