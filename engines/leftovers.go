package engines

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
)

// ReadStateFile reads the private state file name (CURRENT) of an engine in
// dir that is opened without a checkpoint. It fails closed:
//
//   - the file is present: its bytes, found true;
//   - the file is absent and dir holds nothing but temporaries (*.tmp): a new
//     engine, found false. The engine must then write its state file before
//     any other file, so that a later open never finds engine files without
//     one;
//   - the file is absent and dir holds anything else: a *CorruptionError
//     (ErrCorrupt) naming the file and what dir holds. Such a directory is
//     never taken for a new engine and nothing in it is removed;
//   - the file cannot be read: an error naming it.
func ReadStateFile(fsys FS, dir, name string) (data []byte, found bool, err error) {
	path := filepath.Join(dir, name)
	data, err = ReadFile(fsys, path)
	if err == nil {
		return data, true, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("read state file %s: %w", path, err)
	}
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", dir, err)
	}
	var held []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), TempSuffix) {
			held = append(held, e.Name())
		}
	}
	if len(held) == 0 {
		return nil, false, nil
	}
	shown := held
	if len(shown) > 3 {
		shown = append(shown[:3:3], "...")
	}
	return nil, false, &CorruptionError{File: path, Reason: fmt.Sprintf(
		"state file missing, but the directory is not empty (%d entries: %s); nothing was removed: restore %s or open from a checkpoint",
		len(held), strings.Join(shown, ", "), name)}
}

// RemoveLeftovers deletes the files of dir that the opened state provably
// does not reference: temporaries (*.tmp) and run files (see ParseRunName)
// with one of the engine's extensions exts for which live returns false.
// Engines call it after the state they opened is durable in their state file.
// Nothing else is touched. A failure to list dir or to remove a file is
// logged at WARN and does not fail the open: the file stays, harmless, until
// the next open.
func RemoveLeftovers(fsys FS, dir string, log *slog.Logger, live func(name string) bool, exts ...string) {
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		log.Warn("engines: list directory for leftover files", "dir", dir, "err", err)
		return
	}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !isLeftover(name, live, exts) {
			continue
		}
		if err := fsys.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("engines: remove leftover file", "dir", dir, "file", name, "err", err)
			continue
		}
		log.Info("engines: removed leftover file", "dir", dir, "file", name)
	}
}

func isLeftover(name string, live func(string) bool, exts []string) bool {
	if strings.HasSuffix(name, TempSuffix) {
		return true
	}
	_, _, ext, ok := ParseRunName(name)
	if !ok || live(name) {
		return false
	}
	for _, x := range exts {
		if ext == x {
			return true
		}
	}
	return false
}
